"""``verify --vsa-out``: the signed verification summary a verdict is written as."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from msgspec import Struct

from mlspec_attest.attestation.signers import StageSigner
from mlspec_attest.cli.signer_choice import choose_signer
from mlspec_attest.errors import UsageError
from mlspec_attest.interop.intoto.support import is_intoto_layout
from mlspec_attest.store.ledger import open_store
from mlspec_attest.verify.report import VerificationReport
from mlspec_attest.verify.summary import MODEL_ROLE, SummaryOptions, WrittenSummary, write_summary


class SummaryRequest(Struct, frozen=True):
    """What ``--vsa-out`` and its companions ask for, checked before verifying."""

    out: Path
    signer: StageSigner
    options: SummaryOptions

    @classmethod
    def from_options(
        cls, policy_path: Path, artifacts: dict[str, Path | str], vsa: dict[str, Any]
    ) -> SummaryRequest:
        if is_intoto_layout(policy_path):
            raise UsageError(
                "--vsa-out needs a signed policy, not an in-toto layout",
                remedy="verify against the policy (`policy sign`) to get a verification summary",
            )
        resource = vsa["resource_uri"]
        if resource is None:
            model = artifacts.get(MODEL_ROLE)
            if model is None:
                raise UsageError(
                    "--vsa-out needs to know where the model is served from",
                    remedy=f"pass --resource-uri URI, or --artifact {MODEL_ROLE}=PATH",
                )
            resource = model if isinstance(model, str) else model.resolve().as_uri()
        signer = choose_signer(
            key=vsa["vsa_key"],
            key_param="vsa_key",
            passphrase_env=vsa["passphrase_env"],
            use_sigstore=vsa["use_sigstore"],
            identity_token=vsa["identity_token"],
            trust_config=vsa["trust_config"],
            staging=vsa["staging"],
        )
        policy_uri = vsa["policy_uri"] or policy_path.resolve().as_uri()
        options = SummaryOptions(resource, policy_uri, vsa["verifier_id"])
        return cls(vsa["vsa_out"], signer, options)

    def write(self, report: VerificationReport, store: Path | None) -> WrittenSummary:
        return write_summary(report, self.options, self.signer, open_store(store), self.out)
