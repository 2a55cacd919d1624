"""Time one library call in a fresh process: ``python probe.py TOOL PATH``.

Imports happen before the clock starts, so an API probe measures hashing only
(CLI tools are timed from outside by run.py, start-up included). Prints the
elapsed seconds and, for checking, a digest of the result.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path


def files_under(path: Path) -> list[str]:
    if path.is_file():
        return [str(path)]
    out = []
    for dirpath, _dirs, names in os.walk(path):
        out.extend(os.path.join(dirpath, n) for n in names)
    return out


def hashlib_single(path: Path) -> str:
    """hashlib sha256, one thread, the standard idiom (hashlib.file_digest)."""
    h = hashlib.sha256()
    for name in files_under(path):
        with open(name, "rb") as fh:
            h.update(hashlib.file_digest(fh, "sha256").digest())
    return h.hexdigest()


def python_blake3(path: Path) -> str:
    """The blake3 package as its README suggests: mmap and every core, file by file."""
    import blake3

    h = hashlib.sha256()
    for name in files_under(path):
        b = blake3.blake3(max_threads=blake3.blake3.AUTO)
        b.update_mmap(name)
        h.update(b.digest())
    return h.hexdigest()


def model_signing(serialization: str) -> Callable[[Path], str]:
    def run(path: Path) -> str:
        from model_signing import hashing

        config = hashing.Config()
        if serialization == "shards":
            config.use_shard_serialization()
        else:
            config.use_file_serialization()
        manifest = config.hash(path)
        h = hashlib.sha256()
        for descriptor in manifest.resource_descriptors():
            h.update(descriptor.digest.digest_value)
        return h.hexdigest()

    return run


def ours(algorithm: str, serialization: str = "files") -> Callable[[Path], str]:
    def run(path: Path) -> str:
        from mlspec_attest.digest.artifact import digest_path
        from mlspec_attest.digest.scheme import DigestScheme

        result = digest_path(path, scheme=DigestScheme(algorithm, serialization))
        return result.digest

    return run


def intoto_record(path: Path) -> str:
    from in_toto.runlib import record_artifacts_as_dict

    os.chdir(path.parent)
    artifacts = record_artifacts_as_dict([path.name])
    return str(len(artifacts))


TOOLS: dict[str, Callable[[Path], str]] = {
    "hashlib": hashlib_single,
    "python-blake3": python_blake3,
    "ms-files": model_signing("files"),
    "ms-shards": model_signing("shards"),
    "ours-sha256": ours("sha256"),
    "ours-shards": ours("sha256", "shards"),
    "ours-blake3": ours("blake3"),
    "intoto-record": intoto_record,
}


def warm_imports(tool: str) -> None:
    if tool.startswith("ms-"):
        import model_signing.hashing  # noqa: F401
    elif tool.startswith("ours"):

        if tool == "ours-blake3":
            import blake3
    elif tool == "intoto-record":
        import in_toto.runlib  # noqa: F401
    elif tool == "python-blake3":
        import blake3  # noqa: F401


def main() -> None:
    tool, target = sys.argv[1], Path(sys.argv[2]).resolve()
    warm_imports(tool)
    started = time.perf_counter()
    result = TOOLS[tool](target)
    elapsed = time.perf_counter() - started
    print(f"{elapsed:.6f} {result}")


if __name__ == "__main__":
    main()
