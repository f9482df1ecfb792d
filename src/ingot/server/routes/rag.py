"""POST /v1/rag/chat/completions: an OpenAI chat request plus retrieval options; the
answer is an OpenAI chat completion plus ``citations`` (docs/api.md)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from pydantic import Field, model_validator

from ingot.generation.protocol import ChatCompletionRequest
from ingot.generation.service import GenerationService
from ingot.kb.service import KnowledgeBase
from ingot.rag.service import RagService, RagSettings
from ingot.server.auth import Principal, get_principal
from ingot.server.routes.generation import STREAMED, respond
from ingot.server.routes.search import RetrievalOptions, run_search
from ingot.server.state import get_generation, get_kb
from ingot.server.streaming import cancel_on_disconnect

router = APIRouter(tags=["knowledge base"])


class RagChatRequest(ChatCompletionRequest, RetrievalOptions):
    top_k: int | None = Field(None, ge=1, le=50)  # default INGOT_RAG_TOP_K

    @model_validator(mode="after")
    def _single_choice(self) -> "RagChatRequest":
        if (self.n or 1) > 1:
            raise ValueError("n > 1 is not supported for RAG answers")
        return self


@router.post("/v1/rag/chat/completions", responses=STREAMED)
async def rag_chat(
    body: RagChatRequest,
    request: Request,
    generation: GenerationService = Depends(get_generation),
    kb: KnowledgeBase = Depends(get_kb),
    principal: Principal = Depends(get_principal),
) -> Response:
    s = kb.settings
    rag = RagService(generation, RagSettings(min_score=s.rag_min_score, answer_tokens=s.rag_answer_tokens))

    options = body if body.top_k is not None else body.model_copy(update={"top_k": s.rag_top_k})

    async def work():  # noqa: ANN202
        query, how = await rag.query_for(body)
        result = await run_search(kb, options, query, principal)
        return await rag.answer(body, result, query, how)

    return respond(await cancel_on_disconnect(request, work()))
