"""Editing a log directory the way an attacker (or a crash) would."""

from __future__ import annotations

from pathlib import Path

from mlspec_attest.log.files import ACCESS_LOG, RECORDS
from mlspec_attest.log.scan import RecordScanner


def raw_records(directory: Path) -> list[bytes]:
    return [item.raw for item in RecordScanner(directory / RECORDS)]


def write_records(directory: Path, records: list[bytes], tail: bytes = b"") -> None:
    (directory / RECORDS).write_bytes(b"".join(records) + tail)


def lines(directory: Path) -> list[bytes]:
    return (directory / ACCESS_LOG).read_bytes().split(b"\n")[:-1]


def write_lines(directory: Path, content: list[bytes], tail: bytes = b"") -> None:
    (directory / ACCESS_LOG).write_bytes(b"".join(line + b"\n" for line in content) + tail)


def replace_in_record(directory: Path, index: int, old: bytes, new: bytes) -> None:
    records = raw_records(directory)
    assert records[index].count(old) == 1, (old, records[index])
    records[index] = records[index].replace(old, new)
    write_records(directory, records)


def flip_byte(directory: Path, index: int, offset: int, mask: int = 0xFF) -> None:
    records = raw_records(directory)
    raw = bytearray(records[index])
    raw[offset] ^= mask
    records[index] = bytes(raw)
    write_records(directory, records)
