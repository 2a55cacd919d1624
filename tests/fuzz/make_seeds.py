"""Write the seed corpora under tests/fuzz/corpus/<target>/ (``seed-*`` files).

    python -m tests.fuzz.make_seeds

Seeds are small valid inputs, made from the golden files, the example
policies and test data of this repository, plus a few generated with real
keys. Re-running rewrites every ``seed-*`` file (generated keys change);
``crash-*`` files (inputs that once crashed a parser) are never touched.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import re
import tempfile
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from mlspec_attest.digest.artifact import digest_directory
from mlspec_attest.digest.scheme import DigestScheme
from mlspec_attest.evidence.digest_sets import RowDigestSet
from mlspec_attest.formats.dsse import Envelope
from mlspec_attest.formats.jsonio import canonical
from mlspec_attest.interop.oms.manifest import build_manifest
from mlspec_attest.interop.oms.signature import Serialization
from mlspec_attest.policy import load_policy_yaml, sign_policy
from mlspec_attest.signing.keys import KeyType, generate_key, load_private_key

from .targets import _oms
from .targets._harness import CORPUS_DIR, GOLDEN_DIR, PROJECT_ROOT
from .targets._leakage import split_proof

TESTS = PROJECT_ROOT / "tests"
Seeds = dict[str, bytes]


def golden(name: str) -> bytes:
    return (GOLDEN_DIR / name).read_bytes()


def inline_keys(text: str) -> str:
    """Replace ``key: ../keys-example/x.pub`` with the inline PEM (seeds are read from a scratch dir)."""

    def pem(match: re.Match[str]) -> str:
        key = (PROJECT_ROOT / "policies" / match.group(2)).resolve().read_text()
        return f"{match.group(1)}publicKey: {json.dumps(key)}"

    return re.sub(r"^(\s*)key: (\S+)$", pem, text, flags=re.M)


def policy_yaml() -> Seeds:
    out = {
        f"seed-{p.stem}.yaml": inline_keys(p.read_text()).encode()
        for p in sorted((PROJECT_ROOT / "policies").glob("*.yaml"))
        if "kind: Policy" in p.read_text()
    }
    out["seed-golden.json"] = base64.b64decode(json.loads(golden("policy.signed.json"))["payload"])
    return out


def _signed_lifecycle() -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "lifecycle.yaml"
        path.write_text(inline_keys((PROJECT_ROOT / "policies" / "lifecycle.yaml").read_text()))
        policy = load_policy_yaml(path)
    owner = load_private_key(GOLDEN_DIR / "signer.key")
    return canonical(sign_policy(policy, [owner]).to_json())


def signed_policy() -> Seeds:
    return {
        "seed-golden.json": golden("policy.signed.json"),
        "seed-lifecycle.json": _signed_lifecycle(),
    }


def signed_policy_payload() -> Seeds:
    return {
        "seed-golden.json": policy_yaml()["seed-golden.json"],
        "seed-lifecycle.json": base64.b64decode(json.loads(_signed_lifecycle())["payload"]),
    }


def jsonio() -> Seeds:
    out = {f"seed-{p.stem}.json": p.read_bytes() for p in sorted(GOLDEN_DIR.glob("*.json"))}
    for i, text in enumerate(
        [
            "{}",
            "[]",
            '"x"',
            "1.5",
            "-0",
            '{"a":[1,{"b":null,"c":true}],"d":"\\u00e9\\ud83d\\ude00"}',
        ]
    ):
        out[f"seed-small-{i}.json"] = text.encode()
    return out


def dsse() -> Seeds:
    small = Envelope(b"hello", "text/plain", ()).to_json()
    small["signatures"] = [{"keyid": "k", "sig": "c2ln"}, {"sig": "-_8="}]
    return {
        "seed-stage.json": golden("stage-envelope.json"),
        "seed-policy.json": golden("policy.signed.json"),
        "seed-small.json": json.dumps(small).encode(),
    }


def bundle() -> Seeds:
    doc = json.loads(golden("stage-bundle.json"))
    doc["mediaType"] = "application/vnd.dev.sigstore.bundle+json;version=0.2"
    doc["verificationMaterial"] = {"certificate": {"rawBytes": "AAAA"}, "tlogEntries": []}
    return {
        "seed-stage.json": golden("stage-bundle.json"),
        "seed-v02.json": json.dumps(doc).encode(),
    }


def statement() -> Seeds:
    doc = json.loads(golden("stage-statement.json"))
    doc["subject"] = []
    doc["predicate"]["command"] = ["python", "train.py"]
    doc["predicate"]["byproducts"].update({"return-value": 0, "stdout-sha256": "ab" * 32})
    return {"seed-golden.json": golden("stage-statement.json"), "seed-command.json": canonical(doc)}


def _tiny_tree(root: Path) -> None:
    (root / "sub").mkdir(parents=True)
    (root / "a-c").write_bytes(b"")
    (root / "sub" / "config.json").write_bytes(b'{"layers": 2}')
    (root / "weights.bin").write_bytes(bytes(range(64)))


def manifest() -> Seeds:
    out = {"seed-golden.json": golden("manifest.json")}
    with tempfile.TemporaryDirectory() as tmp:
        _tiny_tree(Path(tmp) / "t")
        for scheme in (DigestScheme("blake2b"), DigestScheme("sha256", "shards", 16)):
            found = digest_directory(Path(tmp) / "t", scheme=scheme, workers=1)
            out[f"seed-{scheme.key}.json"] = found.canonical_bytes()
    return out


def metrics() -> Seeds:
    interval = {"low": 0.1, "high": 0.3, "level": 0.95, "method": "bootstrap", "resamples": 100}
    full = {
        "schemaVersion": "https://mlspec-attest.dev/metrics/v1",
        "metrics": {"mae": 45.5, "r2": 0.4, "count": 177},
        "confidenceIntervals": {"r2": interval},
        "omitted": {"roc_auc": "regression"},
        "slices": {
            "sex": {
                "1": {"count": 101, "metrics": {"mae": 48.9}},
                "2": {"count": 76, "metrics": {"mae": 41.0}},
            }
        },
    }
    return {
        "seed-flat.json": b'{"mae": 41.25, "rows": 2}',
        "seed-slices.json": b'{"metrics": {"mae": 1}, "slices": {"sex": {"f": {"count": 1, "metrics": {"mae": 0.5}}}}}',
        "seed-full.json": json.dumps(full, indent=1).encode(),
    }


def objectives() -> Seeds:
    doc = {
        "apiVersion": "mlspec-attest/v1",
        "kind": "Objectives",
        "metadata": {"name": "tiny", "version": "1"},
        "criteria": [
            {"id": "a", "stage": "test", "metric": "mae", "max": 60},
            {"id": "b", "stage": "test", "expr": 'metrics["r2"] >= 0.3 && counts.sex["1"] > 10'},
            {
                "id": "c",
                "stage": "test",
                "eachSlice": {"family": "sex", "metric": "mae", "max": 50, "minCount": 5},
            },
            {
                "id": "d",
                "stage": "test",
                "change": {
                    "metric": "mae",
                    "direction": "lower-is-better",
                    "maxWorsening": 0.1,
                    "relative": True,
                },
            },
        ],
    }
    return {
        "seed-example.yaml": (PROJECT_ROOT / "policies" / "objectives.yaml").read_bytes(),
        "seed-tiny.json": json.dumps(doc, indent=1).encode(),
    }


def dataschema() -> Seeds:
    sensors = (TESTS / "data" / "tabular" / "sensors-schema.yaml").read_bytes()
    from mlspec_attest.evidence.dataschema import load_data_schema

    as_json = json.dumps(load_data_schema(TESTS / "data" / "tabular" / "sensors-schema.yaml"))
    example = PROJECT_ROOT / "examples" / "pipeline" / "schemas" / "diabetes-features.v3.yaml"
    return {
        "seed-sensors.yaml": b"\x00" + sensors,
        "seed-sensors.json": b"\x01" + as_json.encode(),
        "seed-diabetes.yaml": b"\x00" + example.read_bytes(),
    }


def _tables(csv_file: Path, jsonl_file: Path) -> Seeds:
    csv_bytes, jsonl_bytes = csv_file.read_bytes(), jsonl_file.read_bytes()
    return {
        "seed-csv": b"\x00" + csv_bytes,
        "seed-tsv": b"\x01" + csv_bytes.replace(b",", b"\t"),
        "seed-jsonl": b"\x02" + jsonl_bytes,
        "seed-csv-gz": b"\x03" + gzip.compress(csv_bytes, mtime=0),
    }


def rows() -> Seeds:
    leakage = TESTS / "data" / "leakage"
    out = _tables(leakage / "people.csv", leakage / "people.jsonl")
    out["seed-jsonl-gz"] = b"\x04" + gzip.compress((leakage / "people.jsonl").read_bytes(), mtime=0)
    return out


def tabular() -> Seeds:
    data = TESTS / "data" / "tabular"
    out = _tables(data / "sensors.csv", data / "sensors.jsonl")
    out["seed-sniffed"] = b"\x04" + (data / "sensors.jsonl").read_bytes()
    return out


def _digest_set(*items: int) -> RowDigestSet:
    return RowDigestSet.from_digests(hashlib.sha256(bytes([i])).digest() for i in items)


def rowset() -> Seeds:
    some = _digest_set(1, 2, 3, 4, 5)
    return {
        "seed-five.bin": (7).to_bytes(2, "big") + some.to_blob(),
        "seed-empty.bin": (0).to_bytes(2, "big") + _digest_set().to_blob(),
    }


def leakage_record() -> Seeds:
    with tempfile.TemporaryDirectory() as tmp:
        _, record = split_proof(Path(tmp))
    return {"seed-record.json": json.dumps(record, indent=1).encode()}


def rfc3339() -> Seeds:
    texts = [
        "2025-06-01T12:00:00Z",
        "2099-12-31T23:59:59.999999+14:00",
        "2025-06-01 12:00:00-07:30",
        "1970-01-01T00:00:00z",
    ]
    return {f"seed-{i}": t.encode() for i, t in enumerate(texts)}


def intoto_jsonl() -> Seeds:
    line = canonical(json.loads(golden("stage-envelope.json")))
    return {
        "seed-envelope.jsonl": line + b"\n",
        "seed-mixed.jsonl": line
        + b"\n\n"
        + canonical(json.loads(golden("stage-bundle.json")))
        + b"\n",
    }


def _statements() -> Seeds:
    out: Seeds = {}
    model = _oms.model_dir()
    for label, ser in (
        ("files", Serialization()),
        ("shards", Serialization("shards", "sha256", False, 16, frozenset({"empty"}))),
        ("blake2b", Serialization("files", "blake2b", True)),
    ):
        built, _ = build_manifest(model, ser, workers=1)
        out[f"seed-{label}.json"] = built.payload()
    legacy = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "weights.bin", "digest": {"sha256": "00" * 32}}],
        "predicateType": "https://model_signing/Digests/v0.1",
        "predicate": {},
    }
    out["seed-legacy.json"] = json.dumps(legacy).encode()
    return out


def oms_statement() -> Seeds:
    return _statements()


def oms_signature() -> Seeds:
    out: Seeds = {}
    for name, payload in sorted(_statements().items()):
        out[name] = json.dumps(_oms.signed_bundle(payload).to_json()).encode()
    der = [_oms.certificates()[1], _oms.certificates()[0]]
    doc = _oms.signed_bundle(_statements()["seed-files.json"]).to_json()
    doc["verificationMaterial"] = {
        "x509CertificateChain": {
            "certificates": [
                {"rawBytes": base64.b64encode(c.public_bytes(serialization.Encoding.DER)).decode()}
                for c in der
            ]
        },
        "tlogEntries": [],
    }
    out["seed-certificate.json"] = json.dumps(doc).encode()
    return out


def oms_certificate() -> Seeds:
    root, leaf = _oms.certificates()
    return {
        "seed-leaf.der": leaf.public_bytes(serialization.Encoding.DER),
        "seed-root.der": root.public_bytes(serialization.Encoding.DER),
    }


def celexpr() -> Seeds:
    texts = [
        'metrics["mae"] <= 45.0',
        'max([slices.sex["1"].mae, slices.sex["2"].mae]) - min([slices.sex["1"].mae, slices.sex["2"].mae]) <= 8.0',
        "stages.train.metrics.loss < 1.0 && has(stages.train.kind)",
        "abs(metrics.r2 - baseline.mae) > 0.0 || size(counts.sex) == 2",
        "counts.sex.all(k, counts.sex[k] >= 20) && 'x'.startsWith('x')",
        "(metrics.mae - baseline.mae) / abs(baseline.mae) <= 0.05",
    ]
    return {f"seed-{i}": t.encode() for i, t in enumerate(texts)}


def keys() -> Seeds:
    pub, key = golden("signer.pub"), golden("signer.key")
    out = {
        "seed-golden-pub-0": b"\x00" + pub,
        "seed-golden-pub-1": b"\x01" + pub,
        "seed-golden-key": b"\x02" + key,
    }
    for key_type in (KeyType.ECDSA_P256, KeyType.ECDSA_P384):
        signer = generate_key(key_type)
        out[f"seed-{key_type.value}-pub"] = b"\x00" + signer.public_key.pem().encode()
        private = signer.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
        out[f"seed-{key_type.value}-traditional"] = b"\x02" + private
    encrypted = generate_key(KeyType.ED25519).private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"fuzz"),
    )
    out["seed-ed25519-encrypted"] = b"\x03" + encrypted
    return out


SEEDS: dict[str, Callable[[], Seeds]] = {
    "bundle": bundle,
    "celexpr": celexpr,
    "dataschema": dataschema,
    "dsse": dsse,
    "intoto_jsonl": intoto_jsonl,
    "jsonio": jsonio,
    "keys": keys,
    "leakage_record": leakage_record,
    "manifest": manifest,
    "metrics": metrics,
    "objectives": objectives,
    "oms_certificate": oms_certificate,
    "oms_signature": oms_signature,
    "oms_statement": oms_statement,
    "policy_yaml": policy_yaml,
    "rfc3339": rfc3339,
    "rows": rows,
    "rowset": rowset,
    "signed_policy": signed_policy,
    "signed_policy_payload": signed_policy_payload,
    "statement": statement,
    "tabular": tabular,
}


def main() -> None:
    for target, make in SEEDS.items():
        folder = CORPUS_DIR / target
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("seed-*"):
            old.unlink()
        for name, data in make().items():
            (folder / name).write_bytes(data)
        print(f"{target}: {len(list(folder.glob('seed-*')))} seeds")


if __name__ == "__main__":
    main()
