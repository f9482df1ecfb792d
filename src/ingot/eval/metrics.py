"""IR metrics with the definitions of trec_eval / pytrec_eval (what BEIR reports).

For one query, with ``ranked`` the retrieved document ids best first and ``qrels`` its
graded judgments (doc id -> integer relevance; unjudged documents count as 0):

* nDCG@k: ``DCG = sum_{i=1..k} rel_i / log2(i + 1)`` with the graded relevance itself as
  the gain (trec_eval's ``ndcg_cut``, not the ``2^rel - 1`` variant), divided by the DCG of
  the ideal ordering of the judged documents. Negative judgments count as 0.
* recall@k: relevant (relevance > 0) documents in the top k / all relevant documents.
* MRR@k: 1 / rank of the first relevant document within the top k, else 0.

:func:`evaluate` averages over the queries that have at least one relevant document in
the qrels (others have no defined nDCG or recall); a judged query missing from the run
counts as 0, so a retriever cannot score higher by returning nothing for hard queries.
A document id repeated in a ranking counts once, at its first rank.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field


def _dedup(ranked: Sequence[str], k: int) -> list[str]:
    seen: set[str] = set()
    out: list[str] = []
    for doc in ranked:
        if doc not in seen:
            seen.add(doc)
            out.append(doc)
            if len(out) == k:
                break
    return out


def ndcg_at_k(ranked: Sequence[str], qrels: Mapping[str, int], k: int = 10) -> float:
    gains = sorted((max(0, int(r)) for r in qrels.values()), reverse=True)[:k]
    ideal = sum(g / math.log2(i + 2) for i, g in enumerate(gains))
    if ideal <= 0:
        return 0.0
    dcg = sum(max(0, int(qrels.get(doc, 0))) / math.log2(i + 2) for i, doc in enumerate(_dedup(ranked, k)))
    return dcg / ideal


def recall_at_k(ranked: Sequence[str], qrels: Mapping[str, int], k: int) -> float:
    relevant = {doc for doc, r in qrels.items() if r > 0}
    if not relevant:
        return 0.0
    return sum(1 for doc in _dedup(ranked, k) if doc in relevant) / len(relevant)


def mrr_at_k(ranked: Sequence[str], qrels: Mapping[str, int], k: int = 10) -> float:
    for i, doc in enumerate(_dedup(ranked, k), start=1):
        if qrels.get(doc, 0) > 0:
            return 1.0 / i
    return 0.0


@dataclass(frozen=True)
class QueryMetrics:
    ndcg_at_10: float
    recall_at_10: float
    recall_at_100: float
    mrr_at_10: float


@dataclass(frozen=True)
class Metrics:
    """Means over ``queries`` judged queries; ``per_query`` keeps each query's values."""

    ndcg_at_10: float
    recall_at_10: float
    recall_at_100: float
    mrr_at_10: float
    queries: int
    per_query: dict[str, QueryMetrics] = field(default_factory=dict, repr=False)

    def to_dict(self, per_query: bool = False) -> dict:
        out = {k: v for k, v in asdict(self).items() if k != "per_query"}
        if per_query:
            out["per_query"] = {q: asdict(m) for q, m in self.per_query.items()}
        return out


def query_metrics(ranked: Sequence[str], qrels: Mapping[str, int]) -> QueryMetrics:
    return QueryMetrics(
        ndcg_at_10=ndcg_at_k(ranked, qrels, 10),
        recall_at_10=recall_at_k(ranked, qrels, 10),
        recall_at_100=recall_at_k(ranked, qrels, 100),
        mrr_at_10=mrr_at_k(ranked, qrels, 10),
    )


def evaluate(run: Mapping[str, Sequence[str]], qrels: Mapping[str, Mapping[str, int]]) -> Metrics:
    """Mean metrics of ``run`` (query id -> ranked doc ids, best first) over the queries
    of ``qrels`` that have a relevant document. Queries only in ``run`` are ignored."""
    per_query = {
        q: query_metrics(run.get(q, ()), judged)
        for q, judged in qrels.items()
        if any(r > 0 for r in judged.values())
    }
    n = len(per_query)

    def mean(name: str) -> float:
        return sum(getattr(m, name) for m in per_query.values()) / n if n else 0.0

    return Metrics(mean("ndcg_at_10"), mean("recall_at_10"), mean("recall_at_100"), mean("mrr_at_10"), n, per_query)
