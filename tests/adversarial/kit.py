"""The adversarial corpus's tools: a scenario registry, forging helpers, CLI runners.

Every scenario is one named test that starts from an honest pipeline
(``tests/support.py``'s :class:`Pipeline`: real keys, real files, real signatures),
applies one attack, runs ``mlspec-attest verify --json`` (or another real command)
and asserts the exit code **and** the reason. Attacker content is always signed
for real: with an attacker key made by :func:`generate_key`, or with a legitimate
functionary's key for insider scenarios. Nothing here mocks signing, hashing or
verification.

The registry (:data:`REGISTRY`) is the catalogue that ``README.md`` lists; a test
in ``test_catalog.py`` keeps the two in step.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from mlspec_attest.cli.main import main
from mlspec_attest.formats.bundle import BUNDLE_MEDIA_TYPE_V03
from mlspec_attest.formats.dsse import INTOTO_PAYLOAD_TYPE, pae
from mlspec_attest.formats.jsonio import canonical
from mlspec_attest.signing.keys import LocalKeySigner

from ..support import PROJECT_ROOT, Pipeline, read_bundle

INTERNAL_ERROR = 70

# ------------------------------------------------------------------ registry
CATEGORIES = {
    "envelope": "envelope and format tricks",
    "policy": "policy tricks",
    "keys": "key and threshold tricks",
    "schemes": "signature-scheme confusion",
    "paths": "path and file-system tricks",
    "replay": "replay and run mixing",
    "exhaustion": "resource exhaustion",
    "concurrency": "concurrency and crashes",
}


@dataclass(frozen=True)
class Scenario:
    """One named attack and what ``verify`` (or the named command) must answer."""

    name: str
    category: str
    attack: str
    code: int
    #: check names that must all be among the report's ``failures[].check`` (exit 1)
    checks: tuple[str, ...] = ()
    #: a substring of the error message (exit 2/3/4) or of a failure message (exit 1)
    message: str | None = None
    #: set when the scenario shows a real bug: the test is xfail(strict=True)
    bug: str | None = None
    #: shown in the README next to the reason (e.g. a documented limitation)
    note: str | None = None

    @property
    def reason(self) -> str:
        parts = [f"`{c}`" for c in self.checks]
        if self.message:
            parts.append(f"“{self.message}”")
        if self.code == 0 and not parts:
            parts.append("passes" if self.note else "passes (honest outcome)")
        if self.note:
            parts.append(self.note)
        return "; ".join(parts)


REGISTRY: dict[str, Scenario] = {}


def _category_of(module: str) -> str:
    name = module.rsplit(".", 1)[-1].removeprefix("test_")
    if name not in CATEGORIES:
        raise AssertionError(f"module {module} is not a category of the corpus")
    return name


def _register(s: Scenario) -> Scenario:
    if s.name in REGISTRY and REGISTRY[s.name] != s:
        raise AssertionError(f"scenario {s.name!r} registered twice")
    REGISTRY[s.name] = s
    return s


def _marks(s: Scenario) -> list[pytest.MarkDecorator]:
    return [pytest.mark.xfail(strict=True, reason=f"BUG: {s.bug}")] if s.bug else []


def scenario(
    name: str,
    attack: str,
    code: int,
    checks: Sequence[str] | None = (),
    message: str | None = None,
    *,
    bug: str | None = None,
    note: str | None = None,
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Decorate a test as one named scenario; it receives ``case`` (its Scenario)."""

    def decorate(fn: Callable[..., None]) -> Callable[..., None]:
        category = _category_of(fn.__module__)
        s = _register(
            Scenario(name, category, attack, code, tuple(checks or ()), message, bug, note)
        )
        return pytest.mark.parametrize("case", [pytest.param(s, id=name, marks=_marks(s))])(fn)

    return decorate


def case(
    module: str,
    name: str,
    attack: str,
    code: int,
    checks: Sequence[str] | None = (),
    message: str | None = None,
    *values: Any,
    bug: str | None = None,
) -> Any:
    """One ``pytest.param`` of a parametrized group: ``(case, *values)``, id = name."""
    s = _register(
        Scenario(name, _category_of(module), attack, code, tuple(checks or ()), message, bug)
    )
    return pytest.param(s, *values, id=name, marks=_marks(s))


def render_catalog() -> str:
    """The README's scenario table (and its list of known bugs), from the registry."""

    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    lines = [
        "| # | Scenario | Category | What the attacker does | Exit | Expected reason |",
        "|---|---|---|---|---|---|",
    ]
    ordered = sorted(REGISTRY.values(), key=lambda s: (list(CATEGORIES).index(s.category), s.name))
    for i, s in enumerate(ordered, 1):
        reason = s.reason + (" — **xfail: BUG**" if s.bug else "")
        lines.append(
            f"| {i} | `{s.name}` | {s.category} | {cell(s.attack)} | {s.code} | {cell(reason)} |"
        )
    lines += ["", "Scenarios per category:", ""]
    for key, title in CATEGORIES.items():
        count = sum(1 for s in REGISTRY.values() if s.category == key)
        lines.append(f"* {key} ({title}): {count}")
    lines.append(f"* total: {len(REGISTRY)}")
    bugs = [s for s in ordered if s.bug]
    lines += ["", "Known bugs (each scenario is `xfail(strict=True)` until fixed):", ""]
    lines += [f"* `{s.name}`: {cell(s.bug or '')}" for s in bugs]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------ outcomes
@dataclass
class Outcome:
    """What one command answered: exit code, its one JSON document, stderr."""

    code: int | None
    out: str
    err: str
    hang: str | None = None
    doc: Any = field(default=None)

    def __post_init__(self) -> None:
        if self.doc is None and self.out.strip():
            try:
                self.doc = json.loads(self.out)
            except ValueError:
                self.doc = None

    @property
    def checks(self) -> list[str]:
        if not isinstance(self.doc, dict):
            return []
        return [f["check"] for f in self.doc.get("failures", [])]

    @property
    def failure_text(self) -> str:
        if not isinstance(self.doc, dict):
            return ""
        return "\n".join(
            " | ".join(str(f.get(k, "")) for k in ("message", "expected", "found"))
            for f in self.doc.get("failures", [])
        )

    @property
    def error_message(self) -> str:
        if isinstance(self.doc, dict) and isinstance(self.doc.get("error"), dict):
            return str(self.doc["error"].get("message", ""))
        return self.err

    def describe(self) -> str:
        if self.hang:
            return f"hung ({self.hang})"
        return (
            f"exit {self.code}; checks {self.checks}; error {self.error_message[:300]!r}; "
            f"failures:\n{self.failure_text[:1500]}\nstderr: {self.err[-800:]}"
        )


def expect(outcome: Outcome, s: Scenario) -> None:
    """Assert the scenario's exit code and reason, and that nothing crashed.

    ``ADVERSARIAL_SHOW=1`` prints what each scenario got (run with ``-s``)."""
    if os.environ.get("ADVERSARIAL_SHOW"):
        print(f"\n[{s.name}] {outcome.describe()}")
    assert outcome.hang is None, f"{s.name}: {outcome.describe()}"
    assert outcome.code != INTERNAL_ERROR, f"{s.name}: internal error: {outcome.describe()}"
    assert "Traceback" not in outcome.err, f"{s.name}: traceback: {outcome.err[-2000:]}"
    assert outcome.code == s.code, f"{s.name}: expected exit {s.code}, got {outcome.describe()}"
    if s.code in (0, 1):
        assert isinstance(outcome.doc, dict), f"{s.name}: no JSON report: {outcome.describe()}"
        assert outcome.doc.get("result") == ("PASSED" if s.code == 0 else "FAILED"), outcome.doc
        if s.code == 0:
            assert outcome.checks == [], outcome.describe()
    missing = [c for c in s.checks if c not in outcome.checks]
    assert not missing, f"{s.name}: missing checks {missing}: {outcome.describe()}"
    if s.message:
        text = (
            outcome.failure_text
            if s.code == 1
            else "\n".join((outcome.error_message, outcome.out, outcome.err))
        )
        assert s.message in text, f"{s.name}: {s.message!r} not in: {outcome.describe()}"


# ------------------------------------------------------------------ running
class Cli:
    """Runs ``mlspec-attest`` in-process (``main([...])``) and captures its output."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self.capsys = capsys

    def __call__(self, *args: str | Path) -> Outcome:
        self.capsys.readouterr()
        with pytest.raises(SystemExit) as exit_info:
            main([str(a) for a in args])
        code = exit_info.value.code
        out, err = self.capsys.readouterr()
        return Outcome(code if isinstance(code, int) else int(code is not None), out, err)

    def verify(
        self,
        p: Pipeline,
        *extra: str | Path,
        artifacts: dict[str, Path] | None = None,
        run_id: str | None = None,
        policy: Path | None = None,
        policy_keys: Sequence[Path] | None = None,
    ) -> Outcome:
        return self(*verify_args(p, artifacts, run_id, policy, policy_keys), *extra)


def verify_args(
    p: Pipeline,
    artifacts: dict[str, Path] | None = None,
    run_id: str | None = None,
    policy: Path | None = None,
    policy_keys: Sequence[Path] | None = None,
) -> list[str | Path]:
    args: list[str | Path] = ["verify", "--policy", policy or p.signed_policy_path]
    for key in policy_keys if policy_keys is not None else [p.keys["owner"].pub_path]:
        args += ["--policy-key", key]
    args += ["--store", p.store_path]
    if run_id != "":
        args += ["--run-id", run_id or p.run_id]
    for role, path in (p.deploy_artifacts() if artifacts is None else artifacts).items():
        args += ["--artifact", f"{role}={path}"]
    return [*args, "--json"]


#: Kernel wait channels of a task blocked on a FIFO (open without a writer, or read).
FIFO_WAITS = ("wait_for_partner", "pipe_read", "pipe_wait", "fifo_open")


def _blocked_on_fifo(pid: int) -> str | None:
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return None
    for tid in tasks:
        try:
            wchan = Path(f"/proc/{pid}/task/{tid}/wchan").read_text().strip()
        except OSError:
            continue
        if any(w in wchan for w in FIFO_WAITS):
            return wchan
    return None


def run_limited(
    args: Sequence[str | Path],
    *,
    cwd: Path,
    memory: int = 768 * 1024 * 1024,
    cpu_seconds: int = 30,
    open_files: int | None = None,
    env: dict[str, str] | None = None,
    guard_seconds: float = 300.0,
) -> Outcome:
    """``python -m mlspec_attest ARGS`` in a child under setrlimit (address space, CPU,
    open files). A child found blocked on a FIFO (its kernel wait channel says so,
    several polls in a row) is killed and reported as a hang: no timing is asserted.
    ``guard_seconds`` is only a safety net against a runaway suite."""

    def limits() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds))
        if open_files is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, open_files))

    child_env = {k: v for k, v in os.environ.items() if not k.startswith("MLSPEC_")}
    child_env.update(MALLOC_ARENA_MAX="2", PYTHONPATH=str(PROJECT_ROOT), **(env or {}))
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mlspec_attest", *map(str, args)],
            cwd=cwd,
            env=child_env,
            preexec_fn=limits,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            text=True,
        )
        hang = None
        seen = 0
        deadline = time.monotonic() + guard_seconds
        while proc.poll() is None:
            wchan = _blocked_on_fifo(proc.pid)
            seen = seen + 1 if wchan else 0
            if seen >= 5 or time.monotonic() > deadline:
                hang = f"blocked in {wchan}" if wchan else "no exit before the safety net"
                proc.kill()  # our own child, by its pid
                proc.wait()
                break
            time.sleep(0.1)
        out.seek(0)
        err.seek(0)
        return Outcome(None if hang else proc.returncode, out.read(), err.read(), hang)


# ------------------------------------------------------------------ forging
def statement_of(path: Path) -> dict[str, Any]:
    """The in-toto statement inside a stored bundle (not verified)."""
    return json.loads(base64.b64decode(read_bundle(path)["dsseEnvelope"]["payload"]))


def mlspec(statement: dict[str, Any]) -> dict[str, Any]:
    meta: dict[str, Any] = statement["predicate"]["byproducts"]["mlspec"]
    return meta


def make_bundle(
    payload: bytes,
    signers: Sequence[LocalKeySigner],
    *,
    payload_type: str = INTOTO_PAYLOAD_TYPE,
    hint: str | None = "",
    media_type: str = BUNDLE_MEDIA_TYPE_V03,
) -> dict[str, Any]:
    """A Sigstore bundle whose DSSE envelope is signed for real by every signer.

    ``hint=""`` names the first signer's key (as ``sign`` does); None leaves it out.
    """
    message = pae(payload_type, payload)
    sigs = [{"sig": base64.b64encode(s.sign(message)).decode(), "keyid": ""} for s in signers]
    if hint == "":
        hint = signers[0].public_key.keyid
    material: dict[str, Any] = {"tlogEntries": []}
    if hint is not None:
        material["publicKey"] = {"hint": hint}
    return {
        "mediaType": media_type,
        "verificationMaterial": material,
        "dsseEnvelope": {
            "payload": base64.b64encode(payload).decode(),
            "payloadType": payload_type,
            "signatures": sigs,
        },
    }


def write_doc(path: Path, doc: Any) -> Path:
    path.write_bytes(canonical(doc))
    return path


def resign(
    p: Pipeline,
    stage: str,
    signer: LocalKeySigner,
    mutate: Callable[[dict[str, Any]], Any] | None = None,
    *,
    source_role: str | None = None,
    out: Path | None = None,
    keep: bool = False,
    payload_type: str = INTOTO_PAYLOAD_TYPE,
    raw: Callable[[dict[str, Any]], bytes] | None = None,
) -> Path:
    """Re-sign ``stage``'s honest statement, edited by ``mutate``, with ``signer``.

    The new bundle replaces the honest file unless ``keep`` (then it is written
    beside it, as ``out`` or ``<stage>.forged.sigstore.json``). ``raw`` builds the
    payload bytes itself (for payloads canonical JSON cannot express).
    """
    source = p.bundle_path(stage, source_role)
    statement = statement_of(source)
    if mutate is not None:
        mutate(statement)
    payload = raw(statement) if raw is not None else canonical(statement)
    target = out or (source.with_name(f"{stage}.forged.sigstore.json") if keep else source)
    if not keep and out is not None:
        source.unlink()
    write_doc(target, make_bundle(payload, [signer], payload_type=payload_type))
    return target


def edit_bundle(
    path: Path, edit: Callable[[dict[str, Any]], Any], *, to: Path | None = None
) -> Path:
    """Edit a stored bundle's JSON (no re-signing) and write it back (or to ``to``)."""
    doc = read_bundle(path)
    edit(doc)
    return write_doc(to or path, doc)


@contextlib.contextmanager
def cwd(path: Path) -> Iterator[None]:
    old = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


class Hang(AssertionError):
    """The command under test did not return (blocked on a FIFO or the like)."""


@contextlib.contextmanager
def hang_guard(seconds: int = 120) -> Iterator[None]:
    """A safety net for in-process scenarios that open attacker-chosen special files:
    if the code blocks (a FIFO opened without O_NONBLOCK ...), SIGALRM interrupts the
    system call and the scenario fails instead of hanging the suite. Nothing is timed:
    a correct verifier never comes near the limit."""

    def interrupt(signum: int, frame: Any) -> None:
        raise Hang(f"blocked for {seconds} s")

    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def kill_self() -> None:
    """SIGKILL the calling process: a crash at an exact point, nothing cleaned up."""
    os.kill(os.getpid(), signal.SIGKILL)
