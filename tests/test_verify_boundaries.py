"""Verification at its edges: the instant a policy expires, digests that differ in one digit.

Real pipelines, real keys: a digest that differs from the deployed bytes only in
its last hex digit is attested with a valid signature by the stage's own
functionary, so only the deploy comparison itself can refuse it.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from mlspec_attest.digest import digest_path
from mlspec_attest.dsse import pae
from mlspec_attest.jsonio import canonical
from mlspec_attest.report import Check

from .support import Pipeline, checks_of, read_bundle

EXPIRES = datetime(2099, 1, 1, tzinfo=UTC)


def test_policy_is_denied_at_the_exact_instant_it_expires(honest: Pipeline) -> None:
    report = honest.verify(now=EXPIRES)
    assert [f.check for f in report.failures] == [Check.POLICY_EXPIRED]
    assert report.failures[0].expected == "now before 2099-01-01T00:00:00Z"
    assert report.failures[0].found == "now is 2099-01-01T00:00:00Z"
    later = honest.verify(now=EXPIRES + timedelta(seconds=1))
    assert Check.POLICY_EXPIRED in checks_of(later)


def test_policy_is_accepted_one_second_before_it_expires(honest: Pipeline) -> None:
    report = honest.verify(now=EXPIRES - timedelta(seconds=1))
    assert report.passed, [str(f) for f in report.failures]


def _resign(path: Path, signer_key: object, new_digest: dict[str, str], product: str) -> None:
    """Attest ``new_digest`` for ``product`` in the stored bundle, signed anew by its signer."""
    doc = read_bundle(path)
    envelope = doc["dsseEnvelope"]
    statement = json.loads(base64.b64decode(envelope["payload"]))
    [subject] = [s for s in statement["subject"] if s["name"] == product]
    subject["digest"] = new_digest
    for item in statement["predicate"].get("products", []) or []:
        if isinstance(item, dict) and item.get("name") == product:
            item["digest"] = new_digest
    payload = canonical(statement)
    envelope["payload"] = base64.b64encode(payload).decode()
    sig = signer_key.sign(pae(envelope["payloadType"], payload))  # type: ignore[attr-defined]
    envelope["signatures"][0]["sig"] = base64.b64encode(sig).decode()
    path.write_bytes(canonical(doc))


def _last_digit_changed(hexdigest: str) -> str:
    return hexdigest[:-1] + ("0" if hexdigest[-1] != "0" else "1")


def test_deploy_digest_differing_in_the_last_digit_is_denied(honest: Pipeline) -> None:
    train = honest.ws / "data/split/train.csv"
    actual = digest_path(train).digest_set()
    near = {k: _last_digit_changed(v) for k, v in actual.items()}
    _resign(
        honest.bundle_path("split"),
        honest.keys["data-engineer"].signer,
        near,
        "data/split/train.csv",
    )
    report = honest.verify()
    assert not report.passed
    statuses = {a.role: a.status for a in report.artifacts}
    assert statuses["train-data"] == "mismatch"
    [failure] = [
        f
        for f in report.failures
        if f.check is Check.ARTIFACT_MISMATCH and "train-data" in f.message
    ]
    assert failure.stage == "split"
    key = next(iter(near))
    assert near[key] in failure.expected
    assert actual[key] in failure.found


def test_deploy_digest_equal_to_the_bytes_passes(honest: Pipeline) -> None:
    # the same re-signing with the true digest changes nothing: the check above is the digit
    train = honest.ws / "data/split/train.csv"
    actual = digest_path(train).digest_set()
    _resign(
        honest.bundle_path("split"),
        honest.keys["data-engineer"].signer,
        actual,
        "data/split/train.csv",
    )
    report = honest.verify()
    assert report.passed, [str(f) for f in report.failures]
