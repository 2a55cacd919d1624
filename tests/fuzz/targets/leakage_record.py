"""leakage.check_leakage: the signed leakage record of a split stage, against a real store.

Input: the bytes of a leakage record (JSON). The store holds the digest
sets of a real split proof (train and holdback CSV files sharing one row).
Checks: only bad-input errors; the check returns findings, never raises.
"""

from __future__ import annotations

from mlspec_attest.evidence.overlaps import DEFAULT_PAIRS, LeakageFinding, check_leakage
from mlspec_attest.formats.jsonio import loads_strict

from ._harness import main, parse_or_none, workdir
from ._leakage import split_proof

STORE, _ = split_proof(workdir() / "leakage")


def check(data: bytes) -> list[LeakageFinding]:
    record = loads_strict(data, what="leakage record")
    return check_leakage(
        record, STORE, pairs=DEFAULT_PAIRS, tolerance=0, roles={"train", "holdback", "test"}
    )


def TestOneInput(data: bytes) -> None:
    findings = parse_or_none(check, data)
    if findings is None:
        return
    assert all(isinstance(f, LeakageFinding) for f in findings)


if __name__ == "__main__":
    main(TestOneInput)
