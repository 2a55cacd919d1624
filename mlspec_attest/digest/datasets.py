"""What a split or material is made of: the data files holding its rows.

:func:`open_dataset` (strict, for splits) and :func:`open_material` (lenient,
for what a stage reads) turn a file or directory into a :class:`Dataset`: its
shards, each with the format the one reader (:mod:`mlspec_attest.formats.tabular`)
reads it in, or ``files`` for per-example files hashed whole. The engine that
hashes the rows is :mod:`mlspec_attest.digest.rows`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from msgspec import field

from mlspec_attest.digest.directory import path_components_key
from mlspec_attest.digest.walk import walk_tree
from mlspec_attest.errors import ArtifactPathError, BadInputError, UsageError
from mlspec_attest.formats.partial_value import PartlyCompared
from mlspec_attest.formats.tabular import TABULAR_FORMATS, format_of, sniff_format

FORMATS = ("auto", "csv", "tsv", "jsonl", "parquet", "files")

#: Per-example files (one file, one example) read as per-file content digests.
MEDIA_SUFFIXES = frozenset(
    [
        ".png",
        ".jpg",
        ".jpeg",
        ".gif",
        ".bmp",
        ".tif",
        ".tiff",
        ".webp",
        ".wav",
        ".flac",
        ".mp3",
        ".ogg",
        ".m4a",
        ".mp4",
        ".avi",
        ".mov",
        ".mkv",
        ".npy",
        ".pdf",
        ".txt",
    ]
)
#: Files in a dataset directory that hold no rows (job markers, checksums, OS litter).
METADATA_NAMES = frozenset({"_SUCCESS", "_metadata", "_common_metadata", ".DS_Store"})


class Dataset(PartlyCompared, frozen=True):
    """What one split or material is made of: the files holding its rows.

    ``format`` is ``csv``, ``tsv``, ``jsonl``, ``parquet`` or ``files`` (one
    digest per file), or ``mixed`` for a material directory of several formats.
    ``shards`` are (file, format) in path-component order; ``ignored`` are the
    relative names of files that hold no rows (empty files, job markers).
    ``known`` maps files (``str(path)``) to a SHA-256 already computed for them
    (by the digest engine), so per-example files are not hashed twice.
    """

    path: Path
    format: str
    shards: tuple[tuple[Path, str], ...]
    ignored: tuple[str, ...] = ()
    known: Mapping[str, bytes] = field(default_factory=dict)

    _uncompared = frozenset({"known"})  # a cache: equal datasets name the same files


def _is_media(path: Path) -> bool:
    return os.path.splitext(path.name.lower())[1] in MEDIA_SUFFIXES


def _holds_no_rows(rel: str, full: Path) -> bool:
    """Job markers, checksum files and OS litter, and empty files: nothing to read."""
    name = rel.rsplit("/", 1)[-1]
    if name in METADATA_NAMES or (name.startswith(".") and name.endswith(".crc")):
        return True
    try:
        return full.stat().st_size == 0
    except OSError as exc:
        raise ArtifactPathError(f"{full}: cannot read ({exc.strerror})") from exc


def _directory_files(root: Path) -> list[tuple[str, Path]]:
    """Every regular file the directory's manifest covers, in path-component order."""
    found = walk_tree(os.fspath(root))
    return [
        (rel, Path(full)) for rel, full in sorted(found, key=lambda f: path_components_key(f[0]))
    ]


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r}", remedy=f"use one of: {', '.join(FORMATS)}")


def _listing(names: Sequence[str]) -> str:
    shown = ", ".join(names[:5])
    return shown + (f" and {len(names) - 5} more" if len(names) > 5 else "")


def open_dataset(path: Path, fmt: str = "auto") -> Dataset:
    """The dataset of a split: strict, so a check never runs on data it cannot read.

    ``auto``: a file by its suffix; a directory of tabular shards (any one format,
    gzip allowed) as rows, a directory of per-example media files (images, audio,
    ...) as ``files``. A directory holding anything else, or mixing kinds or
    formats, is bad input, as is a file whose format the name does not tell.
    """
    _check_format(fmt)
    if not path.exists():
        raise ArtifactPathError(f"{path}: no such file or directory")
    if path.is_dir():
        return _open_directory(path, fmt)
    if fmt == "files":
        return Dataset(path, "files", ((path, "files"),))
    found = format_of(path) if fmt == "auto" else fmt
    if found is None:
        raise BadInputError(
            f"{path}: cannot tell the format from the file name",
            remedy="name it .csv, .tsv, .jsonl, .parquet (optionally .gz), or pass the format",
        )
    return Dataset(path, found, ((path, found),))


def _open_directory(root: Path, fmt: str) -> Dataset:
    tabular: list[tuple[Path, str]] = []
    media: list[tuple[Path, str]] = []
    ignored: list[str] = []
    unknown: list[str] = []
    for rel, full in _directory_files(root):
        if _holds_no_rows(rel, full):
            ignored.append(rel)
        elif fmt == "files":
            media.append((full, "files"))
        elif (found := format_of(full)) is not None:
            tabular.append((full, found))
        elif _is_media(full):
            media.append((full, "files"))
        elif fmt in TABULAR_FORMATS and not os.path.splitext(full.name)[1]:
            tabular.append((full, fmt))  # a shard without a suffix (part-00000)
        else:
            unknown.append(rel)
    return _directory_dataset(root, fmt, tabular, media, ignored, unknown)


def _directory_dataset(
    root: Path,
    fmt: str,
    tabular: list[tuple[Path, str]],
    media: list[tuple[Path, str]],
    ignored: list[str],
    unknown: list[str],
) -> Dataset:
    if unknown:
        raise BadInputError(
            f"{root}: cannot read {len(unknown)} file(s) as rows or examples: {_listing(unknown)}",
            remedy="keep only data shards (.csv, .tsv, .jsonl, .parquet, optionally .gz) or "
            "per-example files in a split directory; rows a check cannot read prove nothing",
        )
    if tabular and media:
        raise BadInputError(
            f"{root}: mixes {len(tabular)} tabular shard(s) with {len(media)} other data file(s)",
            remedy="write tabular splits and per-example files to separate directories",
        )
    formats = sorted({f for _, f in tabular})
    if len(formats) > 1:
        raise BadInputError(
            f"{root}: shards of several formats ({', '.join(formats)})",
            remedy="write every shard of a split in one format",
        )
    if fmt in TABULAR_FORMATS and formats and formats != [fmt]:
        raise BadInputError(
            f"{root}: holds {formats[0]} shards, not {fmt}",
            remedy=f"read it as {formats[0]} (or auto)",
        )
    if tabular:
        return Dataset(root, formats[0], tuple(tabular), tuple(ignored))
    if media:
        return Dataset(root, "files", tuple(media), tuple(ignored))
    raise BadInputError(f"{root}: directory holds no data files")


def open_material(path: Path) -> Dataset | str:
    """The rows of a stage's material, or why it holds none (lenient, unlike splits).

    A file: by suffix, else by content (gzip or Parquet magic, JSON Lines, CSV or
    TSV text), whatever its name says otherwise: rows written to ``notes.txt``,
    ``part-00000`` or ``x.png`` are rows (named as media, they were hashed whole and
    hold-back rows hidden there went unseen). A directory: its tabular shards and
    per-example files, each judged the same way; other files are ignored. Returns a
    short reason instead when nothing in it is rows.
    """
    if path.is_dir():
        return _open_material_directory(path)
    found = _material_format(path)
    if found is None:
        return sniff_format(path)
    return Dataset(path, found, ((path, found),))


def _material_format(path: Path) -> str | None:
    """A material file's format: its name's tabular format, else its content's, else
    ``files`` for a per-example file (by suffix), else None (it holds no rows)."""
    found = format_of(path)
    if found is not None:
        return found
    sniffed = sniff_format(path)
    if sniffed in TABULAR_FORMATS:
        return sniffed
    return "files" if _is_media(path) else None


def _open_material_directory(root: Path) -> Dataset | str:
    shards: list[tuple[Path, str]] = []
    ignored: list[str] = []
    for rel, full in _directory_files(root):
        found = None if _holds_no_rows(rel, full) else _material_format(full)
        if found is None:
            ignored.append(rel)
        else:
            shards.append((full, found))
    if not shards:
        return "no tabular or per-example files"
    formats = {f for _, f in shards}
    return Dataset(
        root, formats.pop() if len(formats) == 1 else "mixed", tuple(shards), tuple(ignored)
    )
