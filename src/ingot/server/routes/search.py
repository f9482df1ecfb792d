"""POST /v1/search: hybrid (dense + BM25, RRF) search over one or more collections."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import Field, model_validator

from ingot.kb.service import KnowledgeBase
from ingot.retrieval.options import RetrievalOptions, search_with
from ingot.server.auth import Principal, get_principal
from ingot.server.middleware import OffloadedJSONRoute
from ingot.server.state import get_kb

router = APIRouter(tags=["knowledge base"], route_class=OffloadedJSONRoute)


class SearchRequest(RetrievalOptions):
    query: str = Field(min_length=1, max_length=8192)

    @model_validator(mode="after")
    def _query_not_blank(self) -> "SearchRequest":
        if not self.query.strip():
            raise ValueError("query must not be blank")
        return self


@router.post("/v1/search")
async def search(
    body: SearchRequest, kb: KnowledgeBase = Depends(get_kb), principal: Principal = Depends(get_principal)
) -> JSONResponse:
    result = await search_with(kb.retrieval, body, body.query, principal.groups)
    return JSONResponse({
        "object": "search.result", "query": body.query, "mode": result.mode, "reranked": result.reranked,
        "data": [p.to_dict(i) for i, p in enumerate(result.passages, start=1)],
        "timings": {k: round(v * 1000, 3) for k, v in result.timings.items()},
    })
