"""Choose the default ranker by measurement on SciFact (train split, ../shared/data/scifact).

No cross-encoder ships offline here, so the candidates are what ingot can run:
- no reranking (the first stage's order),
- embedding similarity (cosine of all-MiniLM-L6-v2 query/passage vectors, via /v1/ranking),
- the bundled chat model judging relevance (log P("Yes") - log P("No") for one token, via
  /v1/chat/completions with logprobs), on a subsample because it is slow on 2 cores.

First stages: BM25 (bm25s, English stemming), dense (MiniLM, via /v1/embeddings), and
hybrid (reciprocal-rank fusion of both, k=60). Metric: nDCG@10 (binary qrels), recall@K.
Everything goes through a real ingot server. Appends a section to benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import datetime as dt
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

import common

SCIFACT = common.SHARED_DATA / "scifact"


def load_scifact() -> tuple[list[str], list[str], dict[str, str], dict[str, set[str]]]:
    ids, texts = [], []
    with (SCIFACT / "corpus.jsonl").open() as fh:
        for line in fh:
            doc = json.loads(line)
            ids.append(doc["_id"])
            texts.append(f"{doc['title']}. {doc['text']}")
    queries = {}
    with (SCIFACT / "queries.jsonl").open() as fh:
        for line in fh:
            q = json.loads(line)
            queries[q["_id"]] = q["text"]
    qrels: dict[str, set[str]] = {}
    with (SCIFACT / "qrels" / "train.tsv").open() as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            if int(row["score"]) > 0:
                qrels.setdefault(row["query-id"], set()).add(row["corpus-id"])
    return ids, texts, {q: queries[q] for q in qrels}, qrels


def ndcg_at_10(ranked: list[str], relevant: set[str]) -> float:
    dcg = sum(1 / math.log2(i + 2) for i, d in enumerate(ranked[:10]) if d in relevant)
    ideal = sum(1 / math.log2(i + 2) for i in range(min(len(relevant), 10)))
    return dcg / ideal if ideal else 0.0


def recall(ranked: list[str], relevant: set[str]) -> float:
    return len(set(ranked) & relevant) / len(relevant)


def rrf(*rankings: list[int], k: int = 60) -> list[int]:
    scores: dict[int, float] = {}
    for ranking in rankings:
        for rank, doc in enumerate(ranking):
            scores[doc] = scores.get(doc, 0.0) + 1.0 / (k + rank + 1)
    return sorted(scores, key=lambda d: -scores[d])


async def embed_all(base: str, texts: list[str], input_type: str) -> np.ndarray:
    out: list = [None] * len(texts)
    chunks = list(range(0, len(texts), 64))
    async with httpx.AsyncClient(base_url=base, timeout=600) as http:
        async def worker() -> None:
            while chunks:
                start = chunks.pop(0)
                r = await http.post("/embeddings", json={"input": texts[start : start + 64], "truncate": "END",
                                                        "input_type": input_type, "encoding_format": "float"})
                r.raise_for_status()
                for i, d in enumerate(r.json()["data"]):
                    out[start + i] = d["embedding"]

        await asyncio.gather(*(worker() for _ in range(4)))
    return np.array(out, dtype=np.float32)


async def cosine_rerank(base: str, query: str, passages: list[str]) -> list[int]:
    async with httpx.AsyncClient(base_url=base, timeout=600) as http:
        r = await http.post("/ranking", json={"query": {"text": query}, "passages": [{"text": p} for p in passages],
                                              "truncate": "END"})
        r.raise_for_status()
        return [x["index"] for x in r.json()["rankings"]]


JUDGE_PROMPT = ("Query: {query}\n\nDocument: {doc}\n\nDoes the document contain evidence about the query? "
                "Answer Yes or No.")


async def llm_scores(base: str, pairs: list[tuple[str, str]], concurrency: int = 8) -> list[float]:
    """log P(yes) - log P(no) for the first answer token (variants folded together)."""
    scores: list[float] = [0.0] * len(pairs)
    todo = list(range(len(pairs)))
    async with httpx.AsyncClient(base_url=base, timeout=600) as http:
        async def worker() -> None:
            while todo:
                i = todo.pop(0)
                query, doc = pairs[i]
                r = await http.post("/chat/completions", json={
                    "messages": [{"role": "user", "content": JUDGE_PROMPT.format(query=query, doc=doc[:700])}],
                    "max_tokens": 1, "temperature": 0, "logprobs": True, "top_logprobs": 20})
                r.raise_for_status()
                top = r.json()["choices"][0]["logprobs"]["content"][0]["top_logprobs"]
                yes = [math.exp(t["logprob"]) for t in top if t["token"].strip().lower() == "yes"]
                no = [math.exp(t["logprob"]) for t in top if t["token"].strip().lower() == "no"]
                scores[i] = math.log(sum(yes) + 1e-9) - math.log(sum(no) + 1e-9)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--candidates", type=int, default=20, help="first-stage depth that rerankers reorder")
    parser.add_argument("--llm-queries", type=int, default=30, help="queries in the chat-model subsample")
    parser.add_argument("--llm-candidates", type=int, default=10)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    if not SCIFACT.is_dir():
        sys.exit(f"SciFact not found at {SCIFACT}")
    import bm25s
    import Stemmer

    ids, texts, queries, qrels = load_scifact()
    qids = list(queries)
    started = time.time()
    stemmer = Stemmer.Stemmer("english")
    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize(texts, stopwords="en", stemmer=stemmer, show_progress=False), show_progress=False)
    bm25_idx, _ = retriever.retrieve(
        bm25s.tokenize([queries[q] for q in qids], stopwords="en", stemmer=stemmer, show_progress=False),
        k=100, show_progress=False,
    )
    bm25 = {q: list(map(int, bm25_idx[i])) for i, q in enumerate(qids)}

    data_dir = Path(tempfile.mkdtemp(prefix="ingot-ranker-"))
    proc, base = common.start_ingot(data_dir, env={"INGOT_MODEL": "smollm2-135m-instruct"})  # the judge measured
    try:
        doc_vecs = asyncio.run(embed_all(base, texts, "passage"))
        query_vecs = asyncio.run(embed_all(base, [queries[q] for q in qids], "query"))
        sims = query_vecs @ doc_vecs.T
        dense = {q: list(map(int, np.argsort(-sims[i])[:100])) for i, q in enumerate(qids)}
        hybrid = {q: rrf(bm25[q], dense[q])[:100] for q in qids}

        def evaluate(runs: dict[str, list[int]], subset: list[str]) -> tuple[float, float]:
            nd = [ndcg_at_10([ids[d] for d in runs[q]], qrels[q]) for q in subset]
            rc = [recall([ids[d] for d in runs[q][: args.candidates]], qrels[q]) for q in subset]
            return float(np.mean(nd)), float(np.mean(rc))

        K = args.candidates
        rows: list[tuple[str, str, int, float, float]] = []
        for name, run in (("BM25", bm25), ("dense MiniLM", dense), ("hybrid RRF", hybrid)):
            nd, rc = evaluate(run, qids)
            rows.append((name, "none", len(qids), nd, rc))
        # The similarity ranker scores exactly these cosines (same model, runtime and
        # truncation); re-embedding 32k passages through /v1/ranking would take ~15 min, so
        # the full set uses the vectors above and the subsample below checks /v1/ranking.
        for name, run in (("BM25", bm25), ("hybrid RRF", hybrid)):
            reranked = {}
            for i, q in enumerate(qids):
                cands = run[q][:K]
                reranked[q] = [cands[j] for j in np.argsort(-sims[i, cands], kind="stable")]
            nd, rc = evaluate(reranked, qids)
            rows.append((name, f"embedding similarity (top {K})", len(qids), nd, rc))

        subset = qids[: args.llm_queries]
        KL = args.llm_candidates
        pairs = [(queries[q], texts[d]) for q in subset for d in hybrid[q][:KL]]
        llm_started = time.time()
        scores = asyncio.run(llm_scores(base, pairs))
        llm_seconds = time.time() - llm_started
        llm_run, cos_run, none_run = {}, {}, {}
        agreement_failures = 0
        for j, q in enumerate(subset):
            cands = hybrid[q][:KL]
            s = scores[j * KL : (j + 1) * KL]
            llm_run[q] = [cands[i] for i in np.argsort(-np.array(s), kind="stable")]
            order = asyncio.run(cosine_rerank(base, queries[q], [texts[d] for d in cands]))
            cos_run[q] = [cands[i] for i in order]
            none_run[q] = cands
            qi = qids.index(q)
            if cos_run[q] != [cands[i] for i in np.argsort(-sims[qi, cands], kind="stable")]:
                agreement_failures += 1
        for label, run in (("none", none_run), (f"embedding similarity (top {KL})", cos_run),
                           (f"SmolLM2 yes/no (top {KL}, {llm_seconds / len(pairs):.2f} s/pair)", llm_run)):
            nd, rc = evaluate(run, subset)
            rows.append(("hybrid RRF, subsample", label, len(subset), nd, rc))
    finally:
        common.stop(proc)

    lines = [
        f"\n## {dt.date.today().isoformat()}: default ranker choice on SciFact train (`benchmarks/ranker_choice.py`)\n",
        f"Machine: {common.machine()}. "
        f"{len(texts)} abstracts, {len(qids)} train queries with qrels; all models through a real ingot server; "
        f"total {time.time() - started:.0f} s. /v1/ranking orderings that differ from the precomputed cosines: "
        f"{agreement_failures} of {len(subset)}.\n",
        f"| first stage | reranker | queries | nDCG@10 | recall@{K} |",
        "|---|---|---|---|---|",
    ]
    lines += [f"| {a} | {b} | {n} | {nd:.4f} | {rc:.4f} |" for a, b, n, nd, rc in rows]
    common.record("\n".join(lines) + "\n", write=not args.no_write)


if __name__ == "__main__":
    main()
