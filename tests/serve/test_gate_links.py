"""The gate opens each file below the model's folder without following a link at any
component: a folder (or a file) swapped for a link after the walk saw it cannot make the
gate hash bytes outside the model. The window between the walk and the opens is
reproduced exactly: the walk's listing is taken, the tree changed, then the files read."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from mlspec_attest.digest.directory import sort_found
from mlspec_attest.digest.walk import walk_tree
from mlspec_attest.errors import GateDeniedError
from mlspec_attest.formats.fsutil import open_beneath
from mlspec_attest.serve.gate import _Read, _read_all

FLAGS = os.O_RDONLY | os.O_NOFOLLOW


def listing(root: Path) -> list[_Read]:
    found = walk_tree(str(root))
    sort_found(found)
    return [_Read(name, path) for name, path in found]


def model_and_outside(tmp_path: Path) -> tuple[Path, Path]:
    model, outside = tmp_path / "model", tmp_path / "outside"
    (model / "sub").mkdir(parents=True)
    (model / "sub" / "data.bin").write_bytes(b"INSIDE")
    (model / "top.bin").write_bytes(b"top")
    outside.mkdir()
    (outside / "data.bin").write_bytes(b"OUTSIDE")
    return model, outside


def denial(reads: list[_Read], model: Path) -> str:
    with pytest.raises(GateDeniedError) as info:
        _read_all(reads, str(model), 1 << 20, True, None)
    return info.value.problems[0]


def test_a_folder_swapped_for_a_link_after_the_walk_is_never_followed(tmp_path: Path) -> None:
    model, outside = model_and_outside(tmp_path)
    reads = listing(model)
    (model / "sub" / "data.bin").unlink()
    (model / "sub").rmdir()
    (model / "sub").symlink_to(outside)  # the walk saw a folder; now it leads out
    assert "sub/data.bin: cannot open" in denial(reads, model)
    assert all(r.data is None or bytes(r.data) != b"OUTSIDE" for r in reads)


def test_a_file_swapped_for_a_link_after_the_walk_is_refused(tmp_path: Path) -> None:
    model, outside = model_and_outside(tmp_path)
    reads = listing(model)
    (model / "top.bin").unlink()
    (model / "top.bin").symlink_to(outside / "data.bin")
    assert "top.bin" in denial(reads, model)


def test_a_link_inside_the_model_is_read_at_its_target_below_the_root(tmp_path: Path) -> None:
    model, outside = model_and_outside(tmp_path)
    (model / "alias.bin").symlink_to(model / "sub" / "data.bin")
    reads = listing(model)
    _read_all(reads, str(model), 1 << 20, True, None)
    assert {r.name: bytes(r.data or b"") for r in reads}["alias.bin"] == b"INSIDE"
    # the target's folder swapped for a link out after the walk: refused, not followed
    (model / "sub" / "data.bin").unlink()
    (model / "sub").rmdir()
    (model / "sub").symlink_to(outside)
    assert "alias.bin" in denial(listing_of_names(reads), model)


def listing_of_names(reads: list[_Read]) -> list[_Read]:
    return [_Read(r.name, r.path) for r in reads]


def test_open_beneath_follows_no_link_at_any_component(tmp_path: Path) -> None:
    model, outside = model_and_outside(tmp_path)
    (model / "out").symlink_to(outside)
    (model / "out.bin").symlink_to(outside / "data.bin")
    root = os.open(model, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fd = open_beneath(root, "sub/data.bin", FLAGS)
        assert os.read(fd, 100) == b"INSIDE"
        os.close(fd)
        for name, code in (("out/data.bin", errno.ENOTDIR), ("out.bin", errno.ELOOP)):
            with pytest.raises(OSError) as info:
                open_beneath(root, name, FLAGS)
            assert info.value.errno in (code, errno.ELOOP, errno.ENOTDIR)
        for bad in ("../outside/data.bin", "sub/../top.bin", "/etc/passwd", "sub//data.bin"):
            with pytest.raises(OSError) as info:
                open_beneath(root, bad, FLAGS)
            assert info.value.errno == errno.EINVAL
    finally:
        os.close(root)
