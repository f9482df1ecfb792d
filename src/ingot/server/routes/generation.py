"""/v1/chat/completions and /v1/completions: validate, call the service, map its events
to OpenAI's JSON or SSE (server/openai/)."""

from __future__ import annotations

from typing import Any, AsyncIterator, Awaitable, Callable

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from ingot.generation.events import EventStream
from ingot.generation.protocol import ChatCompletionRequest, CompletionRequest
from ingot.generation.service import GenerationService
from ingot.server.middleware import OffloadedJSONRoute
from ingot.server.openai import chat, completions
from ingot.server.state import get_generation
from ingot.server.streaming import cancel_on_disconnect, sse_response

router = APIRouter(tags=["generation"], route_class=OffloadedJSONRoute)

CLIENT_CLOSED = 499  # nginx's code for "client closed request"; nobody is listening anyway
# With ``stream: true`` the 200 is Server-Sent Events; say so in /openapi.json next to the JSON body.
STREAMED: dict = {200: {"content": {"text/event-stream": {}}}}


async def respond(
    request: Request,
    admit: Awaitable[EventStream],
    *,
    stream: Callable[[EventStream], AsyncIterator[str]] | None,
    full: Callable[[EventStream], Awaitable[dict[str, Any]]],
) -> Response:
    """Admit the request (its errors become clean 4xx), then send the whole response or
    its SSE stream; a client that leaves before the answer is complete aborts it."""

    async def whole() -> dict[str, Any] | EventStream:
        events = await admit
        return events if stream is not None else await full(events)

    result = await cancel_on_disconnect(request, whole())
    if result is None:
        return Response(status_code=CLIENT_CLOSED)
    if isinstance(result, dict):
        return JSONResponse(result)
    return sse_response(stream(result))  # type: ignore[misc]


def include_usage(body: ChatCompletionRequest | CompletionRequest) -> bool:
    return bool(body.stream_options and body.stream_options.include_usage)


@router.post("/v1/chat/completions", responses=STREAMED)
async def create_chat_completion(
    body: ChatCompletionRequest, request: Request, service: GenerationService = Depends(get_generation)
) -> Response:
    usage = include_usage(body)
    return await respond(request, service.chat(body), full=chat.chat_completion,
                         stream=(lambda events: chat.chat_chunks(events, usage)) if body.stream else None)


@router.post("/v1/completions", responses=STREAMED)
async def create_completion(
    body: CompletionRequest, request: Request, service: GenerationService = Depends(get_generation)
) -> Response:
    usage, logprobs = include_usage(body), body.logprobs is not None
    return await respond(
        request, service.complete(body), full=lambda events: completions.completion(events, logprobs),
        stream=(lambda events: completions.completion_chunks(events, logprobs, usage)) if body.stream else None,
    )
