"""Dynamic batching for compute-bound encoders (embeddings, cross-encoders).

One owner task holds the queue (TEI's design): items from concurrent requests that arrive
while the worker is busy run together as the next batch on a single worker thread.

An idle worker waits ``max_wait`` for company only during a burst (a request arrived less
than ``burst_window`` before this one). Measured here (benchmarks/RESULTS.md): always
waiting doubled the p50 latency of lone requests; never waiting let a burst of 64 start
with batches of one. A request waits for all of its items; a full queue is refused at
once with QueueFullError (429) instead of growing without bound.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Generic, Sequence, TypeVar

from ingot.cpu_demand import PROCESS, CpuDemand
from ingot.errors import QueueFullError

I = TypeVar("I")
O = TypeVar("O")


@dataclass
class _Request(Generic[I, O]):
    items: Sequence[I]
    future: asyncio.Future
    results: list = field(default_factory=list)
    remaining: int = 0


class DynamicBatcher(Generic[I, O]):
    def __init__(
        self,
        fn: Callable[[list[I]], Sequence[O]],
        *,
        name: str,
        max_batch_items: int = 64,
        max_wait_s: float = 0.003,
        burst_window_s: float = 0.002,
        max_pending_items: int = 8192,
        on_batch: Callable[[int, float], None] | None = None,
        demand: CpuDemand = PROCESS,
    ) -> None:
        self._fn = fn
        self._demand = demand  # a batch counts as CPU work beside generation (cpu_demand.py)
        self._name = name
        self._max_batch = max_batch_items
        self._max_wait = max_wait_s
        self._burst_window = burst_window_s
        self._last_arrival = 0.0
        self._burst = False
        self._max_pending = max_pending_items
        self._queue: deque[tuple[_Request, int]] = deque()
        self._wakeup = asyncio.Event()
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._task: asyncio.Task | None = None
        self._on_batch = on_batch  # (batch size, seconds) for metrics
        self.batches_run = 0
        self.items_run = 0

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop(), name=f"{self._name}-batcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        self._executor.shutdown(wait=True, cancel_futures=True)

    def pending(self) -> int:
        return len(self._queue)

    async def run(self, items: Sequence[I]) -> list[O]:
        """Process ``items`` (in order) as part of whatever batches form."""
        if not items:
            return []
        self.start()
        if len(self._queue) + len(items) > self._max_pending:
            raise QueueFullError(f"{self._name} queue is full ({len(self._queue)} items waiting)", retry_after=1)
        loop = asyncio.get_running_loop()
        now = loop.time()
        self._burst = now - self._last_arrival < self._burst_window
        self._last_arrival = now
        future = loop.create_future()
        request: _Request = _Request(items=items, future=future, results=[None] * len(items), remaining=len(items))
        self._queue.extend((request, i) for i in range(len(items)))
        self._wakeup.set()
        return await future

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            if self._burst and len(self._queue) < self._max_batch and self._max_wait > 0:
                await asyncio.sleep(self._max_wait)  # a burst is arriving: let it join
            while self._queue:
                batch = self._take()
                if not batch:
                    continue
                started = loop.time()
                try:
                    outputs = await loop.run_in_executor(self._executor, self._compute, [r.items[i] for r, i in batch])
                except Exception as exc:  # noqa: BLE001 - delivered to the requests in the batch
                    for request, _ in batch:
                        if not request.future.done():
                            request.future.set_exception(exc)
                    continue
                self.batches_run += 1
                self.items_run += len(batch)
                if self._on_batch is not None:
                    self._on_batch(len(batch), loop.time() - started)
                for (request, i), output in zip(batch, outputs):
                    request.results[i] = output
                    request.remaining -= 1
                    if request.remaining == 0 and not request.future.done():
                        request.future.set_result(request.results)

    def _compute(self, items: list[I]) -> Sequence[O]:
        with self._demand.hold(self._name):
            return self._fn(items)

    def _take(self) -> list[tuple[_Request, int]]:
        batch: list[tuple[_Request, int]] = []
        while self._queue and len(batch) < self._max_batch:
            request, i = self._queue.popleft()
            if request.future.done():  # cancelled (client gone) or failed: skip its items
                continue
            batch.append((request, i))
        return batch
