"""Test support: key pairs, a fake clock, a small real pipeline, tamper helpers.

Nothing here fakes cryptography or hashing. The only fake is the clock: stages
get deterministic, increasing timestamps so ordering never depends on timing.
"""

from __future__ import annotations

import base64
import json
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from mlspec_attest import api
from mlspec_attest.attestation.stage import SignedStage, StageRecord, sign_stage
from mlspec_attest.formats.jsonio import canonical
from mlspec_attest.policy import load_policy_yaml, load_signed_policy, sign_policy
from mlspec_attest.policy.signed import SignedPolicy
from mlspec_attest.signing.keys import KeyType, LocalKeySigner, LocalPublicKey
from mlspec_attest.store.ledger import AttestationStore
from mlspec_attest.verify.pipeline import verify_pipeline
from mlspec_attest.verify.report import Check, VerificationReport

TESTS_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = TESTS_DIR.parent
#: Public data other tools produced that cannot be made offline, committed byte-identical
#: (sources, versions and licenses in tests/assets/README.md). Read-only: copy before writing.
ASSETS_DIR = TESTS_DIR / "assets"


def asset(path: str) -> Path:
    """``tests/assets/<path>``; a missing asset is an error, never a skip."""
    found = ASSETS_DIR / path
    if not found.exists():
        raise FileNotFoundError(
            f"test asset {path!r} is not in {ASSETS_DIR} (see tests/assets/README.md)"
        )
    return found


#: The verification instant used by every library-level verify: after every real
#: signing time (the Python API records the wall clock), before the policy expires (2099).
VERIFY_NOW = datetime(2098, 1, 1, tzinfo=UTC)
POLICY_EXPIRES = "2099-01-01T00:00:00Z"


# --------------------------------------------------------------------- keys
@dataclass(frozen=True)
class KeyPair:
    """A real key pair on disk: ``<name>.key`` (PKCS#8) and ``<name>.pub`` (SPKI)."""

    name: str
    signer: LocalKeySigner
    key_path: Path
    pub_path: Path

    @property
    def public(self) -> LocalPublicKey:
        return self.signer.public_key

    @property
    def keyid(self) -> str:
        return self.signer.public_key.keyid

    @property
    def pem(self) -> str:
        return self.signer.public_key.pem()


#: role -> key type. One of each supported type so every backend signs for real.
ROLE_KEY_TYPES: dict[str, KeyType] = {
    "owner": KeyType.ED25519,
    "data-engineer": KeyType.ECDSA_P256,
    "ml-engineer": KeyType.ED25519,
    "ml-reviewer": KeyType.ECDSA_P384,
    "release-engineer": KeyType.RSA_3072,
    "intruder": KeyType.ED25519,
}


# -------------------------------------------------------------------- clock
class FakeClock:
    """Deterministic RFC 3339 timestamps, one second apart, strictly increasing."""

    def __init__(self, start: datetime = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)) -> None:
        self.current = start

    def __call__(self) -> str:
        value = self.current.strftime("%Y-%m-%dT%H:%M:%SZ")
        self.current += timedelta(seconds=1)
        return value


# ------------------------------------------------------------------ helpers
def indent_pem(pem: str, spaces: int) -> str:
    pad = " " * spaces
    return "\n".join(pad + line for line in pem.strip().splitlines())


def read_bundle(path: Path) -> dict[str, Any]:
    return json.loads(path.read_bytes())


def rewrite_payload(path: Path, mutate: Callable[[dict[str, Any]], None]) -> None:
    """Decode a stored bundle's statement, let ``mutate`` edit it, re-encode, keep the old signature."""
    doc = read_bundle(path)
    envelope = doc["dsseEnvelope"]
    statement = json.loads(base64.b64decode(envelope["payload"]))
    mutate(statement)
    envelope["payload"] = base64.b64encode(canonical(statement)).decode()
    path.write_bytes(canonical(doc))


def flip_byte(path: Path, offset: int = 0) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def checks_of(report: VerificationReport) -> set[Check]:
    return {f.check for f in report.failures}


POLICY_YAML = """\
# A four-stage pipeline: ingest -> split -> train -> package.
apiVersion: mlspec-attest/v1
kind: Policy
metadata:
  name: test-pipeline
  owner: compliance@example.org
expires: "{expires}"
functionaries:
  data-engineer:
    key: keys/data-engineer.pub
  ml-engineer:
    publicKey: |
{ml_engineer}
  ml-reviewer:
    publicKey: |
{ml_reviewer}
  release-engineer:
    key: keys/release-engineer.pub
stages:
  - name: ingest
    kind: ingest
    functionaries: [data-engineer]
    materials: [DISALLOW *]
    products:
      - CREATE data/raw.csv
      - DISALLOW *
  - name: split
    kind: split
    functionaries: [data-engineer]
    after: [ingest]
    materials:
      - MATCH data/raw.csv WITH PRODUCTS FROM ingest
      - DISALLOW *
    products:
      - CREATE data/split/*
      - DISALLOW *
  - name: train
    kind: train
    functionaries: [ml-engineer, ml-reviewer]
    threshold: 2
    after: [split]
    materials:
      - MATCH data/split/train.csv WITH PRODUCTS FROM split
      - DISALLOW *
    products:
      - CREATE model
      - DISALLOW *
  - name: package
    kind: package
    functionaries: [release-engineer]
    after: [train]
    materials:
      - MATCH model WITH PRODUCTS FROM train
      - DISALLOW *
    products:
      - CREATE dist/model
      - DISALLOW *
deploy:
  artifacts:
    model:
      stage: package
      product: dist/model
    train-data:
      stage: split
      product: data/split/train.csv
"""


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _ingest(ws: Path) -> None:
    rows = ["age,bmi,target"] + [f"{20 + i},{18.5 + i / 10:.1f},{100 + 3 * i}" for i in range(20)]
    _write(ws / "data/raw.csv", ("\n".join(rows) + "\n").encode())


def _split(ws: Path) -> None:
    lines = (ws / "data/raw.csv").read_text().splitlines()
    header, body = lines[0], lines[1:]
    _write(ws / "data/split/train.csv", ("\n".join([header, *body[:15]]) + "\n").encode())
    _write(ws / "data/split/holdback.csv", ("\n".join([header, *body[15:]]) + "\n").encode())


def _train(ws: Path) -> None:
    rows = (ws / "data/split/train.csv").read_text().splitlines()[1:]
    _write(ws / "model/weights.bin", bytes(range(256)) * 4 + str(len(rows)).encode())
    _write(ws / "model/config.json", b'{"max_depth": 4, "n_estimators": 10}\n')


def _package(ws: Path) -> None:
    for name in ("weights.bin", "config.json"):
        _write(ws / "dist/model" / name, (ws / "model" / name).read_bytes())
    _write(ws / "dist/model/MANIFEST", b"weights.bin\nconfig.json\n")


@dataclass(frozen=True)
class StageSpec:
    build: Callable[[Path], None]
    materials: tuple[str, ...]
    products: tuple[str, ...]
    signers: tuple[str, ...]
    roles: dict[str, str] = field(default_factory=dict)


STAGES: dict[str, StageSpec] = {
    "ingest": StageSpec(_ingest, (), ("data/raw.csv",), ("data-engineer",)),
    "split": StageSpec(
        _split,
        ("data/raw.csv",),
        ("data/split/train.csv", "data/split/holdback.csv"),
        ("data-engineer",),
        {"train": "data/split/train.csv", "holdback": "data/split/holdback.csv"},
    ),
    "train": StageSpec(
        _train,
        ("data/split/train.csv",),
        ("model",),
        ("ml-engineer", "ml-reviewer"),
        {"train": "data/split/train.csv", "model": "model"},
    ),
    "package": StageSpec(_package, ("model",), ("dist/model",), ("release-engineer",)),
}


class Pipeline:
    """A small real pipeline in a temporary directory.

    ``root/ws`` holds the artifacts (the base directory of every name),
    ``root/store`` the attestations, ``root/policy.yaml`` and
    ``root/policy.signed.json`` the policy.
    """

    def __init__(
        self,
        root: Path,
        keys: dict[str, KeyPair],
        *,
        run_id: str = "run-a",
        expires: str = POLICY_EXPIRES,
        bind_policy: bool = True,
    ) -> None:
        self.root = root
        self.keys = keys
        self.ws = root / "ws"
        self.ws.mkdir(parents=True, exist_ok=True)
        self.store_path = root / "store"
        self.store = AttestationStore(self.store_path)
        self.run_id = run_id
        self.clock = FakeClock()
        self.bind_policy = bind_policy
        self.policy_yaml = root / "policy.yaml"
        self.signed_policy_path = root / "policy.signed.json"
        key_dir = root / "keys"
        key_dir.mkdir(exist_ok=True)
        for role in ("data-engineer", "release-engineer"):
            shutil.copy(keys[role].pub_path, key_dir / f"{role}.pub")
        self.write_policy(expires=expires)
        self.signed: SignedPolicy = self.sign_policy()

    # policy ----------------------------------------------------------------
    def policy_text(self, *, expires: str) -> str:
        return POLICY_YAML.format(
            expires=expires,
            ml_engineer=indent_pem(self.keys["ml-engineer"].pem, 6),
            ml_reviewer=indent_pem(self.keys["ml-reviewer"].pem, 6),
        )

    def write_policy(self, *, expires: str = POLICY_EXPIRES) -> None:
        self.policy_yaml.write_text(self.policy_text(expires=expires))

    def sign_policy(self, *signers: str) -> SignedPolicy:
        policy = load_policy_yaml(self.policy_yaml, now=VERIFY_NOW)
        envelope = sign_policy(policy, [self.keys[s].signer for s in signers or ("owner",)])
        self.signed_policy_path.write_bytes(canonical(envelope.to_json()))
        self.signed = load_signed_policy(self.signed_policy_path)
        return self.signed

    # stages ----------------------------------------------------------------
    def sign(
        self,
        stage: str,
        *,
        signer: str | None = None,
        run_id: str | None = None,
        build: bool = True,
        extra_materials: Sequence[str] = (),
        metrics: dict[str, float] | None = None,
        via_api: bool = False,
    ) -> SignedStage:
        spec = STAGES[stage]
        if build:
            spec.build(self.ws)
        role = signer or spec.signers[0]
        materials = [self.ws / m for m in (*spec.materials, *extra_materials)]
        products = [self.ws / p for p in spec.products]
        digest = self.signed.digest if self.bind_policy else None
        if via_api:
            # The Python API records the real start/finish time, so only the
            # last stage of a run uses it (nothing is ordered after it).
            with api.stage(
                stage,
                key=self.keys[role].signer,
                store=self.store_path,
                run_id=run_id or self.run_id,
                base_dir=self.ws,
                policy_digest=digest,
            ) as s:
                for m in materials:
                    s.material(m)
                for p in products:
                    s.product(p)
                for name, value in (metrics or {}).items():
                    s.metric(name, value)
            assert s.result is not None
            return s.result
        record = StageRecord(
            stage=stage,
            materials=materials,
            products=products,
            roles={r: self.ws / p for r, p in spec.roles.items()},
            parameters={"seed": 7},
            metrics=dict(metrics or {}),
            policy_digest=digest,
            started_on=self.clock(),
        )
        return sign_stage(
            record,
            self.keys[role].signer,
            self.store,
            run_id=run_id or self.run_id,
            base_dir=self.ws,
            clock=self.clock,
            environment={"test": True},
        )

    def sign_all_signers(self, stage: str, **kwargs: Any) -> list[SignedStage]:
        out = [self.sign(stage, signer=STAGES[stage].signers[0], **kwargs)]
        for role in STAGES[stage].signers[1:]:
            out.append(self.sign(stage, signer=role, build=False, **kwargs))
        return out

    def run(self, *, skip: Sequence[str] = ()) -> Pipeline:
        """Run and sign every stage (package through the Python API)."""
        for stage in STAGES:
            if stage in skip:
                continue
            if stage == "package":
                self.sign(stage, via_api=True)
            else:
                self.sign_all_signers(stage)
        return self

    def bundle_path(self, stage: str, role: str | None = None, run_id: str | None = None) -> Path:
        keyid = self.keys[role or STAGES[stage].signers[0]].keyid
        return self.store.run_dir(run_id or self.run_id) / f"{stage}.{keyid[:8]}.sigstore.json"

    # verification ----------------------------------------------------------
    def deploy_artifacts(self) -> dict[str, Path]:
        return {"model": self.ws / "dist/model", "train-data": self.ws / "data/split/train.csv"}

    def verify(
        self,
        *,
        now: datetime | None = VERIFY_NOW,
        owner: str = "owner",
        artifacts: dict[str, Path] | None = None,
        run_id: str | None = None,
    ) -> VerificationReport:
        signed = load_signed_policy(self.signed_policy_path)
        return verify_pipeline(
            signed,
            [self.keys[owner].public],
            self.store,
            run_id=run_id or self.run_id,
            artifacts=self.deploy_artifacts() if artifacts is None else artifacts,
            now=now,
        )

    def cli_verify_args(self, *, owner: str = "owner", as_json: bool = True) -> list[str]:
        args = [
            "verify",
            "--policy",
            str(self.signed_policy_path),
            "--policy-key",
            str(self.keys[owner].pub_path),
            "--store",
            str(self.store_path),
            "--run-id",
            self.run_id,
        ]
        for role, path in self.deploy_artifacts().items():
            args += ["--artifact", f"{role}={path}"]
        return [*args, "--json"] if as_json else args
