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
from typing import Any

from mlspec_attest.digest.artifact import digest_path
from mlspec_attest.formats.dsse import pae
from mlspec_attest.formats.jsonio import canonical
from mlspec_attest.verify.report import Check

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


# --- directories seen file by file (mlspec_attest/verify/dirfiles.py) --------------------------------


def _directory(
    root: Path, name: str, files: dict[str, bytes], **scheme: object
) -> tuple[str, dict[str, str], object]:
    from mlspec_attest.digest.scheme import DigestScheme

    folder = root / name
    for rel, data in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)
    digest = digest_path(folder, scheme=DigestScheme(**scheme))
    return digest.digest_set(), digest.manifest


def _expander(tmp_path: Path, paths: set[str], *manifests: Any) -> Any:
    from mlspec_attest.store.ledger import AttestationStore
    from mlspec_attest.verify.dirfiles import Expander

    store = AttestationStore(tmp_path / "store")
    for manifest in manifests:
        store.put_blob(manifest.canonical_bytes())
    return Expander(store, frozenset(paths))


def test_every_named_directory_is_expanded_whatever_comes_before(tmp_path: Path) -> None:
    a_digest, a_manifest = _directory(tmp_path, "a", {"x": b"1"})
    b_digest, b_manifest = _directory(tmp_path, "b", {"y": b"2"})
    c_digest, _ = _directory(tmp_path, "c", {"z": b"3"})  # its manifest is not stored
    artifacts = {
        "a": a_digest,  # not named inside by any rule: left whole
        "b": b_digest,
        "c": c_digest,
        "file.txt": {"sha256": "1" * 64},
        "d": {"sha256": "2" * 64},  # a file named like a directory a rule looks into
    }
    expander = _expander(tmp_path, {"b/*", "c/*", "d/*"}, a_manifest, b_manifest)
    out = expander.expand(artifacts)
    assert out["b/y"] == {"sha256": b_manifest.entries[0].digest}
    assert "a/x" not in out and "c/z" not in out
    assert expander.problems == [
        f"the files of directory 'c' cannot be checked: its manifest "
        f"sha256:{c_digest['manifest-sha256'][:16]}… is not in the store or is corrupt"
    ]
    # the same with the missing manifest first in order: b is still expanded
    expander = _expander(tmp_path, {"b/*", "0/*"}, b_manifest)
    out = expander.expand({"0": c_digest, "b": b_digest})
    assert "b/y" in out


def test_a_corrupt_or_wrong_manifest_is_a_problem(tmp_path: Path) -> None:
    from mlspec_attest.store.ledger import AttestationStore
    from mlspec_attest.verify.dirfiles import Expander

    b_digest, b_manifest = _directory(tmp_path, "b", {"y": b"2"})
    e_digest, e_manifest = _directory(tmp_path, "e", {"w": b"4"})
    store = AttestationStore(tmp_path / "store")
    corrupt = store.put_blob(b"not a manifest")
    store.put_blob(e_manifest.canonical_bytes())
    store.put_blob(b_manifest.canonical_bytes())
    expander = Expander(store, frozenset({"b/*", "c/*", "e/*"}))
    out = expander.expand(
        {
            "c": {"sha256": "3" * 64, "manifest-sha256": corrupt},
            "e": {**e_digest, "sha256": b_digest["sha256"]},  # another directory's root
            "b": b_digest,
        }
    )
    assert expander.problems == [
        f"the files of directory 'c' cannot be checked: its manifest sha256:{corrupt[:16]}… "
        "is not in the store or is corrupt",
        "the manifest of directory 'e' does not produce its attested digest",
    ]
    assert "e/w" not in out and "c/x" not in out
    assert "b/y" in out  # after two refused directories


def test_a_file_recorded_twice_with_different_digests_is_a_problem(tmp_path: Path) -> None:
    b_digest, b_manifest = _directory(tmp_path, "b", {"y": b"2", "z": b"3"})
    entries = {e.path: e.digest for e in b_manifest.entries}
    expander = _expander(tmp_path, {"b/*"}, b_manifest)
    expander.expand({"b": b_digest, "b/y": {"sha256": entries["y"]}, "b/z": {"sha256": "f" * 64}})
    assert expander.problems == [
        "'b/z' is recorded twice with different digests (as an artifact and inside directory 'b')"
    ]


def test_sharded_directories_expand_with_their_shards(tmp_path: Path) -> None:
    from mlspec_attest.verify.dirfiles import file_digest

    _, manifest = _directory(
        tmp_path, "s", {"w": b"0123456789"}, serialization="shards", shard_size=4
    )
    [entry] = manifest.entries
    assert file_digest(entry, manifest) == {"sha256-shards-4": ",".join(entry.shards)}
    assert len(entry.shards) == 3


def test_which_rules_reach_inside_a_directory() -> None:
    from mlspec_attest.policy.rules import ArtifactRule
    from mlspec_attest.verify.dirfiles import reaches_inside, rule_queue

    assert reaches_inside("dataX", ["dataX/a"])
    assert reaches_inside("data ", ["data /a"])
    assert reaches_inside("/abs", ["/abs/x"])
    assert not reaches_inside("data", ["dataset/a", "data"])
    rules = [
        ArtifactRule.parse("DISALLOW * "),
        ArtifactRule.parse("MATCH w IN dataX WITH PRODUCTS FROM s"),
    ]
    recorded = {"dataX": {"sha256": "1" * 64}, "other": {"sha256": "2" * 64}}
    expanded = {**recorded, "dataX/w": {"sha256": "3" * 64}, "other/v": {"sha256": "4" * 64}}
    assert rule_queue(rules, recorded, expanded) == {**recorded, "dataX/w": {"sha256": "3" * 64}}
    # only a rule's own path counts, with its IN prefix joined
    plain = [ArtifactRule.parse("MATCH dataX/w WITH PRODUCTS FROM s")]
    assert "dataX/w" in rule_queue(plain, recorded, expanded)
    assert "dataX/w" not in rule_queue(
        [ArtifactRule.parse("MATCH w WITH PRODUCTS FROM s")], recorded, expanded
    )


def test_a_wrong_manifest_does_not_stop_the_directories_after_it(tmp_path: Path) -> None:
    a_digest, a_manifest = _directory(tmp_path, "a", {"w": b"4"})
    b_digest, b_manifest = _directory(tmp_path, "b", {"y": b"2"})
    expander = _expander(tmp_path, {"a/*", "b/*"}, a_manifest, b_manifest)
    out = expander.expand({"a": {**a_digest, "sha256": b_digest["sha256"]}, "b": b_digest})
    assert expander.problems == [
        "the manifest of directory 'a' does not produce its attested digest"
    ]
    assert "b/y" in out and "a/w" not in out


def test_rule_queue_keeps_directory_names_as_they_are() -> None:
    from mlspec_attest.policy.rules import ArtifactRule, RuleVerb
    from mlspec_attest.verify.dirfiles import rule_queue

    for directory in ("data ", "/abs"):
        recorded = {directory: {"sha256": "1" * 64}}
        inside = f"{directory}/w"
        expanded = {**recorded, inside: {"sha256": "3" * 64}}
        rules = [ArtifactRule.parse(f"MATCH w IN {directory.strip()} WITH PRODUCTS FROM s")]
        if directory == "data ":
            # (a prefix with a trailing space cannot be written in a rule's text)
            rules = [ArtifactRule(RuleVerb.MATCH, "w", directory, "products", None, "s")]
        assert rule_queue(rules, recorded, expanded) == expanded, directory


# --- what differs between conflicting records of a stage (mlspec_attest/verify/accepted.py) -----------


def test_differing_fields_names_each_difference() -> None:
    from mlspec_attest.verify.accepted import differing_fields

    same = {"products": [{"name": "m", "digest": {"sha256": "1" * 64}}], "metadata": {"a": None}}
    assert differing_fields([same, dict(same), dict(same)]) == []
    assert differing_fields([1, 2]) == ["statement"]
    first = {"products": [1], "metadata": {"parameters": {"seed": 1, "lr": 0.1}, "stage": "t"}}
    second = {"products": [2], "metadata": {"parameters": {"seed": 2, "lr": 0.1}, "stage": "t"}}
    assert differing_fields([first, second]) == ["metadata.parameters.seed", "products"]
    # a field present as null in one record and absent from the other differs
    assert differing_fields([{"a": None}, {}]) == ["a"]
    assert differing_fields([{"a": {"b": None}}, {"a": {}}]) == ["a.b"]


def test_differing_fields_stops_three_levels_down() -> None:
    from mlspec_attest.verify.accepted import differing_fields

    deep = [{"a": {"b": {"c": {"d": 1}}}}, {"a": {"b": {"c": {"d": 2}}}}]
    assert differing_fields(deep) == ["a.b.c"]
    assert differing_fields([{"a": {"b": {"c": 1}}}, {"a": {"b": {"c": 2}}}]) == ["a.b.c"]
