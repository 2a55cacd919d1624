"""An envelope signed by several functionaries: every signature against every candidate key.

DSSE lets one envelope carry several signatures. Without a ``publicKey.hint`` every key
functionary of the policy is a candidate. The lookup used to credit the envelope to the
first candidate (in the policy's order, which is the order of the functionaries' names)
whose key verified *any* signature: an envelope signed by a functionary not allowed for
its stage and by one who is was denied (``signer-not-allowed``) or passed depending on
which name sorts first. Now every distinct key that verifies a signature is credited
(:meth:`SignerLookup.key_signers`, one key never counted twice, sorted by key id), and
the bundle's signer is one of them allowed to sign the stage.

Real keys and real signatures (RSA, ECDSA, Ed25519 as the session's roles hold them).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from mlspec_attest.formats.bundle import Bundle
from mlspec_attest.formats.dsse import Envelope
from mlspec_attest.formats.jsonio import canonical
from mlspec_attest.verify.report import Check
from mlspec_attest.verify.signers import SignerLookup

from .support import STAGES, KeyPair, Pipeline, checks_of


def multi_signed(
    p: Pipeline, stage: str, roles: Sequence[str], hint: str | None = None, into: str | None = None
) -> Path:
    """Replace ``stage``'s bundle (or ``into``'s bundle of it) by one whose envelope (same
    payload) is signed by every role in ``roles``, in that order; ``publicKey`` without a
    hint unless one is given."""
    path = p.bundle_path(stage, into)
    bundle = Bundle.from_json(json.loads(path.read_bytes()))
    envelope = Envelope.sign(
        bundle.envelope.payload,
        bundle.envelope.payload_type,
        [p.keys[r].signer for r in roles],
        keyid_hint=False,
    )
    material = {"publicKey": {"hint": hint} if hint else {}, "tlogEntries": []}
    path.write_bytes(canonical(Bundle(envelope, material).to_json()))
    return path


def renamed(p: Pipeline, old: str, new: str) -> Pipeline:
    """The same policy with functionary ``old`` called ``new`` (same key, same stages)."""
    text = p.policy_yaml.read_text()
    text = text.replace(f"  {old}:\n", f"  {new}:\n").replace(f"[{old}]", f"[{new}]")
    p.policy_yaml.write_text(text)
    p.sign_policy()
    assert new in p.signed.policy.functionaries
    return p


@pytest.mark.parametrize(
    "roles", [("data-engineer", "release-engineer"), ("release-engineer", "data-engineer")]
)
@pytest.mark.parametrize("name", ["data-engineer", "zz-data-engineer"])
def test_the_signer_allowed_for_the_stage_is_credited(
    tmp_path: Path, keys: dict[str, KeyPair], roles: tuple[str, str], name: str
) -> None:
    """``package`` may be signed by release-engineer only; its envelope also carries the
    data engineer's signature. Whatever the signatures' order and whether the data
    engineer's name sorts before or after ``release-engineer``, release-engineer signed."""
    p = Pipeline(tmp_path / "p", keys)
    if name != "data-engineer":
        renamed(p, "data-engineer", name)
    p.run()
    multi_signed(p, "package", roles)
    report = p.verify()
    assert report.failures == [], [str(f) for f in report.failures]
    assert {s.name: s.signers for s in report.stages}["package"] == ("release-engineer",)


def test_every_key_that_signed_is_credited_once(honest: Pipeline) -> None:
    """``key_signers``: both functionaries, sorted by key id, whatever the signatures'
    order; a key that signed twice counts once; a key that did not sign is not credited."""
    lookup = SignerLookup(honest.signed.policy)
    engineer, reviewer = honest.keys["ml-engineer"], honest.keys["ml-reviewer"]
    by_keyid = sorted([engineer, reviewer], key=lambda k: k.keyid)
    expected = [(k.name, k.keyid) for k in by_keyid]
    for roles in (
        ["ml-engineer", "ml-reviewer"],
        ["ml-reviewer", "ml-engineer"],
        ["ml-reviewer", "ml-engineer", "ml-reviewer"],
    ):
        bundle = Bundle.from_json(json.loads(multi_signed(honest, "train", roles).read_bytes()))
        credited = lookup.key_signers(bundle, "train")
        assert [(f.name, f.keyid) for f in credited] == expected, roles
        signer = lookup.by_key(bundle, "train")
        assert signer is not None and signer.keyid == by_keyid[0].keyid
    bundle = Bundle.from_json(
        json.loads(multi_signed(honest, "train", ["ml-reviewer"] * 2).read_bytes())
    )
    assert [f.name for f in lookup.key_signers(bundle, "train")] == ["ml-reviewer"]


def test_a_hint_still_names_the_only_candidate(honest: Pipeline) -> None:
    """With a hint naming one functionary, only that key is tried (as before): the other
    signature in the envelope is not credited."""
    lookup = SignerLookup(honest.signed.policy)
    reviewer = honest.keys["ml-reviewer"].keyid
    path = multi_signed(honest, "train", ["ml-engineer", "ml-reviewer"], hint=reviewer)
    credited = lookup.key_signers(Bundle.from_json(json.loads(path.read_bytes())), "train")
    assert [f.name for f in credited] == ["ml-reviewer"]


def test_an_envelope_signed_only_by_others_is_not_allowed(honest: Pipeline) -> None:
    """Credited keys must still be allowed: data-engineer and ml-engineer sign ``package``."""
    multi_signed(honest, "package", ["data-engineer", "ml-engineer"])
    report = honest.verify()
    assert Check.SIGNER_NOT_ALLOWED in checks_of(report)


@pytest.mark.parametrize("roles", [("ml-engineer", "ml-reviewer"), ("ml-reviewer", "ml-engineer")])
@pytest.mark.parametrize("beside", ["nothing", "ml-engineer", "ml-reviewer"])
def test_one_envelope_signed_by_both_meets_the_threshold(
    tmp_path: Path, keys: dict[str, KeyPair], roles: tuple[str, str], beside: str
) -> None:
    """``train`` needs 2 of ml-engineer, ml-reviewer: one envelope signed by both meets it,
    alone or beside either one's own attestation (a key is never counted twice)."""
    later = list(STAGES)[list(STAGES).index("train") + 1 :]
    p = Pipeline(tmp_path / "p", keys).run(skip=later)
    other = {"ml-engineer": "ml-reviewer", "ml-reviewer": "ml-engineer"}
    if beside == "nothing":
        multi_signed(p, "train", roles, into="ml-engineer")
        p.bundle_path("train", "ml-reviewer").unlink()
    else:  # the two-signature bundle takes the other one's file; ``beside``'s own stays
        multi_signed(p, "train", roles, into=other[beside])
    # the later stages run after it: what they saw of train is what the store holds (a
    # train attestation removed after a later stage saw it is a denial of its own)
    for stage in later:
        if stage == "package":
            p.sign(stage, via_api=True)
        else:
            p.sign_all_signers(stage)
    report = p.verify()
    assert report.failures == [], [str(f) for f in report.failures]
    train = {s.name: s.signers for s in report.stages}["train"]
    assert train == ("ml-engineer", "ml-reviewer")
