"""Generation events -> Anthropic Messages shapes: the whole ``message`` object, or its SSE
stream of named events:

    message_start  ping  (content_block_start  content_block_delta*  content_block_stop)+
    message_delta  message_stop

Choice 0's text becomes ``text`` blocks (``text_delta``), each tool call a ``tool_use`` block
whose ``input_json_delta`` fragments concatenate to the call's JSON input. A reply always has
at least one block (an empty text block when the model said nothing), so ``content[0]`` is
safe. After the 200 an error is an ``event: error`` with Anthropic's error body.

Usage follows Anthropic's meaning: ``input_tokens`` are the prompt tokens that were not read
from the prefix cache, ``cache_read_input_tokens`` the ones that were (their sum is the
prompt). ``message_start`` carries the prompt's count before generation (known before the
engine reports it), ``message_delta`` the final numbers.

Stop reasons: stop -> ``end_turn``, length -> ``max_tokens``, tool_calls -> ``tool_use``;
A stop string ends the turn as ``stop_sequence`` naming it (``Finish.stop_sequence``).
"""

from __future__ import annotations

import json
import logging
from typing import Any, AsyncIterator

from ingot.generation.events import EventStream, Finish, Result, Started, TextDelta, ToolCallDelta, Usage, collect
from ingot.server.anthropic.errors import error_body
from ingot.server.errors import to_api_error
from ingot.server.streaming import sse

log = logging.getLogger("ingot.server")

_STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "abort": "end_turn"}


def message_id(started: Started) -> str:
    return "msg_" + started.id.removeprefix("chatcmpl-")


def stop_reason(finish_reason: str | None, stop_sequence: str | None = None) -> str:
    if stop_sequence is not None:
        return "stop_sequence"
    return _STOP_REASONS.get(finish_reason or "stop", "end_turn")


def usage(u: Usage) -> dict[str, int]:
    return {
        "input_tokens": u.prompt_tokens - u.cached_tokens,
        "output_tokens": u.completion_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": u.cached_tokens,
    }


def tool_input(arguments: str) -> dict[str, Any]:
    """A call's JSON arguments as the ``input`` object (``{}`` if the model wrote no object)."""
    try:
        value = json.loads(arguments) if arguments.strip() else {}
    except json.JSONDecodeError:
        log.warning("tool call arguments are not JSON: %.200r", arguments)
        return {}
    return value if isinstance(value, dict) else {}


def _message(started: Started, content: list[dict[str, Any]], reason: str | None,
             usage_: dict[str, int], stop_sequence: str | None = None) -> dict[str, Any]:
    return {
        "id": message_id(started),
        "type": "message",
        "role": "assistant",
        "model": started.model,
        "content": content,
        "stop_reason": reason,
        "stop_sequence": stop_sequence,
        "usage": usage_,
    }


def message_response(result: Result) -> dict[str, Any]:
    choice = result.choices[0]
    content: list[dict[str, Any]] = []
    if choice.text or not choice.tool_calls:
        content.append({"type": "text", "text": choice.text})
    content.extend({"type": "tool_use", "id": call.id, "name": call.name, "input": tool_input(call.arguments)}
                   for call in choice.tool_calls)
    return _message(result.started, content, stop_reason(choice.finish_reason, choice.stop_sequence),
                    usage(result.usage), choice.stop_sequence)


async def message(events: EventStream) -> dict[str, Any]:
    return message_response(await collect(events))


def _event(kind: str, **fields: Any) -> str:
    return sse({"type": kind, **fields}, event=kind)


async def message_events(events: EventStream, input_tokens: int) -> AsyncIterator[str]:
    """Anthropic's SSE events for choice 0; ``input_tokens`` is the prompt's size for
    ``message_start`` (the final split into cached and uncached comes in ``message_delta``)."""
    index = -1  # the current content block
    current: str | int | None = None  # what it holds: "text" or the tool call's number
    reason: str | None = None
    sequence: str | None = None
    final: Usage | None = None
    try:
        async for event in events:
            if isinstance(event, TextDelta):
                if event.index != 0 or not event.text:
                    continue
                if current != "text":
                    if current is not None:
                        yield _event("content_block_stop", index=index)
                    index, current = index + 1, "text"
                    yield _event("content_block_start", index=index, content_block={"type": "text", "text": ""})
                yield _event("content_block_delta", index=index, delta={"type": "text_delta", "text": event.text})
            elif isinstance(event, ToolCallDelta):
                if event.index != 0:
                    continue
                if current != event.call:
                    if current is not None:
                        yield _event("content_block_stop", index=index)
                    index, current = index + 1, event.call
                    yield _event("content_block_start", index=index, content_block={
                        "type": "tool_use", "id": event.id or "", "name": event.name or "", "input": {}})
                if event.arguments:
                    yield _event("content_block_delta", index=index,
                                 delta={"type": "input_json_delta", "partial_json": event.arguments})
            elif isinstance(event, Finish):
                if event.index == 0:
                    reason, sequence = event.reason, event.stop_sequence
            elif isinstance(event, Started):
                start = _message(event, [], None, {"input_tokens": input_tokens, "output_tokens": 0})
                yield _event("message_start", message=start)
                yield _event("ping")
            elif isinstance(event, Usage):
                final = event
        if current is None:  # nothing was said: one empty text block, as the JSON reply has
            index = 0
            yield _event("content_block_start", index=index, content_block={"type": "text", "text": ""})
        yield _event("content_block_stop", index=index)
        totals = usage(final) if final is not None else {"output_tokens": 0}
        yield _event("message_delta", delta={"stop_reason": stop_reason(reason, sequence), "stop_sequence": sequence},
                     usage=totals)
        yield _event("message_stop")
    except Exception as exc:  # noqa: BLE001 - after the 200 went out, errors travel as an event
        error = to_api_error(exc)
        yield sse(error_body(error.status, error.message), event="error")
    finally:
        await events.aclose()  # type: ignore[attr-defined]
