"""Core dependencies are imported on first use, not at start-up.

sigstore, in-toto, securesystemslib, blake3 and cbor2 are core dependencies, yet
``mlspec-attest --help`` and ``sign`` with a local key must not pay for them (the
help stays under 100 ms; a key-signed stage loads no Sigstore client). Each case
runs the real command in a fresh interpreter and lists the heavy packages it loaded.

``verify`` is the command a deploy gate runs for every release, so what it must not
load is listed module by module (docs/benchmarks.md, "Start-up and small work"): a
signed policy needs no YAML reader, no JSON Schema library (documents are checked by
``formats/schemas/conform``), no X.509 for key functionaries, no CEL or row engine
unless the policy has ML sections, no in-toto layout verifier unless given a layout,
and no digest engine unless an ``--artifact`` is re-hashed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from ..support import KeyPair

HEAVY = (
    "sigstore",
    "sigstore_models",
    "rfc3161_client",
    "in_toto",
    "securesystemslib",
    "blake3",
    "cbor2",
    "sklearn",
    "numpy",
    "pyarrow",
    "requests",
    "pydantic",
)

PROBE = """\
import json, sys
from mlspec_attest.cli.main import main
try:
    main(sys.argv[1:])
except SystemExit as done:
    code = done.code
heavy = sorted({{n.partition(".")[0] for n in sys.modules}} & set({heavy!r}))
print(json.dumps({{"code": code, "heavy": heavy}}), file=sys.stderr)
"""


MODULES_PROBE = """\
import json, sys
from mlspec_attest.cli.main import main
try:
    main(sys.argv[1:])
except SystemExit as done:
    code = done.code
print(json.dumps({"code": code, "modules": sorted(sys.modules)}), file=sys.stderr)
"""

#: What ``verify`` of a key-signed pipeline against a signed policy without ML sections
#: must not import (a module, or a package and everything under it).
NOT_FOR_A_SIGNED_POLICY = (
    "ruamel",
    "jsonschema",
    "referencing",
    "celpy",
    "lark",
    "pendulum",
    "cryptography.x509",
    "mlspec_attest.formats.yamlio",
    "mlspec_attest.policy.load",
    "mlspec_attest.policy.source",
    "mlspec_attest.policy.objectives",
    "mlspec_attest.policy.criteria",
    "mlspec_attest.cli.policy_view",
    "mlspec_attest.interop.intoto.verify",
    "mlspec_attest.interop.intoto.layout",
    "mlspec_attest.interop.intoto.export",
    "mlspec_attest.verify.checks.objectives",
    "mlspec_attest.verify.checks.separation",
    "mlspec_attest.verify.checks.holdback",
    "mlspec_attest.verify.checks.leakage",
    "mlspec_attest.verify.checks.validation",
    "mlspec_attest.verify.checks.requirements",
    "mlspec_attest.verify.oms_evidence",
    "mlspec_attest.evidence.rowsets",
    "mlspec_attest.evidence.content_sets",
    "mlspec_attest.digest.artifact",
    "mlspec_attest.digest.rows",
    "mlspec_attest.digest.cluster",
    "mlspec_attest.digest.remote",
    "mlspec_attest.attestation.artifacts",
    # The summary (--vsa-out), the HTML page (--report) and the hold-back reader.
    "mlspec_attest.formats.vsa",
    "mlspec_attest.verify.summary",
    "mlspec_attest.cli.verify_summary",
    "mlspec_attest.attestation.signers",
    "mlspec_attest.verify.html_report",
    "mlspec_attest.formats.htmldoc",
    "mlspec_attest.evidence.holdback_rows",
    # The parallel engine (a bundle's artifact is one file: digest/single), and what the
    # standard library would load for nothing (secrets, importlib.resources).
    "mlspec_attest.digest.engine",
    "mlspec_attest.digest._helper",
    "secrets",
    "importlib.resources",
)


def modules_loaded(*args: str | Path, cwd: Path) -> tuple[int, list[str]]:
    done = subprocess.run(
        [sys.executable, "-c", MODULES_PROBE, *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    doc = json.loads(done.stderr.strip().splitlines()[-1])
    return doc["code"], doc["modules"]


def among(modules: list[str], names: tuple[str, ...]) -> list[str]:
    return sorted({n for n in names for m in modules if m == n or m.startswith(n + ".")})


def loaded(*args: str | Path, cwd: Path) -> tuple[int, list[str]]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=HEAVY), *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    doc = json.loads(done.stderr.strip().splitlines()[-1])
    return doc["code"], doc["heavy"]


def test_help_loads_no_heavy_package(tmp_path: Path) -> None:
    assert loaded("--help", cwd=tmp_path) == (0, [])
    assert loaded("sign", "--help", cwd=tmp_path) == (0, [])


def test_sign_with_a_key_loads_no_sigstore(tmp_path: Path, keys: dict[str, KeyPair]) -> None:
    (tmp_path / "data.csv").write_text("x,y\n1,2\n")
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "weights.bin").write_bytes(b"w" * 4096)
    code, heavy = loaded(
        "sign", "--stage", "train", "--key", keys["owner"].key_path,
        "--material", "data.csv", "--product", "model", "--store", "store", "-q",
        "--", sys.executable, "-c", "pass",
        cwd=tmp_path,
    )  # fmt: skip
    assert code == 0
    assert heavy == []
    assert list((tmp_path / "store" / "runs").glob("*/train.*"))


def test_verify_of_key_signed_stages_loads_no_sigstore(
    tmp_path: Path, keys: dict[str, KeyPair]
) -> None:
    """The deploy gate on a key-signed pipeline needs neither Sigstore nor in-toto."""
    owner = keys["owner"]
    (tmp_path / "out.txt").write_text("x")
    (tmp_path / "policy.yaml").write_text(
        "apiVersion: mlspec-attest/v1\nkind: Policy\nmetadata: {name: p}\n"
        'expires: "2099-01-01T00:00:00Z"\n'
        "functionaries:\n  o:\n    publicKey: |\n"
        + "".join(f"      {line}\n" for line in owner.pub_path.read_text().splitlines())
        + "stages:\n  - {name: train, kind: train, functionaries: [o], products: ['CREATE out.txt']}\n"
    )
    assert loaded("policy", "sign", "policy.yaml", "--key", owner.key_path, "--out", "p.json",
                  cwd=tmp_path) == (0, [])  # fmt: skip
    code, _ = loaded("sign", "--stage", "train", "--key", owner.key_path, "--product", "out.txt",
                     "--store", "store", "--run-id", "r1", cwd=tmp_path)  # fmt: skip
    assert code == 0
    code, heavy = loaded("verify", "--policy", "p.json", "--policy-key", owner.pub_path,
                         "--store", "store", "--run-id", "r1", cwd=tmp_path)  # fmt: skip
    assert (code, heavy) == (0, [])


def key_signed_run(tmp_path: Path, owner: KeyPair, policy_extra: str = "") -> None:
    """A signed policy (p.json) with one key-signed stage producing out.txt, run r1."""
    (tmp_path / "out.txt").write_text("x")
    (tmp_path / "policy.yaml").write_text(
        "apiVersion: mlspec-attest/v1\nkind: Policy\nmetadata: {name: p}\n"
        'expires: "2099-01-01T00:00:00Z"\n'
        "functionaries:\n  o:\n    publicKey: |\n"
        + "".join(f"      {line}\n" for line in owner.pub_path.read_text().splitlines())
        + "stages:\n  - {name: train, kind: train, functionaries: [o], products: ['CREATE out.txt']}\n"
        + "deploy:\n  artifacts:\n    out: {stage: train, product: out.txt, required: false}\n"
        + policy_extra
    )
    assert loaded("policy", "sign", "policy.yaml", "--key", owner.key_path, "--out", "p.json",
                  cwd=tmp_path)[0] == 0  # fmt: skip
    code, _ = loaded("sign", "--stage", "train", "--key", owner.key_path, "--product", "out.txt",
                     "--store", "store", "--run-id", "r1", cwd=tmp_path)  # fmt: skip
    assert code == 0


VERIFY = ("verify", "--policy", "p.json", "--store", "store", "--run-id", "r1")


def test_verify_of_a_signed_policy_loads_only_what_it_checks(
    tmp_path: Path, keys: dict[str, KeyPair]
) -> None:
    owner = keys["owner"]
    key_signed_run(tmp_path, owner)
    code, modules = modules_loaded(*VERIFY, "--policy-key", owner.pub_path, cwd=tmp_path)
    assert code == 0
    assert among(modules, NOT_FOR_A_SIGNED_POLICY) == []
    assert "mlspec_attest.verify.pipeline" in modules  # the probe did verify


def test_verify_loads_the_engine_and_a_check_family_when_asked_for_them(
    tmp_path: Path, keys: dict[str, KeyPair]
) -> None:
    # Lazy is not absent: an --artifact is re-hashed, a requirement is judged with CEL.
    owner = keys["owner"]
    key_signed_run(tmp_path, owner, "requirements:\n  - {id: ran, expr: '\"train\" in stages'}\n")
    code, modules = modules_loaded(
        *VERIFY, "--policy-key", owner.pub_path, "--artifact", "out=out.txt", cwd=tmp_path
    )
    assert code == 0
    assert among(modules, ("mlspec_attest.digest.artifact", "celpy")) == [
        "celpy",
        "mlspec_attest.digest.artifact",
    ]
    assert among(modules, ("mlspec_attest.verify.checks.requirements",)) != []
    assert among(modules, ("mlspec_attest.verify.checks.holdback", "ruamel", "jsonschema")) == []


def test_sign_with_a_key_validates_its_metadata_without_jsonschema(
    tmp_path: Path, keys: dict[str, KeyPair]
) -> None:
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "weights.bin").write_bytes(b"w" * 4096)
    code, modules = modules_loaded(
        "sign", "--stage", "train", "--key", keys["owner"].key_path, "--product", "model",
        "--store", "store", "-q", cwd=tmp_path,
    )  # fmt: skip
    assert code == 0
    assert among(modules, ("jsonschema", "ruamel", "celpy", "cryptography.x509")) == []
    # No command, no --split, no tabular material, no cluster, no object store URL: none
    # of the code for them is loaded (about 30 ms of a small sign).
    not_needed = (
        "mlspec_attest.attestation.runner",
        "mlspec_attest.evidence.leakage",
        "mlspec_attest.evidence.rowsets",
        "mlspec_attest.digest.rows",
        "mlspec_attest.digest.cluster",
        "mlspec_attest.digest.remote",
    )
    assert among(modules, not_needed) == []
