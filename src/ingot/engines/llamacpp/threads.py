"""How many threads llama.cpp gets for the next step: all of its share of the cores when
generation runs alone, fewer while other CPU-heavy work in the process computes.

Why per step and not a fixed setting: measured on 2 cores with Qwen2.5-Coder-1.5B
(benchmarks/RESULTS.md, "llama.cpp threads under load"), 2 threads decode 15.3 tok/s and
1 thread 8.1 with the embedder idle, but 2.4 vs 5.9 while it encodes (its own throughput
79 vs 101 texts/s): llama.cpp's spinning barrier turns a shared core into a stall. The
scheduler asks :meth:`ThreadPolicy.choose` before each ``llama_decode``, and a change is one
``llama_set_n_threads`` call (it only sets the count used by the next graph compute).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ingot.cpu_demand import PROCESS, CpuDemand


@dataclass
class ThreadPolicy:
    """``alone`` threads when nothing else computes, ``shared`` (<= alone) while something does."""

    alone: int
    shared: int
    demand: CpuDemand = field(default=PROCESS)

    def __post_init__(self) -> None:
        if self.alone < 1 or self.shared < 1:
            raise ValueError("thread counts must be >= 1")
        self.shared = min(self.shared, self.alone)

    @classmethod
    def fixed(cls, threads: int) -> ThreadPolicy:
        return cls(threads, threads, CpuDemand())

    def choose(self) -> int:
        return self.shared if self.demand.busy() else self.alone
