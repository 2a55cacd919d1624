"""PartlyCompared: the fields a value class leaves out are left out of ==, hash and repr."""

from __future__ import annotations

from pathlib import Path

from mlspec_attest.digest.artifact import ArtifactDigest
from mlspec_attest.digest.datasets import Dataset


def test_a_cache_is_not_part_of_the_value() -> None:
    cached = Dataset(Path("d"), "csv", ((Path("d/a.csv"), "csv"),), (), {"d/a.csv": b"\x01" * 32})
    plain = Dataset(Path("d"), "csv", ((Path("d/a.csv"), "csv"),))
    assert cached == plain and hash(cached) == hash(plain)
    assert "known" not in repr(cached) and "a.csv" in repr(cached)
    assert cached != Dataset(Path("d"), "tsv", ((Path("d/a.csv"), "csv"),))


def test_the_other_fields_and_the_type_still_count() -> None:
    one = ArtifactDigest("file", "ab" * 32, 3)
    assert one == ArtifactDigest("file", "ab" * 32, 3, manifest=None)
    assert one != ArtifactDigest("file", "ab" * 32, 4)
    assert one != ArtifactDigest("directory", "ab" * 32, 3)
    assert one != ("file", "ab" * 32, 3, None, 1)
