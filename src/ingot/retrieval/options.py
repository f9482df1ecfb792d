"""Retrieval options as every API states them (``/v1/search``, the RAG request): which
collections, how many passages, which mode, rerank, a structured filter. Validated on the
wire model; ``search_with`` runs them for a caller's ACL groups."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from ingot.wire import WireModel
from ingot.retrieval.service import RetrievalService, SearchResult
from ingot.store.protocol import Filter

# No control characters: a NUL cannot be stored in any file name or id, and PostgreSQL
# refuses it in a query parameter (which would surface as a 503, not the caller's 400).
Short = Annotated[str, Field(min_length=1, max_length=1024, pattern=r"^[^\x00-\x1f\x7f]+$")]


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


async def search_with(
    retrieval: RetrievalService, options: RetrievalOptions, query: str, groups: tuple[str, ...] | None
) -> SearchResult:
    """``groups``: the caller's ACL groups (None = unrestricted). A missing collection: the
    store raises CollectionNotFound (404)."""
    flt = options.filter.to_filter() if options.filter else None
    return await retrieval.search(options.collection_names(), query, top_k=options.top_k, mode=options.mode,
                                  rerank=options.rerank, flt=flt, groups=groups)
