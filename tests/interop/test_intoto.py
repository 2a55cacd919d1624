"""in-toto layouts: mlspec-attest's verifier agrees with the reference ``in-toto-verify``.

The demo supply chain is made by in-toto itself in this session
(``tests/interop/reference.py``: alice's layout template, bob's ``write-code``
and carl's ``package`` links, ``foo.tar.gz``). As in-toto's reference check,
the template is signed with alice (``expires`` set, the ``untar`` inspection
running plain ``tar xfz foo.tar.gz``) and put with the links, ``foo.tar.gz``
and ``alice.pub`` in one folder. Each case builds two identical folders, runs the reference
``in-toto-verify`` (a subprocess, in the folder, as its inspections need) in
one and ``verify_intoto_layout`` in the other, and compares the verdicts. The
demo comes in two encodings: legacy Metablocks and DSSE envelopes.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mlspec_attest.cli.main import main
from mlspec_attest.errors import BackendError, BadInputError, MalformedDocumentError, UsageError
from mlspec_attest.interop.intoto import (
    INSPECTION_CHECK,
    is_intoto_layout,
    require_intoto,
    verify_intoto_layout,
)
from mlspec_attest.interop.intoto.support import lib
from mlspec_attest.verify.report import Check, VerificationReport

from ..support import checks_of
from .reference import IntotoDemo

pytest.importorskip("in_toto", reason="in-toto not installed: pip install 'mlspec-attest[intoto]'")

FUTURE = "2099-01-01T00:00:00Z"
PAST = "2001-01-01T00:00:00Z"


def find_in_toto_verify() -> Path | None:
    """The reference CLI: beside this interpreter (the test venv), or on PATH."""
    candidate = Path(sys.executable).parent / "in-toto-verify"
    if candidate.is_file():
        return candidate
    found = shutil.which("in-toto-verify")
    return Path(found) if found else None


def reference_verify(folder: Path, *args: str | Path) -> subprocess.CompletedProcess[str]:
    """Run ``in-toto-verify ARGS`` in ``folder``; skip if the reference CLI is missing."""
    tool = find_in_toto_verify()
    if tool is None:
        pytest.skip("in-toto-verify not found (pip install in-toto==3.1.0)")
    return subprocess.run(
        [str(tool), *map(str, args)],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def exit_code(report: VerificationReport) -> int:
    """The exit code `mlspec-attest verify` gives for ``report``."""
    return 0 if report.passed else 1


@pytest.fixture(scope="module")
def demo(intoto_demo: IntotoDemo) -> IntotoDemo:
    return intoto_demo


# ----------------------------------------------------------------- building
def _sign(
    layout_doc: dict[str, Any], dsse: bool, key: Path, public: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Sign a legacy layout dict with ``key`` using in-toto itself (Metablock or DSSE).

    ``public``: the key as a layout lists it (its keyid names the signature).
    """
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    Layout = lib("in_toto.models.layout").Layout
    metadata_module = lib("in_toto.models.metadata")
    signer_module = lib("securesystemslib.signer")

    layout = Layout.read(json.loads(json.dumps(layout_doc)))
    metadata = (
        metadata_module.Envelope.from_signable(layout)
        if dsse
        else metadata_module.Metablock(signed=layout)
    )
    public_key = None
    if public is not None:
        public_key = signer_module.SSlibKey.from_dict(public["keyid"], dict(public))
    private = load_pem_private_key(key.read_bytes(), None)
    metadata.create_signature(signer_module.CryptoSigner(private, public_key))
    doc: dict[str, Any] = metadata.to_dict()
    return doc


def _payload(doc: dict[str, Any]) -> dict[str, Any]:
    """The legacy document inside a Metablock or DSSE envelope."""
    if "payload" in doc:
        inner: dict[str, Any] = json.loads(base64.b64decode(doc["payload"]))
        return inner
    signed: dict[str, Any] = doc["signed"]
    return signed


def _edit(doc: dict[str, Any], change: Callable[[dict[str, Any]], None]) -> None:
    """Change the signed content of ``doc`` in place, keeping the old signatures."""
    if "payload" in doc:
        inner = _payload(doc)
        change(inner)
        doc["payload"] = base64.b64encode(json.dumps(inner).encode()).decode()
    else:
        change(doc["signed"])


def demo_layout(
    demo: IntotoDemo,
    dsse: bool,
    *,
    expires: str = FUTURE,
    strict: bool = False,
    change: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """The demo template signed by alice, with the plain-tar inspection.

    ``strict`` adds ``DISALLOW *`` to the inspection (after allowing the files
    that belong in the folder), so a changed tarball or a stray file is caught.
    """
    folder = demo.dsse if dsse else demo.files
    layout = _payload(json.loads((folder / "demo.layout.template").read_text()))
    layout["expires"] = expires
    inspection = layout["inspect"][0]
    inspection["run"] = ["tar", "xfz", "foo.tar.gz"]
    if strict:
        allow = [["ALLOW", "root.layout"], ["ALLOW", "alice.pub"]]
        inspection["expected_materials"] += [*allow, ["DISALLOW", "*"]]
        inspection["expected_products"] += [["ALLOW", "foo.tar.gz"], *allow, ["DISALLOW", "*"]]
    if change is not None:
        change(layout)
    return _sign(layout, dsse, demo.files / "alice")


def make_folder(demo: IntotoDemo, root: Path, layout: dict[str, Any], dsse: bool) -> Path:
    """root.layout + the two links + foo.tar.gz + alice.pub, nothing else."""
    root.mkdir(parents=True)
    links = demo.dsse if dsse else demo.files
    for name in demo.links:
        shutil.copyfile(links / name, root / name)
    for name in ("foo.tar.gz", "alice.pub"):
        shutil.copyfile(demo.files / name, root / name)
    (root / "root.layout").write_text(json.dumps(layout, indent=1))
    return root


# -------------------------------------------------------------------- cases
def _tamper_link(folder: Path) -> None:
    [path] = folder.glob("package.*.link")  # carl's
    doc = json.loads(path.read_text())
    _edit(doc, lambda link: link["products"]["foo.tar.gz"].update(sha256="0" * 64))
    path.write_text(json.dumps(doc))


def _other_tarball(folder: Path) -> None:
    """A valid tarball whose foo.py is not the one write-code produced."""
    source = folder / "evil" / "foo.py"
    source.parent.mkdir()
    source.write_text("print('not the reviewed code')\n")
    with tarfile.open(folder / "foo.tar.gz", "w:gz") as tar:
        tar.add(source, arcname="foo.py")
    shutil.rmtree(source.parent)


@dataclass(frozen=True)
class Case:
    """One agreement case: how to break the folder and what both verifiers must say."""

    id: str
    expected_exit: int
    checks: frozenset[Check] = frozenset()
    expires: str = FUTURE
    strict: bool = False
    key: str = "alice.pub"
    prepare: Callable[[Path], object] | None = None
    edit_layout: Callable[[dict[str, Any]], None] | None = None


CASES = [
    Case("pass", 0),
    Case("expired", 1, frozenset({Check.POLICY_EXPIRED}), expires=PAST),
    Case(
        "layout-edited-after-signing",
        1,
        frozenset({Check.POLICY_SIGNATURE}),
        edit_layout=lambda layout: layout["steps"][0].update(threshold=2),
    ),
    Case("wrong-key", 1, frozenset({Check.POLICY_SIGNATURE}), key="bob.pub"),
    Case("link-tampered", 1, frozenset({Check.SIGNATURE, Check.THRESHOLD}), prepare=_tamper_link),
    Case(
        "link-missing",
        1,
        frozenset({Check.STAGE_MISSING}),
        prepare=lambda f: next(f.glob("write-code.*.link")).unlink(),
    ),
    Case(
        "tarball-corrupt",
        1,
        frozenset({INSPECTION_CHECK}),
        prepare=lambda f: (f / "foo.tar.gz").write_bytes(b"not a tarball"),
    ),
    # The demo's inspection has no DISALLOW rule: in-toto accepts another tarball
    # and stray files, and so must we. The strict variant catches both.
    Case("tarball-replaced-demo-rules", 0, prepare=_other_tarball),
    Case("stray-file-demo-rules", 0, prepare=lambda f: (f / "notes.txt").write_text("x")),
    Case("strict-pass", 0, strict=True),
    Case(
        "strict-tarball-replaced",
        1,
        frozenset({Check.ARTIFACT_RULE}),
        strict=True,
        prepare=_other_tarball,
    ),
    Case(
        "strict-stray-file",
        1,
        frozenset({Check.ARTIFACT_RULE}),
        strict=True,
        prepare=lambda f: (f / "notes.txt").write_text("x"),
    ),
]


@pytest.mark.parametrize("dsse", [False, True], ids=["metablock", "dsse"])
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_agrees_with_in_toto_verify(
    demo: IntotoDemo, tmp_path: Path, case: Case, dsse: bool
) -> None:
    layout = demo_layout(demo, dsse, expires=case.expires, strict=case.strict)
    if case.edit_layout is not None:
        _edit(layout, case.edit_layout)
    key = demo.files / case.key
    verdicts: dict[str, int] = {}
    for who in ("reference", "ours"):
        folder = make_folder(demo, tmp_path / who, layout, dsse)
        if case.prepare is not None:
            case.prepare(folder)
        if who == "reference":
            done = reference_verify(folder, "--layout", "root.layout", "--verification-keys", key)
            verdicts[who] = done.returncode
            reference_error = done.stderr
        else:
            report = verify_intoto_layout(folder / "root.layout", [key], folder)
            verdicts[who] = exit_code(report)
    assert verdicts == {"reference": case.expected_exit, "ours": case.expected_exit}, (
        reference_error,
        report.failures,
    )
    assert checks_of(report) == set(case.checks)
    for failure in report.failures:
        assert failure.message and failure.remedy


# --------------------------------------------------------- our own behaviour
def test_report_names_every_failure(demo: IntotoDemo, tmp_path: Path) -> None:
    """in-toto stops at the first failure; the report lists them all."""
    folder = make_folder(demo, tmp_path / "f", demo_layout(demo, False, expires=PAST), False)
    _tamper_link(folder)
    report = verify_intoto_layout(folder / "root.layout", [folder / "alice.pub"], folder)
    assert checks_of(report) == {Check.POLICY_EXPIRED, Check.SIGNATURE, Check.THRESHOLD}
    [signature] = [f for f in report.failures if f.check is Check.SIGNATURE]
    assert signature.stage == "package"
    assert signature.source == demo.package_link
    # the inspection must not run over artifacts that failed verification
    assert not (folder / "foo.py").exists()
    assert any("inspections not run" in n for n in report.notes)
    statuses = {s.name: s.status for s in report.stages}
    assert statuses == {"write-code": "ok", "package": "failed", "untar": "not-run"}


def test_report_on_pass(demo: IntotoDemo, tmp_path: Path) -> None:
    folder = make_folder(demo, tmp_path / "f", demo_layout(demo, True), True)
    report = verify_intoto_layout(folder / "root.layout", [folder / "alice.pub"], folder)
    assert report.passed, report.failures
    doc = report.to_json()
    assert doc["result"] == "PASSED"
    assert doc["policy"]["name"] == "in-toto layout root.layout"
    assert [(s["name"], s["kind"], s["status"]) for s in doc["stages"]] == [
        ("write-code", "in-toto step", "ok"),
        ("package", "in-toto step", "ok"),
        ("untar", "in-toto inspection", "ok"),
    ]
    assert doc["stages"][0]["attestations"] == [demo.write_code_link]
    assert (folder / "foo.py").is_file()  # the inspection ran in the link directory


def test_inspections_disabled_fail_closed(demo: IntotoDemo, tmp_path: Path) -> None:
    folder = make_folder(demo, tmp_path / "f", demo_layout(demo, False), False)
    report = verify_intoto_layout(
        folder / "root.layout", [folder / "alice.pub"], folder, run_inspections=False
    )
    [failure] = report.failures
    assert failure.check is INSPECTION_CHECK
    assert failure.stage == "untar"
    assert not (folder / "foo.py").exists()


def test_inspection_workdir(demo: IntotoDemo, tmp_path: Path) -> None:
    """Links in one folder, the product to inspect in another."""
    folder = make_folder(demo, tmp_path / "links", demo_layout(demo, False), False)
    work = tmp_path / "work"
    work.mkdir()
    (folder / "foo.tar.gz").rename(work / "foo.tar.gz")
    report = verify_intoto_layout(
        folder / "root.layout", [folder / "alice.pub"], folder, workdir=work
    )
    assert report.passed, report.failures
    assert (work / "foo.py").is_file()


def test_threshold_met_despite_bad_extra_link(demo: IntotoDemo, tmp_path: Path) -> None:
    """A broken link beside enough good ones is ignored, as in in-toto (with a note)."""

    def two_keys(doc: dict[str, Any]) -> None:
        doc["steps"][1]["pubkeys"] = [demo.carl, demo.bob]

    layout = demo_layout(demo, False, change=two_keys)
    folder = make_folder(demo, tmp_path / "f", layout, False)
    # a "package" link named for bob's key, but bob never signed it
    bobs = f"package.{demo.bob[:8]}.link"
    shutil.copyfile(folder / demo.package_link, folder / bobs)
    report = verify_intoto_layout(folder / "root.layout", [folder / "alice.pub"], folder)
    assert report.passed, report.failures
    assert any(f"{bobs}: ignored" in n for n in report.notes)
    done = reference_verify(folder, "--layout", "root.layout", "--verification-keys", "alice.pub")
    assert done.returncode == 0, done.stderr


def test_detects_layouts(demo: IntotoDemo, tmp_path: Path) -> None:
    for dsse in (False, True):
        path = tmp_path / f"layout-{dsse}.json"
        path.write_text(json.dumps(demo_layout(demo, dsse)))
        assert is_intoto_layout(path)
    assert not is_intoto_layout(demo.files / demo.package_link)
    assert not is_intoto_layout(demo.dsse / demo.package_link)
    assert not is_intoto_layout(demo.files / "alice.pub")
    assert not is_intoto_layout(tmp_path / "missing.json")
    assert not is_intoto_layout(Path(__file__).parents[1] / "golden" / "policy.signed.json")


def test_bad_inputs(demo: IntotoDemo, tmp_path: Path) -> None:
    folder = make_folder(demo, tmp_path / "f", demo_layout(demo, False), False)
    layout, key = folder / "root.layout", folder / "alice.pub"
    with pytest.raises(UsageError):
        verify_intoto_layout(layout, [], folder)
    with pytest.raises(MalformedDocumentError, match="link, not a layout"):
        verify_intoto_layout(folder / demo.package_link, [key], folder)
    with pytest.raises(MalformedDocumentError):
        verify_intoto_layout(demo.files / "alice.pub", [key], folder)
    (folder / "dup.layout").write_text('{"signed": {}, "signed": {}, "signatures": []}')
    with pytest.raises(MalformedDocumentError, match="duplicate"):
        verify_intoto_layout(folder / "dup.layout", [key], folder)
    with pytest.raises(BadInputError, match="does not exist"):
        verify_intoto_layout(layout, [key], tmp_path / "nowhere")


def test_malformed_link_is_a_failure(demo: IntotoDemo, tmp_path: Path) -> None:
    folder = make_folder(demo, tmp_path / "f", demo_layout(demo, False), False)
    (folder / demo.write_code_link).write_text("{not json")
    report = verify_intoto_layout(folder / "root.layout", [folder / "alice.pub"], folder)
    assert Check.ATTESTATION_MALFORMED in checks_of(report)
    assert Check.STAGE_MISSING in checks_of(report)
    done = reference_verify(folder, "--layout", "root.layout", "--verification-keys", "alice.pub")
    assert done.returncode == 1


def test_missing_extra_is_a_backend_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "in_toto.models.metadata", None)
    with pytest.raises(BackendError, match="in-toto") as info:
        require_intoto()
    assert info.value.remedy == "pip install 'mlspec-attest'"  # a core dependency
    assert info.value.exit_code == 4


def _sublayout_folder(
    demo: IntotoDemo, root: Path, inspect: list[dict[str, Any]] | None = None
) -> Path:
    """alice's root layout delegates step ``build`` to bob, whose sublayout has the demo's
    two steps; their links live in ``build.<bob's keyid prefix>/`` as in-toto expects."""
    files = demo.files
    template = _payload(json.loads((files / "demo.layout.template").read_text()))
    sub = dict(template, expires=FUTURE, inspect=inspect or [])
    bob = demo.bob
    root_layout = {
        "_type": "layout",
        "expires": FUTURE,
        "readme": "",
        "keys": {bob: template["keys"][bob]},
        "inspect": [],
        "steps": [
            {
                "_type": "step",
                "name": "build",
                "pubkeys": [bob],
                "threshold": 1,
                "expected_command": [],
                "expected_materials": [["DISALLOW", "*"]],
                "expected_products": [["CREATE", "foo.tar.gz"], ["DISALLOW", "*"]],
            }
        ],
    }
    root.mkdir(parents=True)
    (root / "root.layout").write_text(json.dumps(_sign(root_layout, False, files / "alice")))
    signed_sub = _sign(sub, False, files / "bob", template["keys"][bob])
    (root / f"build.{bob[:8]}.link").write_text(json.dumps(signed_sub))
    (root / f"build.{bob[:8]}").mkdir()
    for name in demo.links:
        shutil.copyfile(files / name, root / f"build.{bob[:8]}" / name)
    shutil.copyfile(files / "alice.pub", root / "alice.pub")
    return root


@pytest.mark.parametrize("tampered", [False, True], ids=["pass", "sublayout-link-tampered"])
def test_sublayouts_agree(demo: IntotoDemo, tmp_path: Path, tampered: bool) -> None:
    verdicts = {}
    for who in ("reference", "ours"):
        folder = _sublayout_folder(demo, tmp_path / who)
        if tampered:
            _tamper_link(folder / f"build.{demo.bob[:8]}")
        if who == "reference":
            done = reference_verify(
                folder, "--layout", "root.layout", "--verification-keys", "alice.pub"
            )
            verdicts[who] = done.returncode
        else:
            report = verify_intoto_layout(folder / "root.layout", [folder / "alice.pub"], folder)
            verdicts[who] = exit_code(report)
    assert verdicts == {"reference": int(tampered), "ours": int(tampered)}, report.failures
    stages = {s.name: s.status for s in report.stages}
    if tampered:
        assert {(f.check, f.stage) for f in report.failures} == {
            (Check.SIGNATURE, "build/package"),
            (Check.THRESHOLD, "build/package"),
        }
        assert stages["build"] == "failed"
    else:
        assert stages == {"build/write-code": "ok", "build/package": "ok", "build": "ok"}


def test_a_functionarys_sublayout_never_runs_its_inspections(
    demo: IntotoDemo, tmp_path: Path
) -> None:
    """bob signs a sublayout whose inspection would run a command on the verifier's
    machine; only alice (the owner) may make the verifier run commands."""
    marker = tmp_path / "work" / "PWNED"
    marker.parent.mkdir()
    inspection = {
        "_type": "inspection",
        "name": "pwn",
        "run": ["touch", str(marker)],
        "expected_materials": [],
        "expected_products": [],
    }
    folder = _sublayout_folder(demo, tmp_path / "f", inspect=[inspection])
    report = verify_intoto_layout(
        folder / "root.layout",
        [folder / "alice.pub"],
        folder,
        run_inspections=True,
        workdir=marker.parent,
    )
    assert not marker.exists()
    [failure] = [f for f in report.failures if f.check is Check.INSPECTION]
    assert failure.stage == "build/pwn"
    assert "only the policy owner's own layout may run commands" in failure.message
    assert exit_code(report) == 1


# ------------------------------------------------ `mlspec-attest verify` (CLI)
def _cli(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        main([str(a) for a in args])
    out, err = capsys.readouterr()
    code = info.value.code
    return (code if isinstance(code, int) else 1), out, err


@pytest.mark.parametrize("dsse", [False, True], ids=["metablock", "dsse"])
def test_cli_verify_layout(
    demo: IntotoDemo, tmp_path: Path, capsys: pytest.CaptureFixture[str], dsse: bool
) -> None:
    folder = make_folder(demo, tmp_path / "ok", demo_layout(demo, dsse), dsse)
    base: list[str | Path] = ["verify", "--policy", folder / "root.layout"]
    base += ["--policy-key", folder / "alice.pub"]
    code, out, err = _cli(capsys, *base, "--store", folder, "--json")
    assert code == 0, err
    assert json.loads(out)["result"] == "PASSED"

    expired = make_folder(demo, tmp_path / "old", demo_layout(demo, dsse, expires=PAST), dsse)
    code, out, _ = _cli(
        capsys,
        "verify",
        "--policy",
        expired / "root.layout",
        "--policy-key",
        expired / "alice.pub",
        "--store",
        expired,
    )
    assert code == 1
    assert "[policy-expired]" in out

    fresh = make_folder(demo, tmp_path / "noinspect", demo_layout(demo, dsse), dsse)
    code, out, _ = _cli(
        capsys,
        "verify",
        "--policy",
        fresh / "root.layout",
        "--policy-key",
        fresh / "alice.pub",
        "--store",
        fresh,
        "--no-run-inspections",
        "--json",
    )
    assert code == 1
    assert [f["stage"] for f in json.loads(out)["failures"]] == ["untar"]
    assert not (fresh / "foo.py").exists()

    code, _, _ = _cli(capsys, *base, "--store", folder, "--artifact", "model=foo.tar.gz")
    assert code == 2
