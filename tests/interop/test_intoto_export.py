"""``mlspec-attest export intoto``: a verified local-key run as a legacy layout + links
that the reference ``in-toto-verify`` accepts, and rejects once tampered with."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mlspec_attest.cli import main as cli_main
from mlspec_attest.interop.intoto import (
    export_intoto,
    is_intoto_layout,
    sslib_key_dict,
    verify_intoto_layout,
)
from mlspec_attest.verify.report import Check

from ..support import STAGES, VERIFY_NOW, KeyPair, Pipeline, checks_of, flip_byte
from .test_intoto import reference_verify

pytest.importorskip("in_toto", reason="in-toto not installed: pip install 'mlspec-attest[intoto]'")

FUNCTIONARIES = ("data-engineer", "ml-engineer", "ml-reviewer", "release-engineer")


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


Cli = Callable[..., Run]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Cli:
    """Run ``mlspec-attest`` in-process."""

    def run(*args: str | Path) -> Run:
        capsys.readouterr()
        with pytest.raises(SystemExit) as info:
            cli_main.main([str(a) for a in args])
        out, err = capsys.readouterr()
        code = info.value.code
        return Run(code if isinstance(code, int) else 1, out, err)

    return run


def export_args(p: Pipeline, out: Path, *, roles: tuple[str, ...] = FUNCTIONARIES) -> list[str]:
    args = [
        "export",
        "intoto",
        "--policy",
        str(p.signed_policy_path),
        "--policy-key",
        str(p.keys["owner"].pub_path),
        "--store",
        str(p.store_path),
        "--run-id",
        p.run_id,
        "--key",
        str(p.keys["owner"].key_path),
        "--out",
        str(out),
    ]
    for role in roles:
        args += ["--functionary-key", f"{role}={p.keys[role].key_path}"]
    return args


def in_toto_verify(out: Path, owner: KeyPair) -> tuple[int, str]:
    done = reference_verify(
        out,
        "--layout",
        out / "root.layout",
        "--verification-keys",
        owner.pub_path,
        "--link-dir",
        out,
    )
    return done.returncode, done.stderr


def links_of(out: Path) -> list[str]:
    return sorted(p.name for p in out.glob("*.link"))


def expected_links(p: Pipeline) -> list[str]:
    names = []
    for stage, spec in STAGES.items():
        for role in spec.signers:
            keyid = sslib_key_dict(p.keys[role].public)["keyid"]
            names.append(f"{stage}.{keyid[:8]}.link")
    return sorted(names)


def rewrite_link(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    doc = json.loads(path.read_text())
    change(doc["signed"])
    path.write_text(json.dumps(doc))


# ------------------------------------------------------------------- tests
def test_export_accepted_by_in_toto_verify(cli: Cli, honest: Pipeline, tmp_path: Path) -> None:
    out = tmp_path / "export"
    result = cli(*export_args(honest, out), "--json")
    assert result.code == 0, result.err
    doc = result.json()
    assert doc["result"] == "EXPORTED"
    assert doc["format"] == "in-toto-layout"
    assert doc["runId"] == "run-a"
    assert links_of(out) == expected_links(honest)
    assert sorted(Path(p).name for p in doc["links"]) == expected_links(honest)
    assert is_intoto_layout(out / "root.layout")

    code, err = in_toto_verify(out, honest.keys["owner"])
    assert code == 0, err

    report = verify_intoto_layout(out / "root.layout", [honest.keys["owner"].pub_path], out)
    assert report.passed, report.failures
    assert [s.name for s in report.stages] == list(STAGES)
    train = next(s for s in report.stages if s.name == "train")
    assert len(train.signers) == 2  # threshold 2: both functionaries' links


def test_exported_layout_content(cli: Cli, honest: Pipeline, tmp_path: Path) -> None:
    out = tmp_path / "export"
    assert cli(*export_args(honest, out)).code == 0
    layout = json.loads((out / "root.layout").read_text())
    [signature] = layout["signatures"]
    assert signature["keyid"] == sslib_key_dict(honest.keys["owner"].public)["keyid"]
    signed = layout["signed"]
    assert signed["expires"] == "2099-01-01T00:00:00Z"
    assert signed["inspect"] == []
    assert "run run-a" in signed["readme"]
    steps = {s["name"]: s for s in signed["steps"]}
    assert list(steps) == list(STAGES)
    assert steps["train"]["threshold"] == 2
    assert len(steps["train"]["pubkeys"]) == 2
    assert steps["split"]["expected_materials"] == [
        ["MATCH", "data/raw.csv", "WITH", "PRODUCTS", "FROM", "ingest"],
        ["DISALLOW", "*"],
    ]
    schemes = {k["scheme"] for k in signed["keys"].values()}
    assert schemes == {"ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "rsassa-pss-sha256"}
    # Links carry the attested names and digests; a directory stays one entry.
    [package] = out.glob("package.*.link")
    link = json.loads(package.read_text())["signed"]
    assert set(link["materials"]) == {"model"}
    assert set(link["materials"]["model"]) == {"sha256", "manifest-sha256"}
    assert link["byproducts"]["mlspec-attest"]["runId"] == "run-a"
    assert link["byproducts"]["mlspec-attest"]["policyDigest"] == honest.signed.digest


@pytest.mark.parametrize(
    ("name", "tamper", "checks"),
    [
        (
            "product-digest-changed",
            lambda out: rewrite_link(
                next(out.glob("split.*.link")),
                lambda s: s["products"]["data/split/train.csv"].update(sha256="0" * 64),
            ),
            {Check.SIGNATURE, Check.THRESHOLD},
        ),
        (
            "material-added",
            lambda out: rewrite_link(
                next(out.glob("package.*.link")),
                lambda s: s["materials"].update({"extra.bin": {"sha256": "1" * 64}}),
            ),
            {Check.SIGNATURE, Check.THRESHOLD},
        ),
        (
            "threshold-link-removed",
            lambda out: sorted(out.glob("train.*.link"))[0].unlink(),
            {Check.STAGE_MISSING},
        ),
        (
            "layout-edited",
            lambda out: rewrite_link(
                out / "root.layout", lambda s: s["steps"][2].update(threshold=1)
            ),
            {Check.POLICY_SIGNATURE},
        ),
    ],
)
def test_tampered_export_rejected_by_both(
    cli: Cli,
    honest: Pipeline,
    tmp_path: Path,
    name: str,
    tamper: Callable[[Path], None],
    checks: set[Check],
) -> None:
    out = tmp_path / "export"
    assert cli(*export_args(honest, out)).code == 0
    tamper(out)
    code, err = in_toto_verify(out, honest.keys["owner"])
    assert code == 1, err
    report = verify_intoto_layout(out / "root.layout", [honest.keys["owner"].pub_path], out)
    assert not report.passed
    # A failed step is left out of later checks, so rules that MATCH against it fail too.
    assert checks <= checks_of(report) <= {*checks, Check.ARTIFACT_RULE}


def test_wrong_owner_key_rejected_by_both(cli: Cli, honest: Pipeline, tmp_path: Path) -> None:
    out = tmp_path / "export"
    assert cli(*export_args(honest, out)).code == 0
    code, _ = in_toto_verify(out, honest.keys["intruder"])
    assert code == 1
    report = verify_intoto_layout(out / "root.layout", [honest.keys["intruder"].pub_path], out)
    assert checks_of(report) == {Check.POLICY_SIGNATURE}


def test_denied_run_is_not_exported(cli: Cli, honest: Pipeline, tmp_path: Path) -> None:
    flip_byte(honest.bundle_path("split"), 40)
    out = tmp_path / "export"
    result = cli(*export_args(honest, out), "--json")
    assert result.code == 1, result.err
    doc = result.json()
    assert doc["result"] == "FAILED"
    assert doc["failures"]
    assert not out.exists()


def test_missing_stage_is_not_exported(cli: Cli, pipeline: Pipeline, tmp_path: Path) -> None:
    pipeline.run(skip=("package",))
    result = cli(*export_args(pipeline, tmp_path / "export"))
    assert result.code == 1
    assert "[stage-missing] stage package" in result.out


def test_functionary_key_dir(cli: Cli, honest: Pipeline, tmp_path: Path) -> None:
    key_dir = tmp_path / "keys"
    key_dir.mkdir()
    for role in (*FUNCTIONARIES, "intruder", "owner"):  # extra keys are ignored
        shutil.copyfile(honest.keys[role].key_path, key_dir / f"{role}.key")
    out = tmp_path / "export"
    args = [*export_args(honest, out, roles=()), "--functionary-key-dir", str(key_dir)]
    result = cli(*args)
    assert result.code == 0, result.err
    assert "in-toto-verify --layout" in result.out
    assert in_toto_verify(out, honest.keys["owner"])[0] == 0


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda a, p: a[: a.index("--functionary-key")], "no private key for functionary"),
        (
            lambda a, p: [*a[:-1], f"release-engineer={p.keys['intruder'].key_path}"],
            "not the key the policy lists",
        ),
        (lambda a, p: [*a, "--functionary-key", f"nobody={p.keys['owner'].key_path}"], "nobody"),
        (
            lambda a, p: [
                *a[: a.index("--key") + 1],
                str(p.keys["intruder"].key_path),
                *a[a.index("--key") + 2 :],
            ],
            "not the private key of any --policy-key owner",
        ),
    ],
    ids=["no-functionary-keys", "wrong-functionary-key", "unknown-functionary", "key-not-owner"],
)
def test_usage_errors(
    cli: Cli,
    honest: Pipeline,
    tmp_path: Path,
    mutate: Callable[[list[str], Pipeline], list[str]],
    message: str,
) -> None:
    args = mutate(export_args(honest, tmp_path / "export"), honest)
    result = cli(*args, "--json")
    assert result.code == 2, result.out + result.err
    assert message in result.json()["error"]["message"]
    assert not (tmp_path / "export" / "root.layout").exists()


def test_out_dir_must_be_empty(cli: Cli, honest: Pipeline, tmp_path: Path) -> None:
    out = tmp_path / "export"
    out.mkdir()
    (out / "old.link").write_text("{}")
    result = cli(*export_args(honest, out))
    assert result.code == 2
    assert "new or empty directory" in result.err


def test_library_export_with_artifacts(honest: Pipeline, tmp_path: Path) -> None:
    """With deploy artifacts given, export re-hashes them; a changed one denies the export."""
    keys = honest.keys
    kwargs: dict[str, Any] = {
        "layout_signer": keys["owner"].signer,
        "functionary_signers": [keys[r].signer for r in FUNCTIONARIES],
        "run_id": honest.run_id,
        "artifacts": honest.deploy_artifacts(),
        "now": VERIFY_NOW,
    }
    result = export_intoto(
        honest.signed, [keys["owner"].public], honest.store, out_dir=tmp_path / "a", **kwargs
    )
    assert result.exported, result.report.failures
    assert not any("not re-hashed" in n for n in result.report.notes)
    flip_byte(honest.ws / "dist/model/weights.bin")
    denied = export_intoto(
        honest.signed, [keys["owner"].public], honest.store, out_dir=tmp_path / "b", **kwargs
    )
    assert not denied.exported
    assert checks_of(denied.report) == {Check.ARTIFACT_MISMATCH}
    assert not (tmp_path / "b").exists()
