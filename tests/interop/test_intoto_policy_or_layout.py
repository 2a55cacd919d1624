"""One decision for ``verify --policy``: a signed policy or an in-toto layout.

:func:`verify_policy_or_layout` is the only place that chooses the verifier. Every way in (the
function, each verifier called directly, the ``verify`` command) gives the same report for the
same file, and the options that only apply to a pipeline are refused for a layout, except a
run id that came from the environment.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mlspec_attest.cli import main as cli_main
from mlspec_attest.errors import UsageError
from mlspec_attest.interop.intoto import (
    functionary_signers,
    verify_intoto_layout,
    verify_policy_or_layout,
)
from mlspec_attest.verify.pipeline import verify_pipeline
from mlspec_attest.verify.report import VerificationReport

from ..support import VERIFY_NOW, Pipeline, flip_byte
from .reference import IntotoDemo
from .test_intoto import demo_layout, make_folder

pytest.importorskip("in_toto", reason="in-toto not installed: pip install 'mlspec-attest[intoto]'")


@pytest.fixture(scope="module")
def demo(intoto_demo: IntotoDemo) -> IntotoDemo:
    return intoto_demo


def _doc(report: VerificationReport) -> Any:
    return json.loads(json.dumps(report.to_json()))


def _cli(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, Any]:
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        cli_main.main([str(a) for a in args])
    out, _ = capsys.readouterr()
    code = info.value.code
    return (code if isinstance(code, int) else 1), out


@pytest.mark.parametrize("tampered", [False, True], ids=["passed", "denied"])
def test_a_signed_policy_gets_the_pipeline_verifiers_answer(
    honest: Pipeline, tampered: bool
) -> None:
    if tampered:
        flip_byte(honest.ws / "dist/model/weights.bin")
    owner = honest.keys["owner"]
    artifacts = honest.deploy_artifacts()
    chosen = verify_policy_or_layout(
        honest.signed_policy_path,
        [owner.pub_path],
        honest.store_path,
        run_id=honest.run_id,
        artifacts=artifacts,
        now=VERIFY_NOW,
    )
    direct = verify_pipeline(
        honest.signed,
        [owner.public],
        honest.store,
        run_id=honest.run_id,
        artifacts=artifacts,
        now=VERIFY_NOW,
    )
    assert chosen.passed is (not tampered)
    assert _doc(chosen) == _doc(direct)


@pytest.mark.parametrize("dsse", [False, True], ids=["metablock", "dsse"])
def test_a_layout_gets_the_intoto_verifiers_answer(
    demo: IntotoDemo, tmp_path: Path, dsse: bool
) -> None:
    folder = make_folder(demo, tmp_path / "f", demo_layout(demo, dsse), dsse)
    args = (folder / "root.layout", [folder / "alice.pub"], folder)
    # No inspection runs, so both calls see the same folder (they deny the same way).
    chosen = verify_policy_or_layout(*args, run_inspections=False, now=VERIFY_NOW)
    direct = verify_intoto_layout(*args, run_inspections=False, now=VERIFY_NOW)
    assert not chosen.passed
    assert _doc(chosen) == _doc(direct)


def test_the_cli_gives_the_same_answer(
    demo: IntotoDemo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = make_folder(demo, tmp_path / "f", demo_layout(demo, False), False)
    code, out = _cli(
        capsys,
        "verify", "--policy", folder / "root.layout", "--policy-key", folder / "alice.pub",
        "--store", folder, "--no-run-inspections", "--json",
    )  # fmt: skip
    direct = verify_intoto_layout(
        folder / "root.layout", [folder / "alice.pub"], folder, run_inspections=False
    )
    doc = json.loads(out)
    assert code == 1
    doc.pop("verifiedAt", None)
    expected = _doc(direct)
    expected.pop("verifiedAt", None)
    assert doc == expected


@pytest.mark.parametrize(
    "options",
    [
        {"artifacts": {"model": Path("foo.tar.gz")}},
        {"baseline": Path("base.json")},
        {"run_id": "r1"},
    ],
    ids=["artifact", "baseline", "run-id"],
)
def test_pipeline_options_are_refused_for_a_layout(
    demo: IntotoDemo, tmp_path: Path, options: dict[str, Any]
) -> None:
    folder = make_folder(demo, tmp_path / "f", demo_layout(demo, False), False)
    with pytest.raises(UsageError, match="do not apply to an in-toto layout"):
        verify_policy_or_layout(folder / "root.layout", [folder / "alice.pub"], folder, **options)


def test_a_run_id_from_the_environment_is_ignored_for_a_layout(
    demo: IntotoDemo,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    folder = make_folder(demo, tmp_path / "f", demo_layout(demo, False), False)
    base: list[str | Path] = ["verify", "--policy", folder / "root.layout"]
    base += ["--policy-key", folder / "alice.pub", "--store", folder, "--json"]
    monkeypatch.setenv("MLSPEC_RUN_ID", "run-from-env")
    code, out = _cli(capsys, *base)
    assert code == 0
    assert json.loads(out)["result"] == "PASSED"
    code, _ = _cli(capsys, *base, "--run-id", "run-from-env")
    assert code == 2


# ----------------------------------------------- export: the functionaries' keys
def test_functionary_signers_match_the_policy(honest: Pipeline, tmp_path: Path) -> None:
    policy = honest.signed.policy
    keys = honest.keys
    named = {"ml-engineer": keys["ml-engineer"].key_path}
    [signer] = functionary_signers(policy, named, None)
    assert signer.public_key.keyid == policy.functionaries["ml-engineer"].keyid

    with pytest.raises(UsageError, match="the policy has no functionary 'nobody'"):
        functionary_signers(policy, {"nobody": keys["owner"].key_path}, None)
    with pytest.raises(UsageError, match="not the key the policy lists for 'ml-engineer'"):
        functionary_signers(policy, {"ml-engineer": keys["data-engineer"].key_path}, None)
    with pytest.raises(UsageError, match="is not a directory"):
        functionary_signers(policy, {}, tmp_path / "missing")


def test_a_key_directory_contributes_only_functionaries(honest: Pipeline, tmp_path: Path) -> None:
    policy = honest.signed.policy
    key_dir = tmp_path / "keys"
    key_dir.mkdir()
    for role in ("ml-engineer", "owner"):
        (key_dir / f"{role}.key").write_bytes(honest.keys[role].key_path.read_bytes())
    signers = functionary_signers(policy, {}, key_dir)
    known = {f.keyid for f in policy.functionaries.values()}
    assert [s.public_key.keyid for s in signers] == [policy.functionaries["ml-engineer"].keyid]
    assert honest.keys["owner"].public.keyid not in known
