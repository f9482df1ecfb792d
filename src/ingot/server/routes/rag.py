"""POST /v1/rag/chat/completions: an OpenAI chat request plus retrieval options; the
answer is an OpenAI chat completion plus ``citations`` (docs/api.md)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response

from ingot.rag.protocol import RagChatRequest
from ingot.rag.service import RagService
from ingot.server.auth import Principal, get_principal
from ingot.server.middleware import OffloadedJSONRoute
from ingot.server.openai import chat
from ingot.server.routes.generation import STREAMED, include_usage, respond
from ingot.server.state import get_rag

router = APIRouter(tags=["knowledge base"], route_class=OffloadedJSONRoute)


@router.post("/v1/rag/chat/completions", responses=STREAMED)
async def rag_chat(
    body: RagChatRequest,
    request: Request,
    rag: RagService = Depends(get_rag),
    principal: Principal = Depends(get_principal),
) -> Response:
    refuse_oversized_question(rag, body)
    usage = include_usage(body)
    return await respond(request, rag.ask(body, principal.groups), full=chat.chat_completion,
                         stream=(lambda events: chat.chat_chunks(events, usage)) if body.stream else None)


def refuse_oversized_question(rag: RagService, body: RagChatRequest) -> None:
    """A question too long for any prompt is refused before it is embedded for the search
    and tokenized for the prompt budget (both would run on the event loop): the question
    always goes into the prompt whole, so the generation service's character bound holds."""
    last = body.messages[-1]
    if last.role == "user" and isinstance(last.content, str):
        rag.generation.check_prompt_chars(last.content, "messages")
