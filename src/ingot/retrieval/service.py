"""The retrieval service behind ``/v1/search``, RAG and ``ingot eval retrieval``.

query -> embed (input_type=query) -> dense and BM25 searches, run concurrently in worker
threads, per collection -> RRF over every list -> optional rerank of the fused top ->
top-k passages with provenance and every score that produced them.

Access control is not a post-filter: the caller's groups go into the store's own query
filter (``Filter.acl_any``), so a chunk the caller may not read is never a candidate.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np

from ingot.metrics import KnowledgeBaseMetrics
from ingot.ranking.protocol import Ranker
from ingot.retrieval.fusion import rrf
from ingot.store.protocol import ChunkRecord, Filter, VectorStore

Mode = Literal["dense", "bm25", "hybrid"]
MODES: tuple[str, ...] = ("dense", "bm25", "hybrid")


@dataclass
class Passage:
    collection: str
    record: ChunkRecord
    score: float  # what ordered the result: rerank logit, RRF score, cosine or BM25
    dense_score: float | None = None  # cosine similarity when the dense search found it
    bm25_score: float | None = None
    rerank_score: float | None = None

    def to_dict(self, rank: int) -> dict[str, Any]:
        r = self.record
        return {
            "rank": rank, "score": self.score, "collection": self.collection, "chunk_id": r.id,
            "document_id": r.document_id, "source": r.source, "text": r.text, "page_start": r.page_start,
            "page_end": r.page_end, "location": r.location, "heading_path": list(r.heading_path),
            "kinds": list(r.kinds), "created_at": r.created_at,
            "scores": {"dense": self.dense_score, "bm25": self.bm25_score, "rerank": self.rerank_score},
        }


@dataclass
class _Candidate:
    collection: str
    chunk_id: str
    score: float = 0.0
    dense_score: float | None = None
    bm25_score: float | None = None

    def raw(self, mode: str) -> float:
        value = self.dense_score if mode == "dense" else self.bm25_score
        return float(value if value is not None else 0.0)


@dataclass
class SearchResult:
    passages: list[Passage]
    mode: str
    reranked: bool
    timings: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class FusionSettings:
    candidates: int = 50
    rrf_k: int = 60
    dense_weight: float = 1.0
    bm25_weight: float = 1.0
    rerank: Literal["auto", "on", "off"] = "auto"


class RetrievalService:
    def __init__(
        self,
        store: VectorStore,
        embed_query: Callable[[str], Awaitable[np.ndarray]],
        ranker: Ranker | None,
        fusion: FusionSettings,
        metrics: KnowledgeBaseMetrics | None = None,
    ) -> None:
        self.store = store
        self.embed_query = embed_query
        self.ranker = ranker
        self.fusion = fusion
        self.metrics = metrics

    def rerank_default(self) -> bool:
        if self.ranker is None or self.fusion.rerank == "off":
            return False
        return self.fusion.rerank == "on" or self.ranker.info.method == "cross-encoder"

    async def search(
        self,
        collections: list[str],
        query: str,
        *,
        top_k: int = 10,
        mode: Mode = "hybrid",
        rerank: bool | None = None,
        flt: Filter | None = None,
        groups: tuple[str, ...] | None = None,
    ) -> SearchResult:
        """``groups``: the caller's ACL groups (None = unrestricted); AND-ed into ``flt``."""
        started = time.monotonic()
        flt = replace(flt or Filter(), acl_any=groups) if groups is not None else (flt or Filter())
        do_rerank = self.rerank_default() if rerank is None else rerank
        if do_rerank and self.ranker is None:
            do_rerank = False
        wanted = max(self.fusion.candidates, top_k) if (mode == "hybrid" or do_rerank) else top_k
        timings: dict[str, float] = {}

        vector = None
        if mode in ("dense", "hybrid"):
            t = time.monotonic()
            vector = await self.embed_query(query)
            timings["embed"] = time.monotonic() - t

        t = time.monotonic()
        calls = []
        for name in collections:
            if vector is not None:
                calls.append(("dense", name, asyncio.to_thread(self.store.dense_search_ids, name, vector, wanted, flt)))
            if mode in ("bm25", "hybrid"):
                calls.append(("bm25", name, asyncio.to_thread(self.store.text_search_ids, name, query, wanted, flt)))
        results: list[list[tuple[str, float]]] = list(await asyncio.gather(*(c[2] for c in calls)))
        timings["search"] = time.monotonic() - t

        ranked = self._fuse([(kind, name, hits) for (kind, name, _), hits in zip(calls, results)], mode)
        depth = max(self.fusion.candidates, top_k) if do_rerank else top_k
        t = time.monotonic()
        passages = await self._fetch(ranked[:depth])
        timings["fetch"] = time.monotonic() - t
        if do_rerank and passages:
            # Rerank the fused head only (a cross-encoder costs one forward pass per pair);
            # the tail keeps its fused order behind it.
            t = time.monotonic()
            head = self.fusion.candidates
            passages = await self._rerank(query, passages[:head]) + passages[head:]
            timings["rerank"] = time.monotonic() - t
        seconds = time.monotonic() - started
        if self.metrics is not None:
            label = mode + ("+rerank" if do_rerank else "")
            self.metrics.searches.labels(label).inc()
            self.metrics.search_seconds.labels(label).observe(seconds)
        return SearchResult(passages[:top_k], mode, do_rerank, timings)

    def _fuse(self, lists: list[tuple[str, str, list[tuple[str, float]]]], mode: str) -> list[_Candidate]:
        """Candidates (collection, chunk id) best first, with each ranking's own score."""
        by_key: dict[tuple[str, str], _Candidate] = {}
        rankings: list[tuple[list[tuple[str, str]], float]] = []
        for kind, name, hits in lists:
            keys = []
            for chunk_id, score in hits:
                key = (name, chunk_id)
                candidate = by_key.setdefault(key, _Candidate(name, chunk_id))
                if kind == "dense":
                    candidate.dense_score = score
                else:
                    candidate.bm25_score = score
                keys.append(key)
            weight = self.fusion.dense_weight if kind == "dense" else self.fusion.bm25_weight
            rankings.append((keys, weight))
        if mode == "hybrid":
            fused = rrf(rankings, k=self.fusion.rrf_k)
        else:  # one mode, possibly over several collections: order by the raw score
            fused = sorted(((key, by_key[key].raw(mode)) for keys, _ in rankings for key in keys),
                           key=lambda kv: -kv[1])
        out = []
        for key, score in fused:
            candidate = by_key[key]
            candidate.score = score
            out.append(candidate)
        return out

    async def _fetch(self, candidates: list[_Candidate]) -> list[Passage]:
        """Read the winners' records (one query per collection, concurrently), in rank order.
        A chunk deleted since the search is skipped."""
        wanted: dict[str, list[str]] = {}
        for c in candidates:
            wanted.setdefault(c.collection, []).append(c.chunk_id)
        names = list(wanted)
        fetched = await asyncio.gather(*(asyncio.to_thread(self.store.fetch, n, wanted[n]) for n in names))
        records = {(n, r.id): r for n, rs in zip(names, fetched) for r in rs}
        return [
            Passage(c.collection, records[(c.collection, c.chunk_id)], c.score, c.dense_score, c.bm25_score)
            for c in candidates if (c.collection, c.chunk_id) in records
        ]

    async def _rerank(self, query: str, passages: list[Passage]) -> list[Passage]:
        assert self.ranker is not None
        logits = await self.ranker.logits(query, [p.record.text for p in passages], "END")
        for passage, logit in zip(passages, logits):
            passage.rerank_score = passage.score = float(logit)
        return sorted(passages, key=lambda p: -p.score)

