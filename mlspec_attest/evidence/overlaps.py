"""Verifying the leakage proof: the overlaps recomputed from the stored digest sets.

:func:`check_leakage` loads the sets by the addresses the signed record names,
recomputes the intersections and compares them with the attested counts and
with the policy's tolerance. The verifier never needs the split files themselves.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from msgspec import Struct

from mlspec_attest.errors import UsageError
from mlspec_attest.evidence.digest_sets import RowDigestSet, Unusable, is_count, load_digest_set
from mlspec_attest.evidence.records import (
    LEAKAGE_SCHEMA,
    pair_key,
    retired_problem,
    schema_problem,
)
from mlspec_attest.formats.rowform import CANONICALIZATION
from mlspec_attest.store.ledger import AttestationStore

DEFAULT_PAIRS: tuple[tuple[str, str], ...] = (
    ("train", "holdback"),
    ("train", "test"),
    ("train", "validation"),
)


class LeakageFinding(Struct, frozen=True):
    """One failed leakage check; ``expected``/``found`` are short human-readable values.

    ``kind`` is one of ``overlap-exceeds-tolerance``, ``attested-count-wrong``,
    ``digest-set-missing``, ``digest-set-corrupt``, ``split-missing``,
    ``record-malformed`` (the record does not match the leakage/v2 schema) and
    ``canonicalization-retired`` (a leakage/v1, mlspec-rows/v1 record). ``pair`` is the :func:`pair_key` of the pair
    concerned, or ``*`` for a finding about the whole record.
    """

    pair: str
    kind: str
    message: str
    expected: str
    found: str


def _unusable_finding(unusable: Unusable, pair: str) -> LeakageFinding:
    return LeakageFinding(pair, unusable.kind, unusable.message, unusable.expected, unusable.found)


def _record_problem(record: Any) -> tuple[str, str] | None:
    """(finding kind, message) when the record as a whole cannot be used."""
    if not isinstance(record, Mapping):
        return "record-malformed", "the leakage record is not an object"
    retired = retired_problem(record, LEAKAGE_SCHEMA)
    if retired:
        return "canonicalization-retired", retired
    problem = schema_problem("leakage-v2", record)
    if problem:
        return "record-malformed", f"the leakage record does not match leakage/v2: {problem}"
    return None


class _SplitLoader:
    """Loads each split's proof set once; remembers why one could not be used."""

    def __init__(self, splits: Mapping[str, Any], store: AttestationStore) -> None:
        self._splits = splits
        self._store = store
        self._cache: dict[str, RowDigestSet | Unusable] = {}

    def get(self, role: str) -> RowDigestSet | Unusable:
        """The set, or why it cannot be used."""
        if role not in self._cache:
            self._cache[role] = self._load(role)
        return self._cache[role]

    def _load(self, role: str) -> RowDigestSet | Unusable:
        entry = self._splits[role]
        if entry["duplicatesWithin"] != entry["rows"] - entry["unique"]:
            return Unusable(
                "attested-count-wrong",
                f"split {role!r}: duplicatesWithin {entry['duplicatesWithin']!r} is not rows - unique",
                str(entry["rows"] - entry["unique"]),
                repr(entry["duplicatesWithin"]),
            )
        return load_digest_set(
            self._store,
            entry["digestSet"],
            rows=entry["rows"],
            unique=entry["unique"],
            what=f"split {role!r}",
        )


def check_leakage(
    record: Mapping[str, Any],
    store: AttestationStore,
    *,
    pairs: Sequence[tuple[str, str]] = DEFAULT_PAIRS,
    tolerance: int = 0,
    roles: Collection[str] | None = None,
) -> list[LeakageFinding]:
    """Recompute the requested overlaps from the stored digest sets; return every finding.

    A requested pair is checked when the record holds both of its splits: both
    digest sets are loaded by their signed addresses (``digest-set-missing``,
    ``digest-set-corrupt``), the intersection recomputed and compared with
    ``record["overlaps"]`` (``attested-count-wrong``) and with ``tolerance``
    (``overlap-exceeds-tolerance``).

    A pair with a split absent from the record is skipped (the default pairs name
    both ``test`` and ``holdback``; a pipeline has one or the other), except:

    - ``roles`` (the dataset roles the split stage attested, e.g. its metadata
      ``roles``) names both splits of the pair: the stage produced the split but
      the proof leaves it out -> ``split-missing``;
    - no requested pair at all could be checked -> one ``split-missing`` finding
      with pair ``*`` (a record without, say, a holdback proves nothing).

    An empty list means the check passed.
    """
    if isinstance(tolerance, bool) or not isinstance(tolerance, int) or tolerance < 0:
        raise UsageError(f"leakage tolerance {tolerance!r} must be a non-negative integer")
    for a, b in pairs:
        if a == b:
            raise UsageError(f"leakage pair ({a!r}, {b!r}) names the same split twice")
    problem = _record_problem(record)
    if problem:
        kind, message = problem
        return [LeakageFinding("*", kind, message, f"{LEAKAGE_SCHEMA} ({CANONICALIZATION})", "")]
    splits: Mapping[str, Any] = record["splits"]
    loader = _SplitLoader(splits, store)
    findings: list[LeakageFinding] = []
    checked = 0
    for a, b in pairs:
        absent = [role for role in (a, b) if role not in splits]
        if absent:
            findings.extend(_absent_findings(a, b, absent, roles))
            continue
        checked += 1
        findings.extend(_pair_findings(a, b, loader, record["overlaps"], tolerance))
    if not checked and not findings:
        findings.append(_nothing_checked(pairs, splits))
    return findings


def _absent_findings(
    a: str, b: str, absent: Sequence[str], roles: Collection[str] | None
) -> list[LeakageFinding]:
    if roles is None or a not in roles or b not in roles:
        return []  # the pair does not apply to this pipeline
    key = pair_key(a, b)
    return [
        LeakageFinding(
            key,
            "split-missing",
            f"the stage attests split(s) {' and '.join(map(repr, absent))} but the "
            f"leakage record has no digest set for them, so {key} cannot be checked",
            f"digest sets for {a!r} and {b!r}",
            "no digest set for " + ", ".join(map(repr, absent)),
        )
    ]


def _pair_findings(
    a: str, b: str, loader: _SplitLoader, overlaps: Mapping[str, Any], tolerance: int
) -> list[LeakageFinding]:
    key = pair_key(a, b)
    first, second = loader.get(a), loader.get(b)
    if not isinstance(first, RowDigestSet) or not isinstance(second, RowDigestSet):
        return [_unusable_finding(u, key) for u in (first, second) if isinstance(u, Unusable)]
    findings: list[LeakageFinding] = []
    actual = first.intersection_count(second)
    attested = overlaps.get(key)
    if not is_count(attested) or attested != actual:
        findings.append(
            LeakageFinding(
                key,
                "attested-count-wrong",
                f"{key}: the stored digest sets share {actual} rows, "
                f"the attestation says {attested!r}",
                str(actual),
                "absent" if attested is None else repr(attested),
            )
        )
    if actual > tolerance:
        findings.append(
            LeakageFinding(
                key,
                "overlap-exceeds-tolerance",
                f"{key}: {actual} row(s) appear in both splits (tolerance {tolerance})",
                f"at most {tolerance}",
                str(actual),
            )
        )
    return findings


def _nothing_checked(pairs: Sequence[tuple[str, str]], splits: Mapping[str, Any]) -> LeakageFinding:
    wanted = ", ".join(pair_key(a, b) for a, b in pairs)
    return LeakageFinding(
        "*",
        "split-missing",
        f"the leakage record covers none of the pairs to check ({wanted})",
        f"one of: {wanted}",
        "splits " + (", ".join(sorted(splits)) or "none"),
    )
