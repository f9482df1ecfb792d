"""/v1/ranking (NVIDIA NIM) and /v1/rerank (Cohere/Jina/vLLM) over one ranker."""

from __future__ import annotations

import uuid
from typing import Any, Literal

import numpy as np
from pydantic import Field

from ingot.errors import InvalidRequestError
from ingot.wire import WireModel
from ingot.models.registry import ServedNames
from ingot.ranking.protocol import Ranker

MAX_PASSAGES = 1000


class TextItem(WireModel):
    text: str


class RankingRequest(WireModel):
    """NIM schema: {model, query: {text}, passages: [{text}], truncate}."""

    model: str | None = None
    query: TextItem
    passages: list[TextItem] = Field(..., min_length=1)
    truncate: Literal["NONE", "END"] = "END"


class RerankRequest(WireModel):
    """Cohere/Jina/vLLM schema."""

    model: str | None = None
    query: str
    documents: list[str | dict[str, Any]] = Field(..., min_length=1)
    top_n: int | None = Field(None, ge=1)
    return_documents: bool = True
    truncate: Literal["NONE", "END"] = "END"


class RankingService:
    def __init__(self, ranker: Ranker, served_names: tuple[str, ...]) -> None:
        self.ranker = ranker
        self.model_id = ranker.info.id
        self._served = ServedNames(self.model_id, served_names, "ranking")

    def check_model(self, name: str | None) -> None:
        self._served.check(name)

    async def _scores(self, query: str, passages: list[str], truncate: str) -> np.ndarray:
        if len(passages) > MAX_PASSAGES:
            raise InvalidRequestError(f"at most {MAX_PASSAGES} passages per request, got {len(passages)}", "passages")
        if not query.strip():
            raise InvalidRequestError("query must not be empty", "query")
        return await self.ranker.logits(query, passages, truncate)

    async def ranking(self, req: RankingRequest) -> dict[str, Any]:
        self.check_model(req.model)
        logits = await self._scores(req.query.text, [p.text for p in req.passages], req.truncate)
        order = np.argsort(-logits, kind="stable")
        return {"rankings": [{"index": int(i), "logit": float(logits[i])} for i in order]}

    async def rerank(self, req: RerankRequest) -> dict[str, Any]:
        self.check_model(req.model)
        texts = [d if isinstance(d, str) else str(d.get("text", "")) for d in req.documents]
        logits = await self._scores(req.query, texts, req.truncate)
        relevance = self.ranker.relevance(logits)
        order = np.argsort(-logits, kind="stable")[: req.top_n or len(texts)]
        results = []
        for i in order:
            item: dict[str, Any] = {"index": int(i), "relevance_score": float(relevance[i])}
            if req.return_documents:
                item["document"] = {"text": texts[i]}
            results.append(item)
        return {"id": f"rerank-{uuid.uuid4().hex}", "model": req.model or self.model_id, "results": results}
