"""Who else in this process is computing right now, so llama.cpp can share the cores.

Why: llama.cpp's worker threads meet at a barrier after every graph node and spin while
they wait. On an otherwise idle 2-core machine two threads generate 1.9x faster than one;
while the ONNX embedder also encodes, the same two threads decode 2.5x *slower* than one,
and the embedder loses a fifth of its throughput (benchmarks/RESULTS.md, "llama.cpp threads
under load"). No fixed thread count is right for both, so the CPU-heavy work that runs
beside generation in the server process (encoder batches, extraction children) holds a
claim here while it runs, and the llama.cpp scheduler reads :meth:`CpuDemand.busy` before
each step to pick its thread count (engines/llamacpp/threads.py).

One object per process (:data:`PROCESS`): the cores are a process-wide (really machine-wide)
resource, and the holders (batchers, the ingest runner) are built far from the engine.
Other processes on the machine are not seen; set ``threads`` lower where they compete.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager


class CpuDemand:
    """A thread-safe count of CPU-heavy jobs in flight, by kind ("embed", "extract", ...)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._active: Counter[str] = Counter()
        self._active_total = 0

    @contextmanager
    def hold(self, kind: str) -> Iterator[None]:
        """Count one ``kind`` job as computing for the duration of the ``with`` block."""
        with self._lock:
            self._active[kind] += 1
            self._active_total += 1
        try:
            yield
        finally:
            with self._lock:
                self._active[kind] -= 1
                self._active_total -= 1

    def busy(self) -> bool:
        """Whether anything besides generation is computing (a racy read is fine: the
        scheduler asks again before the next step, ~0.1 s later)."""
        return self._active_total > 0

    def active(self) -> dict[str, int]:
        with self._lock:
            return {kind: n for kind, n in self._active.items() if n}


PROCESS = CpuDemand()
