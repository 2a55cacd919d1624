"""Kubeflow Pipelines v2: components sign their own stage; the pipeline compiles to IR.

No cluster: the pipeline is compiled with ``kfp.compiler.Compiler`` and run with KFP's
local SubprocessRunner in this environment (each component in its own Python process,
from the source KFP embeds in the IR), then verified by the library.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest.importorskip("kfp")

import yaml

from mlspec_attest.errors import UsageError
from mlspec_attest.integrations.kfp import artifact_paths, local_root
from tests.integrations.orchestrated import example, sha256, statements, verify_run
from tests.support import rewrite_payload

pytestmark = pytest.mark.slow


def _verify(work: Path, run_id: str) -> None:
    report = verify_run(work, run_id, deploy=None)
    assert report.passed, [str(f) for f in report.failures]


def test_compiled_ir_holds_the_signing_components(tmp_path: Path) -> None:
    ir = yaml.safe_load(example("kfp_pipeline").compile_pipeline(tmp_path / "p.yaml").read_text())
    assert set(ir["components"]) == {"comp-ingest", "comp-train", "comp-evaluate"}
    executors = ir["deploymentSpec"]["executors"]
    for stage in ("ingest", "train", "evaluate"):
        source = "\n".join(executors[f"exec-{stage}"]["container"]["command"])
        assert f'kfp_stage("{stage}"' in source
    tasks = ir["root"]["dag"]["tasks"]
    job = tasks["train"]["inputs"]["parameters"]["job"]["runtimeValue"]["constant"]
    assert job == "{{$.pipeline_job_uuid}}"
    assert tasks["train"]["dependentTasks"] == ["ingest"]


def test_local_run_signs_each_component_and_verifies(tmp_path: Path) -> None:
    kfp_example = example("kfp_pipeline")
    run_id = kfp_example.run(tmp_path)
    assert run_id.startswith("kfp.")
    example("mini_pipeline").sign_policy(tmp_path, kfp_example.POLICY_YAML)
    _verify(tmp_path, run_id)

    outputs = tmp_path / "outputs"
    signed = statements(tmp_path / "store", run_id)
    (job,) = [p.name for p in outputs.iterdir() if p.is_dir() and not p.name.startswith(".")]
    expected = {
        "ingest": ({}, {"raw": f"{job}/ingest/raw"}),
        "train": ({"train": f"{job}/ingest/raw"}, {"model": f"{job}/train/model"}),
        "evaluate": (
            {"validation": f"{job}/ingest/raw", "model": f"{job}/train/model"},
            {"report": f"{job}/evaluate/report"},
        ),
    }
    for stage, (inputs, products) in expected.items():
        predicate = signed[stage]["predicate"]
        materials = {m["name"]: m["digest"]["sha256"] for m in predicate["materials"]}
        subjects = {s["name"]: s["digest"]["sha256"] for s in signed[stage]["subject"]}
        assert materials == {name: sha256(outputs / name) for name in inputs.values()}
        assert subjects == {name: sha256(outputs / name) for name in products.values()}
        assert predicate["byproducts"]["mlspec"]["roles"] == {**inputs, **products}
    mae = signed["evaluate"]["predicate"]["byproducts"]["mlspec"]["metrics"]["mae"]
    assert 0 < mae < 1

    # A statement edited after signing (here: another model digest) is denied.
    (bundle,) = (tmp_path / "store" / "runs" / run_id).glob("train.*.sigstore.json")
    rewrite_payload(bundle, lambda st: st["subject"][0]["digest"].update(sha256="0" * 64))
    with pytest.raises(AssertionError):
        _verify(tmp_path, run_id)


def test_a_failing_component_signs_nothing(tmp_path: Path) -> None:
    from kfp import dsl

    kfp_example = example("kfp_pipeline")
    raw = dsl.Dataset(uri=str(tmp_path / "job" / "ingest" / "raw"))  # never written
    model = dsl.Model(uri=str(tmp_path / "job" / "train" / "model"))
    store = tmp_path / "store"
    with pytest.raises(FileNotFoundError):
        kfp_example.train.python_func(
            raw=raw, model=model, job="j1", root=str(tmp_path), store=str(store),
            key=str(kfp_example.KEYS / "ml-engineer.key"),
        )  # fmt: skip
    assert not (store / "runs").exists()


def test_the_component_function_signs_when_called_directly(tmp_path: Path) -> None:
    from kfp import dsl

    kfp_example = example("kfp_pipeline")
    raw = dsl.Dataset(uri=str(tmp_path / "job" / "ingest" / "raw"))
    os.makedirs(os.path.dirname(raw.path))
    kfp_example.ingest.python_func(
        raw=raw, job="j1", root=str(tmp_path), store=str(tmp_path / "store"),
        key=str(kfp_example.KEYS / "data-engineer.key"),
    )  # fmt: skip
    (subject,) = statements(tmp_path / "store", "kfp.j1")["ingest"]["subject"]
    assert subject == {**subject, "name": "job/ingest/raw"}
    assert subject["digest"]["sha256"] == sha256(Path(raw.path))


def test_artifacts_without_a_path_are_refused() -> None:
    assert artifact_paths({"model": "m/model.json"}, what="outputs") == {"model": "m/model.json"}
    with pytest.raises(UsageError, match="neither a path nor a KFP artifact"):
        artifact_paths([object()], what="inputs")


def test_a_remote_pipeline_root_maps_to_its_mount() -> None:
    assert local_root("gs://bucket/root") == "/gcs/bucket/root"
    assert local_root("/data/root") == "/data/root"
