"""A corpus of malformed inputs for every kind of file the CLI reads, run through the real CLI.

Each case writes one bad input next to otherwise valid material (a real
pipeline signed with real keys), runs ``python -m mlspec_attest ...`` in a
subprocess under resource limits, and asserts the exit-code contract: bad
input is 3, a denial at verify is 1, never 70 (internal error), one clear
error message, no traceback. The limits enforce "bounded" without timing
anything: a parse that ran away would hit RLIMIT_CPU (killed by SIGXCPU) or
RLIMIT_AS (MemoryError, exit 70), and fail the case.

RLIMIT_AS is 256 MiB: ``policy lint`` or ``policy sign`` (the interpreter with
cryptography, click, ruamel and jsonschema loaded) needs about 50 MiB of
address space, found by bisecting RLIMIT_AS, so the limit leaves room for the
work but not for a runaway parse. MALLOC_ARENA_MAX keeps glibc from reserving
64 MiB of address space per hashing thread.
"""

from __future__ import annotations

import base64
import codecs
import json
import os
import re
import resource
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mlspec_attest.formats.bundle import Bundle
from mlspec_attest.formats.dsse import INTOTO_PAYLOAD_TYPE, Envelope
from mlspec_attest.formats.jsonio import canonical
from mlspec_attest.formats.limits import (
    MAX_DATA_SCHEMA_BYTES,
    MAX_JSON_BYTES,
    MAX_KEY_BYTES,
    MAX_OBJECTIVES_BYTES,
    MAX_POLICY_BYTES,
)
from mlspec_attest.interop.intoto.export import export_intoto
from mlspec_attest.interop.oms.signature import sign_model
from mlspec_attest.policy.signed import POLICY_PAYLOAD_TYPE
from mlspec_attest.signing.keys import LocalKeySigner

from ..support import PROJECT_ROOT, KeyPair, Pipeline

MEMORY_LIMIT = 256 * 1024 * 1024
CPU_SECONDS = 2
DEEP = 100_000  # nesting of the "nested 10^5 deep" inputs


# ------------------------------------------------------------------ running
def _limits() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    resource.setrlimit(resource.RLIMIT_CPU, (CPU_SECONDS, CPU_SECONDS))


def run_cli(args: list[str | Path], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLSPEC_")}
    env.update(MALLOC_ARENA_MAX="2", PYTHONPATH=str(PROJECT_ROOT), PYTHONDONTWRITEBYTECODE="1")
    return subprocess.run(
        [sys.executable, "-m", "mlspec_attest", *map(str, args)],
        cwd=cwd,
        env=env,
        preexec_fn=_limits,
        capture_output=True,
        text=True,
        errors="replace",
        timeout=60,  # a safety net only: RLIMIT_CPU is the bound under test
        check=False,
    )


# ---------------------------------------------------------------- workspace
@dataclass
class Workspace:
    """A real signed pipeline and one valid input of every kind, made once per module."""

    pipeline: Pipeline
    keys: dict[str, KeyPair]
    root: Path
    model: Path
    model_sig: Path
    layout_dir: Path
    data: Path

    def verify_args(self, store: Path | None = None) -> list[str | Path]:
        args: list[str | Path] = list(self.pipeline.cli_verify_args())
        if store is not None:
            args[args.index("--store") + 1] = store
        return args

    def store_copy(self, case_dir: Path) -> Path:
        copy = case_dir / "store"
        shutil.copytree(self.pipeline.store_path, copy)
        return copy

    def run_dir(self, store: Path) -> Path:
        return store / "runs" / self.pipeline.run_id


OBJECTIVES = """\
apiVersion: mlspec-attest/v1
kind: Objectives
metadata:
  name: corpus
  version: "1"
criteria:
  - id: mae
    stage: train
    metric: mae
    max: 60
"""

SCHEMA = """\
apiVersion: mlspec-attest/v1
kind: DataSchema
name: corpus
version: "1"
columns:
  - {name: age, type: integer, min: 0}
  - {name: bmi, type: number}
"""


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory, keys: dict[str, KeyPair]) -> Workspace:
    root = tmp_path_factory.mktemp("corpus")
    pipeline = Pipeline(root / "pipeline", keys).run()
    model = root / "model"
    model.mkdir()
    (model / "weights.bin").write_bytes(bytes(range(256)) * 8)
    model_sig = root / "model.sig"
    sign_model(model, model_sig, keys["data-engineer"].signer)  # ECDSA P-256, as OMS wants
    layout_dir = root / "layout"
    export_intoto(
        pipeline.signed,
        [keys["owner"].public],
        pipeline.store,
        layout_signer=keys["owner"].signer,
        functionary_signers=[k.signer for k in keys.values()],
        out_dir=layout_dir,
        run_id=pipeline.run_id,
        artifacts=pipeline.deploy_artifacts(),
    )
    data = root / "data.csv"
    data.write_text("age,bmi\n30,21.5\n40,25.0\n")
    return Workspace(pipeline, keys, root, model, model_sig, layout_dir, data)


# ------------------------------------------------------------ bad contents
def sparse(path: Path, size: int) -> Path:
    """A file of ``size`` bytes that takes no disk space and no time to write."""
    with path.open("wb") as handle:
        handle.truncate(size)
    return path


def deep_json() -> bytes:
    return b"[" * DEEP + b"]" * DEEP


def deep_yaml(key: str = "x") -> bytes:
    return f"{key}: ".encode() + b"[" * DEEP + b"]" * DEEP + b"\n"


def laughs_yaml(head: str) -> bytes:
    lines = [head.rstrip("\n"), 'l0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, 10):
        lines.append(f"l{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    return ("\n".join(lines) + "\n").encode()


BINARY = bytes(range(256)) * 16


def utf16(text: str) -> bytes:
    return text.encode("utf-16")  # with its byte order mark


def bom(data: bytes) -> bytes:
    return codecs.BOM_UTF8 + data


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


# --------------------------------------------------------------------- cases
Build = Callable[[Workspace, Path], list[str | Path]]
Content = Callable[[Workspace], bytes] | int  # bytes to write, or the size of a sparse file


@dataclass(frozen=True)
class Case:
    id: str
    build: Build  # writes the bad input under the case directory; returns the CLI args
    says: str  # in the one error message (exit 3), or in the denial (exit 1)
    codes: frozenset[int] = frozenset({3})


CASES: list[Case] = []


def cases_for(
    kind: str,
    contents: dict[str, tuple[Content, str]],
    args: Callable[[Workspace, Path], list[str | Path]],
    name: str,
    codes: frozenset[int] = frozenset({3}),
) -> None:
    """Register one case per bad content: ``contents[id] = (make bytes, expected text)``."""
    for label, (make, says) in contents.items():

        def build(w: Workspace, d: Path, make: Content = make) -> list[str | Path]:
            target = d / name
            if isinstance(make, int):  # a size: a sparse file just over a limit
                sparse(target, make)
            else:
                write(target, make(w))
            return args(w, target)

        CASES.append(Case(f"{kind}-{label}", build, says, codes))


def good_policy(w: Workspace) -> str:
    return w.pipeline.policy_yaml.read_text()


def policy_args(*command: str) -> Callable[[Workspace, Path], list[str | Path]]:
    """Args for a policy command on a YAML file, its functionary key files beside it."""

    def args(w: Workspace, path: Path) -> list[str | Path]:
        shutil.copytree(w.pipeline.root / "keys", path.parent / "keys")
        extra: list[str | Path] = []
        if command == ("sign",):
            extra = ["--key", w.keys["owner"].key_path, "--out", path.parent / "out.json"]
        return ["policy", *command, path, *extra]

    return args


# policy YAML: lint, show and sign read it ------------------------------------
POLICY_YAML: dict[str, tuple[Content, str]] = {
    "truncated": (
        lambda w: good_policy(w).split("functionaries: [")[0].encode() + b"x: [a",
        "not valid YAML",
    ),
    "binary": (lambda w: BINARY, "not UTF-8 text"),
    "nested-1e5": (lambda w: good_policy(w).encode() + deep_yaml(), "nested deeper than 64"),
    "billion-laughs": (lambda w: laughs_yaml(good_policy(w)), "anchors and aliases"),
    "huge": (MAX_POLICY_BYTES + 1, "larger than 1 MiB, the limit for a policy"),
    "wrong-type": (lambda w: good_policy(w).replace("kind: Policy", "kind: [1]").encode(), "kind"),
    "utf-16": (lambda w: utf16(good_policy(w)), "UTF-16"),
    "latin-1": (lambda w: (good_policy(w) + "# caf\xe9\n").encode("latin-1"), "not UTF-8"),
    "nan": (lambda w: good_policy(w).replace("threshold: 2", "threshold: .nan").encode(), "nan"),
    "1e400": (lambda w: good_policy(w).replace("threshold: 2", "threshold: 1e400").encode(), "inf"),
    "huge-int": (
        lambda w: good_policy(w).replace("threshold: 2", f"threshold: {2**64}").encode(),
        "±(2^53−1)",
    ),
    "python-tag": (
        lambda w: good_policy(w).encode() + b"x: !!python/object/apply:os.system [ls]\n",
        "explicit YAML tag",
    ),
    "expires-past-9999": (
        lambda w: (
            good_policy(w).replace('"2099-01-01T00:00:00Z"', "9999-12-31T23:59:59-05:00").encode()
        ),
        "out of range",
    ),
    "bad-date": (
        lambda w: good_policy(w).replace('"2099-01-01T00:00:00Z"', "2024-02-30").encode(),
        "day is out of range",
    ),
}
cases_for("policy-lint", POLICY_YAML, policy_args("lint"), "policy.yaml")
cases_for(  # show and sign load through the same reader: a sample is enough
    "policy-show",
    {k: POLICY_YAML[k] for k in ("binary", "nested-1e5", "billion-laughs", "expires-past-9999")},
    policy_args("show"),
    "policy.yaml",
)
cases_for(
    "policy-sign",
    {k: POLICY_YAML[k] for k in ("binary", "nested-1e5", "billion-laughs", "huge", "utf-16")},
    policy_args("sign"),
    "policy.yaml",
)
cases_for(
    "policy-sign",
    {
        "expired": (
            lambda w: good_policy(w).replace("2099", "2001").encode(),
            "not signed: policy expired at 2001-01-01T00:00:00Z",
        )
    },
    policy_args("sign"),
    "policy.yaml",
)
cases_for(
    "policy-lint",
    {"expired": (lambda w: good_policy(w).replace("2099", "2001").encode(), "policy expired")},
    policy_args("lint"),
    "policy.yaml",
)
cases_for(
    "policy-lint",
    {"bom-accepted": (lambda w: bom(good_policy(w).encode()), "ok")},
    policy_args("lint"),
    "policy.yaml",
    frozenset({0}),
)


# signed policy JSON: verify and show read it --------------------------------------
def signed_policy(w: Workspace) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(w.pipeline.signed_policy_path.read_bytes())
    return doc


def owner_signed(payload: bytes) -> Callable[[Workspace], bytes]:
    """A policy envelope validly signed by the owner around ``payload``."""

    def make(w: Workspace) -> bytes:
        envelope = Envelope.sign(payload, POLICY_PAYLOAD_TYPE, [w.keys["owner"].signer])
        return canonical(envelope.to_json())

    return make


def policy_payload(w: Workspace) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(base64.b64decode(signed_policy(w)["payload"]))
    return doc


def owner_signed_edit(edit: Callable[[str], str]) -> Callable[[Workspace], bytes]:
    def make(w: Workspace) -> bytes:
        text = json.dumps(policy_payload(w))
        return owner_signed(edit(text).encode())(w)

    return make


SIGNED_POLICY: dict[str, tuple[Content, str]] = {
    "truncated": (lambda w: w.pipeline.signed_policy_path.read_bytes()[:200], "not valid JSON"),
    "binary": (lambda w: BINARY, "not UTF-8 text"),
    "nested-1e5": (lambda w: deep_json(), "nested deeper than 64"),
    # verify first tries the file as an in-toto layout (read up to MAX_JSON_BYTES)
    "huge": (MAX_JSON_BYTES + 1, "larger than"),
    "wrong-type": (lambda w: b'{"payload": 5, "payloadType": [], "signatures": {}}', "payload"),
    "utf-16": (lambda w: utf16(w.pipeline.signed_policy_path.read_text()), "UTF-16"),
    "bom": (lambda w: bom(w.pipeline.signed_policy_path.read_bytes()), "byte order mark"),
    "nan": (lambda w: b'{"payload": NaN}', "NaN"),
    "payload-nested-1e5": (owner_signed(deep_json()), "nested deeper than 64"),
    "payload-bom": (
        lambda w: owner_signed(bom(canonical(policy_payload(w))))(w),
        "byte order mark",
    ),
    "payload-latin-1": (owner_signed(b'{"apiVersion": "caf\xe9"}'), "not UTF-8"),
    "payload-1e400": (
        owner_signed_edit(lambda t: t.replace('"threshold": 2', '"threshold": 1e400')),
        "1e400 is out of range",
    ),
    "payload-huge-int": (
        owner_signed_edit(lambda t: t.replace('"threshold": 2', f'"threshold": {2**64}')),
        "±(2^53−1)",
    ),
    "payload-expires-past-9999": (
        owner_signed_edit(lambda t: t.replace("2099-01-01T00:00:00Z", "9999-12-31T23:59:59-05:00")),
        "out of range",
    ),
    "payload-wrong-type": (owner_signed(b"[1, 2, 3]"), "signed policy payload is invalid"),
}
cases_for(
    "signed-policy-verify",
    SIGNED_POLICY,
    lambda w, p: [*_replace_policy(w.verify_args(), p)],
    "policy.signed.json",
)
cases_for(
    "signed-policy-show",
    {k: SIGNED_POLICY[k] for k in ("nested-1e5", "payload-1e400", "payload-expires-past-9999")},
    lambda w, p: ["policy", "show", p],
    "policy.signed.json",
)


def _replace_policy(args: list[str | Path], path: Path) -> list[str | Path]:
    out = list(args)
    out[out.index("--policy") + 1] = path
    return out


# a bundle dropped into a run folder: verify denies it (exit 1) -----------------------
def bundle_doc(w: Workspace) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(w.pipeline.bundle_path("ingest").read_bytes())
    return doc


RUN_BUNDLE: dict[str, tuple[Content, str]] = {
    "truncated": (lambda w: w.pipeline.bundle_path("ingest").read_bytes()[:100], "not valid JSON"),
    "binary": (lambda w: BINARY, "not UTF-8 text"),
    "nested-1e5": (lambda w: deep_json(), "nested deeper than 64"),
    "huge": (MAX_JSON_BYTES + 1, "larger than 48 MiB, the limit for a Sigstore bundle"),
    "wrong-type": (lambda w: b'{"mediaType": 5}', "mediaType"),
    "utf-16": (lambda w: utf16(json.dumps(bundle_doc(w))), "UTF-16"),
    "bom": (lambda w: bom(canonical(bundle_doc(w))), "byte order mark"),
    "nan": (lambda w: json.dumps(bundle_doc(w) | {"x": float("nan")}).encode(), "NaN"),
    "1e400": (lambda w: canonical(bundle_doc(w))[:-1] + b',"x":1e400}', "out of range"),
    "huge-int": (lambda w: canonical(bundle_doc(w))[:-1] + b',"x":%d}' % 2**64, "±(2^53−1)"),
}
DENIED = frozenset({1})


def _run_folder_args(w: Workspace, path: Path) -> list[str | Path]:
    store = w.store_copy(path.parent)
    shutil.move(path, w.run_dir(store) / "x.sigstore.json")
    return w.verify_args(store)


cases_for("run-bundle", RUN_BUNDLE, _run_folder_args, "x.sigstore.json", DENIED)


# a DSSE payload inside a validly signed bundle: verify denies it ---------------------
def resigned(payload: Callable[[Workspace], bytes]) -> Callable[[Workspace], bytes]:
    """The ingest bundle with ``payload``, signed by the ingest functionary's real key."""

    def make(w: Workspace) -> bytes:
        signer: LocalKeySigner = w.keys["data-engineer"].signer
        envelope = Envelope.sign(payload(w), INTOTO_PAYLOAD_TYPE, [signer], keyid_hint=False)
        return canonical(Bundle.for_public_key(envelope, signer.public_key.keyid).to_json())

    return make


def statement_text(w: Workspace) -> str:
    return base64.b64decode(bundle_doc(w)["dsseEnvelope"]["payload"]).decode()


def edited(edit: Callable[[str], str]) -> Callable[[Workspace], bytes]:
    return lambda w: edit(statement_text(w)).encode()


def with_metric(value: str) -> Callable[[Workspace], bytes]:
    return edited(lambda t: t.replace('"metrics":{}', '"metrics":{"mae":' + value + "}"))


PAYLOAD: dict[str, tuple[Content, str]] = {
    "truncated": (resigned(lambda w: statement_text(w)[:120].encode()), "not valid JSON"),
    "binary": (resigned(lambda w: BINARY), "not UTF-8 text"),
    "nested-1e5": (resigned(lambda w: deep_json()), "nested deeper than 64"),
    "wrong-type": (resigned(lambda w: b'"a string"'), "not an in-toto Statement"),
    "utf-16": (resigned(lambda w: utf16(statement_text(w))), "UTF-16"),
    "bom": (resigned(lambda w: bom(statement_text(w).encode())), "byte order mark"),
    "metric-nan": (resigned(with_metric("NaN")), "NaN"),
    "metric-1e400": (resigned(with_metric("1e400")), "1e400 is out of range"),
    "metric-huge-int": (resigned(with_metric(str(2**64))), "±(2^53−1)"),
    "lone-surrogate": (resigned(with_metric('"\\ud800"')), "surrogate"),
    "started-past-9999": (
        resigned(edited(lambda t: t.replace("2025-06-01T12:00:00Z", "9999-12-31T23:59:59-05:00"))),
        "RFC 3339",
    ),
}


def _resigned_args(w: Workspace, path: Path) -> list[str | Path]:
    store = w.store_copy(path.parent)
    target = store / w.pipeline.bundle_path("ingest").relative_to(w.pipeline.store_path)
    shutil.move(path, target)
    return w.verify_args(store)


cases_for("dsse-payload", PAYLOAD, _resigned_args, "ingest.sigstore.json", DENIED)


# metrics JSON for `sign --metrics` ----------------------------------------------------
GOOD_METRICS = b'{"metrics": {"mae": 41.5}}'
METRICS: dict[str, tuple[Content, str]] = {
    "truncated": (lambda w: GOOD_METRICS[:12], "not valid JSON"),
    "binary": (lambda w: BINARY, "not UTF-8 text"),
    "nested-1e5": (lambda w: deep_json(), "nested deeper than 64"),
    "huge": (MAX_JSON_BYTES + 1, "larger than 8 MiB, the limit for a metrics file"),
    "wrong-type": (lambda w: b'{"metrics": {"mae": "low"}}', "mae"),
    "utf-16": (lambda w: utf16(GOOD_METRICS.decode()), "UTF-16"),
    "bom": (lambda w: bom(GOOD_METRICS), "byte order mark"),
    "nan": (lambda w: b'{"metrics": {"mae": NaN}}', "NaN"),
    "1e400": (lambda w: b'{"metrics": {"mae": 1e400}}', "1e400 is out of range"),
    "huge-int": (lambda w: b'{"metrics": {"mae": %d}}' % 2**64, "±(2^53−1)"),
}


def _sign_args(w: Workspace, path: Path) -> list[str | Path]:
    product = write(path.parent / "model.bin", b"model")
    key = w.keys["ml-engineer"].key_path
    store = path.parent / "store"
    return ["sign", "--stage", "train", "--key", key, "--store", store, "--product", product]


cases_for(
    "metrics",
    METRICS,
    lambda w, p: [*_sign_args(w, p), "--base-dir", p.parent, "--metrics", p],
    "metrics.json",
)


# objectives YAML -------------------------------------------------------------------
OBJECTIVES_CASES: dict[str, tuple[Content, str]] = {
    "truncated": (lambda w: OBJECTIVES.encode() + b"  - {id: x, stage: [", "not valid YAML"),
    "binary": (lambda w: BINARY, "not UTF-8 text"),
    "nested-1e5": (lambda w: OBJECTIVES.encode() + deep_yaml(), "nested deeper than 64"),
    "billion-laughs": (lambda w: laughs_yaml(OBJECTIVES), "anchors and aliases"),
    "huge": (MAX_OBJECTIVES_BYTES + 1, "larger than 1 MiB"),
    "wrong-type": (lambda w: OBJECTIVES.replace("max: 60", "max: [60]").encode(), "max"),
    "utf-16": (lambda w: utf16(OBJECTIVES), "UTF-16"),
    "latin-1": (lambda w: (OBJECTIVES + "# caf\xe9\n").encode("latin-1"), "not UTF-8"),
    "nan": (lambda w: OBJECTIVES.replace("max: 60", "max: .nan").encode(), "nan"),
    "1e400": (lambda w: OBJECTIVES.replace("max: 60", "max: 1e400").encode(), "inf"),
    "huge-int": (lambda w: OBJECTIVES.replace("max: 60", f"max: {2**64}").encode(), "±(2^53−1)"),
}
cases_for("objectives-lint", OBJECTIVES_CASES, lambda w, p: ["objectives", "lint", p], "o.yaml")


def _objectives_stage(w: Workspace, path: Path) -> list[str | Path]:
    key = w.keys["owner"].key_path
    store = path.parent / "store"
    return ["sign", "--stage", "objectives", "--key", key, "--store", store, "--product", path]


cases_for(
    "objectives-sign",
    {k: OBJECTIVES_CASES[k] for k in ("nested-1e5", "billion-laughs", "nan")},
    lambda w, p: [*_objectives_stage(w, p), "--base-dir", p.parent],
    "o.yaml",
)


# data schema (YAML and JSON) ---------------------------------------------------------
SCHEMA_JSON = json.dumps(
    {
        "apiVersion": "mlspec-attest/v1",
        "kind": "DataSchema",
        "name": "corpus",
        "version": "1",
        "columns": [{"name": "age", "type": "integer"}],
    }
)
SCHEMA_YAML_CASES: dict[str, tuple[Content, str]] = {
    "truncated": (lambda w: SCHEMA[:120].encode() + b"{", "not valid YAML"),
    "binary": (lambda w: BINARY, "not UTF-8 text"),
    "nested-1e5": (lambda w: SCHEMA.encode() + deep_yaml(), "nested deeper than 64"),
    "billion-laughs": (lambda w: laughs_yaml(SCHEMA), "anchors and aliases"),
    "huge": (MAX_DATA_SCHEMA_BYTES + 1, "larger than 4 MiB"),
    "wrong-type": (lambda w: SCHEMA.replace("min: 0", "min: zero").encode(), "min"),
    "utf-16": (lambda w: utf16(SCHEMA), "UTF-16"),
    "nan": (lambda w: SCHEMA.replace("min: 0", "min: .nan").encode(), "nan"),
    "huge-int": (lambda w: SCHEMA.replace("min: 0", f"min: {2**64}").encode(), "±(2^53−1)"),
}
SCHEMA_JSON_CASES: dict[str, tuple[Content, str]] = {
    "truncated": (lambda w: SCHEMA_JSON[:40].encode(), "not valid JSON"),
    "nested-1e5": (lambda w: deep_json(), "nested deeper than 64"),
    "bom": (lambda w: bom(SCHEMA_JSON.encode()), "byte order mark"),
    "1e400": (
        lambda w: SCHEMA_JSON.replace('"integer"}', '"integer", "min": 1e400}').encode(),
        "1e400",
    ),
}
cases_for(
    "schema-yaml",
    SCHEMA_YAML_CASES,
    lambda w, p: ["validate", w.data, "--schema", p],
    "schema.yaml",
)
cases_for(
    "schema-json",
    SCHEMA_JSON_CASES,
    lambda w, p: ["validate", w.data, "--schema", p],
    "schema.json",
)


# key files ---------------------------------------------------------------------------
def pem_text(w: Workspace) -> str:
    return w.keys["owner"].pub_path.read_text()


KEYS: dict[str, tuple[Content, str]] = {
    "truncated": (lambda w: pem_text(w)[:60].encode(), "not a PEM"),
    "binary": (lambda w: BINARY, "not a PEM"),
    "huge": (MAX_KEY_BYTES + 1, "larger than 64 KiB, the limit for a key"),
    "utf-16": (lambda w: utf16(pem_text(w)), "not a PEM"),
    "empty": (lambda w: b"", "not a PEM"),
}
cases_for(
    "policy-key",
    KEYS,
    lambda w, p: [*w.verify_args()[:3], "--policy-key", p, *w.verify_args()[5:]],
    "owner.pub",
)
cases_for(
    "signing-key",
    {k: KEYS[k] for k in ("truncated", "binary", "huge")},
    lambda w, p: [
        "sign",
        "--stage",
        "train",
        "--key",
        p,
        "--store",
        p.parent / "s",
        "--product",
        write(p.parent / "m.bin", b"m"),
        "--base-dir",
        p.parent,
    ],
    "signer.key",
)


# directory manifests read back from the store's blobs --------------------------------
def _manifest_blob_args(bad: bytes) -> Build:
    """The package stage re-signed (real key) naming a malformed manifest blob."""

    def build(w: Workspace, d: Path) -> list[str | Path]:
        import hashlib

        store = w.store_copy(d)
        address = hashlib.sha256(bad).hexdigest()
        write(store / "blobs" / "sha256" / address, bad)
        path = store / w.pipeline.bundle_path("package").relative_to(w.pipeline.store_path)
        doc = json.loads(path.read_bytes())
        statement = json.loads(base64.b64decode(doc["dsseEnvelope"]["payload"]))
        statement["subject"][0]["digest"]["manifest-sha256"] = address
        signer = w.keys["release-engineer"].signer
        envelope = Envelope.sign(
            canonical(statement), INTOTO_PAYLOAD_TYPE, [signer], keyid_hint=False
        )
        path.write_bytes(
            canonical(Bundle.for_public_key(envelope, signer.public_key.keyid).to_json())
        )
        return w.verify_args(store)

    return build


for label, bad in {
    "nested-1e5": deep_json(),
    "binary": BINARY,
    "truncated": b'{"_type": "https://mlspec-attest.dev/manifest/v2", "files": [',
    "huge-int": b'{"_type": "https://mlspec-attest.dev/manifest/v1", "files": [%d]}' % 2**64,
}.items():
    CASES.append(
        Case(
            f"manifest-blob-{label}", _manifest_blob_args(bad), "stored manifest unreadable", DENIED
        )
    )


# in-toto layout (verify --policy LAYOUT) and its links -------------------------------
def layout_bytes(w: Workspace) -> bytes:
    return (w.layout_dir / "root.layout").read_bytes()


LAYOUT: dict[str, tuple[Content, str]] = {
    "truncated": (lambda w: layout_bytes(w)[:300], "not valid JSON"),
    "binary": (lambda w: BINARY, "not UTF-8 text"),
    "nested-1e5": (lambda w: deep_json(), "nested deeper than 64"),
    "huge": (MAX_JSON_BYTES + 1, "larger than"),
    "wrong-type": (
        lambda w: b'{"signed": {"_type": "layout", "steps": 5}, "signatures": []}',
        "invalid in-toto layout",
    ),
    "utf-16": (lambda w: utf16(layout_bytes(w).decode()), "UTF-16"),
    "bom": (lambda w: bom(layout_bytes(w)), "byte order mark"),
    "1e400": (lambda w: layout_bytes(w)[:-1] + b',"x":1e400}', "1e400 is out of range"),
    "huge-int": (lambda w: layout_bytes(w)[:-1] + b',"x":%d}' % 2**64, "±(2^53−1)"),
}


def _layout_args(w: Workspace, path: Path) -> list[str | Path]:
    links = path.parent / "links"
    shutil.copytree(w.layout_dir, links)
    key = w.keys["owner"].pub_path
    return ["verify", "--policy", path, "--policy-key", key, "--store", links, "--json"]


cases_for("intoto-layout", LAYOUT, _layout_args, "root.layout")


def _link_args(bad: bytes) -> Build:
    def build(w: Workspace, d: Path) -> list[str | Path]:
        links = d / "links"
        shutil.copytree(w.layout_dir, links)
        [link] = sorted(links.glob("ingest.*.link"))
        link.write_bytes(bad)
        layout = links / "root.layout"
        key = w.keys["owner"].pub_path
        return ["verify", "--policy", layout, "--policy-key", key, "--store", links, "--json"]

    return build


for label, bad in {
    "nested-1e5": deep_json(),
    "binary": BINARY,
    "1e400": b'{"x": 1e400}',
    "bom": bom(b'{"signed": {"_type": "link"}, "signatures": []}'),
    "wrong-type": b'{"signed": {"_type": "link", "name": 5, "materials": []}, "signatures": 5}',
}.items():
    CASES.append(Case(f"intoto-link-{label}", _link_args(bad), "unreadable link", DENIED))


# OpenSSF model signature (model verify) ----------------------------------------------
def oms_doc(w: Workspace) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(w.model_sig.read_bytes())
    return doc


def oms_resigned(payload: bytes) -> Callable[[Workspace], bytes]:
    def make(w: Workspace) -> bytes:
        signer = w.keys["data-engineer"].signer
        envelope = Envelope.sign(payload, INTOTO_PAYLOAD_TYPE, [signer], keyid_hint=False)
        return canonical(Bundle.for_public_key(envelope, signer.public_key.keyid).to_json())

    return make


OMS: dict[str, tuple[Content, str]] = {
    "truncated": (lambda w: w.model_sig.read_bytes()[:100], "not valid JSON"),
    "binary": (lambda w: BINARY, "not UTF-8 text"),
    "nested-1e5": (lambda w: deep_json(), "nested deeper than 64"),
    "huge": (MAX_JSON_BYTES + 1, "larger than 64 MiB"),
    "wrong-type": (lambda w: b'{"mediaType": [], "dsseEnvelope": 5}', "mediaType"),
    "utf-16": (lambda w: utf16(w.model_sig.read_text()), "UTF-16"),
    "bom": (lambda w: bom(w.model_sig.read_bytes()), "byte order mark"),
    "nan": (lambda w: json.dumps(oms_doc(w) | {"x": float("nan")}).encode(), "NaN"),
    "payload-nested-1e5": (oms_resigned(deep_json()), "nested deeper than 64"),
    "payload-1e400": (oms_resigned(b'{"_type": 1e400}'), "1e400 is out of range"),
    "payload-huge-int": (oms_resigned(b'{"_type": %d}' % 2**64), "±(2^53−1)"),
    "payload-binary": (oms_resigned(BINARY), "not UTF-8 text"),
}
cases_for(
    "oms-signature",
    OMS,
    lambda w, p: [
        "model",
        "verify",
        w.model,
        "--signature",
        p,
        "--public-key",
        w.keys["data-engineer"].pub_path,
        "--workers",
        "1",
    ],
    "model.sig",
    frozenset({1, 3}),
)


# --------------------------------------------------------------------- the test
def error_lines(text: str) -> list[str]:
    """Lines that announce an error: ``error: ...`` or lint's ``FILE:LINE: error: ...``
    (the problems listed under an error are indented)."""
    return [line for line in text.splitlines() if re.match(r"(error:|\S+:\d+: error: )", line)]


def readable(stdout: str) -> str:
    """stdout with a JSON report's escapes (``\\u00b1``) decoded."""
    try:
        return json.dumps(json.loads(stdout), ensure_ascii=False)
    except ValueError:
        return stdout


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_malformed_input_is_refused_cleanly(ws: Workspace, case: Case, tmp_path: Path) -> None:
    args = case.build(ws, tmp_path)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = run_cli(args, tmp_path)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output[-3000:]
    # -24 (SIGXCPU) or -9 (SIGKILL): the CPU limit was hit; 70 with MemoryError: the memory limit
    assert result.returncode in case.codes, (result.returncode, f"{cpu:.2f}s CPU", output[-3000:])
    if result.returncode == 1:
        # a denial: verify's JSON report names the input and the problem
        assert case.says in readable(result.stdout) + result.stderr, output[-3000:]
        return
    if result.returncode == 0:
        assert case.says in output
        return
    assert len(error_lines(result.stderr)) == 1, result.stderr[-3000:]
    assert case.says in result.stderr, result.stderr[-3000:]
