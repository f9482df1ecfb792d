"""The RAG chat request: an OpenAI chat request plus retrieval options (docs/api.md)."""

from __future__ import annotations

from pydantic import Field, model_validator

from ingot.generation.protocol import ChatCompletionRequest
from ingot.retrieval.options import RetrievalOptions


class RagChatRequest(ChatCompletionRequest, RetrievalOptions):
    top_k: int | None = Field(None, ge=1, le=50)  # default INGOT_RAG_TOP_K

    @model_validator(mode="after")
    def _single_choice(self) -> "RagChatRequest":
        if (self.n or 1) > 1:
            raise ValueError("n > 1 is not supported for RAG answers")
        return self
