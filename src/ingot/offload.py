"""Request-sized CPU work (chat-template rendering, tokenization, JSON of big answers) off
the event-loop thread, in one small bounded pool.

Why: the event loop serves every request, the liveness probe included. A 30 MB prompt
tokenized on it stalled every other request for 16 s; in a worker thread the loop keeps
answering (llama.cpp's and Hugging Face's tokenizers release the GIL, and Python code in a
worker yields it every switch interval).

Why bounded: a flood of huge requests must not queue unbounded work. At most ``workers``
jobs run at once and at most ``max_waiting`` wait; beyond that the request is refused
with 429 (``QueueFullError``) instead of piling up.

Why small work stays inline: a thread hop costs more than tokenizing a chat turn, and
small requests should not wait behind a big one in the pool's queue. Callers pass the
work's size (characters of text); below ``inline_below`` it runs on the loop at once.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, TypeVar

from ingot.errors import QueueFullError

T = TypeVar("T")

INLINE_BELOW = 16_384  # characters: ~8 ms of llama.cpp tokenization at most, fine on the loop


class CpuPool:
    """A fixed set of worker threads with a bounded waiting line (see the module doc)."""

    def __init__(self, workers: int, max_waiting: int, inline_below: int = INLINE_BELOW) -> None:
        self.workers = workers
        self.max_waiting = max_waiting
        self.inline_below = inline_below
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ingot-cpu")
        self._pending = 0  # submitted and not finished (a worker thread decrements it)
        self._lock = threading.Lock()

    @property
    def pending(self) -> int:
        return self._pending

    async def run(self, fn: Callable[..., T], *args: object, size: int | None = None) -> T:
        """``fn(*args)``: inline when ``size`` is small, else in a worker thread (429 when
        the line is full). The caller's context variables (request id for log lines) go
        along. A cancelled caller does not stop a job already running; its result is dropped."""
        if size is not None and size < self.inline_below:
            return fn(*args)
        if self._pending >= self.workers + self.max_waiting:
            raise QueueFullError(
                f"the server is busy preparing other large requests ({self._pending} in line); retry shortly",
                retry_after=1,
            )
        call = functools.partial(contextvars.copy_context().run, fn, *args)
        with self._lock:
            self._pending += 1
        future = self._executor.submit(call)
        future.add_done_callback(self._finished)  # counted until the job ends, even if the caller left
        return await asyncio.wrap_future(future)

    def _finished(self, _future: object) -> None:
        with self._lock:
            self._pending -= 1


def _default_workers() -> int:
    return max(2, min(4, (os.cpu_count() or 2) // 2))


# One pool for the process: the routes and services of one server share the CPU, so they
# share its bound. Threads start on first use, so importing this costs nothing.
REQUEST_POOL = CpuPool(workers=_default_workers(), max_waiting=64)
