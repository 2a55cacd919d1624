"""Artifact rules between stages (verify/artifact_rules.py): each refusal as the whole record.

Real runs of the four-stage pipeline of tests/support.py: a stage that read files no rule
allows, a stage whose products (signed again for real) include one no rule allows, and a
policy whose rule looks inside a directory whose signed manifest has left the store.
"""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

from mlspec_attest.formats.bundle import Bundle
from mlspec_attest.formats.dsse import INTOTO_PAYLOAD_TYPE, Envelope
from mlspec_attest.formats.jsonio import canonical
from mlspec_attest.verify.report import Check, Failure

from .support import KeyPair, Pipeline

RULE_REMEDY = (
    "check that the stage consumed exactly what earlier stages produced "
    "(a file changed between stages, or an unexpected file was used)"
)


def _rule_failures(p: Pipeline) -> list[Failure]:
    return [f for f in p.verify().failures if f.check is Check.ARTIFACT_RULE]


def test_materials_no_rule_allows(tmp_path: Path, keys: dict[str, KeyPair]) -> None:
    p = Pipeline(tmp_path / "p", keys)
    p.sign("ingest")
    (p.ws / "data/a.csv").write_text("a\n")
    (p.ws / "data/b.csv").write_text("b\n")
    p.sign("split", extra_materials=["data/b.csv", "data/a.csv"])
    p.sign_all_signers("train")
    p.sign("package", via_api=True)
    assert p.verify().failures == [
        Failure(
            Check.ARTIFACT_RULE,
            "split",
            "materials rule 'DISALLOW *' failed: not authorized by any earlier rule: "
            "data/a.csv; data/b.csv",
            expected="materials authorized by the stage's rules",
            found="data/a.csv, data/b.csv",
            remedy=RULE_REMEDY,
        )
    ]


def test_a_product_no_rule_allows(tmp_path: Path, keys: dict[str, KeyPair]) -> None:
    p = Pipeline(tmp_path / "p", keys).run()
    path = p.bundle_path("ingest")
    doc = json.loads(path.read_bytes())
    statement = json.loads(base64.b64decode(doc["dsseEnvelope"]["payload"]))
    statement["subject"].append({"name": "data/extra.bin", "digest": {"sha256": "1" * 64}})
    key = p.keys["data-engineer"]
    envelope = Envelope.sign(canonical(statement), INTOTO_PAYLOAD_TYPE, [key.signer])
    path.write_bytes(canonical(Bundle.for_public_key(envelope, key.keyid).to_json()))
    assert _rule_failures(p) == [
        Failure(
            Check.ARTIFACT_RULE,
            "ingest",
            "products rule 'DISALLOW *' failed: not authorized by any earlier rule: data/extra.bin",
            expected="products authorized by the stage's rules",
            found="data/extra.bin",
            remedy=RULE_REMEDY,
        )
    ]


def test_a_directory_a_rule_looks_inside_needs_its_manifest(
    tmp_path: Path, keys: dict[str, KeyPair]
) -> None:
    p = Pipeline(tmp_path / "p", keys)
    p.policy_yaml.write_text(
        p.policy_text(expires="2099-01-01T00:00:00Z").replace(
            "      - MATCH model WITH PRODUCTS FROM train\n",
            "      - MATCH model/* WITH PRODUCTS FROM train\n"
            "      - MATCH model WITH PRODUCTS FROM train\n",
            1,
        )
    )
    p.sign_policy()
    p.run()
    assert p.verify().failures == []
    blobs = p.store_path / "blobs" / "sha256"
    shutil.rmtree(blobs)
    blobs.mkdir()
    [manifest] = {
        f.message.split("its manifest ", 1)[1].split("\u2026", 1)[0] for f in _rule_failures(p)
    }
    assert manifest.startswith("sha256:")
    problem = (
        f"the files of directory 'model' cannot be checked: its manifest {manifest}\u2026 "
        "is not in the store or is corrupt"
    )
    # one record per stage that recorded the directory, each reported once
    assert _rule_failures(p) == [
        Failure(
            Check.ARTIFACT_RULE,
            stage,
            problem,
            expected="every directory a rule looks inside to have its signed manifest in the store",
            found="a missing or inconsistent manifest",
            remedy="copy the store with its blobs/ folder, or re-sign the stage",
        )
        for stage in ("train", "package")
    ]
