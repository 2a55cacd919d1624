"""Stage 13 - per-inference logging (CLI, `mlspec-attest sign ... -- python s13_log.py --work`; sre).

The server wrote one NCSA Combined Log line per request (``access.log``, extended with
the request id, model, version, the verification summary's digest, the input digest,
the output and the latency) and one CBOR record per request (``records.cbor``) whose
records are the leaves of an RFC 6962 Merkle tree; its key signed C2SP checkpoints of
that tree. This stage audits the log (``mlspec-attest log verify``: every record, line
and checkpoint; an edited, deleted, inserted or reordered record is named) and signs the
audit with the log directory as its material: the pipeline now attests exactly which
requests were served under it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from common import cli_sign, read_json, work_mode, wrapped_self, write_json
from serving import LOG_DIR, keys_dir, mlspec_argv

AUDIT = Path("deploy/log-audit.json")
SERVING = Path("deploy/serving.json")


def work() -> None:
    argv = mlspec_argv(
        "log", "verify", str(LOG_DIR), "--key", str(keys_dir() / "server.pub"), "--json"
    )
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit(f"log verify exited {proc.returncode}")
    write_json(AUDIT, json.loads(proc.stdout))


def main() -> None:
    if work_mode():
        work()
        return
    cli_sign(
        "log",
        "sre",
        materials=[str(SERVING), str(LOG_DIR)],
        products=[str(AUDIT)],
        roles={"rollout": str(SERVING), "log": str(LOG_DIR), "audit": str(AUDIT)},
        params={
            "format": "NCSA combined log + CBOR records (RFC 6962 Merkle tree)",
            "checkpoints": "C2SP tlog-checkpoint signed notes, server key",
            "inputs_logged": "raw (demo); digests by default",
            "retention_days": 365,
        },
        command=wrapped_self(__file__),
    )
    audit = read_json(AUDIT)
    print(
        f"log verify: {audit['result']}, {audit['records']} records, "
        f"{len(audit['checkpoints'])} signed checkpoint(s) -> {AUDIT}"
    )


if __name__ == "__main__":
    main()
