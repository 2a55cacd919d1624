"""Orchestrator and tracker integrations: sign a stage from inside the task that ran it.

The top layer, beside :mod:`mlspec_attest.cli`: modules here may import
:mod:`mlspec_attest.api` and everything below it; nothing in the library imports them.
``task_mapping`` is framework-free and says how a task's declared inputs, outputs, run id,
parameters, metrics and signer become one :func:`mlspec_attest.api.stage` call; it is
shared by ``airflow`` (operator and ``@mlspec_task`` for TaskFlow), ``prefect`` (a
wrapper over ``@task``) and ``kfp`` (a KFP v2 lightweight component), and ``mlflow``
records a signed stage against an MLflow run. Each framework is imported only inside its
own module, lazily through :func:`mlspec_attest.errors.require`, so a missing extra exits
4 naming it and ``import mlspec_attest.integrations`` never needs any of them.
"""
