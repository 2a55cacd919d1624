"""What the serving middleware costs: per request in process, and in throughput on loopback.

(a) Overhead per request: the same minimal inference application called directly as an
    ASGI app (no server, no sockets), bare and wrapped in ``MlspecMiddleware`` with an
    inference log; the median of each over ``--requests`` calls (interleaved, so drift
    hits both alike), and the difference: what the middleware and the log add to one
    inference request (/infer: body read, request id, held response, record, metrics).
    (a') the same with 32 requests in flight: the serving process's CPU per request.
    Each real log is measured in a round of its own (it alone open of them), as a server
    runs one (:func:`in_process`).
(b) Throughput: the same applications served by uvicorn on 127.0.0.1 (each in a
    process of its own), loaded by a load generator (``oha``, ``hey`` or ``wrk`` if one
    is installed, else keep-alive HTTP/1.1 clients on asyncio sockets in this process);
    requests per second of each, their ratio, and the server's CPU per request (its log
    writer process included). Besides the null application (the worst case: a fixed
    answer, no JSON, no model), ``--suite reference`` serves the reference server
    (``build_app``) of a real scikit-learn model, without the middleware (``ref-bare``)
    and with it (``ref-memory``, ``ref-journal``). Every load is checked: a load
    generator's error, or any answer but 200, stops the benchmark (a body-less request
    is answered 405 by the null app), so a figure is always of a logged inference.
    ``--fresh`` starts a new server for every round and keeps the median: where the
    operating system places the processes on a small machine moves one server's figure
    by up to a third. ``--together`` loads every app at once, ``--alternate`` each alone
    in turn (servers kept, order rotated); both report each app's ratio to the bare app
    of the same round.

The log is the package's: in memory (a list, the middleware alone), ``inline``
(``InferenceLog``), ``process`` (``LogWriterProcess``) or ``journal`` (``JournaledLog``,
the default of ``mlspec-attest serve``). Nothing is asserted: the numbers are printed
for docs/benchmarks.md.

    python benchmarks/serve_overhead.py [--requests 20000] [--load 20000] [--clients 32]
        [--rounds 3] [--fresh | --together | --alternate] [--pin [--writer-with-server]] [--writer-nice N] [--suite null|reference|both]
        [--processes 1]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from mlspec_attest.serve.middleware import MlspecMiddleware, set_output  # noqa: E402
from mlspec_attest.serve.model import Binding, ServedModel  # noqa: E402

NULL_APPS = ("bare", "memory", "inline", "process", "journal")
REFERENCE_APPS = ("ref-bare", "ref-memory", "ref-journal")
BODY = json.dumps(
    {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [[5.1, 3.5, 1.4, 0.2]]}]}
).encode()
PATH = "/v2/models/bench/infer"
ANSWER = b'{"model_name":"bench","outputs":[{"name":"predict","shape":[1],"datatype":"FP64","data":[0.5]}]}'
START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(ANSWER))],
}
BODY_MESSAGE = {"type": "http.response.body", "body": ANSWER}


class NullPredictor:
    def predict(self, rows: Any) -> list[Any]:
        return [0.5] * len(rows)


def served(predictor: Any = None) -> ServedModel:
    binding = Binding(
        "ab" * 32, "cd" * 32, "ef" * 32, "run-1", "2026-01-01T00:00:00Z", "urn:v", "urn:r"
    )
    predictor = predictor if predictor is not None else NullPredictor()
    return ServedModel("bench", "1", binding, predictor, "pickle", ("a", "b", "c", "d"))


async def bare_app(scope: Any, receive: Any, send: Any) -> None:
    """A minimal inference application: read the body, answer a fixed prediction."""
    if scope["type"] != "http":
        while scope["type"] == "lifespan":
            if (await receive())["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
        return
    if scope["method"] != "POST":  # a load generator that lost its body shows as non-2xx
        await send({**START, "status": 405})
        await send(BODY_MESSAGE)
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    set_output(scope, [0.5])
    await send(START)
    await send(BODY_MESSAGE)


class MemoryLog:
    """The middleware alone: each request's values handed over and counted, the last
    kept. Nothing more is kept: a list of every record made the in-memory variant pay
    the garbage collector for them (its full collections walk a heap that grows by one
    record per request), which the middleware does not cost a real log."""

    def __init__(self) -> None:
        self.count = 0
        self.last: Any = None

    def append(self, **fields: Any) -> dict[str, Any]:
        self.count += 1
        self.last = fields
        return fields

    def append_row(self, row: tuple[Any, ...]) -> None:
        self.count += 1
        self.last = row


def real_log(directory: Path, which: str) -> Any:
    """The package's inference log, opened in ``directory``, signing with a new key:
    written in this process (``inline``) or by a writer process (``process``)."""
    from mlspec_attest.log.checkpoint import default_origin
    from mlspec_attest.log.journaled import JournaledLog
    from mlspec_attest.log.process import LogWriterProcess
    from mlspec_attest.log.writer import InferenceLog
    from mlspec_attest.signing.keys import KeyType, generate_key

    model = served()
    origin = default_origin(model.name, model.binding.vsa_digest)
    kind = {"journal": JournaledLog, "process": LogWriterProcess}.get(which, InferenceLog)
    return kind.open(directory, generate_key(KeyType.ED25519), origin=origin)


def wrapped_app(which: str, directory: Path) -> Any:
    """The app behind the middleware, logging to memory or to the real log."""
    log = MemoryLog() if which == "memory" else real_log(directory, which)
    return MlspecMiddleware(bare_app, served=served(), log=log)


class Classifier:
    """A real scikit-learn model (logistic regression over 4 features, 3 classes)."""

    def __init__(self) -> None:
        import numpy as np
        from sklearn.linear_model import LogisticRegression

        rng = np.random.default_rng(7)
        x = rng.normal(size=(300, 4))
        self.model = LogisticRegression(max_iter=200).fit(x, (x[:, 0] > 0) + (x[:, 1] > 0))

    def predict(self, rows: Any) -> Any:
        return self.model.predict(rows)


def reference_app(which: str, directory: Path) -> Any:
    """The reference server (``build_app``: Starlette, the Open Inference Protocol's
    routes, JSON tensors, the model on its predict thread, or ``PREDICT_THREADS``) of a
    real scikit-learn model: ``ref-bare`` is the same routes without the middleware,
    ``ref-journal`` is ``build_app`` itself with the default journal log, ``ref-memory``
    with the in-memory log."""
    from starlette.applications import Starlette

    from mlspec_attest.serve.app import build_app
    from mlspec_attest.serve.config import ServeConfig
    from mlspec_attest.serve.endpoints import StatusEndpoints
    from mlspec_attest.serve.metrics import ServeMetrics
    from mlspec_attest.serve.oip import OipRoutes
    from mlspec_attest.serve.predict_threads import PredictThreads

    model = served(Classifier())
    config = ServeConfig(predict_threads=PREDICT_THREADS)
    if which == "ref-bare":
        endpoints = StatusEndpoints(metrics=ServeMetrics(), served=model, config=config)
        predict = PredictThreads(config.predict_threads)
        routes = Starlette(routes=OipRoutes(model, endpoints, None, predict).routes())
        return marked_as_logged(routes)
    log = MemoryLog() if which == "ref-memory" else real_log(directory, "journal")
    return build_app(model, log, config=config)


def marked_as_logged(app: Any) -> Any:
    """``app`` with every request marked as the middleware marks one it logs
    (``is_logged``): the reference routes predict only for such a request, and the bare
    server has no middleware to mark it. One dict store per request."""
    from mlspec_attest.serve.context import LOGGED_KEY

    async def marked(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            scope.setdefault("state", {})[LOGGED_KEY] = True
        await app(scope, receive, send)

    return marked


def make_app(which: str, directory: Path) -> Any:
    if which.startswith("ref-"):
        return reference_app(which, directory)
    return bare_app if which == "bare" else wrapped_app(which, directory)


def variants(directory: Path) -> dict[str, Any]:
    """bare, memory (middleware + in-memory log) and, when the package's writer opens,
    real (middleware + the real inference log)."""
    apps: dict[str, Any] = {"bare": bare_app, "memory": wrapped_app("memory", directory)}
    if importlib.util.find_spec("mlspec_attest.log.writer") is None:
        print("real log: mlspec_attest.log.writer does not exist yet; measured without it")
        return apps
    for which in ("inline", "process", "journal"):
        try:
            apps[which] = wrapped_app(which, directory / which)
        except Exception as exc:
            print(f"{which} log: cannot open it ({type(exc).__name__}: {exc}); measured without it")
    return apps


# ------------------------------------------------------------------ (a) in process
def scope() -> dict[str, Any]:
    return {
        "type": "http", "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": PATH, "raw_path": PATH.encode(), "query_string": b"", "root_path": "",
        "headers": [(b"host", b"127.0.0.1"), (b"content-type", b"application/json"),
                    (b"content-length", b"%d" % len(BODY)), (b"user-agent", b"bench")],
        "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8080), "state": {},
    }  # fmt: skip


async def one_call(app: Callable[..., Any]) -> int:
    request = {"type": "http.request", "body": BODY, "more_body": False}

    async def receive() -> dict[str, Any]:
        return request

    async def send(message: Any) -> None:
        return None

    started = time.perf_counter_ns()
    await app(scope(), receive, send)
    return time.perf_counter_ns() - started


async def overhead(requests: int, apps: dict[str, Any]) -> dict[str, float]:
    """Median µs of one inference request through each app, interleaved."""
    times: dict[str, list[int]] = {name: [] for name in apps}
    for _ in range(1000):  # warm up every path (caches, first records)
        for app in apps.values():
            await one_call(app)
    for _ in range(requests):
        for name, app in apps.items():
            times[name].append(await one_call(app))
    return {name: statistics.median(values) / 1000 for name, values in times.items()}


async def loaded(requests: int, clients: int, app: Callable[..., Any]) -> float:
    """CPU µs of this process per inference request with ``clients`` requests in flight
    at once (as a busy server has them): a writer process's own CPU is not counted here,
    it is in (b)."""

    async def client(count: int) -> None:
        for _ in range(count):
            await one_call(app)

    started = time.process_time()
    await asyncio.gather(*(client(requests // clients) for _ in range(clients)))
    return (time.process_time() - started) / (requests // clients * clients) * 1e6


async def under_load(requests: int, clients: int, apps: dict[str, Any]) -> dict[str, float]:
    """:func:`loaded` for each app, best of 3 (interleaved)."""
    best: dict[str, float] = {}
    for _ in range(3):
        for name, app in apps.items():
            cost = await loaded(requests, clients, app)
            best[name] = min(best.get(name, cost), cost)
    return best


# ------------------------------------------------------------------ (b) on loopback
def serve(which: str, port: int, directory: str) -> None:
    """Child process: serve the bare or the wrapped app until killed."""
    from mlspec_attest.serve.runner import serve_forever

    app = make_app(which, Path(directory))
    serve_forever(
        app, port=port, log_level="warning", on_started=lambda url: print(url, flush=True)
    )


def free_port() -> int:
    from mlspec_attest.serve.runner import bind

    sock = bind("127.0.0.1", 0)
    try:
        return int(sock.getsockname()[1])
    finally:
        sock.close()


def load_tool() -> str | None:
    for tool in ("oha", "hey", "wrk"):
        if shutil.which(tool):
            return tool
    return None


def tool_argv(tool: str, url: str, total: int, clients: int, body_file: Path) -> list[str]:
    """The command line of an installed load generator posting the body to ``url``."""
    if tool in ("oha", "hey"):
        argv = [tool, "-n", str(total), "-c", str(clients), "-m", "POST", "-D", str(body_file),
                "-T", "application/json"]  # fmt: skip
        return [*argv, "--no-tui", "-j", url] if tool == "oha" else [*argv, url]
    script = body_file.with_suffix(".lua")  # wrk posts a body through a Lua script
    assert b"]==]" not in BODY  # the body goes into a Lua long string of level 2
    script.write_text(
        f"wrk.method = 'POST'\nwrk.body = [==[{BODY.decode()}]==]\n"
        "wrk.headers['Content-Type'] = 'application/json'\n"
    )
    seconds = max(5, total // 2000)
    return ["wrk", "-t1", f"-c{clients}", f"-d{seconds}s", "-s", str(script), url]


def tool_result(tool: str, out: str, err: str, total: int) -> tuple[float, int]:
    """Requests per second and requests answered, from a load generator's output; an
    error if it reported one or any answer was not 2xx."""
    if tool == "oha":
        return float(json.loads(out)["summary"]["requestsPerSec"]), total
    if tool == "hey":
        return _rate(out), total
    if err.strip():  # wrk runs on (with GET and no body) when its script fails
        raise RuntimeError(f"wrk: {err.strip()}")
    if "Non-2xx" in out:
        raise RuntimeError(f"wrk: some answers were not 200:\n{out}")
    answered = next(line for line in out.splitlines() if " requests in " in line)
    return _rate(out), int(answered.split()[0])


def run_tool(
    tool: str, url: str, total: int, clients: int, body_file: Path, cpus: set[int] | None = None
) -> tuple[float, int]:
    """Requests per second measured by an installed load generator, and the requests."""
    argv = pinned(tool_argv(tool, url, total, clients, body_file), cpus)
    done = subprocess.run(argv, capture_output=True, text=True, check=True)
    return tool_result(tool, done.stdout, done.stderr, total)


def pinned(argv: list[str], cpus: set[int] | None) -> list[str]:
    """``argv`` run on ``cpus`` only (all of them if None)."""
    if cpus is None:
        return argv
    return ["taskset", "-c", ",".join(map(str, sorted(cpus))), *argv]


def pin_tree(pid: int, cpus: set[int]) -> None:
    """Every thread of process ``pid`` and of its child processes onto ``cpus``."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        os.sched_setaffinity(int(task.name), cpus)
        for child in (task / "children").read_text().split():
            pin_tree(int(child), cpus)


def _rate(out: str) -> float:
    return float(next(line for line in out.splitlines() if "Requests/sec" in line).split()[-1])


async def socket_load(url: str, total: int, clients: int) -> float:
    """Requests per second from ``clients`` keep-alive connections, each a plain HTTP/1.1
    client on asyncio streams (an httpx client costs more CPU than the server measured)."""
    host, port = url.removeprefix("http://").split("/")[0].split(":")
    request = (
        f"POST {PATH} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(BODY)}\r\n\r\n"
    ).encode() + BODY
    remaining = total

    async def worker() -> None:
        nonlocal remaining
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            while remaining > 0:
                remaining -= 1
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                if not head.startswith(b"HTTP/1.1 200"):
                    raise RuntimeError(head.decode(errors="replace"))
                length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                await reader.readexactly(length)
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    return total / (time.perf_counter() - started)


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of process ``pid`` and of its live descendants (the log's
    writer process), from /proc; 0 where /proc does not have it."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return 0.0
    own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return own + sum(cpu_seconds(int(child)) for child in children)


#: ``--predict-threads``: the reference server's (``serve --predict-threads``).
PREDICT_THREADS = 1

#: ``--pin``: the CPUs of the servers, and those of the load generators and the log's
#: writer processes; None: wherever the operating system puts them.
PLACEMENT: tuple[set[int], set[int]] | None = None

#: ``--writer-with-server``: with ``--pin``, each log's writer process stays on the server's
#: CPU (the server pays for its log: a container with one CPU), not the load generator's.
WRITER_WITH_SERVER = False

#: ``--writer-nice``: the niceness each log's writer process is given once started (0: as
#: the server; higher: the server's requests come first where they share a CPU).
WRITER_NICE = 0

#: How long a log's access log must stay unchanged to count as caught up: ten times the
#: journal's notify delay (NOTIFY_DELAY_S), the longest a record waits for its word.
SETTLE_S = 0.2

#: Per app, how long its log took to catch up after each load (:meth:`Served.sustained`).
LAGS: dict[str, list[float]] = {}


def placement() -> tuple[set[int], set[int]]:
    """The last CPU for the servers, the others for everything else."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        raise SystemExit("--pin needs at least two CPUs")
    return {cpus[-1]}, set(cpus[:-1])


class Served:
    """One app served by uvicorn in a child process on 127.0.0.1, until closed."""

    def __init__(self, which: str, directory: Path) -> None:
        directory.mkdir(parents=True)
        self.which, self.directory, port = which, directory, free_port()
        argv = [sys.executable, __file__, "--serve", which, "--port", str(port),
                "--dir", str(directory), "--predict-threads", str(PREDICT_THREADS)]  # fmt: skip
        self.child = subprocess.Popen(
            pinned(argv, PLACEMENT[0] if PLACEMENT else None), stdout=subprocess.PIPE, text=True
        )
        assert self.child.stdout is not None
        self.url = self.child.stdout.readline().strip() + PATH
        self.body_file = directory / "body.json"
        self.body_file.write_bytes(BODY)
        children = Path(f"/proc/{self.child.pid}/task/{self.child.pid}/children")
        for child in children.read_text().split():
            if PLACEMENT is not None and not WRITER_WITH_SERVER:  # beside the load generator
                pin_tree(int(child), PLACEMENT[1])
            if WRITER_NICE:
                os.setpriority(os.PRIO_PROCESS, int(child), WRITER_NICE)

    def start_load(self, total: int, clients: int, tool: str) -> subprocess.Popen[str]:
        """The load generator, started against this server (for :func:`tool_result`)."""
        argv = tool_argv(tool, self.url, total, clients, self.body_file)
        return subprocess.Popen(
            pinned(argv, PLACEMENT[1] if PLACEMENT else None),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def load(self, total: int, clients: int, tool: str | None) -> tuple[float, float]:
        """Requests per second until the log had caught up (:meth:`settled`), and the
        server's CPU µs per request (its writer process's included, until then)."""
        cpu_before = cpu_seconds(self.child.pid)
        if tool is not None:
            cpus = PLACEMENT[1] if PLACEMENT else None
            rate, answered = run_tool(tool, self.url, total, clients, self.body_file, cpus)
        else:
            rate, answered = asyncio.run(socket_load(self.url, total, clients)), total
        rate = self.sustained(rate, answered, time.time())
        cpu = cpu_seconds(self.child.pid) - cpu_before
        return rate, cpu / max(answered, 1) * 1e6

    def sustained(self, rate: float, answered: int, ended: float) -> float:
        """``rate`` over the load and the log's catch-up after it (``ended``, wall-clock
        time): a writer that falls behind under load does its work after the load
        generator stops, and that time counts (recorded in :data:`LAGS`)."""
        lag = self.settled(ended)
        LAGS.setdefault(self.which, []).append(lag)
        return answered / (answered / rate + lag)

    def settled(self, ended: float) -> float:
        """Once the log's access log has stopped growing: how many seconds after
        ``ended`` it last grew (0 without a log, or if it had caught up by then)."""
        path = self.directory / "access.log"
        if not path.exists():
            return 0.0
        last, still = path.stat(), time.perf_counter()
        while time.perf_counter() - still < SETTLE_S:
            time.sleep(0.005)
            now = path.stat()
            if (now.st_size, now.st_mtime_ns) != (last.st_size, last.st_mtime_ns):
                last, still = now, time.perf_counter()
        return max(0.0, last.st_mtime_ns / 1e9 - ended)

    def warm_up(self, total: int, clients: int) -> None:
        """A tenth of a load, then wait until its records are written."""
        asyncio.run(socket_load(self.url, total // 10, clients))
        self.settled(time.time())

    def close(self) -> None:
        self.child.terminate()
        self.child.wait(timeout=60)


def throughput(
    names: list[str], total: int, clients: int, tool: str | None, root: Path, rounds: int
) -> dict[str, tuple[float, float]]:
    """Per app: the best requests/s of ``rounds`` interleaved rounds (this machine's
    neighbours are noisy; the best is the least disturbed) and its CPU µs per request."""
    servers = {name: Served(name, root / f"serve-{name}") for name in names}
    best: dict[str, tuple[float, float]] = {}
    try:
        for server in servers.values():
            server.warm_up(total, clients)
        for _ in range(rounds):
            for name, server in servers.items():
                rate, cost = server.load(total, clients, tool)
                if name not in best or rate > best[name][0]:
                    best[name] = (rate, cost)
    finally:
        for server in servers.values():
            server.close()
    return best


def rotated(names: list[str], round_: int) -> list[str]:
    """``names`` rotated by one per round: each app in each place equally often."""
    shift = round_ % len(names)
    return names[shift:] + names[:shift]


def fresh_throughput(
    names: list[str], total: int, clients: int, tool: str | None, root: Path, rounds: int
) -> dict[str, tuple[float, float]]:
    """Per app: the median requests/s (and its CPU µs per request) of ``rounds``
    interleaved rounds, each on a server process started for it. Where the operating
    system places the server, its writer process and the load generator on two vCPUs
    moves one server's figure by up to a third; a new process each round samples that."""
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in names}
    for round_ in range(rounds):
        for name in names:
            server = Served(name, root / f"fresh-{round_}-{name}")
            try:
                server.warm_up(total, clients)
                runs[name].append(server.load(total, clients, tool))
            finally:
                server.close()
    return {name: sorted(got)[len(got) // 2] for name, got in runs.items()}


def alternate_throughput(
    names: list[str], total: int, clients: int, tool: str | None, root: Path, rounds: int
) -> dict[str, list[float]]:
    """Per app: its requests/s in each of ``rounds`` rounds in which each app is loaded
    alone, one after the other, in an order rotated by one app per round, by servers kept
    for the whole run (the others idle meanwhile). Each server has the CPU (with
    ``--pin``, the servers' CPU) to itself while it is loaded, as a deployed server
    does; the ratio to the bare app of the same round cancels the VM's slow and fast
    minutes as far as a few seconds apart can. A log's rate runs until it has caught up."""
    servers = {name: Served(name, root / f"alternate-{name}") for name in names}
    runs: dict[str, list[float]] = {name: [] for name in names}
    try:
        for server in servers.values():
            server.warm_up(total, clients)
        for round_ in range(rounds):
            for name in rotated(names, round_):
                runs[name].append(servers[name].load(total, clients, tool)[0])
    finally:
        for server in servers.values():
            server.close()
    return runs


def together_throughput(
    names: list[str], total: int, clients: int, tool: str | None, root: Path, rounds: int
) -> dict[str, list[float]]:
    """Per app: its requests/s in each of ``rounds`` rounds in which every app is served
    and loaded at once, each by a load generator of its own. The apps share the machine's
    slow and fast seconds alike, so the ratio of two of them in one round is not moved by
    the VM's neighbours; it is the ratio of what each costs a request on the CPUs they
    share (with ``--pin``, the servers' one CPU), not of each alone on the machine. A
    log's rate runs until it has caught up (:meth:`Served.sustained`).

    Each round starts new servers, in an order rotated by one app per round: three copies
    of one app served together this way answered 3-7 % less in the first place started
    than in the others, round after round (whatever the cause, it is not the app), so a
    fixed order would have favoured the apps started last. Give ``rounds`` a multiple of
    the number of apps to put each in each place equally often."""
    if tool is None:
        raise SystemExit("--together needs a load generator: wrk, oha or hey")
    runs: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(rounds):
        order = rotated(names, round_)
        servers = {name: Served(name, root / f"together-{round_}-{name}") for name in order}
        try:
            for server in servers.values():
                server.warm_up(total, clients)  # its records written before the load
            loads = {
                name: server.start_load(total, clients, tool) for name, server in servers.items()
            }
            results = {
                name: tool_result(tool, *load.communicate(), total) for name, load in loads.items()
            }
            ended = time.time()
            for name, (rate, answered) in results.items():
                runs[name].append(servers[name].sustained(rate, answered, ended))
        finally:
            for server in servers.values():
                server.close()
    return runs


def print_together(runs: dict[str, list[float]]) -> None:
    for which, rates in runs.items():
        base = runs["ref-bare" if which.startswith("ref-") else "bare"]
        ratios = sorted(rate / bare for rate, bare in zip(rates, base, strict=True))
        print(
            f"    {which:11}  {statistics.median(rates):10.0f} requests/s (median)  "
            f"of bare in the same round: median {statistics.median(ratios):.3f}, "
            f"{ratios[0]:.3f}-{ratios[-1]:.3f}{lag_note(which)}"
        )


def lag_note(which: str) -> str:
    """How long a log took to catch up after the load generator stopped (counted)."""
    lags = LAGS.get(which, [])
    if not any(lags):
        return ""
    return f"  log caught up {statistics.median(lags) * 1000:.0f} ms after (median; max {max(lags) * 1000:.0f})"


def got_bare(kept: dict[str, float], got: dict[str, float]) -> float:
    """The bare app's figure everything is reported against: the first round's."""
    return kept.get("bare", got["bare"])


def in_process(
    apps: dict[str, Any], requests: int, clients: int
) -> tuple[dict[str, float], dict[str, float]]:
    """(a) and (a') of every app. A server runs one log: each real log is measured with
    only its own processes alive, interleaved with the bare app and the in-memory log, then
    closed. (With all of them open, the acknowledged writer's round trip left the CPUs idle
    and cold for whatever ran next: every other figure rose with it, the bare app's from 1.7
    to 3.9 µs.) The bare app and the in-memory log keep their figures from the first round;
    a log's figure is its overhead over the bare app of its own round, added to that."""
    logs: list[str | None] = [name for name in apps if name not in ("bare", "memory")]
    base = {name: apps[name] for name in ("bare", "memory")}
    medians: dict[str, float] = {}
    busy: dict[str, float] = {}
    for name in logs or [None]:  # no real log: one round of the bare app and the middleware
        group = {**base, **({name: apps[name]} if name else {})}
        got = asyncio.run(overhead(requests, group))
        loaded = asyncio.run(under_load(requests, clients, group))
        for key in group:  # a log's figure against the bare app of its own round
            if key == name or key not in medians:
                medians[key] = got[key] - got["bare"] + got_bare(medians, got)
                busy[key] = loaded[key] - loaded["bare"] + got_bare(busy, loaded)
        if name:
            close = getattr(getattr(apps[name], "log", None), "close", None)
            if callable(close):
                close()
    return medians, busy


def across_processes(processes: int, requests: int, clients: int) -> list[dict[str, float]]:
    """(a) in ``processes`` new processes, one after the other: per process, each app's
    overhead over the bare app (and the bare app's own time under "bare"). Where a
    process's code and data land (address-space randomization) moved one process's
    journal figure between two levels on the Intel Xeon VM, about 9 and 13 µs; a single
    process samples one of them."""
    runs = []
    for _ in range(processes):
        argv = [sys.executable, __file__, "--in-process-json", "--requests", str(requests),
                "--clients", str(clients)]  # fmt: skip
        out = subprocess.run(argv, check=True, capture_output=True, text=True).stdout
        medians = json.loads(out.strip().splitlines()[-1])
        runs.append({k: v - medians["bare"] if k != "bare" else v for k, v in medians.items()})
    return runs


def print_processes(runs: list[dict[str, float]]) -> None:
    print(f"(a) in process, {len(runs)} processes, median µs of each process's inference requests:")
    for name in runs[0]:
        got = sorted(run[name] for run in runs)
        what = "bare app" if name == "bare" else f"{name} overhead"
        print(f"    {what:18} median {statistics.median(got):6.2f}  range {got[0]:.2f}-{got[-1]:.2f}  "
              f"each: {' '.join(f'{v:.2f}' for v in (run[name] for run in runs))}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--load", type=int, default=20000)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3, help="(b): interleaved rounds, best kept")
    parser.add_argument(
        "--fresh", action="store_true", help="(b): a new server each round, the median kept"
    )
    parser.add_argument(
        "--together",
        action="store_true",
        help="(b): every app served and loaded at once, the ratio taken in each round (new servers each round, their order rotated: give --rounds a multiple of the apps)",
    )
    parser.add_argument(
        "--alternate",
        action="store_true",
        help="(b): servers kept, each loaded alone in turn (a rotated order), the ratio to the bare app taken in each round",
    )
    parser.add_argument(
        "--pin",
        action="store_true",
        help="(b): the servers on the last CPU, load generators and log writers on the others",
    )
    parser.add_argument(
        "--writer-with-server",
        action="store_true",
        help="(b), with --pin: each log's writer process on the server's CPU, not beside the load generators (the server pays for its whole log, as in a container of one CPU)",
    )
    parser.add_argument(
        "--writer-nice",
        type=int,
        default=0,
        help="(b): the niceness given to each log's writer process once started",
    )
    parser.add_argument(
        "--predict-threads",
        type=int,
        default=1,
        help="(b): the reference server's predict threads (0: on the event loop)",
    )
    parser.add_argument("--skip-in-process", action="store_true", help="(b) only")
    parser.add_argument(
        "--processes",
        type=int,
        default=1,
        help="(a): in this many new processes, the median and range reported",
    )
    parser.add_argument("--in-process-json", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--serve", choices=[*NULL_APPS, *REFERENCE_APPS])
    parser.add_argument(
        "--suite",
        choices=["null", "reference", "both"],
        default="both",
        help="(b): the null application, the reference server of a real model, or both",
    )
    parser.add_argument("--port", type=int)
    parser.add_argument("--dir")
    args = parser.parse_args()
    global PLACEMENT, PREDICT_THREADS, WRITER_WITH_SERVER, WRITER_NICE
    PREDICT_THREADS = args.predict_threads
    WRITER_WITH_SERVER, WRITER_NICE = args.writer_with_server, args.writer_nice
    if args.serve:
        serve(args.serve, args.port, args.dir)
        return
    if args.in_process_json:  # a child of --processes: (a) once, as JSON
        with tempfile.TemporaryDirectory() as tmp:
            print(json.dumps(in_process(variants(Path(tmp)), args.requests, args.clients)[0]))
        return
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    )
    PLACEMENT = placement() if args.pin else None
    if args.processes > 1 and not args.skip_in_process:  # before this process opens any log
        print_processes(across_processes(args.processes, args.requests, args.clients))
        args.skip_in_process = True
    with tempfile.TemporaryDirectory() as tmp:
        apps = variants(Path(tmp))
        if not args.skip_in_process:
            print_in_process(*in_process(apps, args.requests, args.clients), args.clients)
        tool = load_tool()
        names = list(apps) if args.suite != "reference" else []
        names += list(REFERENCE_APPS) if args.suite != "null" else []
        where = f"; servers on CPU {PLACEMENT[0]}, the rest on {PLACEMENT[1]}" if PLACEMENT else ""
        where += " (log writers with their servers)" if PLACEMENT and WRITER_WITH_SERVER else ""
        if args.together or args.alternate:
            how = "every app at once" if args.together else "each app alone, in turn"
            print(f"(b) throughput on loopback, {how}, {args.rounds} rounds of "
                  f"{args.load} requests, {args.clients} clients each, load generator: {tool}{where}")  # fmt: skip
            measure_rounds = together_throughput if args.together else alternate_throughput
            print_together(
                measure_rounds(names, args.load, args.clients, tool, Path(tmp), args.rounds)
            )
            return
        kept = "median of a new server in each" if args.fresh else "best"
        print(f"(b) throughput on loopback, {kept} of {args.rounds} rounds of {args.load} requests, {args.clients} clients, "
              f"load generator: {tool or 'keep-alive asyncio socket clients (no oha or hey installed)'}{where}")  # fmt: skip
        measure = fresh_throughput if args.fresh else throughput
        results = measure(names, args.load, args.clients, tool, Path(tmp), args.rounds)
        for which, (rate, cost) in results.items():
            base = "ref-bare" if which.startswith("ref-") else "bare"
            bare_rate, bare_cost = results[base]
            print(
                f"    {which:11}  {rate:10.0f} requests/s  ({rate / bare_rate:.2f} of {base})  "
                f"server CPU {cost:6.1f} µs/request (+{cost - bare_cost:5.1f}){lag_note(which)}"
            )


def print_in_process(medians: dict[str, float], busy: dict[str, float], clients: int) -> None:
    bare = medians["bare"]
    print("(a) in process, median of the inference requests of each:")
    print(f"    bare app                           {bare:8.2f} µs")
    for name, label in (
        ("memory", "middleware + in-memory log"),
        ("inline", "middleware + InferenceLog"),
        ("process", "middleware + LogWriterProcess"),
        ("journal", "middleware + JournaledLog"),
    ):
        if name in medians:
            cost = medians[name]
            print(f"    {label:34} {cost:8.2f} µs  overhead {cost - bare:7.2f} µs")
    print(f"(a') in process, {clients} requests in flight, CPU of this process per request:")
    for name, cost in busy.items():
        print(f"    {name:8}  {cost:8.2f} µs  overhead {cost - busy['bare']:7.2f} µs")


if __name__ == "__main__":
    main()
