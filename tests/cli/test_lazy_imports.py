"""Core dependencies are imported on first use, not at start-up.

sigstore, in-toto, securesystemslib, blake3 and cbor2 are core dependencies, yet
``mlspec-attest --help`` and ``sign`` with a local key must not pay for them (the
help stays under 100 ms; a key-signed stage loads no Sigstore client). Each case
runs the real command in a fresh interpreter and lists the heavy packages it loaded.
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
