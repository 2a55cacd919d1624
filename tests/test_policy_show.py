"""``policy show``: what the text and Mermaid views say, and that YAML and signed agree.

The signed payload is canonical JSON: its object keys (functionaries, deploy roles) come
out sorted, while the YAML keeps them as written. The policies here write both out of
alphabetical order, so a view that followed either form's mapping order would differ.
There is no Mermaid parser offline; the diagrams are checked line by line against the
few statement shapes the renderer may emit.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mlspec_attest.cli.render import mermaid_label, policy_mermaid, policy_text
from mlspec_attest.formats.jsonio import canonical
from mlspec_attest.formats.stages import StageKind
from mlspec_attest.policy.load import load_policy_yaml, read_policy_any
from mlspec_attest.policy.model import DeployArtifact, Functionary, Policy, StagePolicy
from mlspec_attest.policy.rules import ArtifactRule, RuleVerb
from mlspec_attest.policy.signed import load_signed_policy, sign_policy
from mlspec_attest.signing.sigstore.identity import SigstoreIdentity

from .support import POLICY_EXPIRES, PROJECT_ROOT, VERIFY_NOW, KeyPair, indent_pem

#: Functionaries and deploy roles deliberately not in alphabetical order.
SHOW_POLICY = """\
apiVersion: mlspec-attest/v1
kind: Policy
metadata:
  name: show-me
expires: "{expires}"
requirePolicyDigest: true
functionaries:
  release-engineer:
    publicKey: |
{release_engineer}
  ml-reviewer:
    publicKey: |
{ml_reviewer}
  ml-engineer:
    publicKey: |
{ml_engineer}
  data-engineer:
    publicKey: |
{data_engineer}
stages:
  - name: ingest
    kind: ingest
    functionaries: [data-engineer]
    materials: [DISALLOW *]
    products: [CREATE data/raw.csv, DISALLOW *]
  - name: train
    kind: train
    functionaries: [ml-engineer, ml-reviewer, data-engineer]
    threshold: 2
    after: [ingest]
    materials: [MATCH data/raw.csv WITH PRODUCTS FROM ingest, DISALLOW *]
    products: [CREATE model, DISALLOW *]
  - name: package
    kind: package
    functionaries: [release-engineer]
    after: [train]
    materials: [MATCH model WITH PRODUCTS FROM train, DISALLOW *]
    products: [MATCH model.pkl IN dist WITH PRODUCTS IN model FROM train, ALLOW dist/*, DISALLOW *]
  - name: audit
    kind: custom
    required: false
    functionaries: [ml-reviewer]
    after: [package]
    materials: [MATCH dist/* WITH PRODUCTS FROM package, DISALLOW *]
    products: [DISALLOW *]
requirements:
  - id: seeded
    expr: '"seed" in stages.train.parameters'
  - id: always
    expr: "true"
deploy:
  artifacts:
    model: {{stage: package, product: dist}}
    raw-data: {{stage: ingest, product: data/raw.csv}}
    card: {{stage: package, product: dist/card.json}}
"""

EXPECTED_MERMAID = """\
flowchart TD
  s1_ingest["1. ingest<br/>1 of 1: data-engineer"]
  s2_train["2. train<br/>2 of 3: ml-engineer, ml-reviewer, data-engineer"]
  s3_package["3. package<br/>1 of 1: release-engineer"]
  s4_audit["4. audit (custom)<br/>1 of 1: ml-reviewer<br/>(optional)"]
  s1_ingest --> s2_train
  s2_train --> s3_package
  s3_package --> s4_audit
  s1_ingest -.->|"data/raw.csv"| s2_train
  s2_train -.->|"model<br/>model/model.pkl"| s3_package
  s3_package -.->|"dist/*"| s4_audit
  c1_seeded["requirement seeded: #34;seed#34; in stages.train.parameters"]
  s2_train --- c1_seeded
  d1_raw_data(["deploy raw-data<br/>data/raw.csv"])
  s1_ingest ==> d1_raw_data
  d2_card(["deploy card<br/>dist/card.json"])
  s3_package ==> d2_card
  d3_model(["deploy model<br/>dist"])
  s3_package ==> d3_model
  classDef optional stroke-dasharray: 5 5
  class s4_audit optional
  classDef check fill:#fff8dc,stroke:#b59f3b
  class c1_seeded check
  classDef deploy fill:#e8f1fb,stroke:#3b6fb5
  class d1_raw_data,d2_card,d3_model deploy"""


_ROLES = ("release-engineer", "ml-reviewer", "ml-engineer", "data-engineer")


def _show_yaml(keys: dict[str, KeyPair]) -> str:
    return SHOW_POLICY.format(
        expires=POLICY_EXPIRES,
        **{role.replace("-", "_"): indent_pem(keys[role].pem, 6) for role in _ROLES},
    )


def _yaml_and_signed(yaml_path: Path, keys: dict[str, KeyPair]) -> tuple[Path, Path]:
    """``yaml_path`` and its signed form, signed through the library with a generated key."""
    policy = load_policy_yaml(yaml_path, now=VERIFY_NOW)
    signed = yaml_path.with_name(yaml_path.stem + ".signed.json")
    signed.write_bytes(canonical(sign_policy(policy, [keys["owner"].signer]).to_json()))
    return yaml_path, signed


@pytest.fixture
def show_policy(tmp_path: Path, keys: dict[str, KeyPair]) -> tuple[Path, Path]:
    path = tmp_path / "show.yaml"
    path.write_text(_show_yaml(keys))
    return _yaml_and_signed(path, keys)


def _views(path: Path) -> tuple[str, str]:
    policy, digest = read_policy_any(path)
    return policy_text(policy, digest), policy_mermaid(policy)


def test_signed_payload_sorts_maps_keeps_stage_order(show_policy: tuple[Path, Path]) -> None:
    """The cause of the old difference: the maps lose their written order, lists do not."""
    _, signed_path = show_policy
    signed = load_signed_policy(signed_path)
    assert list(signed.document["functionaries"]) == sorted(_ROLES)
    assert list(signed.document["deploy"]["artifacts"]) == ["card", "model", "raw-data"]
    assert [s["name"] for s in signed.document["stages"]] == ["ingest", "train", "package", "audit"]
    assert [s.name for s in signed.policy.stages] == ["ingest", "train", "package", "audit"]


def test_yaml_and_signed_show_the_same(show_policy: tuple[Path, Path]) -> None:
    yaml_path, signed_path = show_policy
    assert _views(yaml_path) == _views(signed_path)


def test_lifecycle_template_yaml_and_signed_show_the_same(
    tmp_path: Path, keys: dict[str, KeyPair]
) -> None:
    """The shipped lifecycle policy: seven functionaries and three deploy roles."""
    policies = tmp_path / "policies"
    policies.mkdir()
    (tmp_path / "keys-example").symlink_to(PROJECT_ROOT / "keys-example")
    path = policies / "lifecycle.yaml"
    path.write_text((PROJECT_ROOT / "policies" / "lifecycle.yaml").read_text("utf-8"))
    yaml_view, signed_view = (_views(p) for p in _yaml_and_signed(path, keys))
    assert yaml_view == signed_view
    text, mermaid = yaml_view
    first_use = (
        "product-owner data-engineer data-scientist ml-engineer evaluator release-engineer sre"
    )
    assert [line.split()[0] for line in _section(text, "functionaries")] == first_use.split()
    lines = mermaid.splitlines()
    assert '  s1_objectives -.->|"objectives.yaml"| s8_evaluate' in lines
    assert '  s1_objectives -.->|"objectives.yaml"| s9_test' in lines
    assert (
        '  s7_train -.->|"model<br/>model/model.pkl<br/>model/metadata.json"| s10_package' in lines
    )
    _assert_mermaid_structure(mermaid)


def _section(text: str, heading: str) -> list[str]:
    """The lines under the heading that starts with ``heading``, up to the blank line."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(heading))
    end = next((i for i in range(start + 1, len(lines)) if not lines[i]), len(lines))
    return lines[start + 1 : end]


def _stage(lines: list[str], header: str) -> list[str]:
    """The stage's lines, from its header up to the next stage's."""
    start = lines.index(header)
    end = next(
        (i for i in range(start + 1, len(lines)) if re.match(r" +\d+\. ", lines[i])), len(lines)
    )
    return lines[start:end]


def test_text_stage_by_stage(show_policy: tuple[Path, Path]) -> None:
    text, _ = _views(show_policy[1])
    stages = _section(text, "stages (in order):")
    train = _stage(stages, "   2. train [train] required, after ingest")
    assert train[1:5] == [
        "      signers   2 of 3 keys: ml-engineer, ml-reviewer, data-engineer",
        "      from      ingest: data/raw.csv",
        "      materials MATCH data/raw.csv WITH PRODUCTS FROM ingest",
        "                DISALLOW *",
    ]
    assert '      checks    requirement seeded: "seed" in stages.train.parameters' in train
    assert "   4. audit [custom] optional, after package" in stages
    package = _stage(stages, "   3. package [package] required, after train")
    assert package[2] == "      from      train: model, model/model.pkl"
    assert package[-2:] == [
        "      deploy    card = product dist/card.json (required)",
        "                model = product dist (required)",
    ]
    assert _section(text, "policy-wide:") == [
        "  every attestation must be bound to this policy (requirePolicyDigest)",
        "  requirement always: true",
    ]


def test_text_functionaries_in_order_of_first_use(show_policy: tuple[Path, Path]) -> None:
    text, _ = _views(show_policy[0])
    names = [line.split()[0] for line in _section(text, "functionaries")]
    assert names == ["data-engineer", "ml-engineer", "ml-reviewer", "release-engineer"]


def test_sigstore_signers_show_their_identity() -> None:
    alice = Functionary(
        "alice",
        identity=SigstoreIdentity("https://accounts.google.com", identity="alice@example.com"),
    )
    stage = StagePolicy("train", StageKind.TRAIN, ("alice",))
    policy = Policy(datetime(2099, 1, 1, tzinfo=UTC), {"alice": alice}, (stage,))
    assert "signers   1 of 1 identity: alice = alice@example.com (issuer " in policy_text(policy)


def test_mermaid_exactly(show_policy: tuple[Path, Path]) -> None:
    yaml_path, signed_path = show_policy
    assert _views(yaml_path)[1] == EXPECTED_MERMAID
    assert _views(signed_path)[1] == EXPECTED_MERMAID
    _assert_mermaid_structure(EXPECTED_MERMAID)


#: Every way a name could end a label, start an edge, a comment, a directive or a tag.
HOSTILE = [
    'a"] --> x["pwned',
    "b]:::optional\n  click s1 call",
    "%%{init: {'theme':'dark'}}%%",
    "<img src=x onerror=alert(1)>",
    "#quot;#35;|edge|",
    "end",
    "line\nbreak\r\tand\x1b[31mred",
    "`md` {curly} [square] (round)",
]


def _hostile_policy(keys: dict[str, KeyPair]) -> Policy:
    """Names the compiler would refuse, built directly: the renderer must not trust it did."""
    signer = Functionary(HOSTILE[0], public_key=keys["ml-engineer"].public)
    stages = [
        StagePolicy(
            name,
            StageKind.CUSTOM,
            (signer.name,),
            after=(HOSTILE[i - 1],) if i else (),
            material_rules=(
                ArtifactRule(RuleVerb.MATCH, HOSTILE[4], None, "products", None, HOSTILE[i - 1]),
                ArtifactRule(RuleVerb.MATCH, HOSTILE[1], "in", "products", "x", HOSTILE[0]),
            )
            if i
            else (),
            required=i % 2 == 0,
        )
        for i, name in enumerate(HOSTILE)
    ]
    return Policy(
        datetime(2099, 1, 1, tzinfo=UTC),
        {signer.name: signer},
        tuple(stages),
        deploy={n: DeployArtifact(n, HOSTILE[-1], n) for n in HOSTILE[:3]},
        name=HOSTILE[6],
    )


def test_hostile_names_are_escaped_in_mermaid(keys: dict[str, KeyPair]) -> None:
    mermaid = policy_mermaid(_hostile_policy(keys))
    _assert_mermaid_structure(mermaid)
    labels = "\n".join(re.findall(r'"([^"]*)"', mermaid))
    for raw in ("-->", "%%", "<img", "`", "{", "[", "|", "\x1b", "\t"):
        assert raw not in labels
    assert mermaid_label(HOSTILE[0]) in labels
    stage_nodes = [line for line in mermaid.splitlines() if re.match(r'  s\d+_\w*\["', line)]
    assert len(stage_nodes) == len(HOSTILE)


#: What the compiler lets through: artifact names (no whitespace) and CEL strings.
HOSTILE_YAML = """\
apiVersion: mlspec-attest/v1
kind: Policy
expires: "{expires}"
functionaries:
  ml-engineer:
    publicKey: |
{ml_engineer}
stages:
  - name: ingest
    kind: ingest
    functionaries: [ml-engineer]
    materials:
      - DISALLOW *
    products:
      - 'CREATE {artifact}'
      - DISALLOW *
  - name: train
    kind: train
    functionaries: [ml-engineer]
    after: [ingest]
    materials:
      - 'MATCH {artifact} WITH PRODUCTS FROM ingest'
      - DISALLOW *
    products:
      - DISALLOW *
requirements:
  - id: two-lines
    expr: "stages.ingest.metrics[\\"a\\"] < 1 ||\\n stages.train.metrics[\\"b|c\\"] > 2"
"""


def test_hostile_rules_and_expressions_from_yaml_are_escaped(
    tmp_path: Path, keys: dict[str, KeyPair]
) -> None:
    artifact = 'data/"a]#<b>|%%{x}'
    path = tmp_path / "hostile.yaml"
    path.write_text(
        HOSTILE_YAML.format(
            expires=POLICY_EXPIRES,
            ml_engineer=indent_pem(keys["ml-engineer"].pem, 6),
            artifact=artifact,
        )
    )
    yaml_view, signed_view = (_views(p) for p in _yaml_and_signed(path, keys))
    assert yaml_view == signed_view
    shown, mermaid = yaml_view
    _assert_mermaid_structure(mermaid)
    assert f'  s1_ingest -.->|"{mermaid_label(artifact)}"| s2_train' in mermaid.splitlines()
    assert "#60;b#62;#124;#37;#37;#123;x#125;" in mermaid
    assert "  s1_ingest --- c1_two_lines" in mermaid.splitlines()
    assert "  s2_train --- c1_two_lines" in mermaid.splitlines()
    assert f"from      ingest: {artifact}" in shown
    assert '||\\n stages.train.metrics["b|c"] > 2' in shown


def test_hostile_names_reach_the_terminal_without_control_characters(
    keys: dict[str, KeyPair],
) -> None:
    text = policy_text(_hostile_policy(keys))
    assert not any(c in text for c in "\x1b\t\r")
    assert "policy line\\nbreak\\r\\tand\\x1b[31mred  expires" in text
    assert "   7. line\\nbreak\\r\\tand\\x1b[31mred [custom] required, after end" in text


_ID = r"[scd]\d+_\w*"
#: A label: plain characters, entity codes, and the renderer's own line breaks.
_LABEL = r'(?:[^"#<>\[\]{}|`\n\r\t%]|#\d+;|<br/>)*'
_STATEMENTS = [
    re.compile(rf'  (?P<node>{_ID})\["{_LABEL}"\]'),
    re.compile(rf'  (?P<node>{_ID})\(\["{_LABEL}"\]\)'),
    re.compile(rf"  (?P<src>{_ID}) (?:-->|---|==>) (?P<dst>{_ID})"),
    re.compile(rf'  (?P<src>{_ID}) -\.->\|"{_LABEL}"\| (?P<dst>{_ID})'),
    re.compile(r"  classDef (?P<cls>optional|check|deploy) [\w:#,. -]+"),
    re.compile(rf"  class (?P<members>{_ID}(?:,{_ID})*) (?P<used>optional|check|deploy)"),
]


def _assert_mermaid_structure(mermaid: str) -> None:
    """Each line one statement of a known shape; every id used is declared, once."""
    lines = mermaid.split("\n")
    assert lines[0] == "flowchart TD"
    declared: list[str] = []
    used: set[str] = set()
    defined_classes: set[str] = set()
    for line in lines[1:]:
        match = next((m for p in _STATEMENTS if (m := p.fullmatch(line))), None)
        assert match is not None, f"not a statement the renderer emits: {line!r}"
        groups = {k: v for k, v in match.groupdict().items() if v}
        declared += [groups["node"]] if "node" in groups else []
        used |= {groups[k] for k in ("src", "dst") if k in groups}
        used |= set(groups["members"].split(",")) if "members" in groups else set()
        defined_classes |= {groups["cls"]} if "cls" in groups else set()
        assert "used" not in groups or groups["used"] in defined_classes
    assert len(declared) == len(set(declared))
    assert used <= set(declared)
