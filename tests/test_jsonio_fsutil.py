"""Strict JSON reading, canonical writing, and safe artifact names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlspec_attest.errors import ArtifactPathError, MalformedDocumentError
from mlspec_attest.formats import jsonio
from mlspec_attest.formats.fsutil import artifact_name, check_relative_name
from mlspec_attest.formats.jsonio import canonical, load_file, loads_strict


# ----------------------------------------------------------------- jsonio
@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"a": 1, "a": 2}', "duplicate key 'a'"),
        ('{"x": {"b": 1, "b": 1}}', "duplicate key 'b'"),
        ('{"a": NaN}', "non-standard JSON constant NaN"),
        ('{"a": Infinity}', "non-standard JSON constant Infinity"),
        ('{"a": -Infinity}', "non-standard JSON constant -Infinity"),
        ('{"a": 1', "not valid JSON"),
        ("", "not valid JSON"),
        (b"\xff\xfe{}", "not valid JSON"),
    ],
)
def test_loads_strict_refuses(text: str | bytes, message: str) -> None:
    with pytest.raises(MalformedDocumentError, match=message):
        loads_strict(text, what="doc")


def test_loads_strict_names_the_document() -> None:
    with pytest.raises(MalformedDocumentError, match=r"^policy\.json: "):
        loads_strict("{", what="policy.json")


def test_oversize_documents_are_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(jsonio.limits, "MAX_JSON_BYTES", 10)
    with pytest.raises(MalformedDocumentError, match="larger than 10 bytes"):
        loads_strict('{"a": "0123456789"}')
    (tmp_path / "big.json").write_text('{"a": "0123456789"}')
    with pytest.raises(MalformedDocumentError, match="larger than 10 bytes"):
        load_file(tmp_path / "big.json")


def test_load_file_errors(tmp_path: Path) -> None:
    with pytest.raises(MalformedDocumentError, match="file not found"):
        load_file(tmp_path / "nope.json")
    with pytest.raises(MalformedDocumentError, match="is a directory"):
        load_file(tmp_path)
    (tmp_path / "ok.json").write_text('{"k": [1, 2.5, "s", null, true]}')
    assert load_file(tmp_path / "ok.json") == {"k": [1, 2.5, "s", None, True]}


def test_canonical_is_rfc8785() -> None:
    assert canonical({"b": 1, "a": [True, None, "é"], "c": 1.0}) == (
        '{"a":[true,null,"é"],"b":1,"c":1}'.encode()
    )
    assert canonical({"n": 1e21, "m": 0.1, "z": -0.0}) == b'{"m":0.1,"n":1e+21,"z":0}'


@pytest.mark.parametrize("value", [float("nan"), float("inf"), {1: 2}, object(), 2**64])
def test_canonical_refuses_what_json_cannot_carry(value: object) -> None:
    with pytest.raises(MalformedDocumentError, match="cannot be canonicalized"):
        canonical({"v": value})


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)  # the I-JSON safe range
    | st.floats(min_value=-1e15, max_value=1e15, allow_nan=False)
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=12,
)


@given(json_values)
def test_canonical_round_trips_and_is_stable(value: object) -> None:
    data = canonical(value)
    again = loads_strict(data)
    assert canonical(again) == data
    assert again == json.loads(data)


def test_pretty_is_sorted() -> None:
    assert jsonio.pretty({"b": 1, "a": "é"}) == '{\n  "a": "é",\n  "b": 1\n}'


# ----------------------------------------------------------------- fsutil
def test_artifact_name(tmp_path: Path) -> None:
    assert artifact_name(tmp_path / "a/b.txt", tmp_path) == "a/b.txt"
    assert artifact_name(tmp_path / "a/../c", tmp_path) == "c"
    assert artifact_name(tmp_path, tmp_path) == "."
    with pytest.raises(ArtifactPathError, match="outside the base directory") as info:
        artifact_name(tmp_path.parent / "x", tmp_path)
    assert info.value.remedy is not None and "base_dir" in info.value.remedy
    with pytest.raises(ArtifactPathError):
        artifact_name(tmp_path / "../escape", tmp_path)


def test_artifact_name_relative_paths_use_the_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert artifact_name(Path("data/x.csv"), Path(".")) == "data/x.csv"


@pytest.mark.parametrize("name", [".", "a", "a/b", "a-c/d.e", "dir/.hidden", "é/ü"])
def test_check_relative_name_accepts(name: str) -> None:
    assert check_relative_name(name) == name


@pytest.mark.parametrize(
    "name", ["", "/abs", "../up", "a/../b", "a//b", "a/", "./a", "a\\b", "a/./b", ".."]
)
def test_check_relative_name_refuses(name: str) -> None:
    with pytest.raises(ArtifactPathError, match="not a normalized relative path"):
        check_relative_name(name)
