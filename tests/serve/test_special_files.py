"""A FIFO, a device or a socket where the gate reads a file: refused as such (exit 3),
without blocking, never read as an empty or endless document (limits.read_limited with
``regular_only``, limits.require_regular, check_summary)."""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path

import pytest

from mlspec_attest.errors import BadInputError, ExitCode, MalformedDocumentError
from mlspec_attest.formats.limits import read_limited, require_regular
from mlspec_attest.serve.vsa_check import check_summary

from .test_gate_support import expectations, make_model_dir, summary_for, trust, write_signed

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")


def refusal(path: Path) -> MalformedDocumentError:
    """check_summary's error for ``path``, in a thread that must end (a hang fails)."""
    errors: list[BaseException] = []

    def check() -> None:
        try:
            check_summary(path, trust(), expectations())
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=check, daemon=True)
    thread.start()
    thread.join(30)
    assert not thread.is_alive(), f"check_summary({path}) blocked"
    assert len(errors) == 1 and isinstance(errors[0], MalformedDocumentError), errors
    assert errors[0].exit_code == ExitCode.BAD_INPUT
    return errors[0]


def test_a_summary_that_is_a_fifo_is_refused_as_such(tmp_path: Path) -> None:
    fifo = tmp_path / "vsa.json"
    os.mkfifo(fifo)
    expected = f"verification summary {fifo}: not a regular file (a FIFO); give the file itself"
    assert refusal(fifo).message == expected
    # A writer that holds the FIFO open and never writes: reading would wait for ever.
    writer = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)
    try:
        assert refusal(fifo).message == expected
    finally:
        os.close(writer)


def test_a_summary_that_is_a_device_is_refused_as_such() -> None:
    assert refusal(Path("/dev/zero")).message == (
        "verification summary /dev/zero: not a regular file (a character device); "
        "give the file itself"
    )


def test_a_summary_on_disk_still_passes(tmp_path: Path) -> None:
    model = make_model_dir(tmp_path / "model")
    vsa = write_signed(tmp_path / "vsa.json", summary_for(model))
    assert check_summary(vsa, trust(), expectations()).summary.run_id


def test_read_limited_regular_only(tmp_path: Path) -> None:
    (tmp_path / "ok").write_bytes(b"0123456789")
    assert read_limited(tmp_path / "ok", 10, what="x", kind="k", regular_only=True) == b"0123456789"
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(MalformedDocumentError, match=r"^x: not a regular file \(a FIFO\)"):
        read_limited(tmp_path / "fifo", 10, what="x", kind="k", regular_only=True)
    with pytest.raises(MalformedDocumentError, match="is a directory, expected a file"):
        read_limited(tmp_path, 10, what="x", kind="k", regular_only=True)
    # Without it, as before: a FIFO nobody writes to reads as empty, without blocking.
    assert read_limited(tmp_path / "fifo", 10, what="x", kind="k") == b""


def test_require_regular(tmp_path: Path) -> None:
    def message(path: Path) -> str:
        with pytest.raises(BadInputError) as info:
            require_regular(path, what=f"--opt {path.name}")
        assert info.value.exit_code == ExitCode.BAD_INPUT
        return info.value.message

    os.mkfifo(tmp_path / "fifo")
    assert (
        message(tmp_path / "fifo")
        == "--opt fifo: not a regular file (a FIFO); give the file itself"
    )
    assert "(a character device)" in message(Path("/dev/null"))
    assert "(a directory)" in message(tmp_path)
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(tmp_path / "sock"))
        assert "(a socket)" in message(tmp_path / "sock")
    (tmp_path / "file").write_text("x")
    require_regular(tmp_path / "file", what="--opt")
    require_regular(tmp_path / "missing", what="--opt")  # left to the reader: "not found"
