"""OpenAI response shapes, built as plain dicts (cheaper than models on the per-token path).

Only the server's OpenAI adapters use these; services speak ``generation.events``.

Shapes follow the OpenAI spec (../shared/data/openai-openapi): chat messages carry
``refusal: null``; stream chunks carry ``usage: null`` when usage was asked for, and a
last chunk with empty ``choices`` carries the totals.
"""

from __future__ import annotations

from typing import Any

from ingot.engines.protocol import TokenLogprob
from ingot.generation.events import Started

def usage(prompt: int, completion: int, cached: int = 0) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached},
    }


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


def envelope(head: Started, obj: str, choices: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
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


def _stream_chunk(head: Started, obj: str, choice: dict[str, Any], usage_field: bool) -> dict[str, Any]:
    # With include_usage, every chunk carries "usage": null until the final usage chunk.
    return envelope(head, obj, [choice], **({"usage": None} if usage_field else {}))


def chat_chunk(
    head: Started, index: int, delta: dict[str, Any], logprobs: dict | None, finish: str | None, usage_field: bool
) -> dict[str, Any]:
    choice = {"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": finish}
    return _stream_chunk(head, "chat.completion.chunk", choice, usage_field)


def usage_chunk(head: Started, obj: str, prompt: int, completion: int, cached: int) -> dict[str, Any]:
    return envelope(head, obj, [], usage=usage(prompt, completion, cached))


# ---- legacy completions ----------------------------------------------------------------

def completion_chunk(
    head: Started, index: int, text: str, logprobs: dict | None, finish: str | None, usage_field: bool
) -> dict[str, Any]:
    choice = {"index": index, "text": text, "logprobs": logprobs, "finish_reason": finish}
    return _stream_chunk(head, "text_completion", choice, usage_field)
