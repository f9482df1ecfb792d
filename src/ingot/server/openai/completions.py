"""OpenAI legacy completions over generation events: ``text_completion`` objects and
chunks, with ``echo`` and the legacy ``logprobs`` object (tokens, token_logprobs,
top_logprobs, text_offset) that lm-evaluation-harness scores with."""

from __future__ import annotations

from typing import Any, AsyncIterator

from ingot.engines.protocol import TokenLogprob
from ingot.generation.events import (
    EventStream,
    Finish,
    PromptEcho,
    PromptToken,
    Result,
    Started,
    TextDelta,
    Usage,
    collect,
)
from ingot.server.errors import to_api_error
from ingot.server.openai import shapes
from ingot.server.streaming import SSE_DONE, sse


class LegacyLogprobs:
    """Builds the legacy ``logprobs`` object of one choice; ``text_offset`` runs on across
    streamed chunks, so one builder serves a choice's whole stream."""

    def __init__(self) -> None:
        self.offset = 0

    def build(self, prompt: list[PromptToken] | None, generated: list[TokenLogprob] | None) -> dict[str, Any]:
        body: dict[str, list] = {"tokens": [], "token_logprobs": [], "top_logprobs": [], "text_offset": []}

        def add(text: str, logprob: float | None, top: dict[str, float] | None) -> None:
            body["tokens"].append(text)
            body["token_logprobs"].append(logprob)
            body["top_logprobs"].append(top)
            body["text_offset"].append(self.offset)
            self.offset += len(text)

        for token in prompt or []:
            add(token.token, token.logprob, token.top)
        for entry in generated or []:
            add(entry.token, entry.logprob, {t.token: t.logprob for t in entry.top})
        return body


def completion_response(result: Result, want_logprobs: bool) -> dict[str, Any]:
    choices = []
    for i, c in enumerate(result.choices):
        echo = c.echo
        logprobs = LegacyLogprobs().build(echo.tokens if echo else None, c.logprobs) if want_logprobs else None
        choices.append({"index": i, "text": (echo.text if echo else "") + c.text, "logprobs": logprobs,
                        "finish_reason": c.finish_reason})
    u = result.usage
    return shapes.envelope(result.started, "text_completion", choices,
                           usage=shapes.usage(u.prompt_tokens, u.completion_tokens, u.cached_tokens))


async def completion(events: EventStream, want_logprobs: bool) -> dict[str, Any]:
    return completion_response(await collect(events), want_logprobs)


async def completion_chunks(events: EventStream, want_logprobs: bool, include_usage: bool) -> AsyncIterator[str]:
    """SSE frames: one chunk per text delta (the echoed prompt rides in a choice's first
    chunk), one per finish, the usage chunk when asked for, ``[DONE]``."""
    head: Started | None = None
    echoes: dict[int, PromptEcho] = {}
    builders: dict[int, LegacyLogprobs] = {}

    def chunk(index: int, text: str, generated: list[TokenLogprob] | None, finish: str | None) -> str:
        echo = echoes.pop(index, None)
        logprobs = None
        if want_logprobs:
            builder = builders.setdefault(index, LegacyLogprobs())
            logprobs = builder.build(echo.tokens if echo else None, generated)
        text = (echo.text if echo else "") + text
        return sse(shapes.completion_chunk(head, index, text, logprobs, finish, include_usage))  # type: ignore[arg-type]

    try:
        async for event in events:
            if isinstance(event, TextDelta):
                yield chunk(event.index, event.text, event.logprobs, None)
            elif isinstance(event, Finish):
                yield chunk(event.index, "", None, event.reason)
            elif isinstance(event, PromptEcho):
                echoes[event.index] = event
            elif isinstance(event, Started):
                head = event
            elif isinstance(event, Usage) and include_usage and head is not None:
                yield sse(shapes.usage_chunk(head, "text_completion", event.prompt_tokens, event.completion_tokens,
                                             event.cached_tokens))
    except Exception as exc:  # noqa: BLE001 - after the 200 went out, errors travel as an SSE frame
        yield sse(to_api_error(exc).body())
    finally:
        await events.aclose()  # type: ignore[attr-defined]
    yield SSE_DONE
