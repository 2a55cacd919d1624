"""A real Sigstore instance on 127.0.0.1: fake Fulcio (with a CT log) and Rekor v1 from the
npm package ``@sigstore/mock``, served by ``tests/sigstore/mock/server.js``.

The fake part is only at the edge: the OIDC token is a locally made HS256 JWT
(the fake Fulcio does not check its signature). Certificates, SCTs, Rekor
entries, inclusion proofs, checkpoints and signed entry timestamps are real, and
unmodified sigstore-python signs and verifies against them.

Node packages are installed once per lock file with ``npm ci`` into a folder
outside the source tree (``$MLSPEC_ATTEST_SIGSTORE_MOCK_DIR``, else the temp
directory); ``python -m tests.sigstore.instance`` does it ahead of the tests (CI).
Tests skip, saying why, only when node or npm is not installed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

MOCK_SOURCE = Path(__file__).parent / "mock"
MOCK_DIR_ENV = "MLSPEC_ATTEST_SIGSTORE_MOCK_DIR"
# Every instance uses this issuer, so two instances differ only in their keys.
OIDC_ISSUER = "https://oidc.mlspec-attest.test"
START_TIMEOUT = 60.0
INSTALL_TIMEOUT = 600.0


def _tools() -> tuple[str, str]:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        missing = " and ".join(n for n, p in (("node", node), ("npm", npm)) if p is None)
        pytest.skip(
            f"keyless tier: {missing} not installed; it runs a local Sigstore instance "
            "(@sigstore/mock, Node 20+) - install nodejs and npm to run it"
        )
    return node, npm


def mock_dir() -> Path:
    """The folder with server.js and its node_modules, installed on first use."""
    _, npm = _tools()
    manifest = (MOCK_SOURCE / "package.json").read_bytes()
    lock = (MOCK_SOURCE / "package-lock.json").read_bytes()
    tag = hashlib.sha256(manifest + lock).hexdigest()[:16]
    configured = os.environ.get(MOCK_DIR_ENV)
    target = (
        Path(configured)
        if configured
        else Path(tempfile.gettempdir()) / f"mlspec-attest-sigstore-mock-{tag}"
    )
    stamp = target / "node_modules" / ".mlspec-attest-installed"
    if not stamp.is_file() or stamp.read_text() != tag:
        target.mkdir(parents=True, exist_ok=True)
        (target / "package.json").write_bytes(manifest)
        (target / "package-lock.json").write_bytes(lock)
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=target,
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT,
            check=False,
        )
        if done.returncode != 0:
            pytest.fail(
                f"`npm ci` for the Sigstore mock failed in {target} (exit {done.returncode}):\n"
                f"{done.stderr[-2000:]}\nnode and npm are installed, so this is an error, "
                "not a skip: check access to the npm registry, or pre-install with "
                f"{MOCK_DIR_ENV}=DIR and `npm ci` in DIR"
            )
        stamp.write_text(tag)
    shutil.copyfile(MOCK_SOURCE / "server.js", target / "server.js")
    return target


@dataclass
class SigstoreInstance:
    """One running loopback instance: its URL, ClientTrustConfig and OIDC tokens."""

    name: str
    url: str
    trust_config: dict[str, Any]
    trust_config_path: Path
    process: subprocess.Popen[str] = field(repr=False)

    @property
    def trusted_root(self) -> dict[str, Any]:
        root: dict[str, Any] = self.trust_config["trustedRoot"]
        return root

    def token(
        self,
        email: str = "alice@example.com",
        *,
        issuer: str = OIDC_ISSUER,
        lifetime: int = 600,
    ) -> str:
        """An HS256 identity token for ``email``; the certificate SAN will be ``email``."""
        import jwt

        now = int(time.time())
        claims = {
            "iss": issuer,
            "sub": email,
            "email": email,
            "email_verified": True,
            "aud": "sigstore",
            "iat": now,
            "nbf": now,
            "exp": now + lifetime,
        }
        return str(jwt.encode(claims, "mlspec-attest-test-secret-" + "x" * 16, algorithm="HS256"))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


def start_instance(name: str, workdir: Path) -> SigstoreInstance:
    node, _ = _tools()
    folder = mock_dir()
    log = workdir / f"{name}.log"
    with open(log, "w") as stderr:
        process = subprocess.Popen(
            [node, str(folder / "server.js")],
            cwd=folder,
            stdin=subprocess.PIPE,  # the server exits when this pipe closes
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], START_TIMEOUT)
    line = process.stdout.readline() if ready else ""
    if not line:
        process.kill()
        process.wait(timeout=10)
        pytest.fail(f"the Sigstore mock {name!r} did not start: {log.read_text()[-2000:]}")
    info = json.loads(line)
    path = workdir / f"{name}.trust-config.json"
    path.write_text(json.dumps(info["trustConfig"], indent=2))
    return SigstoreInstance(name, info["url"], info["trustConfig"], path, process)


@pytest.fixture(scope="session")
def sigstore_instance_factory(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[[str], SigstoreInstance]]:
    """``factory(name)`` -> a running instance; the same name gives the same instance."""
    running: dict[str, SigstoreInstance] = {}
    workdir = tmp_path_factory.mktemp("sigstore-instances")

    def factory(name: str) -> SigstoreInstance:
        if name not in running:
            running[name] = start_instance(name, workdir)
        return running[name]

    yield factory
    for instance in running.values():
        instance.stop()


@pytest.fixture(scope="session")
def sigstore_instance(
    sigstore_instance_factory: Callable[[str], SigstoreInstance],
) -> SigstoreInstance:
    """The main loopback Sigstore instance of the session."""
    return sigstore_instance_factory("main")


if __name__ == "__main__":
    # `python -m tests.sigstore.instance`: install the mock's node packages now (CI pre-warm);
    # prints the folder, fails loudly if node/npm are missing or `npm ci` fails.
    print(mock_dir())
