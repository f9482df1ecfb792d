"""Anthropic's Messages API: ``POST /v1/messages`` (JSON or named SSE events) and
``POST /v1/messages/count_tokens``. Thin: convert (server/anthropic/protocol.py), call the
generation service, shape its events (server/anthropic/messages.py). Errors on these paths
come in Anthropic's shape (server/errors.py ``ERROR_SHAPES``); a ``max_tokens`` beyond the
context is clamped to what fits (Anthropic's ceiling semantics); ``anthropic-version`` and
``anthropic-beta`` headers are accepted and ignored; the key may come as ``x-api-key``."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response

from ingot.generation.protocol import ChatCompletionRequest
from ingot.generation.service import GenerationService
from ingot.generation.tools import plan_tools
from ingot.server.anthropic import messages
from ingot.server.anthropic.protocol import CountTokensRequest, MessagesRequest
from ingot.server.middleware import OffloadedJSONRoute
from ingot.server.routes.generation import STREAMED, respond
from ingot.server.state import get_generation

router = APIRouter(tags=["anthropic"], route_class=OffloadedJSONRoute)


@router.post("/v1/messages", responses=STREAMED)
async def create_message(
    body: MessagesRequest, request: Request, service: GenerationService = Depends(get_generation)
) -> Response:
    service.check_model(body.model)
    chat = body.to_chat_request()
    size = await prompt_size(service, chat)
    # Anthropic's max_tokens is a required ceiling that clients set high by habit (the model
    # "may stop before"); on a context smaller than prompt + max_tokens, generation stops at
    # the context's end (stop_reason max_tokens) instead of refusing the request.
    room = service.engine.info.context_length - size
    if 0 < room < (chat.max_tokens or 0):
        chat = chat.model_copy(update={"max_tokens": room})

    def stream(events):  # noqa: ANN001, ANN202 - called once the request is admitted
        # message_start tells the prompt's size before the engine's own count arrives at the end.
        return messages.message_events(events, size)

    return await respond(request, service.chat(chat), full=messages.message, stream=stream if body.stream else None)


@router.post("/v1/messages/count_tokens")
async def count_tokens(body: CountTokensRequest, service: GenerationService = Depends(get_generation)) -> dict:
    service.check_model(body.model)
    return {"input_tokens": await prompt_size(service, body.to_chat_request(), bounded=False)}


async def prompt_size(service: GenerationService, chat: ChatCompletionRequest, *, bounded: bool = True) -> int:
    """The rendered prompt's tokens, tool definitions included, as the service will build it
    (off the event loop; ``bounded``: a prompt too long for any context is refused at once)."""
    plan = plan_tools(chat.tools, chat.tool_choice, chat.parallel_tool_calls)
    return len(await service.chat_prompt_ids(chat.messages, chat.add_generation_prompt, plan, bounded=bounded))
