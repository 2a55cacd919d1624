"""The leakage proof of the split stage: every split's row digest set and their overlaps.

Signing side (:func:`prove_splits`): every split (train, validation, holdback,
...) is read row by row, each row canonicalized (``mlspec-rows/v2``, see
:mod:`mlspec_attest.formats.rowform` and docs/leakage.md) and hashed over the columns all
splits share (minus excluded row ids and split-label columns). The sorted,
de-duplicated digests of a split form a :class:`~mlspec_attest.evidence.digest_sets.RowDigestSet`,
stored in the attestation store by content address; the split stage's metadata records the
counts, the address of each set and the overlap count of every pair of splits.
Each split also gets *content sets* (:mod:`mlspec_attest.evidence.content_sets`) that the
hold-back content check compares with the rows other stages read
(:mod:`mlspec_attest.evidence.rowsets`). The verifier recomputes the overlaps from the
stored sets (:mod:`mlspec_attest.evidence.overlaps`).

What it catches: the same row (after canonicalization) in two splits, or the
same file content in two directory splits. What it does not: near-duplicates
(rounded values, augmented images, paraphrases), leakage through features
derived from the target, and time leakage. See docs/leakage.md.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from itertools import combinations
from pathlib import Path
from typing import Any

from msgspec import Struct

from mlspec_attest.digest.datasets import Dataset, open_dataset
from mlspec_attest.digest.rows import Profile, check_excluded, excluded_names
from mlspec_attest.errors import BadInputError, UsageError
from mlspec_attest.evidence.content_sets import (
    HashedDataset,
    Sets,
    complete_sets,
    content_record,
    hash_projections,
    set_entry,
)
from mlspec_attest.evidence.digest_sets import RowDigestSet
from mlspec_attest.evidence.records import LEAKAGE_SCHEMA, check_own_record, pair_key
from mlspec_attest.formats.fsutil import artifact_name
from mlspec_attest.formats.rowform import CANONICALIZATION, canonical_name
from mlspec_attest.formats.stages import check_name
from mlspec_attest.store.ledger import AttestationStore

ROLE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_ROLE_REMEDY = "use letters, digits and . _ - (e.g. train, validation, holdback)"


def _check_role(role: str) -> str:
    return check_name(role, "split role", ROLE_RE, _ROLE_REMEDY)


class SplitProof(Struct, frozen=True):
    """The ``details.leakage`` record of a split stage and the blobs it names."""

    record: dict[str, Any]
    blobs: dict[str, bytes]
    sets: dict[str, RowDigestSet]

    def __repr__(self) -> str:  # the blobs and sets hold every row's digest
        return (
            f"SplitProof(record={self.record!r}, blobs={len(self.blobs)}, sets={sorted(self.sets)})"
        )

    def store(self, store: AttestationStore) -> None:
        for blob in self.blobs.values():
            store.put_blob(blob)


def _open_splits(splits: Mapping[str, Path], fmt: str) -> dict[str, Dataset]:
    if not splits:
        raise UsageError("the leakage proof needs at least one split")
    datasets = {role: open_dataset(splits[_check_role(role)], fmt) for role in sorted(splits)}
    kinds = {ds.format == "files" for ds in datasets.values()}
    if len(kinds) > 1:
        raise BadInputError(
            "the splits mix per-file datasets with tabular ones, which never share a row",
            remedy="write every split of the stage the same way (all tabular or all per-file)",
        )
    return datasets


def split_labels(profiles: Mapping[str, Profile], shared: frozenset[str]) -> frozenset[str]:
    """Shared columns holding one value within each split (a split name, a fold number).

    Only when every split has two rows or more: one row always holds one value.
    """
    if not profiles or any(p.rows < 2 for p in profiles.values()):
        return frozenset()
    return frozenset(shared.intersection(*(p.constant for p in profiles.values())))


def _dropped(
    profile: Profile, excluded: frozenset[str], shared: frozenset[str], labels: frozenset[str]
) -> dict[str, str]:
    """The columns of one split the proof leaves out, each with why."""
    reasons = dict.fromkeys(profile.columns - shared, "not-shared")
    reasons.update(dict.fromkeys(labels, "split-label"))
    reasons.update(dict.fromkeys(excluded, "excluded"))
    return dict(sorted(reasons.items()))


def prove_splits(
    splits: Mapping[str, Path],
    *,
    base_dir: Path | None = None,
    exclude_columns: Sequence[str] = (),
    fmt: str = "auto",
) -> SplitProof:
    """Hash every split; return the record for ``details["leakage"]`` and its blobs.

    ``splits`` maps a role (train, validation, holdback, test, ...) to its file
    or directory; ``base_dir`` names the artifacts (as the stage's products).
    Every split is hashed over the columns all splits share, minus the excluded
    columns and the split-label columns (:func:`split_labels`). Nothing is
    stored: the caller stores the blobs once the stage is signed.
    """
    datasets = _open_splits(splits, fmt)
    excluded = frozenset(canonical_name(c) for c in exclude_columns)
    first = {role: _first_pass(ds, exclude_columns, excluded) for role, ds in datasets.items()}
    profiles = {role: profile for role, (profile, _) in first.items()}
    shared = shared_columns(profiles.values())
    labels = split_labels(profiles, shared - excluded)
    _refuse_no_columns(datasets, profiles, shared - excluded - labels)
    dropped: dict[str, dict[str, str]] = {}
    hashed: dict[str, HashedDataset] = {}
    for role, ds in datasets.items():
        profile, sets = first[role]
        dropped[role] = _dropped(profile, excluded, shared, labels)
        sets = complete_sets(ds, profile, sets, [frozenset(dropped[role]), profile.constant])
        hashed[role] = HashedDataset(ds, profile, sets)
    record, blobs, proof_sets = _proof_record(splits, base_dir, hashed, dropped)
    record["excludeColumns"] = sorted(excluded)
    record["columns"] = sorted(shared - excluded - labels)
    check_own_record("leakage-v2", record)
    return SplitProof(dict(sorted(record.items())), blobs, proof_sets)


def _refuse_no_columns(
    datasets: Mapping[str, Dataset], profiles: Mapping[str, Profile], columns: frozenset[str]
) -> None:
    """Rows hashed over no column are all one row: two tabular splits with rows and no
    column in common to compare (once excluded and split-label columns are left out)
    cannot be proven disjoint, and would be reported as one overlap per row."""
    tabular = sorted(r for r, p in profiles.items() if p.rows and datasets[r].format != "files")
    if len(tabular) >= 2 and not columns:
        raise BadInputError(
            f"splits {', '.join(tabular)} share no column to compare their rows by",
            remedy="give every split the same feature columns (or exclude fewer columns)",
        )


def _first_pass(
    dataset: Dataset, exclude_columns: Sequence[str], excluded: frozenset[str]
) -> tuple[Profile, Sets]:
    """Every column and every column but the excluded, hashed in one pass."""
    excluded_names(dataset, exclude_columns)  # refuses exclusions on per-file splits
    profile, sets = hash_projections(dataset, [frozenset(), excluded])
    if profile.rows or profile.columns:
        check_excluded(dataset.path, profile.columns, excluded)
    return profile, sets


def shared_columns(profiles: Iterable[Profile]) -> frozenset[str]:
    """The columns every split with rows has (an empty split constrains nothing)."""
    with_rows = [p.columns for p in profiles if p.rows]
    return frozenset.intersection(*with_rows) if with_rows else frozenset()


def _proof_record(
    splits: Mapping[str, Path],
    base_dir: Path | None,
    hashed: Mapping[str, HashedDataset],
    dropped: Mapping[str, dict[str, str]],
) -> tuple[dict[str, Any], dict[str, bytes], dict[str, RowDigestSet]]:
    blobs: dict[str, bytes] = {}
    sets = {role: h.get(frozenset(dropped[role])) for role, h in hashed.items()}
    entries: dict[str, Any] = {}
    for role, h in hashed.items():
        entries[role] = {
            "artifact": artifact_name(splits[role], base_dir) if base_dir else str(splits[role]),
            "format": h.dataset.format,
            "files": h.profile.files,
            "ignoredFiles": len(h.dataset.ignored),
            "rows": h.profile.rows,
            "unique": sets[role].unique,
            "duplicatesWithin": h.profile.rows - sets[role].unique,
            "digestSet": set_entry(sets[role], blobs)["digestSet"],
            "droppedColumns": dropped[role],
            "contentSets": content_record(h, blobs),
        }
    overlaps = {
        pair_key(a, b): sets[a].intersection_count(sets[b])
        for a, b in combinations(sorted(sets), 2)
    }
    record = {
        "schemaVersion": LEAKAGE_SCHEMA,
        "canonicalization": CANONICALIZATION,
        "splits": entries,
        "overlaps": dict(sorted(overlaps.items())),
    }
    return record, blobs, sets


def compute_split_proof(
    splits: Mapping[str, Path],
    store: AttestationStore,
    *,
    base_dir: Path,
    exclude_columns: Sequence[str] = (),
    fmt: str = "auto",
) -> dict[str, Any]:
    """:func:`prove_splits`, with the digest sets stored at once; returns the record."""
    proof = prove_splits(splits, base_dir=base_dir, exclude_columns=exclude_columns, fmt=fmt)
    proof.store(store)
    return proof.record
