"""Policy tricks: who signed the policy, what it says, and policies no lint would pass.

"Signed anyway" scenarios bypass ``policy sign`` (which lints first): the owner's
key signs an edited JSON payload directly, as a careless or coerced owner could.
The verifier must refuse to trust such a policy (exit 3), never run with it.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from mlspec_attest.formats.dsse import Envelope
from mlspec_attest.formats.jsonio import canonical
from mlspec_attest.policy.signed import POLICY_PAYLOAD_TYPE

from ..support import KeyPair, Pipeline, indent_pem
from .kit import Cli, Scenario, case, expect, scenario, write_doc

M = __name__


def policy_doc(p: Pipeline) -> dict[str, Any]:
    envelope: dict[str, Any] = json.loads(p.signed_policy_path.read_bytes())
    return envelope


def policy_payload(p: Pipeline) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads(base64.b64decode(policy_doc(p)["payload"]))
    return payload


def signed_anyway(p: Pipeline, edit: Callable[[dict[str, Any]], Any]) -> Path:
    """The owner's key signs an edited policy payload directly (no lint)."""
    payload = policy_payload(p)
    edit(payload)
    envelope = Envelope.sign(canonical(payload), POLICY_PAYLOAD_TYPE, [p.keys["owner"].signer])
    return write_doc(p.root / "edited.signed.json", envelope.to_json())


def stage(payload: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(s for s in payload["stages"] if s["name"] == name)
    return found


def rfc3339(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def with_policy(p: Pipeline, edit: Callable[[str], str]) -> Pipeline:
    """Rewrite the YAML policy of a fresh pipeline (before any stage is signed) and sign it."""
    text = p.policy_text(expires="2099-01-01T00:00:00Z")
    edited = edit(text)
    assert edited != text
    p.policy_yaml.write_text(edited)
    p.sign_policy()
    return p


# ------------------------------------------------------------ who signed it
@scenario(
    "policy-signed-by-functionary-not-owner",
    "replace the signed policy by the same policy signed with a functionary's key",
    1,
    ["policy-signature"],
    "not signed by a required owner key",
)
def test_signed_by_functionary(case: Scenario, hp: Pipeline, cli: Cli) -> None:
    hp.sign_policy("ml-engineer")
    expect(cli.verify(hp), case)


@scenario(
    "policy-extra-garbage-signature",
    "append a second, invalid signature to the owner-signed policy envelope",
    0,
)
def test_extra_garbage_signature(case: Scenario, hp: Pipeline, cli: Cli) -> None:
    doc = policy_doc(hp)
    junk = base64.b64encode(secrets.token_bytes(64)).decode()
    doc["signatures"].append({"sig": junk, "keyid": hp.keys["intruder"].keyid})
    write_doc(hp.signed_policy_path, doc)
    expect(cli.verify(hp), case)


@scenario(
    "policy-co-owner-signature-corrupted",
    "two owners must sign; corrupt the second owner's signature bytes in the envelope",
    1,
    ["policy-signature"],
    "not signed by a required owner key",
)
def test_co_owner_signature_corrupted(case: Scenario, hp: Pipeline, cli: Cli) -> None:
    hp.sign_policy("owner", "release-engineer")
    doc = policy_doc(hp)
    sig = bytearray(base64.b64decode(doc["signatures"][1]["sig"]))
    sig[-1] ^= 0x01
    doc["signatures"][1]["sig"] = base64.b64encode(bytes(sig)).decode()
    write_doc(hp.signed_policy_path, doc)
    owners = [hp.keys["owner"].pub_path, hp.keys["release-engineer"].pub_path]
    expect(cli.verify(hp, policy_keys=owners), case)


@scenario(
    "policy-payload-reformatted",
    "re-encode the signed policy payload with other whitespace (same JSON value, other bytes)",
    1,
    ["policy-signature"],
)
def test_payload_reformatted(case: Scenario, hp: Pipeline, cli: Cli) -> None:
    doc = policy_doc(hp)
    pretty = json.dumps(policy_payload(hp), indent=1).encode()
    doc["payload"] = base64.b64encode(pretty).decode()
    write_doc(hp.signed_policy_path, doc)
    expect(cli.verify(hp), case)


@scenario(
    "policy-payload-type-relabelled",
    "relabel the signed policy's payloadType as an in-toto statement",
    3,
    message="is not a policy",
)
def test_policy_payload_type(case: Scenario, hp: Pipeline, cli: Cli) -> None:
    doc = policy_doc(hp)
    doc["payloadType"] = "application/vnd.in-toto+json"
    write_doc(hp.signed_policy_path, doc)
    expect(cli.verify(hp), case)


@scenario(
    "policy-duplicate-payload-key",
    "a signed policy file with two payload keys: a laxer policy first, the signed one last",
    3,
    message="duplicate key",
)
def test_policy_duplicate_key(case: Scenario, hp: Pipeline, cli: Cli) -> None:
    doc = policy_doc(hp)
    lax = policy_payload(hp)
    stage(lax, "train")["threshold"] = 1
    lax_b64 = base64.b64encode(canonical(lax)).decode()
    rest = canonical({k: v for k, v in doc.items() if k != "payload"}).decode()
    text = rest[:-1] + f',"payload":"{lax_b64}","payload":"{doc["payload"]}"}}'
    hp.signed_policy_path.write_text(text)
    expect(cli.verify(hp), case)


# ------------------------------------------------------------ expiry
@scenario(
    "policy-just-expired",
    "present a policy the owner signed that expired two minutes ago",
    1,
    ["policy-expired"],
)
def test_just_expired(case: Scenario, hp: Pipeline, cli: Cli) -> None:
    hp.write_policy(expires=rfc3339(datetime.now(UTC) - timedelta(minutes=2)))
    hp.sign_policy()
    expect(cli.verify(hp), case)


@scenario(
    "policy-expiring-in-minutes",
    "a run bound to a policy that expires ten minutes from now (still valid; lint warns)",
    0,
)
def test_expiring_soon(case: Scenario, make_pipeline: Any, cli: Cli) -> None:
    soon = rfc3339(datetime.now(UTC) + timedelta(minutes=10))
    p = make_pipeline("soon", expires=soon).run()
    expect(cli.verify(p), case)
    lint = cli("policy", "lint", p.policy_yaml)
    assert lint.code == 0 and "expires at" in lint.err, lint.describe()


# ------------------------------------------------------------ names
@scenario(
    "stage-names-differing-only-in-case",
    "`policy sign` a YAML policy with stages 'train' and 'Train'",
    3,
    message="is not a stage name",
)
def test_stage_case_collision_sign(case: Scenario, hp: Pipeline, cli: Cli) -> None:
    text = hp.policy_yaml.read_text()
    extra = "  - name: Train\n    kind: train\n    functionaries: [ml-engineer]\n"
    hp.policy_yaml.write_text(text.replace("deploy:\n", extra + "deploy:\n"))
    owner = hp.keys["owner"]
    expect(
        cli("policy", "sign", hp.policy_yaml, "--key", owner.key_path, "--out", hp.root / "x"),
        case,
    )


@pytest.mark.parametrize(
    ("case", "name"),
    [
        case(
            M,
            "stage-names-case-collision-signed-anyway",
            "the owner signs (without lint) a policy JSON with stages 'train' and 'Train'",
            3,
            None,
            "is not a stage name",
            "Train",
        ),
        case(
            M,
            "stage-name-homoglyph-signed-anyway",
            "the owner signs a policy with a second 'train' spelt with a Cyrillic 'а'",
            3,
            None,
            "is not a stage name",
            "tr\u0430in",
        ),
    ],
)
def test_stage_name_collisions_signed(case: Scenario, name: str, hp: Pipeline, cli: Cli) -> None:
    def add(payload: dict[str, Any]) -> None:
        twin = dict(stage(payload, "train"), name=name, threshold=1, functionaries=["ml-engineer"])
        payload["stages"].append(twin)

    expect(cli.verify(hp, policy=signed_anyway(hp, add)), case)


@scenario(
    "functionary-names-differing-only-in-case",
    "the policy also names 'Release-Engineer' (an attacker's key, no stage); it signs package",
    1,
    ["signer-not-allowed"],
    "'Release-Engineer', who may not sign this stage",
)
def test_functionary_case(
    case: Scenario, make_pipeline: Any, keys: dict[str, KeyPair], cli: Cli
) -> None:
    attacker = keys["intruder"]
    twin = f"  Release-Engineer:\n    publicKey: |\n{indent_pem(attacker.pem, 6)}\n"
    p = with_policy(make_pipeline("fcase"), lambda t: t.replace("stages:\n", twin + "stages:\n", 1))
    p.run()
    p.sign("package", signer="intruder", build=False)
    expect(cli.verify(p), case)


# ------------------------------------------------------------ thresholds and keys
@scenario(
    "twin-functionaries-share-a-key",
    "the policy's two train functionaries have one key; that key signs train twice",
    1,
    ["threshold"],
    "1 agreeing key(s)",
)
def test_twin_functionaries(case: Scenario, make_pipeline: Any, cli: Cli) -> None:
    p = make_pipeline("twins")
    engineer = indent_pem(p.keys["ml-engineer"].pem, 6)
    reviewer = indent_pem(p.keys["ml-reviewer"].pem, 6)
    with_policy(p, lambda t: t.replace(reviewer, engineer))
    p.sign("ingest")
    p.sign("split")
    p.sign("train", signer="ml-engineer")
    p.sign("train", signer="ml-engineer", build=False)
    p.sign("package", via_api=True)
    expect(cli.verify(p), case)
    lint = cli("policy", "lint", p.policy_yaml)
    assert lint.code == 0 and "same key as functionary 'ml-engineer'" in lint.err, lint.describe()


@scenario(
    "rule-list-without-disallow",
    "under a policy whose train materials lack 'DISALLOW *', train also reads an unproduced file",
    0,
    note="in-toto semantics: unlisted artifacts pass; `policy lint` warns (asserted)",
)
def test_rules_without_disallow(case: Scenario, make_pipeline: Any, cli: Cli) -> None:
    match = "      - MATCH data/split/train.csv WITH PRODUCTS FROM split\n"
    p = with_policy(
        make_pipeline("lax"), lambda t: t.replace(match + "      - DISALLOW *\n", match)
    )
    (p.ws / "data").mkdir(parents=True, exist_ok=True)
    (p.ws / "data/extra.csv").write_text("age,bmi,target\n1,2,3\n")
    p.sign("ingest")
    p.sign("split")
    p.sign("train", signer="ml-engineer", extra_materials=["data/extra.csv"])
    p.sign("train", signer="ml-reviewer", build=False, extra_materials=["data/extra.csv"])
    p.sign("package", via_api=True)
    # in-toto semantics: unlisted artifacts pass; the defence is lint's warning
    expect(cli.verify(p), case)
    lint = cli("policy", "lint", p.policy_yaml)
    assert lint.code == 0 and "do not end with 'DISALLOW *'" in lint.err, lint.describe()


def _forward_match(payload: dict[str, Any]) -> None:
    stage(payload, "train")["materials"].insert(0, "MATCH model WITH PRODUCTS FROM package")


def _threshold_three(payload: dict[str, Any]) -> None:
    stage(payload, "train")["threshold"] = 3


def _unknown_field(payload: dict[str, Any]) -> None:
    payload["allowUnsignedStages"] = True


def _key_path(payload: dict[str, Any]) -> None:
    payload["functionaries"]["release-engineer"] = {"key": "/etc/ssl/attacker.pub"}


def _no_stages(payload: dict[str, Any]) -> None:
    payload["stages"] = []


@pytest.mark.parametrize(
    ("case", "edit"),
    [
        case(
            M,
            "match-from-non-predecessor-signed-anyway",
            "the owner signs a policy whose train MATCHes FROM package (a later stage)",
            3,
            None,
            "not ordered before",
            _forward_match,
        ),
        case(
            M,
            "threshold-above-functionaries-signed-anyway",
            "the owner signs a policy asking train for 3 of its 2 functionaries",
            3,
            None,
            "exceeds",
            _threshold_three,
        ),
        case(
            M,
            "policy-unknown-field-signed-anyway",
            "the owner signs a policy with an unknown top-level field allowUnsignedStages: true",
            3,
            None,
            "unknown field",
            _unknown_field,
        ),
        case(
            M,
            "policy-key-path-signed-anyway",
            "the owner signs a policy naming a functionary by key file path instead of embedding it",
            3,
            None,
            "must embed publicKey",
            _key_path,
        ),
        case(
            M,
            "policy-without-stages-signed-anyway",
            "the owner signs a policy with an empty stage list (nothing to check: all would pass)",
            3,
            None,
            "should be non-empty",
            _no_stages,
        ),
    ],
)
def test_signed_anyway(
    case: Scenario, edit: Callable[[dict[str, Any]], None], hp: Pipeline, cli: Cli
) -> None:
    expect(cli.verify(hp, policy=signed_anyway(hp, edit)), case)
