"""What the shipped templates promise (docs/stages.md, docs/policy.md), attacked.

The minimal template is run end to end (real keys, real signatures, the real
verifier); the lifecycle template's deploy binding is checked on its own rules
with real directories, real manifests in a real store, through the same code
the verifier runs (``Expander`` + ``evaluate_rules``).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from mlspec_attest.attestation.stage import StageRecord, sign_stage
from mlspec_attest.digest.artifact import digest_path
from mlspec_attest.formats.jsonio import canonical
from mlspec_attest.policy import load_policy_yaml, load_signed_policy, sign_policy
from mlspec_attest.policy.model import Policy
from mlspec_attest.policy.rules import LinkArtifacts, evaluate_rules
from mlspec_attest.policy.templates import template_text
from mlspec_attest.store.ledger import AttestationStore
from mlspec_attest.verify.dirfiles import Expander, rule_paths, rule_queue
from mlspec_attest.verify.pipeline import verify_pipeline
from mlspec_attest.verify.report import Check, VerificationReport

from .support import VERIFY_NOW, FakeClock, KeyPair

RUN = "template-run"


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _policy(tmp: Path, name: str, keys: dict[str, KeyPair]) -> Path:
    """The template with its example key paths pointed at the test keys."""
    key_dir = tmp / "keys"
    key_dir.mkdir(exist_ok=True)
    text = template_text(name).replace("../keys-example/", "keys/")
    text = text.replace('expires: "2030-01-01T00:00:00Z"', 'expires: "2099-01-01T00:00:00Z"')
    for role in re.findall(r"keys/([\w-]+)\.pub", text):
        # Roles without a test key of their own share one: only package's
        # and train's signers matter to these tests.
        shutil.copy((keys.get(role) or keys["data-engineer"]).pub_path, key_dir / f"{role}.pub")
    path = tmp / f"{name}.yaml"
    path.write_text(text)
    return path


class MinimalRun:
    """train -> package under the minimal template, in a temporary directory."""

    def __init__(self, tmp: Path, keys: dict[str, KeyPair]) -> None:
        self.tmp, self.keys = tmp, keys
        self.ws = tmp / "ws"
        self.store = AttestationStore(tmp / "store")
        self.clock = FakeClock()
        policy = load_policy_yaml(_policy(tmp, "minimal", keys), now=VERIFY_NOW)
        envelope = sign_policy(policy, [keys["owner"].signer])
        (tmp / "policy.signed.json").write_bytes(canonical(envelope.to_json()))
        self.signed = load_signed_policy(tmp / "policy.signed.json")
        _write(self.ws / "data/train.csv", b"x,y\n1,2\n2,4\n")
        _write(self.ws / "data/notes.txt", b"where the data came from\n")
        _write(self.ws / "model/weights.json", b'{"slope": 2.0}\n')
        _write(self.ws / "model/README", b"y = slope * x\n")

    def sign(self, stage: str, signer: str, materials: list[str], products: list[str]) -> None:
        record = StageRecord(
            stage=stage,
            materials=[self.ws / m for m in materials],
            products=[self.ws / p for p in products],
            policy_digest=self.signed.digest,
            started_on=self.clock(),
        )
        sign_stage(
            record,
            self.keys[signer].signer,
            self.store,
            run_id=RUN,
            base_dir=self.ws,
            clock=self.clock,
            environment={"test": True},
        )

    def train(self, materials: tuple[str, ...] = ("data/train.csv", "data/notes.txt")) -> None:
        self.sign("train", "ml-engineer", list(materials), ["model"])

    def package(self, materials: tuple[str, ...] = ("model",)) -> None:
        if not (self.ws / "dist/model").exists():
            shutil.copytree(self.ws / "model", self.ws / "dist/model")
        self.sign("package", "release-engineer", list(materials), ["dist/model"])

    def verify(self) -> VerificationReport:
        return verify_pipeline(
            self.signed,
            [self.keys["owner"].public],
            self.store,
            run_id=RUN,
            artifacts={"model": self.ws / "dist/model"},
            now=VERIFY_NOW,
        )


def _failures(report: VerificationReport, check: Check) -> list[str]:
    return [f"{f.stage}: {f.message}" for f in report.failures if f.check is check]


@pytest.fixture
def minimal(tmp_path: Path, keys: dict[str, KeyPair]) -> MinimalRun:
    return MinimalRun(tmp_path, keys)


def test_minimal_honest_run_passes(minimal: MinimalRun) -> None:
    minimal.train()
    minimal.package()
    report = minimal.verify()
    assert report.passed, [f.to_json() for f in report.failures]


def test_minimal_package_with_an_added_backdoor_file_is_denied(minimal: MinimalRun) -> None:
    """Claim: what is deployed is exactly what was trained (same files, same bytes)."""
    minimal.train()
    shutil.copytree(minimal.ws / "model", minimal.ws / "dist/model")
    _write(minimal.ws / "dist/model/backdoor.py", b"import os\n")
    minimal.package()  # signed by the legitimate release engineer
    report = minimal.verify()
    [failure] = _failures(report, Check.ARTIFACT_RULE)
    assert failure.startswith("package: products rule 'DISALLOW *'")
    assert "dist/model" in failure


def test_minimal_package_with_a_changed_model_file_is_denied(minimal: MinimalRun) -> None:
    minimal.train()
    shutil.copytree(minimal.ws / "model", minimal.ws / "dist/model")
    _write(minimal.ws / "dist/model/weights.json", b'{"slope": 3.0}\n')
    minimal.package()
    report = minimal.verify()
    [failure] = _failures(report, Check.ARTIFACT_RULE)
    assert "differs from what 'train' recorded" in failure


def test_minimal_train_must_read_its_training_data(minimal: MinimalRun) -> None:
    """Claim: every input a stage must read is required, not merely matched if present."""
    minimal.train(materials=("data/notes.txt",))
    minimal.package()
    report = minimal.verify()
    assert _failures(report, Check.ARTIFACT_RULE) == [
        "train: materials rule 'REQUIRE data/train.csv' failed: "
        "required artifact 'data/train.csv' is absent"
    ]


def test_minimal_package_must_read_the_trained_model(minimal: MinimalRun) -> None:
    minimal.train()
    shutil.copytree(minimal.ws / "model", minimal.ws / "dist/model")
    minimal.package(materials=())
    report = minimal.verify()
    assert (
        "package: materials rule 'REQUIRE model' failed"
        in _failures(report, Check.ARTIFACT_RULE)[0]
    )


# ---------------------------------------------------------------- lifecycle
LIFECYCLE_DIST = {
    "model.pkl": None,  # copied from the trained model
    "metadata.json": None,
    "model.json": b'{"trees": []}\n',
    "model-card.json": b'{"name": "m"}\n',
    "requirements.txt": b"scikit-learn\n",
    "runtime.json": b"{}\n",
}


@pytest.fixture
def lifecycle(tmp_path: Path, keys: dict[str, KeyPair]) -> Policy:
    return load_policy_yaml(_policy(tmp_path, "lifecycle", keys), now=VERIFY_NOW)


def _lifecycle_package(tmp: Path, policy: Policy, edit: dict[str, bytes | None]) -> list[str]:
    """Build model/ and dist/model/, record them in a store, run package's product rules."""
    ws, store = tmp / "ws", AttestationStore(tmp / "store")
    _write(ws / "model/model.pkl", b"\x80\x05trained-model")
    _write(ws / "model/metadata.json", b'{"features": ["age"]}\n')
    for name, data in {**LIFECYCLE_DIST, **edit}.items():
        if data is None and name in edit:
            continue
        source = ws / "model" / name if data is None else None
        _write(ws / "dist/model" / name, source.read_bytes() if source else data or b"")

    def recorded(name: str) -> dict[str, dict[str, str]]:
        digest = digest_path(ws / name)
        if digest.manifest is not None:
            store.put_blob(digest.manifest.canonical_bytes())
        return {name: digest.digest_set()}

    train = LinkArtifacts(materials={}, products=recorded("model"))
    package = LinkArtifacts(materials=recorded("model"), products=recorded("dist/model"))
    expander = Expander(store, rule_paths(policy))
    links = {"train": expander.link(train), "package": expander.link(package)}
    assert expander.problems == []
    violations = []
    for name, side, recorded in (
        ("train", "products", train.products),  # train's own rules do not look inside model
        ("package", "products", package.products),
    ):
        stage = policy.stage(name)
        assert stage is not None
        rules = stage.product_rules if side == "products" else stage.material_rules
        expanded = getattr(links[name], side)
        queue = rule_queue(rules, recorded, expanded)
        violations += [
            f"{v.rule}: {v.message}" for v in evaluate_rules(rules, queue, links[name], links)
        ]
    return violations


def test_lifecycle_honest_package_passes_its_rules(tmp_path: Path, lifecycle: Policy) -> None:
    assert _lifecycle_package(tmp_path, lifecycle, {}) == []


@pytest.mark.parametrize(
    ("edit", "denied_by"),
    [
        ({"backdoor.py": b"import os\n"}, "DISALLOW dist/model/*"),
        ({"model.pkl": b"\x80\x05backdoored-model"}, "DISALLOW dist/model/*"),
        ({"metadata.json": b'{"features": ["zip"]}\n'}, "DISALLOW dist/model/*"),
        ({"sub/loader.py": b"evil\n"}, "DISALLOW dist/model/*"),
    ],
    ids=["added-file", "model-bytes-changed", "metadata-changed", "added-nested-file"],
)
def test_lifecycle_package_must_ship_the_trained_bytes(
    tmp_path: Path, lifecycle: Policy, edit: dict[str, bytes | None], denied_by: str
) -> None:
    """Claim (docs/stages.md): what is deployed is what was tested."""
    violations = _lifecycle_package(tmp_path, lifecycle, edit)
    # DISALLOW does not consume (in-toto semantics): the final DISALLOW * repeats it.
    assert [v.split(":", 1)[0] for v in violations] == [denied_by, "DISALLOW *"]
    assert all(f"dist/model/{next(iter(edit))}" in v for v in violations)


def test_lifecycle_package_without_the_model_file_is_denied(
    tmp_path: Path, lifecycle: Policy
) -> None:
    violations = _lifecycle_package(tmp_path, lifecycle, {"model.pkl": None})
    assert violations == [
        "REQUIRE dist/model/model.pkl: required artifact 'dist/model/model.pkl' is absent"
    ]


@pytest.mark.parametrize(
    ("stage", "required"),
    [
        ("evaluate", "objectives.yaml"),
        ("test", "objectives.yaml"),
        ("evaluate", "model"),
        ("test", "data/split/holdback.csv"),
        ("evaluate", "data/split/validation.csv"),
        ("train", "data/split/train.csv"),
        ("package", "model"),
    ],
)
def test_lifecycle_requires_every_input_a_stage_must_read(
    lifecycle: Policy, stage: str, required: str
) -> None:
    """Claim: evaluate and test must read objectives.yaml, train its data ... (REQUIRE)."""
    policy_stage = lifecycle.stage(stage)
    assert policy_stage is not None
    present = {required: {"sha256": "0" * 64}}
    link = LinkArtifacts(materials={}, products={})
    violations = evaluate_rules(policy_stage.material_rules, {}, link, {})
    assert f"required artifact {required!r} is absent" in [v.message for v in violations]
    # and with it present, the REQUIRE rule itself is satisfied
    with_it = evaluate_rules(policy_stage.material_rules, present, link, {})
    assert f"required artifact {required!r} is absent" not in [v.message for v in with_it]
