"""A real PostgreSQL server for the index tests, started from the OS package.

The session's first test that asks for ``postgres_server`` runs ``initdb`` into a new
temporary directory and starts ``postgres`` on a unix socket in it and on a free
127.0.0.1 port; the server is stopped and its directory removed at the end of the
session. The binaries are found on PATH or in ``/usr/lib/postgresql/*/bin`` (the Debian
package ``postgresql``; ``.ci/run`` installs it). initdb and postgres refuse to run as
root: when the tests run as root, both run as the ``postgres`` OS user (``runuser``)
and the directory is handed to that user.

Connections over the unix socket are trusted; over TCP the user ``mlspec`` needs its
password (:data:`PASSWORD`), so a wrong one is refused as on a real server. The database
collates with ICU (``en-US``) when the server supports it, so text that sorts one way
by code point and another by language shows whether the index's answers depend on the
database's collation.

Tests skip, saying why, only when no PostgreSQL binaries are installed.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

USER = "mlspec"
PASSWORD = "index-test-password"
START_TIMEOUT_S = 60
TOOLS = ("initdb", "pg_ctl", "postgres")


def find_binaries() -> Path | None:
    """The directory with initdb, pg_ctl and postgres: PATH first, then the newest
    ``/usr/lib/postgresql/<version>/bin``."""
    on_path = [shutil.which(tool) for tool in TOOLS]
    if all(on_path):
        return Path(str(on_path[0])).parent
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    for directory in versions:
        if all((directory / tool).is_file() for tool in TOOLS):
            return directory
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class PostgresServer:
    base: Path
    binaries: Path
    port: int
    run_as: tuple[str, ...]

    @property
    def data(self) -> Path:
        return self.base / "data"

    @property
    def socket_dir(self) -> Path:
        return self.base / "socket"

    @property
    def url(self) -> str:
        """The trusted unix-socket URL of the ``postgres`` database."""
        return f"postgresql://{USER}@/postgres?host={self.socket_dir}&port={self.port}"

    def tcp_url(self, password: str = PASSWORD) -> str:
        """A URL over TCP, which needs the password."""
        return f"postgresql://{USER}:{password}@127.0.0.1:{self.port}/postgres"

    def ctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self._run(str(self.binaries / "pg_ctl"), "-D", str(self.data), *args)

    def _run(self, *argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.run_as, *argv], capture_output=True, text=True, timeout=START_TIMEOUT_S
        )

    def init(self) -> None:
        pwfile = self.base / "pwfile"
        pwfile.write_text(PASSWORD + "\n")
        common = ["-D", str(self.data), "-U", USER, f"--pwfile={pwfile}", "-E", "UTF8"]
        common += ["--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync"]
        self._hand_over(pwfile)
        initdb = str(self.binaries / "initdb")
        done = self._run(initdb, *common, "--locale-provider=icu", "--icu-locale=en-US")
        if done.returncode != 0:  # a server built without ICU: its default collation
            shutil.rmtree(self.data, ignore_errors=True)
            done = self._run(initdb, *common)
        if done.returncode != 0:
            pytest.fail(f"initdb failed: {done.stdout}{done.stderr}")
        pwfile.unlink()

    def start(self) -> None:
        options = f"-p {self.port} -k {self.socket_dir} -c listen_addresses=127.0.0.1"
        options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        log = self.base / "server.log"
        done = self.ctl("-l", str(log), "-w", "-t", str(START_TIMEOUT_S), "-o", options, "start")
        if done.returncode != 0:
            text = log.read_text() if log.exists() else ""
            pytest.fail(f"postgres did not start: {done.stdout}{done.stderr}{text[-2000:]}")

    def stop(self) -> None:
        self.ctl("-m", "immediate", "stop")
        shutil.rmtree(self.base, ignore_errors=True)

    def _hand_over(self, *paths: Path) -> None:
        """When running as root, the server's files belong to the ``postgres`` user."""
        if not self.run_as:
            return
        owner = pwd.getpwnam("postgres")
        for path in (self.base, self.socket_dir, *paths):
            os.chown(path, owner.pw_uid, owner.pw_gid)


def start_server() -> PostgresServer:
    binaries = find_binaries()
    if binaries is None:
        pytest.skip(
            "PostgreSQL tier: no initdb/pg_ctl/postgres on PATH or in /usr/lib/postgresql/*/bin;"
            " install the OS package (Debian: postgresql) to run it"
        )
    run_as: tuple[str, ...] = ()
    if os.geteuid() == 0:
        if shutil.which("runuser") is None:
            pytest.skip("PostgreSQL tier: running as root and no runuser to drop to postgres")
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("PostgreSQL tier: running as root and there is no postgres OS user")
        run_as = ("runuser", "-u", "postgres", "--")
    # Under the system temp directory (traversable by the postgres user), not pytest's
    # per-user one (mode 0700).
    base = Path(tempfile.mkdtemp(prefix="mlspec-attest-pg-"))
    (base / "socket").mkdir()
    server = PostgresServer(base, binaries, _free_port(), run_as)
    server.init()
    server.start()
    return server


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A running PostgreSQL server for the whole session (started on first use)."""
    server = start_server()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def index_url(request: pytest.FixtureRequest) -> str | None:
    """Each index test runs twice: the SQLite index in the store (None), and PostgreSQL."""
    if request.param == "sqlite":
        return None
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return server.url
