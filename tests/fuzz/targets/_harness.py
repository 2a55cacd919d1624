"""Plumbing shared by the atheris targets.

Every target module defines ``TestOneInput(data: bytes) -> None``: it feeds
``data`` to one parser and lets through only the errors that parser documents
(for the library: :class:`~mlspec_attest.errors.MlspecError` subclasses whose
exit code is 3, "bad input"). Anything else escaping it - a ``KeyError``, a
``RecursionError``, a failed round-trip assertion - is a crash.

Environment:

``MLSPEC_FUZZ_WORKDIR``
    Directory for the scratch files file-based parsers read (default: a fresh
    temporary directory).
``MLSPEC_FUZZ_TRIAGE``
    Directory: instead of stopping at the first crash, record each distinct
    crash (exception type + innermost library frame) as ``<target>/<signature>/``
    with the first input and its traceback, and keep fuzzing.
``MLSPEC_FUZZ_INSTRUMENT``
    Coverage instrumentation: ``core`` (default) instruments mlspec_attest;
    ``all`` adds the packages a target names in ``INSTRUMENT`` (ruamel,
    cel-python: ten seconds of start-up and far fewer runs per second);
    ``0`` none (fast start, blind mutation: the smoke tests).
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import gc
import os
import re
import shutil
import sys
import tempfile
import traceback
import types
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from mlspec_attest.errors import ExitCode, MlspecError

TARGETS_DIR = Path(__file__).resolve().parent
FUZZ_DIR = TARGETS_DIR.parent
CORPUS_DIR = FUZZ_DIR / "corpus"
PROJECT_ROOT = FUZZ_DIR.parent.parent
GOLDEN_DIR = PROJECT_ROOT / "tests" / "golden"

T = TypeVar("T")


def target_names() -> list[str]:
    """Every target module in this package, by name."""
    return sorted(p.stem for p in TARGETS_DIR.glob("*.py") if not p.stem.startswith("_"))


def is_documented(exc: BaseException) -> bool:
    """The library's documented failure for malformed input: an MlspecError with exit code 3."""
    return isinstance(exc, MlspecError) and exc.exit_code == ExitCode.BAD_INPUT


def parse_or_none(parse: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
    """``parse(*args, **kwargs)``, or None when it refuses the input with a bad-input error."""
    try:
        return parse(*args, **kwargs)
    except MlspecError as exc:
        if is_documented(exc):
            return None
        raise


@functools.cache
def workdir() -> Path:
    """A private scratch directory for this process."""
    base = os.environ.get("MLSPEC_FUZZ_WORKDIR")
    if base:
        Path(base).mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix="target-", dir=base))
    path = Path(tempfile.mkdtemp(prefix="mlspec-fuzz-"))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


def input_file(data: bytes, name: str) -> Path:
    """Write ``data`` to ``name`` in the scratch directory; file-based parsers read it."""
    path = workdir() / name
    path.write_bytes(data)
    return path


def split_mode(data: bytes, modes: int) -> tuple[int, bytes]:
    """The first byte picks one of ``modes`` variants of a target; the rest is its input."""
    if not data:
        return 0, b""
    return data[0] % modes, data[1:]


def crash_signature(exc: BaseException) -> str:
    """Exception type and the innermost frame in mlspec_attest (else in the target)."""
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if "/mlspec_attest/" in f.filename]
    where = (ours or frames or [None])[-1]
    location = "?"
    if where is not None:
        location = f"{Path(where.filename).name}-{where.lineno}"
    return re.sub(r"[^A-Za-z0-9_.-]", "_", f"{type(exc).__name__}-{location}")


def _triaging(name: str, target: Callable[[bytes], None], out: Path) -> Callable[[bytes], None]:
    seen: dict[str, int] = {}

    def guarded(data: bytes) -> None:
        try:
            target(data)
        except Exception as exc:
            signature = crash_signature(exc)
            seen[signature] = seen.get(signature, 0) + 1
            count = seen[signature]
            folder = out / name / signature
            if count == 1:
                folder.mkdir(parents=True, exist_ok=True)
                (folder / "input.bin").write_bytes(data)
                text = "".join(traceback.format_exception(exc))
                (folder / "traceback.txt").write_text(text[-20000:])
                sys.stderr.write(f"\n[triage] {name}: new crash {signature}\n")
            if count & (count - 1) == 0:  # 1, 2, 4, 8 ...: cheap running count
                (folder / "count").write_text(f"{count}\n")

    return guarded


def _warm_up(name: str, target: Callable[[bytes], None]) -> None:
    """Run the seeds once so that modules the parser imports lazily get loaded (and instrumented)."""
    seeds = sorted((CORPUS_DIR / name).glob("seed-*"))  # never the crash-* reproducers
    for seed in [None, *seeds[:50]]:
        with contextlib.suppress(Exception):
            target(b"" if seed is None else seed.read_bytes())


def _instrument(packages: Iterable[str]) -> int:
    """atheris coverage instrumentation of every loaded function of ``packages``.

    ``atheris.instrument_all()`` would patch the whole interpreter (stdlib,
    cryptography's Python layer, ...), which takes longer than a smoke run.
    """
    import atheris

    wanted = set(packages)
    count = 0
    for obj in gc.get_objects():
        module = getattr(obj, "__module__", None) if isinstance(obj, types.FunctionType) else None
        if isinstance(module, str) and module.split(".")[0] in wanted:
            with contextlib.suppress(Exception):
                atheris.instrument_func(obj)
                count += 1
    return count


def main(target: Callable[[bytes], None]) -> None:
    """Entry point of ``python -m tests.fuzz.targets.<name> [libFuzzer flags] [corpus]``.

    A target module may name third-party parsers it drives in a module-level
    ``INSTRUMENT`` tuple, instrumented too with MLSPEC_FUZZ_INSTRUMENT=all.
    """
    import atheris

    module = sys.modules[target.__module__]
    name = Path(module.__file__ or "target").stem
    _warm_up(name, target)
    instrument = os.environ.get("MLSPEC_FUZZ_INSTRUMENT", "core")
    if instrument != "0":
        extra: tuple[str, ...] = getattr(module, "INSTRUMENT", ()) if instrument == "all" else ()
        count = _instrument(("mlspec_attest", "rfc8785", *extra))
        sys.stderr.write(f"INFO: instrumented {count} functions\n")
    triage = os.environ.get("MLSPEC_FUZZ_TRIAGE")
    run = _triaging(name, target, Path(triage)) if triage else target
    atheris.Setup(sys.argv, run)
    atheris.Fuzz()
