"""OpenAI chat completions over generation events: the full ``chat.completion`` object, or
its ``chat.completion.chunk`` SSE stream. RAG answers use the same adapter; their
``Citations`` event becomes ``citations`` and ``retrieval`` fields (the first chunk's, when
streamed, so clients have the sources before the text; a second ``Citations`` event, right
before ``Finish``, lists the passages the answer cites and rides on the finish chunk)."""

from __future__ import annotations

from typing import Any, AsyncIterator

from ingot.generation.events import (
    ChoiceResult,
    Citations,
    EventStream,
    Finish,
    Result,
    Started,
    TextDelta,
    ToolCallDelta,
    Usage,
    collect,
)
from ingot.server.errors import to_api_error
from ingot.server.openai import shapes
from ingot.server.streaming import SSE_DONE, sse


def _extra(citations: Citations | None) -> dict[str, Any]:
    return {} if citations is None else {"citations": citations.citations, "retrieval": citations.retrieval}


def _message(c: ChoiceResult) -> dict[str, Any]:
    """The assistant message; with tool calls and no text, ``content`` is null (as OpenAI's)."""
    message: dict[str, Any] = {"role": "assistant", "content": c.text if c.text or not c.tool_calls else None,
                               "refusal": None}
    if c.tool_calls:
        message["tool_calls"] = [{"id": t.id, "type": "function", "function": {"name": t.name, "arguments": t.arguments}}
                                 for t in c.tool_calls]
    return message


def chat_response(result: Result) -> dict[str, Any]:
    choices = [
        {
            "index": i,
            "message": _message(c),
            "logprobs": shapes.chat_logprobs(c.logprobs),
            "finish_reason": c.finish_reason,
        }
        for i, c in enumerate(result.choices)
    ]
    u = result.usage
    return shapes.envelope(result.started, "chat.completion", choices,
                           usage=shapes.usage(u.prompt_tokens, u.completion_tokens, u.cached_tokens),
                           **_extra(result.citations))


async def chat_completion(events: EventStream) -> dict[str, Any]:
    return chat_response(await collect(events))


async def chat_chunks(events: EventStream, include_usage: bool) -> AsyncIterator[str]:
    """SSE frames: a role chunk per choice, content and finish chunks as they come, the
    usage chunk when asked for, ``[DONE]``. After the 200 an error travels as a frame."""
    head: Started | None = None
    extra: dict[str, Any] = {}
    late: dict[str, Any] = {}
    try:
        async for event in events:
            if isinstance(event, TextDelta):
                if event.text or event.logprobs:
                    yield sse(shapes.chat_chunk(head, event.index, {"content": event.text},  # type: ignore[arg-type]
                                                shapes.chat_logprobs(event.logprobs), None, include_usage))
            elif isinstance(event, ToolCallDelta):
                fragment: dict[str, Any] = {"index": event.call, "function": {"arguments": event.arguments}}
                if event.id is not None:  # a call's first fragment names it
                    fragment.update(id=event.id, type="function")
                    fragment["function"] = {"name": event.name, "arguments": event.arguments}
                yield sse(shapes.chat_chunk(head, event.index, {"tool_calls": [fragment]}, None, None,  # type: ignore[arg-type]
                                            include_usage))
            elif isinstance(event, Finish):
                chunk = shapes.chat_chunk(head, event.index, {}, None, event.reason, include_usage)  # type: ignore[arg-type]
                yield sse({**chunk, **late} if late else chunk)
                late = {}
            elif isinstance(event, Started):
                head = event
                for index in range(event.choices):
                    chunk = shapes.chat_chunk(head, index, {"role": "assistant", "content": ""}, None, None,
                                              include_usage)
                    yield sse({**chunk, **extra} if index == 0 else chunk)
            elif isinstance(event, Citations):
                if head is None:
                    extra = _extra(event)
                else:  # RAG: the cited passages, known once the text is complete
                    late = _extra(event)
            elif isinstance(event, Usage) and include_usage and head is not None:
                yield sse(shapes.usage_chunk(head, "chat.completion.chunk", event.prompt_tokens,
                                             event.completion_tokens, event.cached_tokens))
    except Exception as exc:  # noqa: BLE001 - after the 200 went out, errors travel as an SSE frame
        yield sse(to_api_error(exc).body())
    finally:
        await events.aclose()  # type: ignore[attr-defined]
    yield SSE_DONE
