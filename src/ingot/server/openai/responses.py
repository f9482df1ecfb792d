"""OpenAI Responses API over generation events: the ``response`` object, or its named SSE
event stream, folded by one builder so the streamed deltas and the final object always agree.

One turn (``Turn``): the stored conversation (``previous_response_id``, checked against
the caller), this request's input items, the chat request the generation service runs, and
the record saved when ``store`` is true. Events map to output items in arrival order:

    Started            response.created, response.in_progress
    TextDelta          (a message item opens: output_item.added, content_part.added)
                       response.output_text.delta
    ToolCallDelta      (the open item closes) function_call item: output_item.added,
                       response.function_call_arguments.delta
    Finish             every open item closes with all its *.done events
    Usage, end         response.completed | response.incomplete (max_output_tokens)
    error after start  error, then response.failed

Every event carries ``sequence_number`` (0, 1, 2, ...) and goes out as ``event: <type>``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, AsyncIterator

from ingot.errors import InvalidRequestError, NotFoundError
from ingot.generation.events import EventStream, Finish, Started, TextDelta, ToolCallDelta, Usage
from ingot.generation.protocol import ChatCompletionRequest
from ingot.server.errors import to_api_error
from ingot.server.openai.response_store import ResponseStore, StoredResponse
from ingot.server.openai.responses_protocol import (
    CreateResponseRequest,
    echo_tool_choice,
    input_items,
    new_id,
    to_chat_request,
)
from ingot.server.streaming import sse

log = logging.getLogger("ingot.server")


def not_found(response_id: str) -> NotFoundError:
    return NotFoundError(f"No response with id '{response_id}' found.", "response_id")


async def load_visible(store: ResponseStore, response_id: str, key_id: str | None, admin: bool) -> StoredResponse:
    """The stored response, if this caller may see it (its owner or an admin); else 404, the
    same answer as for an id that does not exist."""
    record = await asyncio.to_thread(store.get, response_id)
    if record is None or not record.visible_to(key_id, admin):
        raise not_found(response_id)
    return record


class Turn:
    """One ``POST /v1/responses``: prepared with ``await Turn.prepare(...)``, then served by
    ``complete`` (the whole object) or ``stream`` (SSE) over the service's events."""

    def __init__(self, request: CreateResponseRequest, store: ResponseStore, owner: str | None,
                 context: list[dict[str, Any]]) -> None:
        self.request = request
        self.store = store
        self.owner = owner
        self.context = context
        self.items = input_items(request)
        self.id = new_id("resp")
        self.created_at = int(time.time())
        self.chat_request: ChatCompletionRequest = to_chat_request(request, [*context, *self.items])

    @classmethod
    async def prepare(cls, request: CreateResponseRequest, store: ResponseStore, key_id: str | None,
                      admin: bool) -> "Turn":
        request.check_supported()
        context: list[dict[str, Any]] = []
        if request.previous_response_id is not None:
            try:
                previous = await load_visible(store, request.previous_response_id, key_id, admin)
            except NotFoundError as exc:
                exc.param = "previous_response_id"
                raise
            context = previous.conversation()
        return cls(request, store, key_id, context)

    async def complete(self, events: EventStream) -> dict[str, Any]:
        builder = ResponseBuilder(self)
        try:
            async for event in events:
                builder.feed(event)
        finally:
            await events.aclose()  # type: ignore[attr-defined]
        final = builder.final()
        await self._save(final)
        return final

    async def stream(self, events: EventStream) -> AsyncIterator[str]:
        builder = ResponseBuilder(self)
        try:
            async for event in events:
                for payload in builder.feed(event):
                    yield sse(payload, event=payload["type"])
            final = builder.final()
            await self._save(final)
            terminal = "response.completed" if final["status"] == "completed" else "response.incomplete"
            yield _frame(builder.event(terminal, response=final))
        except Exception as exc:  # noqa: BLE001 - after the 200 went out, errors travel as events
            error = to_api_error(exc)
            for payload in builder.fail(error.status, error.message, error.code, error.param):
                yield sse(payload, event=payload["type"])
            try:
                await self._save(builder.failed_response)
            except Exception:  # noqa: BLE001 - the client has its answer; the log has this
                log.exception("could not store failed response %s", self.id)
        finally:
            await events.aclose()  # type: ignore[attr-defined]

    async def _save(self, response: dict[str, Any] | None) -> None:
        if not self.request.store or response is None:
            return
        record = StoredResponse(self.id, self.owner, self.created_at, response, self.items, self.context)
        await asyncio.to_thread(self.store.put, record)


def _frame(payload: dict[str, Any]) -> str:
    return sse(payload, event=payload["type"])


class ResponseBuilder:
    """Folds generation events into output items, returning each step's wire events."""

    def __init__(self, turn: Turn) -> None:
        self.turn = turn
        self.sequence = 0
        self.model = turn.request.model or ""
        self.output: list[dict[str, Any]] = []
        self.open: dict[str, Any] | None = None  # the output item being written
        self.reason: str | None = None
        self.usage: Usage | None = None
        self.failed_response: dict[str, Any] | None = None

    def event(self, kind: str, **fields: Any) -> dict[str, Any]:
        payload = {"type": kind, **fields, "sequence_number": self.sequence}
        self.sequence += 1
        return payload

    # ---- the response object ------------------------------------------------------------

    def response(self, status: str, *, error: dict[str, Any] | None = None) -> dict[str, Any]:
        req = self.turn.request
        u = self.usage
        return {
            "id": self.turn.id,
            "object": "response",
            "created_at": self.turn.created_at,
            "status": status,
            "completed_at": int(time.time()) if status == "completed" else None,
            "background": False,
            "error": error,
            "incomplete_details": {"reason": "max_output_tokens"} if status == "incomplete" else None,
            "instructions": req.instructions,
            "max_output_tokens": req.max_output_tokens,
            "model": self.model,
            "output": [dict(item) for item in self.output] if status != "in_progress" else [],
            "parallel_tool_calls": req.parallel_tool_calls is not False,
            "previous_response_id": req.previous_response_id,
            "reasoning": {"effort": None, "summary": None},
            "service_tier": "default",
            "store": bool(req.store),
            "temperature": req.temperature if req.temperature is not None else 1.0,
            "text": req.echo_text(),
            "tool_choice": echo_tool_choice(req.tool_choice),
            "tools": req.echo_tools(),
            "top_p": req.top_p if req.top_p is not None else 1.0,
            "truncation": "disabled",
            "usage": None if u is None else {
                "input_tokens": u.prompt_tokens,
                "input_tokens_details": {"cached_tokens": u.cached_tokens, "cache_write_tokens": 0},
                "output_tokens": u.completion_tokens,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": u.prompt_tokens + u.completion_tokens,
            },
            "metadata": req.metadata or {},
            **({"user": req.user} if req.user is not None else {}),  # the spec's user is a string, never null
        }

    def final(self) -> dict[str, Any]:
        if self.open is not None or not self.output:  # a stream that ended without Finish
            self._finish("stop")
        return self.response("incomplete" if self.reason == "length" else "completed")

    # ---- events -> wire events ----------------------------------------------------------

    def feed(self, event: Any) -> list[dict[str, Any]]:
        if isinstance(event, TextDelta):
            return self._text(event.text) if event.text else []
        if isinstance(event, ToolCallDelta):
            return self._call(event)
        if isinstance(event, Finish):
            return self._finish(event.reason) if event.index == 0 else []
        if isinstance(event, Started):
            self.model = event.model
            return [self.event("response.created", response=self.response("in_progress")),
                    self.event("response.in_progress", response=self.response("in_progress"))]
        if isinstance(event, Usage):
            self.usage = event
        return []

    def _text(self, text: str) -> list[dict[str, Any]]:
        out = [] if self.open is not None and self.open["type"] == "message" else self._open_message()
        item = self.open
        assert item is not None
        item["_text"].append(text)
        out.append(self.event("response.output_text.delta", item_id=item["id"], output_index=item["_index"],
                              content_index=0, delta=text, logprobs=[]))
        return out

    def _open_message(self) -> list[dict[str, Any]]:
        out = self._close("completed")
        item = {"type": "message", "id": new_id("msg"), "status": "in_progress", "role": "assistant", "content": [],
                "_index": len(self.output), "_text": []}
        self.open = item
        self.output.append({})  # its place; filled when it closes
        part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
        out.append(self.event("response.output_item.added", output_index=item["_index"], item=_public(item)))
        out.append(self.event("response.content_part.added", item_id=item["id"], output_index=item["_index"],
                              content_index=0, part=part))
        return out

    def _call(self, delta: ToolCallDelta) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        if delta.id is not None or self.open is None or self.open["type"] != "function_call":
            out += self._close("completed")
            item = {"type": "function_call", "id": new_id("fc"), "call_id": delta.id or new_id("call"),
                    "name": delta.name or "", "arguments": "", "status": "in_progress", "_index": len(self.output)}
            self.open = item
            self.output.append({})
            out.append(self.event("response.output_item.added", output_index=item["_index"], item=_public(item)))
        item = self.open
        assert item is not None
        if delta.arguments:
            item["arguments"] += delta.arguments
            out.append(self.event("response.function_call_arguments.delta", item_id=item["id"],
                                  output_index=item["_index"], delta=delta.arguments))
        return out

    def _close(self, status: str) -> list[dict[str, Any]]:
        item, self.open = self.open, None
        if item is None:
            return []
        index = item["_index"]
        out = []
        if item["type"] == "message":
            text = "".join(item["_text"])
            part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
            out.append(self.event("response.output_text.done", item_id=item["id"], output_index=index,
                                  content_index=0, text=text, logprobs=[]))
            out.append(self.event("response.content_part.done", item_id=item["id"], output_index=index,
                                  content_index=0, part=part))
            item["content"] = [part]
        else:
            out.append(self.event("response.function_call_arguments.done", item_id=item["id"], name=item["name"],
                                  output_index=index, arguments=item["arguments"]))
        item["status"] = status
        done = _public(item)
        self.output[index] = done
        out.append(self.event("response.output_item.done", output_index=index, item=done))
        return out

    def _finish(self, reason: str) -> list[dict[str, Any]]:
        self.reason = reason
        out = [] if self.output else self._open_message()  # a response always has an output item
        status = "incomplete" if reason == "length" and self.open is not None and self.open["type"] == "message" \
            else "completed"
        return out + self._close(status)

    def fail(self, status: int, message: str, code: str | None, param: str | None) -> list[dict[str, Any]]:
        out = []
        if self.sequence == 0:  # failed before Started: the stream still opens with its response
            out.append(self.event("response.created", response=self.response("in_progress")))
        out.append(self.event("error", code=code or ("server_error" if status >= 500 else "invalid_request_error"),
                              message=message, param=param))
        self.open = None
        self.output = [item for item in self.output if item]  # only the items that finished
        code_field = "rate_limit_exceeded" if status == 429 else "server_error"
        self.failed_response = self.response("failed", error={"code": code_field, "message": message})
        out.append(self.event("response.failed", response=self.failed_response))
        return out


def _public(item: dict[str, Any]) -> dict[str, Any]:
    """An item without the builder's private fields (``_index``, ``_text``)."""
    return {k: v for k, v in item.items() if not k.startswith("_")}


# ---- stored responses ---------------------------------------------------------------------

def input_items_page(record: StoredResponse, limit: int, order: str, after: str | None) -> dict[str, Any]:
    """``GET /v1/responses/{id}/input_items``: this response's input items (newest first by
    default, as OpenAI lists them), ``after`` an item id."""
    if not 1 <= limit <= 100:
        raise InvalidRequestError("limit must be between 1 and 100", "limit")
    if order not in ("asc", "desc"):
        raise InvalidRequestError("order must be 'asc' or 'desc'", "order")
    items = list(record.input_items) if order == "asc" else list(reversed(record.input_items))
    if after is not None:
        ids = [item.get("id") for item in items]
        if after not in ids:
            raise InvalidRequestError(f"no input item with id '{after}' in this response", "after")
        items = items[ids.index(after) + 1:]
    page = items[:limit]
    return {"object": "list", "data": page, "first_id": page[0]["id"] if page else None,
            "last_id": page[-1]["id"] if page else None, "has_more": len(items) > limit}


def deleted(response_id: str) -> dict[str, Any]:
    return {"id": response_id, "object": "response.deleted", "deleted": True}


def cannot_cancel(record: StoredResponse) -> InvalidRequestError:
    """Only background responses can be cancelled, and this server runs none in the background."""
    status = record.response.get("status")
    return InvalidRequestError(f"Cannot cancel a {status} response: only background responses can be cancelled, "
                              "and this server does not run responses in the background.", "response_id")
