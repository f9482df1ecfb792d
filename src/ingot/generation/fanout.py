"""Run several engine requests (``n`` choices, several prompts) as one stream.

All requests are admitted together before anything is sent, so a full queue or an
over-long prompt becomes one clean HTTP error instead of a broken stream; after that the
outputs interleave as the engine produces them.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import AsyncIterator

from ingot.engines.protocol import Engine, GenerationOutput, GenerationRequest

_DONE = object()


class Fanout:
    """Async iterator of ``(index, output)`` over several requests; use ``start()`` first."""

    def __init__(self, engine: Engine, requests: list[GenerationRequest]) -> None:
        self._engine = engine
        self._requests = requests
        self._gens = [engine.generate(r) for r in requests]
        self._firsts: list[GenerationOutput] = []
        self._queue: asyncio.Queue = asyncio.Queue()
        self._tasks: list[asyncio.Task] = []

    async def start(self) -> None:
        """Admit every request; raises the first admission error after undoing the rest."""
        results = await asyncio.gather(*(anext(g) for g in self._gens), return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            await self.close()
            raise errors[0]
        self._firsts = list(results)  # type: ignore[arg-type]

    async def _pump(self, index: int, gen: AsyncIterator[GenerationOutput]) -> None:
        try:
            async for out in gen:
                self._queue.put_nowait((index, out))
        except BaseException as exc:  # noqa: BLE001 - forwarded to the consumer
            self._queue.put_nowait((index, exc))
        finally:
            self._queue.put_nowait((index, _DONE))

    async def __aiter__(self) -> AsyncIterator[tuple[int, GenerationOutput]]:
        try:
            pending = 0
            for index, first in enumerate(self._firsts):
                yield index, first
                if first.finish_reason is None:
                    pending += 1
                    self._tasks.append(asyncio.create_task(self._pump(index, self._gens[index])))
            while pending:
                index, item = await self._queue.get()
                if item is _DONE:
                    pending -= 1
                elif isinstance(item, BaseException):
                    raise item
                else:
                    yield index, item
        finally:
            await self.close()

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(BaseException):
                await task
        for gen in self._gens:
            with contextlib.suppress(BaseException):
                await gen.aclose()  # its finally-block aborts the request in the engine
