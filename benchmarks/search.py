"""Latency of hybrid search (``POST /v1/search``) at 10k and 100k chunks, LanceDB and Milvus Lite.

Data. SciFact (``../shared/data/scifact``) has 5,183 abstracts, too few for 100k chunks, so
chunks are synthetic but made of real text: each is a window of 2-5 consecutive sentences of
one abstract (random start and length; ~180k distinct windows exist). Its vector is the
normalised mean of the real all-MiniLM-L6-v2 vectors of its sentences, which are embedded
once (ONNX, in-process) and cached. That keeps the real embedding geometry (topics cluster,
nearest neighbours are meaningful, which is what HNSW's speed depends on) at the price of
~1.5 min of embedding instead of the ~40 min that embedding 100k chunks would cost on 2
cores; random unit vectors would give an unrealistically hard, structure-free ANN search.
Documents hold 50 chunks; half the documents are public (empty ACL), the other half
belong to one of 10 groups, so a caller in one group may read ~55% of the chunks.

Queries are the SciFact queries (real text). Each store is filled through the store API
(``open_store(settings)`` on the server's data dir), closed, then ``ingot serve`` is
started on it (``INGOT_MODEL=none``) and queried over HTTP, with and without the caller's
ACL groups. The in-process part (the two store calls run concurrently, then RRF) is
measured on the same data and the same queries, next to LanceDB's own hybrid query
(``table.search(query_type="hybrid")``, vector + FTS + its RRF reranker) as the floor.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import hashlib
import json
import os
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import common

SCIFACT = common.SHARED_DATA / "scifact"
CACHE = Path(os.environ.get("INGOT_BENCH_CACHE", Path.home() / ".cache" / "ingot-bench"))
COLLECTION = "bench"
CHUNKS_PER_DOC = 50
GROUPS = tuple(f"g{i}" for i in range(10))
SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(])")


# ----------------------------------------------------------------------------- data


def load_sentences() -> tuple[list[str], list[list[str]]]:
    """SciFact titles and each abstract split into sentences."""
    titles, abstracts = [], []
    with (SCIFACT / "corpus.jsonl").open() as fh:
        for line in fh:
            doc = json.loads(line)
            sentences = [s.strip() for s in SENTENCE.split(doc["text"]) if s.strip()]
            if sentences:
                titles.append(doc["title"])
                abstracts.append(sentences)
    return titles, abstracts


def load_queries(limit: int | None = None) -> list[str]:
    queries = []
    with (SCIFACT / "queries.jsonl").open() as fh:
        for line in fh:
            queries.append(json.loads(line)["text"])
    return queries[:limit] if limit else queries


def make_encoder():  # -> ingot.embeddings.protocol.Encoder
    from ingot.config import load_settings
    from ingot.embeddings.factory import create_encoder
    from ingot.models.registry import find_model

    settings = load_settings()
    return create_encoder(find_model(settings.embedding_model, "embedding"), settings)


def embed(encoder, texts: list[str], batch: int = 128) -> np.ndarray:
    """Unit vectors for ``texts`` (truncated at the model's limit), in length-sorted batches."""
    ids = [encoder.truncate(t, "END") for t in encoder.tokenize(texts)]
    order = np.argsort([len(t) for t in ids])
    out = np.empty((len(texts), encoder.info.dimensions), dtype=np.float32)
    for start in range(0, len(order), batch):
        rows = order[start:start + batch]
        out[rows] = encoder.encode([ids[i] for i in rows])
    return out


def sentence_vectors(abstracts: list[list[str]]) -> np.ndarray:
    """Vectors of every sentence (flattened in order), cached by content hash."""
    flat = [s for a in abstracts for s in a]
    key = hashlib.sha256("\n".join(flat).encode()).hexdigest()[:16]
    path = CACHE / f"scifact-sentences-{key}.npy"
    if path.is_file():
        return np.load(path)
    started = time.perf_counter()
    vectors = embed(make_encoder(), flat)
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors)
    print(f"embedded {len(flat)} sentences in {time.perf_counter() - started:.0f} s -> {path}", file=sys.stderr)
    return vectors


@dataclass
class Corpus:
    titles: list[str]
    abstracts: list[list[str]]
    offsets: np.ndarray  # start of each abstract's sentences in ``vectors``
    vectors: np.ndarray


def load_corpus() -> Corpus:
    titles, abstracts = load_sentences()
    vectors = sentence_vectors(abstracts)
    offsets = np.cumsum([0] + [len(a) for a in abstracts[:-1]])
    return Corpus(titles, abstracts, offsets, vectors)


def synthetic_documents(corpus: Corpus, n_chunks: int, seed: int = 0):
    """Yield (document_id, [ChunkRecord]) with ``CHUNKS_PER_DOC`` chunks per document."""
    from ingot.store.protocol import ChunkRecord

    rng = np.random.default_rng(seed)
    made = 0
    doc = 0
    while made < n_chunks:
        n = min(CHUNKS_PER_DOC, n_chunks - made)
        doc_id = f"doc{doc:06d}"
        acl = [] if doc % 2 == 0 else [GROUPS[(doc // 2) % len(GROUPS)]]
        records = []
        for i in range(n):
            a = int(rng.integers(len(corpus.abstracts)))
            sentences = corpus.abstracts[a]
            length = int(min(len(sentences), rng.integers(2, 6)))
            start = int(rng.integers(0, len(sentences) - length + 1))
            text = " ".join(sentences[start:start + length])
            v = corpus.vectors[corpus.offsets[a] + start: corpus.offsets[a] + start + length].mean(axis=0)
            v /= np.linalg.norm(v)
            records.append(ChunkRecord(
                id=f"{doc_id}-{i}", document_id=doc_id, content_hash="h1", text=text, vector=v,
                source=f"{doc_id}.pdf", page_start=i // 3 + 1, page_end=i // 3 + 1,
                heading_path=[corpus.titles[a][:80]], kinds=["text"], acl=acl, created_at=1.7e9 + doc,
            ))
        yield doc_id, records
        made += n
        doc += 1


# ----------------------------------------------------------------------------- stores


def store_settings(data_dir: Path, backend: str):
    from ingot.config import load_settings

    extra = {"vector_store": backend}
    if backend == "milvus":
        extra["milvus_uri"] = str(data_dir / "milvus" / "bench.db")
    return load_settings(data_dir=data_dir, **extra), extra


def fill(settings, corpus: Corpus, n_chunks: int) -> float:
    """Fill ``COLLECTION`` through the store API; returns seconds (writes + upkeep).

    ``open_store`` leaves index training and compaction to ``maintain``, which the
    knowledge base runs in the background after its writes; here it runs inline after
    each document (the same upkeep, due at the same points), and ``optimize`` at the end
    trains the ANN index if the table has reached its threshold and folds the last rows
    into the indices (steady state)."""
    from ingot.store.factory import open_store

    store = open_store(settings)
    started = time.perf_counter()
    try:
        store.create_collection(COLLECTION, corpus.vectors.shape[1])
        for doc_id, records in synthetic_documents(corpus, n_chunks):
            store.replace_document(COLLECTION, doc_id, records)
            store.maintain(COLLECTION)
        store.optimize(COLLECTION)
        assert store.count(COLLECTION) == n_chunks
    finally:
        store.close()
    return time.perf_counter() - started


def percentiles(ms: list[float]) -> tuple[float, float]:
    ms = sorted(ms)
    return statistics.median(ms), ms[min(len(ms) - 1, int(round(0.95 * (len(ms) - 1))))]


def timed(fn: Callable[[int], object], n: int, warmup: int = 10) -> tuple[float, float]:
    for i in range(min(warmup, n)):
        fn(i)
    ms = []
    for i in range(n):
        started = time.perf_counter()
        fn(i)
        ms.append((time.perf_counter() - started) * 1000)
    return percentiles(ms)


def rrf_ids(*lists, k: int = 60, top: int = 10) -> list[str]:
    scores: dict[str, float] = {}
    for hits in lists:
        for rank, hit in enumerate(hits, start=1):
            scores[hit.record.id] = scores.get(hit.record.id, 0.0) + 1.0 / (k + rank)
    return sorted(scores, key=lambda i: -scores[i])[:top]


def in_process(settings, backend: str, queries: list[str], qvecs: np.ndarray, acl) -> list[tuple[str, float, float]]:
    """Store calls as the retrieval service makes them: dense and BM25 (k=50) in two worker
    threads at once, then RRF; plus LanceDB's own hybrid query as the floor."""
    from ingot.store.factory import open_store
    from ingot.store.protocol import Filter

    store = open_store(settings)
    loop = asyncio.new_event_loop()
    rows = []
    try:
        store.count(COLLECTION)
        for label, flt in (("no filter", None), ("ACL", Filter(acl_any=acl))):
            async def hybrid(i: int) -> list[str]:
                dense, text = await asyncio.gather(
                    asyncio.to_thread(store.dense_search, COLLECTION, qvecs[i], 50, flt),
                    asyncio.to_thread(store.text_search, COLLECTION, queries[i], 50, flt))
                return rrf_ids(dense, text)

            n = len(queries)
            rows.append((f"store dense k=50, {label}", *timed(lambda i: store.dense_search(COLLECTION, qvecs[i], 50, flt), n)))
            rows.append((f"store BM25 k=50, {label}", *timed(lambda i: store.text_search(COLLECTION, queries[i], 50, flt), n)))
            rows.append((f"store hybrid (both at once + RRF), {label}", *timed(lambda i: loop.run_until_complete(hybrid(i)), n)))
            if backend == "lancedb":
                rows.append((f"LanceDB native hybrid query (floor), {label}", *timed(native_hybrid(store, queries, qvecs, flt), n)))
    finally:
        loop.close()
        store.close()
    return rows


def native_hybrid(store, queries: list[str], qvecs: np.ndarray, flt) -> Callable[[int], object]:
    """``table.search(query_type="hybrid")``: LanceDB runs vector + FTS and fuses with its
    RRF reranker; same k, filter (prefilter) and ANN settings as the store's own calls."""
    from lancedb.rerankers import RRFReranker

    from ingot.store.lancedb_store import RESULT_COLUMNS, render_filter

    coll = store._open(COLLECTION)
    where = render_filter(flt, read_groups=coll.read_groups)
    reranker = RRFReranker()

    def run(i: int) -> object:
        q = (coll.table.search(query_type="hybrid", vector_column_name="vector", fts_columns="text")
             .vector(qvecs[i]).text(queries[i]).distance_type("cosine").select(RESULT_COLUMNS).limit(50)
             .ef(max(store.ef, store.ef_per_k * 50)).refine_factor(store.refine_factor).rerank(reranker))
        if where:
            q = q.where(where, prefilter=True)
        return q.to_arrow()

    return run


# ----------------------------------------------------------------------------- HTTP


def make_keys(data_dir: Path, groups: tuple[str, ...]) -> tuple[str, str]:
    """An admin key (reads everything) and a key limited to ``groups``."""
    from ingot.security.keys import KeyStore

    keys = KeyStore(data_dir)
    _, admin = keys.create("bench-admin", admin=True)
    _, member = keys.create("bench-member", groups=list(groups))
    return admin, member


def over_http(data_dir: Path, env: dict[str, str], queries: list[str], acl: tuple[str, ...],
              log: Path) -> list[tuple[str, float, float]]:
    import httpx

    admin, member = make_keys(data_dir, acl)
    proc, base = common.start_ingot(data_dir, env={"INGOT_MODEL": "none", "INGOT_RANKING_MODEL": "none", **env},
                                    log=log)
    rows = []
    try:
        with httpx.Client(base_url=base, timeout=60) as http:
            for label, key in (("admin key (no ACL filter)", admin), (f"key with group {acl[0]} (ACL filter)", member)):
                server_ms: dict[str, list[float]] = {}

                def post(i: int) -> None:
                    r = http.post("/search", headers={"Authorization": f"Bearer {key}"},
                                  json={"collection": COLLECTION, "query": queries[i], "top_k": 10, "mode": "hybrid"})
                    r.raise_for_status()
                    body = r.json()
                    assert len(body["data"]) == 10, body
                    for name, value in body.get("timings", {}).items():
                        server_ms.setdefault(name, []).append(value)

                rows.append((f"POST /v1/search hybrid top_k=10, {label}", *timed(post, len(queries))))
                for name, values in server_ms.items():
                    rows.append((f"  of which server `{name}`", *percentiles(values)))
    finally:
        common.stop(proc)
    return rows


# ----------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--stores", nargs="+", default=["lancedb", "milvus"], choices=["lancedb", "milvus"])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--no-http", action="store_true", help="only the in-process part")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    if not SCIFACT.is_dir():
        sys.exit(f"SciFact not found at {SCIFACT}")
    corpus = load_corpus()
    queries = load_queries(args.queries)
    qvecs = embed(make_encoder(), queries)
    acl = ("g3",)
    results: list[tuple[str, int, str, float, float]] = []
    fills: list[str] = []
    for backend in args.stores:
        for size in args.sizes:
            data_dir = Path(tempfile.mkdtemp(prefix=f"ingot-search-{backend}-{size}-"))
            settings, extra = store_settings(data_dir, backend)
            seconds = fill(settings, corpus, size)
            fills.append(f"{backend} {size:,}: {seconds:.0f} s")
            print(f"filled {backend} with {size} chunks in {seconds:.0f} s ({data_dir})", file=sys.stderr, flush=True)
            for row in in_process(settings, backend, queries, qvecs, acl):
                results.append((backend, size, *row))
                print(results[-1], file=sys.stderr, flush=True)
            if not args.no_http:
                env = {f"INGOT_{k.upper()}": v for k, v in extra.items()}
                for row in over_http(data_dir, env, queries, acl, data_dir / "server.log"):
                    results.append((backend, size, *row))
                    print(results[-1], file=sys.stderr, flush=True)
    floors = {(b, s, m.split(", ")[-1]): p50 for b, s, m, p50, _ in results if m.startswith("LanceDB native")}
    lines = [
        f"\n## {dt.date.today().isoformat()}: search latency (`benchmarks/search.py`)\n",
        f"Machine: {common.machine()}; load average at the end {os.getloadavg()[0]:.1f} (other work shares "
        f"these cores). Synthetic chunks of real SciFact sentences with MiniLM vectors (see the script's "
        f"docstring), 50 chunks per document, half public, half in one of 10 groups (the ACL filter "
        f"admits ~55%). {len(queries)} SciFact queries, one client, sequential, after 10 warm-up queries. "
        f"Fill through the store API: {'; '.join(fills)}. The ratio column compares the store's "
        f"hybrid (two concurrent k=50 calls + RRF) with LanceDB's native hybrid query on the same data.\n",
        "| store | chunks | measurement | p50 ms | p95 ms | ratio to native hybrid p50 |",
        "|---|---|---|---|---|---|",
    ]
    for backend, size, what, p50, p95 in results:
        ratio = ""
        if what.startswith("store hybrid"):
            floor = floors.get((backend, size, what.split(", ")[-1]))
            ratio = f"{p50 / floor:.2f}x (lower is better)" if floor else ""
        lines.append(f"| {backend} | {size:,} | {what} | {p50:.1f} | {p95:.1f} | {ratio} |")
    common.record("\n".join(lines) + "\n", write=not args.no_write)


if __name__ == "__main__":
    main()
