"""POST /v1/search: hybrid (dense + BM25, RRF) search over one or more collections."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import Field, model_validator

from ingot.generation.protocol import WireModel
from ingot.kb.service import KnowledgeBase
from ingot.retrieval.service import SearchResult
from ingot.server.auth import Principal, get_principal
from ingot.server.state import get_kb
from ingot.store.protocol import Filter

router = APIRouter(tags=["knowledge base"])

Short = Annotated[str, Field(min_length=1, max_length=1024)]


class SearchFilter(WireModel):
    """Structured filter: each field is a value list, never an expression (no injection)."""

    sources: list[Short] = Field(default_factory=list, max_length=256)
    document_ids: list[Short] = Field(default_factory=list, max_length=1024)
    kinds: list[Literal["text", "title", "table", "list", "notes", "chart", "image-text"]] = Field(
        default_factory=list
    )
    created_after: float | None = None
    created_before: float | None = None

    def to_filter(self) -> Filter:
        return Filter(
            sources=tuple(self.sources), document_ids=tuple(self.document_ids), kinds=tuple(self.kinds),
            created_after=self.created_after, created_before=self.created_before,
        )


class RetrievalOptions(WireModel):
    """Fields shared by /v1/search and the RAG chat request."""

    collection: str | None = Field(None, min_length=1, max_length=63)
    collections: list[Annotated[str, Field(min_length=1, max_length=63)]] | None = Field(None, max_length=32)
    top_k: int = Field(10, ge=1, le=100)
    mode: Literal["dense", "bm25", "hybrid"] = "hybrid"
    rerank: bool | None = None
    filter: SearchFilter | None = None

    def collection_names(self) -> list[str]:
        names = list(self.collections or [])
        if self.collection:
            names.insert(0, self.collection)
        return list(dict.fromkeys(names))

    @model_validator(mode="after")
    def _some_collection(self) -> "RetrievalOptions":
        if not self.collection_names():
            raise ValueError("give 'collection' or 'collections'")
        return self


class SearchRequest(RetrievalOptions):
    query: str = Field(min_length=1, max_length=8192)

    @model_validator(mode="after")
    def _query_not_blank(self) -> "SearchRequest":
        if not self.query.strip():
            raise ValueError("query must not be blank")
        return self


async def run_search(
    kb: KnowledgeBase, options: RetrievalOptions, query: str, principal: Principal
) -> SearchResult:
    names = options.collection_names()  # a missing collection: the store raises CollectionNotFound (404)
    flt = options.filter.to_filter() if options.filter else None
    return await kb.retrieval.search(
        names, query, top_k=options.top_k, mode=options.mode, rerank=options.rerank, flt=flt, groups=principal.groups
    )


@router.post("/v1/search")
async def search(
    body: SearchRequest, kb: KnowledgeBase = Depends(get_kb), principal: Principal = Depends(get_principal)
) -> JSONResponse:
    result = await run_search(kb, body, body.query, principal)
    return JSONResponse({
        "object": "search.result", "query": body.query, "mode": result.mode, "reranked": result.reranked,
        "data": [p.to_dict(i) for i, p in enumerate(result.passages, start=1)],
        "timings": {k: round(v * 1000, 3) for k, v in result.timings.items()},
    })
