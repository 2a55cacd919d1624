"""The demo's attacks on serving: after the deploy gate, each on its own copy of the work dir.

Each function gets the copy, the environment of its commands, the keys directory and a
``run(args) -> CompletedProcess`` of ``mlspec-attest``; it returns (denied as expected,
lines to print). Nothing here is trusted by the server: it trusts the verifier's public
key, and nothing else.
"""

from __future__ import annotations

import base64
import json
import pickle
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

Run = Callable[[Sequence[str]], subprocess.CompletedProcess[str]]
Outcome = tuple[bool, list[str]]

VSA = "gate/model.vsa.json"
RESOURCE_URI = "https://models.example.org/diabetes-progression"  # as stages/serving.py
SERVER_STARTED = "SERVER STARTED"


class _Backdoor:
    """Unpickling this runs attacker code (a harmless print) inside the server."""

    def __reduce__(self) -> tuple[Callable[..., Any], tuple[str]]:
        return (print, ("BACKDOOR: attacker code is running inside the model server",))


def backdoor_model(workdir: Path) -> None:
    (workdir / "dist/model/model.pkl").write_bytes(pickle.dumps(_Backdoor()))


def _gate(run: Run, workdir: Path, keys: Path, vsa: str = VSA) -> subprocess.CompletedProcess[str]:
    """The init-container gate, then a stand-in server that only says it started."""
    return run(
        [
            "gate", "--vsa", vsa, "--verifier-key", str(keys / "verifier.pub"),
            "--model", "dist/model", "--max-age", "1h",
            "--resource-uri", RESOURCE_URI,
            "--", "python3", "-c", f"print('{SERVER_STARTED}')",
        ]
    )  # fmt: skip


def _denied_by_gate(
    proc: subprocess.CompletedProcess[str], check: str, out: list[str], who: str = "the gate"
) -> Outcome:
    text = proc.stdout + proc.stderr
    reasons = [line.strip() for line in proc.stderr.splitlines() if line.startswith("  - ")]
    if (
        proc.returncode != 1
        or f"- {check}:" not in text
        or SERVER_STARTED in text
        or "BACKDOOR" in text
    ):
        out.append(f"    -> NOT DENIED as expected (exit {proc.returncode}): {text.strip()[:600]}")
        return False, out
    out.append(f"    -> DENIED (exit 1) by {who}; the server never started:")
    out += [f"         {r}" for r in reasons[:3]]
    return True, out


def _payload(bundle: dict[str, Any]) -> dict[str, Any]:
    return json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))


def _digest_of_model(run: Run) -> dict[str, str]:
    proc = run(["digest", "dist/model", "--json"])
    doc = json.loads(proc.stdout)
    return {"sha256": doc["digest"]["sha256"], "manifest-sha256": doc["digest"]["manifest-sha256"]}


def swapped_after_gate(workdir: Path, run: Run, keys: Path) -> Outcome:
    out = ["  ATTACK m-swapped-after-gate: model swapped after the verification summary was signed"]
    backdoor_model(workdir)
    out.append(
        "      the deploy gate passed and signed gate/model.vsa.json; then dist/model/model.pkl "
        "is replaced\n      by a backdoored pickle and the server is started through the gate"
    )
    return _denied_by_gate(_gate(run, workdir, keys), "model-digest", out)


def gate_report_rewritten(workdir: Path, run: Run, keys: Path) -> Outcome:
    out = [
        "  ATTACK n-gate-report-rewritten: the gate's verdict rewritten to cover a swapped model"
    ]
    backdoor_model(workdir)
    path = workdir / VSA
    bundle = json.loads(path.read_text())
    statement = _payload(bundle)
    statement["subject"][0]["digest"] = _digest_of_model(run)
    bundle["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    path.write_text(json.dumps(bundle))
    report = workdir / "gate/deploy-gate.json"
    doc = json.loads(report.read_text())
    for artifact in doc["artifacts"]:
        if artifact["role"] == "model":
            artifact["digest"] = statement["subject"][0]["digest"]
    report.write_text(json.dumps(doc))
    out.append(
        "      dist/model/model.pkl backdoored; the model digest in gate/deploy-gate.json AND in "
        "the signed\n      summary's subject rewritten to the backdoored package's (the "
        "signature kept)"
    )
    return _denied_by_gate(_gate(run, workdir, keys), "signature", out)


def untrusted_verifier(workdir: Path, run: Run, keys: Path) -> Outcome:
    from mlspec_attest.formats.bundle import sign_to_bundle
    from mlspec_attest.formats.dsse import INTOTO_PAYLOAD_TYPE
    from mlspec_attest.formats.jsonio import canonical
    from mlspec_attest.signing.keys import load_private_key

    out = ["  ATTACK o-untrusted-verifier: a PASSED summary for a swapped model, signed by mallory"]
    backdoor_model(workdir)
    mallory = workdir / "attacker" / "mallory"
    run(["keygen", "--out", str(mallory)])
    statement = _payload(json.loads((workdir / VSA).read_text()))
    statement["subject"][0]["digest"] = _digest_of_model(run)
    signer = load_private_key(mallory.with_suffix(".key"))
    bundle, _ = sign_to_bundle(canonical(statement), INTOTO_PAYLOAD_TYPE, signer)
    (workdir / VSA).write_bytes(canonical(bundle.to_json()))
    out.append(
        "      `keygen --out attacker/mallory`; dist/model/model.pkl backdoored; a PASSED "
        "summary covering it,\n      otherwise identical to the real one, signed with "
        "mallory's key"
    )
    return _denied_by_gate(_gate(run, workdir, keys), "signature", out)


def log_record_edited(workdir: Path, run: Run, keys: Path) -> Outcome:
    out = ["  ATTACK p-log-record-edited: one inference record edited after it was logged"]
    records = workdir / "deploy/inference-log/records.cbor"
    data = records.read_bytes()
    at = data.index(b"req-0042")
    records.write_bytes(data[:at] + b"req-0099" + data[at + 8 :])
    out.append(
        "      deploy/inference-log/records.cbor: request id req-0042 rewritten as req-0099 in "
        "place (same length)"
    )
    proc = run(["log", "verify", "deploy/inference-log", "--key", str(keys / "server.pub")])
    text = proc.stdout + proc.stderr
    if proc.returncode != 1 or "edited" not in text:
        out.append(f"    -> NOT DENIED as expected (exit {proc.returncode}): {text.strip()[:600]}")
        return False, out
    named = [line.strip() for line in text.splitlines() if "edited" in line]
    out.append("    -> DENIED (exit 1) by `mlspec-attest log verify`:")
    out += [f"         {line}" for line in named[:2]]
    return True, out


def rollback_to_failed(workdir: Path, run: Run, keys: Path) -> Outcome:
    out = ["  ATTACK q-rollback-to-failed: rollback to a model whose summary did not pass"]
    data = bytearray((workdir / "dist/model/model.pkl").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (workdir / "dist/model/model.pkl").write_bytes(bytes(data))
    policy = workdir / "policy/lifecycle.signed.json"
    run(
        [
            "verify", "--policy", str(policy), "--policy-key", str(keys / "owner.pub"),
            "--artifact", "model=dist/model", "--vsa-out", "gate/failed.vsa.json",
            "--vsa-key", str(keys / "verifier.key"),
        ]
    )  # fmt: skip
    out.append(
        "      a damaged package verified anyway: `verify --vsa-out gate/failed.vsa.json` "
        "signs a FAILED summary\n      (an auditor needs it); the operator tries "
        "`rollback --to gate/failed.vsa.json`"
    )
    proc = run(
        [
            "rollback", "--to", "gate/failed.vsa.json", "--verifier-key",
            str(keys / "verifier.pub"), "--model", "dist/model",
        ]
    )  # fmt: skip
    return _denied_by_gate(proc, "verification-result", out, who="`mlspec-attest rollback`")


SERVING_ATTACKS: tuple[Callable[[Path, Run, Path], Outcome], ...] = (
    swapped_after_gate,
    gate_report_rewritten,
    untrusted_verifier,
    log_record_edited,
    rollback_to_failed,
)
