"""The lifecycle vocabulary (and the ``stages`` command that prints it)."""

from __future__ import annotations

from mlspec_attest.formats.stages import LIFECYCLE_ORDER, PROFILES, StageKind, parse_kind

LIFECYCLE = [
    "objectives",
    "ingest",
    "analyze",
    "transform",
    "validate",
    "split",
    "train",
    "evaluate",
    "test",
    "package",
    "serve",
    "monitor",
    "log",
]


def test_lifecycle_order() -> None:
    assert [k.value for k in LIFECYCLE_ORDER] == LIFECYCLE
    assert StageKind.CUSTOM not in LIFECYCLE_ORDER


def test_every_kind_has_a_profile() -> None:
    assert set(PROFILES) == set(StageKind)
    for kind, profile in PROFILES.items():
        assert profile.kind is kind
        assert profile.title and profile.purpose
        if kind is not StageKind.CUSTOM:
            assert profile.records


def test_evaluation_and_holdback_are_separate_kinds() -> None:
    assert "holdback" in PROFILES[StageKind.TEST].typical_roles
    assert "holdback" not in PROFILES[StageKind.EVALUATE].typical_roles


def test_parse_kind() -> None:
    assert parse_kind("train") is StageKind.TRAIN
    assert parse_kind("custom") is StageKind.CUSTOM
    assert parse_kind("Train") is None
    assert parse_kind("deploy") is None
