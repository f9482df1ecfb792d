"""OpenAI response shapes, built as plain dicts (cheaper than models on the per-token path).

Shapes follow the OpenAI spec (../shared/data/openai-openapi): chat messages carry
``refusal: null``; stream chunks carry ``usage: null`` when usage was asked for, and a
last chunk with empty ``choices`` carries the totals.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from ingot.engines.protocol import Engine, GenerationOutput, SamplingParams, TokenLogprob

SSE_DONE = "data: [DONE]\n\n"


@dataclass(frozen=True)
class Head:
    """What every response and chunk of one request repeats."""

    id: str
    created: int
    model: str
    fingerprint: str  # identifies the backend config (model file + precision), as OpenAI's does


def with_seed(params: SamplingParams, index: int) -> SamplingParams:
    """Choice ``index`` of ``n`` gets its own seed so the choices differ but stay reproducible."""
    if params.seed is None or index == 0:
        return params
    return dataclasses.replace(params, seed=params.seed + index)


def sse(payload: dict[str, Any]) -> str:
    return f"data: {json.dumps(payload, ensure_ascii=False, separators=(',', ':'))}\n\n"


def usage(prompt: int, completion: int, cached: int = 0) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached},
    }


def stream_error(exc: BaseException) -> dict[str, Any]:
    from ingot.server.errors import to_api_error  # local: errors imports generation modules

    return to_api_error(exc).body()


# ---- chat ------------------------------------------------------------------------------

def _top(entry: TokenLogprob) -> list[dict[str, Any]]:
    return [{"token": t.token, "logprob": t.logprob, "bytes": t.bytes} for t in entry.top]


def chat_logprobs(entries: list[TokenLogprob] | None) -> dict[str, Any] | None:
    if entries is None:
        return None
    return {
        "content": [
            {"token": e.token, "logprob": e.logprob, "bytes": e.bytes, "top_logprobs": _top(e)} for e in entries
        ],
        "refusal": None,
    }


def envelope(head: Head, obj: str, choices: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    """The fields every response and chunk of a request shares."""
    return {
        "id": head.id,
        "object": obj,
        "created": head.created,
        "model": head.model,
        "system_fingerprint": head.fingerprint,
        "choices": choices,
        **extra,
    }


def _stream_chunk(head: Head, obj: str, choice: dict[str, Any], usage_field: bool) -> dict[str, Any]:
    # With include_usage, every chunk carries "usage": null until the final usage chunk.
    return envelope(head, obj, [choice], **({"usage": None} if usage_field else {}))


def chat_chunk(
    head: Head, index: int, delta: dict[str, Any], logprobs: dict | None, finish: str | None, usage_field: bool
) -> dict[str, Any]:
    choice = {"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": finish}
    return _stream_chunk(head, "chat.completion.chunk", choice, usage_field)


def usage_chunk(head: Head, obj: str, prompt: int, completion: int, cached: int) -> dict[str, Any]:
    return envelope(head, obj, [], usage=usage(prompt, completion, cached))


@dataclass
class ChoiceAccumulator:
    """Collects one choice's streamed outputs into a final message."""

    text: list[str] = field(default_factory=list)
    logprobs: list[TokenLogprob] | None = None
    finish_reason: str | None = None
    completion_tokens: int = 0
    cached_tokens: int = 0

    def add(self, out: GenerationOutput) -> None:
        self.cached_tokens = out.cached_tokens
        self.text.append(out.text)
        if out.logprobs is not None:
            self.logprobs = (self.logprobs or []) + out.logprobs
        self.completion_tokens = out.completion_tokens
        if out.finish_reason is not None:
            self.finish_reason = out.finish_reason


def chat_response(head: Head, choices: list[ChoiceAccumulator], n_prompt: int) -> dict[str, Any]:
    return envelope(
        head,
        "chat.completion",
        [
            {
                "index": i,
                "message": {"role": "assistant", "content": "".join(c.text), "refusal": None},
                "logprobs": chat_logprobs(c.logprobs),
                "finish_reason": c.finish_reason,
            }
            for i, c in enumerate(choices)
        ],
        usage=usage(n_prompt, sum(c.completion_tokens for c in choices), choices[0].cached_tokens),
    )


# ---- legacy completions ----------------------------------------------------------------

def completion_logprobs(
    out: GenerationOutput, prompt_ids: list[int], engine: Engine, offset: int
) -> tuple[dict[str, Any], int]:
    """The legacy ``logprobs`` object for one output, with prompt tokens first when echoed.
    Returns it and the text offset after it (for the next streamed chunk)."""
    tokens: list[str] = []
    token_logprobs: list[float | None] = []
    top_logprobs: list[dict[str, float] | None] = []
    offsets: list[int] = []

    def add(text: str, logprob: float | None, top: dict[str, float] | None) -> None:
        nonlocal offset
        tokens.append(text)
        token_logprobs.append(logprob)
        top_logprobs.append(top)
        offsets.append(offset)
        offset += len(text)

    if out.prompt_logprobs is not None:
        for token_id, entry in zip(prompt_ids, out.prompt_logprobs):
            if entry is None:
                add(engine.token_text(token_id), None, None)
            else:
                add(entry.token, entry.logprob, {t.token: t.logprob for t in entry.top})
    for entry in out.logprobs or []:
        add(entry.token, entry.logprob, {t.token: t.logprob for t in entry.top})
    body = {"tokens": tokens, "token_logprobs": token_logprobs, "top_logprobs": top_logprobs, "text_offset": offsets}
    return body, offset


def completion_chunk(
    head: Head, index: int, text: str, logprobs: dict | None, finish: str | None, usage_field: bool
) -> dict[str, Any]:
    choice = {"index": index, "text": text, "logprobs": logprobs, "finish_reason": finish}
    return _stream_chunk(head, "text_completion", choice, usage_field)


class CompletionAccumulator:
    def __init__(self, echo_text: str, prompt_ids: list[int], engine: Engine) -> None:
        self.parts = [echo_text]
        self.prompt_ids = prompt_ids
        self.engine = engine
        self.outputs: list[GenerationOutput] = []
        self.finish_reason: str | None = None
        self.completion_tokens = 0
        self.cached_tokens = 0

    def add(self, out: GenerationOutput) -> None:
        self.cached_tokens = out.cached_tokens
        self.parts.append(out.text)
        self.outputs.append(out)
        self.completion_tokens = out.completion_tokens
        if out.finish_reason is not None:
            self.finish_reason = out.finish_reason

    def logprobs(self) -> dict[str, Any]:
        merged: dict[str, list] = {"tokens": [], "token_logprobs": [], "top_logprobs": [], "text_offset": []}
        offset = 0
        for out in self.outputs:
            body, offset = completion_logprobs(out, self.prompt_ids, self.engine, offset)
            for key in merged:
                merged[key].extend(body[key])
        return merged


def completion_response(
    head: Head, choices: list[CompletionAccumulator], n_prompt: int, want_logprobs: bool, n: int
) -> dict[str, Any]:
    return envelope(
        head,
        "text_completion",
        [
            {
                "index": i,
                "text": "".join(c.parts),
                "logprobs": c.logprobs() if want_logprobs else None,
                "finish_reason": c.finish_reason,
            }
            for i, c in enumerate(choices)
        ],
        # Each prompt is counted once, like prompt_tokens: its first choice's reuse.
        usage=usage(n_prompt, sum(c.completion_tokens for c in choices), sum(c.cached_tokens for c in choices[::n])),
    )
