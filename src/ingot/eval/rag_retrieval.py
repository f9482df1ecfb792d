"""``ingot eval rag --retrieval-only``: what the RAG answer is built on, scored without a
model call, so retrieval changes can be measured in seconds instead of an hour.

For every golden question: the passages the RAG path retrieves (same rewrite, same search,
same top_k), the rank of the first one naming the right document and page, and whether the
evidence gate lets the question through. An answer can only be right when the gate is
open and a right passage is among those retrieved, so ``reachable`` is the ceiling any
chat model has on this collection; unanswerable questions are right here when the gate
closes (the model may still refuse them later, so that count is a floor).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Awaitable, Callable, Sequence

from ingot.eval.rag import AskError, GoldenItem, covers_pages, each_timed, group_by_kind, names_doc, rate

Retrieve = Callable[[GoldenItem], Awaitable[tuple[list[dict[str, Any]], bool]]]


@dataclass
class RetrievalRecord:
    """One question: the passages found (as citations: source, pages, score), the rank of
    the first right one (1-based; None: not found or unanswerable), the gate's verdict."""

    line: int
    kind: str
    question: str
    doc: str | None
    pages: list[int] | None
    passages: list[dict[str, Any]]
    rank: int | None
    gate_open: bool
    seconds: float

    @property
    def reachable(self) -> bool:
        """Answerable: the gate is open and a right passage reaches the model."""
        return self.doc is not None and self.gate_open and self.rank is not None


def first_right_rank(passages: Sequence[dict[str, Any]], doc: str | None, pages: Sequence[int] | None) -> int | None:
    if doc is None:
        return None
    for rank, passage in enumerate(passages, start=1):
        if names_doc(passage.get("source"), doc) and covers_pages(passage, pages):
            return rank
    return None


def score(item: GoldenItem, passages: list[dict[str, Any]], gate_open: bool, seconds: float) -> RetrievalRecord:
    return RetrievalRecord(
        line=item.line, kind=item.kind, question=item.question, doc=item.doc,
        pages=list(item.pages) if item.pages is not None else None, passages=passages,
        rank=first_right_rank(passages, item.doc, item.pages), gate_open=gate_open, seconds=round(seconds, 4),
    )


def summarize(records: Sequence[RetrievalRecord]) -> dict[str, Any]:
    """Counts over the records: recall@1 and @k (k = what was retrieved), MRR, the gate's
    false refusals, the reachable ceiling, and unanswerable questions the gate closes."""
    answerable = [r for r in records if r.doc is not None]
    unanswerable = [r for r in records if r.doc is None]
    n = len(answerable)
    found = [r for r in answerable if r.rank is not None]

    return {
        "questions": len(records), "answerable": n, "unanswerable": len(unanswerable),
        "found_at_1": sum(r.rank == 1 for r in found), "found": len(found),
        "recall_at_1": rate(sum(r.rank == 1 for r in found), n), "recall_at_k": rate(len(found), n),
        "mrr": round(sum(1 / r.rank for r in found if r.rank) / n, 4) if n else None,
        "gate_closed_answerable": sum(not r.gate_open for r in answerable),
        "reachable": sum(r.reachable for r in answerable), "reachable_rate": rate(sum(r.reachable for r in answerable), n),
        "gate_closed_unanswerable": sum(not r.gate_open for r in unanswerable),
    }


def report(records: Sequence[RetrievalRecord], meta: dict[str, Any]) -> dict[str, Any]:
    return {
        **meta, "retrieval_only": True, "summary": summarize(records),
        "by_kind": {kind: summarize(rs) for kind, rs in group_by_kind(records).items()},
        "records": [{**asdict(r), "reachable": r.reachable} for r in records],
    }


async def run(items: Sequence[GoldenItem], retrieve: Retrieve,
              on_done: Callable[[RetrievalRecord], None] | None = None) -> list[RetrievalRecord]:
    def record(item: GoldenItem, found: tuple[list[dict[str, Any]], bool] | AskError, seconds: float) -> RetrievalRecord:
        if isinstance(found, AskError):
            raise found  # retrieval has no per-question failure to record
        return score(item, *found, seconds)

    return await each_timed(items, retrieve, record, on_done)
