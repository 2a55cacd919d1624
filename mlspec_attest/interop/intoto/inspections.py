"""Step 9 of in-toto's verification: a layout's inspections, run and recorded.

Security: inspections execute commands written by the layout's signer. They run
only when every earlier check passed and the caller allows it; a sublayout's
inspections never run (a functionary signed it, not the policy owner). Unlike
``in-toto-verify`` they run in ``workdir`` rather than the process's current
directory, their output is captured, and no ``<inspection>.link`` is written.
Artifacts are recorded by in-toto's own ``record_artifacts_as_dict``.
"""

from __future__ import annotations

import os
import subprocess
import threading
import warnings
from typing import Any

from mlspec_attest.interop.intoto.scope import LayoutScope
from mlspec_attest.interop.intoto.support import lib
from mlspec_attest.verify.report import Check

#: ``in_toto.settings.LINK_CMD_EXEC_TIMEOUT``: seconds an inspection may run.
DEFAULT_INSPECT_TIMEOUT = 10

# The report vocabulary has no inspection check yet; use it as soon as it exists.
INSPECTION_CHECK: Check = Check.__members__.get("INSPECTION", Check.ARTIFACT_RULE)

# in-toto's artifact recorder changes the process's working directory.
_CWD_LOCK = threading.Lock()


def record_workdir(scope: LayoutScope) -> dict[str, Any]:
    """Hash the work directory as in-toto's inspections do (``record_artifacts_as_dict``)."""
    record_artifacts_as_dict = lib("in_toto.runlib").record_artifacts_as_dict

    with _CWD_LOCK, warnings.catch_warnings():
        # pathspec (in-toto's exclude patterns) deprecates the pattern style in-toto uses.
        warnings.simplefilter("ignore", DeprecationWarning)
        cwd = os.getcwd()
        try:
            return dict(
                record_artifacts_as_dict(
                    ["."], base_path=os.fspath(scope.workdir.resolve()), follow_symlink_dirs=True
                )
            )
        finally:
            os.chdir(cwd)


def run_inspection(scope: LayoutScope, inspection: Any) -> Any | None:
    """Run one inspection; its in-toto link if it exited 0, else None (reported)."""
    Link = lib("in_toto.models.link").Link

    stage = scope.stage(inspection.name)
    command = [str(a) for a in inspection.run]
    scope.inspection_status[stage] = "failed"
    remedy = "fix the artifacts or the layout's inspection command"
    if not command:
        scope.fail(
            INSPECTION_CHECK,
            stage,
            "inspection has no command (in-toto requires one that exits 0)",
            expected="a command",
            found="run: []",
            remedy=remedy,
        )
        return None
    materials = record_workdir(scope)
    try:
        proc = subprocess.run(
            command,
            cwd=scope.workdir,
            capture_output=True,
            timeout=scope.inspect_timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        found = f"still running after {scope.inspect_timeout} s"
    except OSError as exc:
        found = f"cannot run {command[0]!r}: {exc.strerror or exc}"
    else:
        if proc.returncode == 0:
            scope.inspection_status[stage] = "ok"
            return Link(
                name=inspection.name,
                materials=materials,
                products=record_workdir(scope),
                command=command,
                byproducts={"return-value": 0},
                environment={},
            )
        tail = proc.stderr.decode("utf-8", "replace").strip().splitlines()[-3:]
        found = f"exit status {proc.returncode}" + (f": {' / '.join(tail)}" if tail else "")
    scope.fail(
        INSPECTION_CHECK,
        stage,
        f"inspection command {' '.join(command)!r} failed",
        expected=f"exit status 0 in {scope.workdir}",
        found=found,
        remedy=remedy,
    )
    return None


def run_inspections(scope: LayoutScope, layout: Any) -> dict[str, Any]:
    """Run the layout's inspections in order, if they may run; their links by name."""
    inspections = list(layout.inspect)
    if not inspections:
        return {}
    if scope.report.failures:
        for i in inspections:
            scope.inspection_status[scope.stage(i.name)] = "not-run"
        names = ", ".join(scope.stage(i.name) for i in inspections)
        scope.note(
            f"inspections not run ({names}): earlier checks failed, and in-toto runs "
            "inspections only on verified artifacts"
        )
        return {}
    if not scope.allow_inspections:
        for i in inspections:
            _refuse(scope, i)
        return {}
    out: dict[str, Any] = {}
    for inspection in inspections:
        link = run_inspection(scope, inspection)
        if link is None:
            break  # later inspections may depend on this one, as in in-toto
        out[inspection.name] = link
    return out


def _refuse(scope: LayoutScope, inspection: Any) -> None:
    """Fail closed: an inspection the layout requires that may not run."""
    stage = scope.stage(inspection.name)
    scope.inspection_status[stage] = "not-run"
    if scope.step_name:
        message = (
            "a functionary's sublayout requires this inspection; only the policy "
            "owner's own layout may run commands, so it is not run"
        )
        remedy = "move the inspection into the owner's top-level layout"
    else:
        message = "the layout requires this inspection, but running inspections is disabled"
        remedy = (
            "allow inspections (they execute the layout's commands) if you trust the layout owner"
        )
    scope.fail(
        INSPECTION_CHECK,
        stage,
        message,
        expected=f"run {' '.join(inspection.run)!r} in {scope.workdir}",
        found="not run",
        remedy=remedy,
    )
