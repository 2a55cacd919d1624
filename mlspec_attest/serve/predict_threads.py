"""Where the reference server runs a model's ``predict``: :class:`PredictThreads`.

A model's ``predict`` is ordinary blocking Python, so the server does not run it on the
event loop (a slow model would hold up ``/ok``, ``/metrics`` and every other request).
It does not hand it to a general thread pool either: with 32 requests in flight,
Starlette's pool (anyio's, up to 40 threads) runs up to 32 predictions at once, and
they and the event loop pass the one GIL between them. On the 2-vCPU VM of
docs/benchmarks.md that was about four context switches per request; a small fixed set
of threads made it 0.4, and the same server answered a fifth more requests per second.

* ``threads=1`` (the default): one thread, predictions in arrival order. Right for
  any model whose ``predict`` holds the GIL (scikit-learn, XGBoost's Python side,
  most pure-Python code): more threads would only wait for each other.
* ``threads=N``: up to N at once, for a model that releases the GIL for long (ONNX
  Runtime, large NumPy/BLAS work) on a machine with the cores for it.
* ``threads=0``: on the event loop itself. The fastest for a model that answers in
  well under a millisecond; while it runs, nothing else on the server is answered.

A prediction still queued when its request is cancelled (the client went away) is
dropped without running.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from mlspec_attest.serve.config import check_thread_count

T = TypeVar("T")
Rows = TypeVar("Rows")


class PredictThreads:
    """The threads one server's model predicts on (see the module docstring). Made
    when the first prediction needs them; :meth:`close` lets them finish and end."""

    def __init__(self, threads: int = 1) -> None:
        self.threads = check_thread_count(threads)
        self._executor: ThreadPoolExecutor | None = None
        self._closed = False

    async def run(self, predict: Callable[[Rows], T], rows: Rows) -> T:
        """``predict(rows)`` on these threads (or inline with none), as its result."""
        if self.threads == 0:
            return predict(rows)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool(), predict, rows)

    def _pool(self) -> ThreadPoolExecutor:
        if self._executor is None:
            if self._closed:
                raise RuntimeError("the server's predict threads are closed")
            self._executor = ThreadPoolExecutor(self.threads, thread_name_prefix="mlspec-predict")
        return self._executor

    def close(self) -> None:
        """No new predictions; the threads end once the running ones finish."""
        self._closed = True
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
