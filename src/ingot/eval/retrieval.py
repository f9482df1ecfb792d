"""``ingot eval retrieval``: ingest a BEIR corpus into a scratch collection (cached by the
corpus hash), run the split's queries through the real retrieval service, score them.

Documents are ranked by their best chunk (a long abstract may be split in two chunks; the
document counts once, at its best rank), which is how BEIR scores passage retrievers
over chunked corpora.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ingot.kb.service import KnowledgeBase, TextDocument

MODES = ("dense", "bm25", "hybrid", "hybrid+rerank")
DEPTH = 100  # documents ranked per query (recall@100)
CHUNKS_PER_DOCUMENT = 2  # chunks fetched per wanted document, so DEPTH documents survive dedup


def scratch_collection_name(corpus_hash: str) -> str:
    return f"beir_{corpus_hash[:16]}"


async def ensure_corpus(
    kb: KnowledgeBase, name: str, corpus: list[TextDocument], on_done: Callable[[TextDocument, int], None] | None = None
) -> int:
    """Create (or reuse) the scratch collection and index what is missing. Returns how many
    documents were written now (0 when the cache was complete)."""
    kb.ensure_collection(name)
    return await kb.ingest_texts(name, corpus, on_done=on_done)


def split_mode(mode: str) -> tuple[str, bool]:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    return (mode.removesuffix("+rerank"), mode.endswith("+rerank"))


@dataclass
class RunResult:
    rankings: dict[str, list[str]]  # query id -> document ids (BEIR _id), best first
    seconds: float

    @property
    def queries_per_second(self) -> float:
        return len(self.rankings) / self.seconds if self.seconds > 0 else 0.0


async def run_queries(
    kb: KnowledgeBase,
    collection: str,
    queries: dict[str, str],
    mode: str,
    *,
    concurrency: int = 4,
    on_done: Callable[[], None] | None = None,
) -> RunResult:
    """Rank documents for every query with the retrieval service (``mode`` as in MODES)."""
    search_mode, rerank = split_mode(mode)
    gate = asyncio.Semaphore(concurrency)
    rankings: dict[str, list[str]] = {}

    async def one(qid: str, text: str) -> None:
        async with gate:
            result = await kb.retrieval.search(
                [collection], text, top_k=DEPTH * CHUNKS_PER_DOCUMENT, mode=search_mode, rerank=rerank,  # type: ignore[arg-type]
            )
        ranked: list[str] = []
        for passage in result.passages:
            source = passage.record.source
            if source not in ranked:
                ranked.append(source)
        rankings[qid] = ranked[:DEPTH]
        if on_done is not None:
            on_done()

    started = time.monotonic()
    await asyncio.gather(*(one(qid, text) for qid, text in queries.items()))
    return RunResult(rankings, time.monotonic() - started)


def report(mode: str, split: str, scores: dict[str, float], run: RunResult, queries: int, corpus: int) -> dict[str, Any]:
    """The ``--json`` object: one flat dict with the metric keys the issue names."""
    return {
        "mode": mode, "split": split, "queries": queries, "corpus_documents": corpus,
        **{k: round(v, 4) for k, v in scores.items()},
        "queries_per_second": round(run.queries_per_second, 2),
    }
