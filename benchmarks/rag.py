"""RAG answer latency over a ~2,000-chunk collection, through the real server.

The collection: the first 1,100 SciFact abstracts (about 2,000 chunks of <= 256 tokens),
indexed once with the same pipeline the server uses. Questions: SciFact train queries
whose evidence is among those abstracts. Each question goes to
``POST /v1/rag/chat/completions`` with ``stream: true``; we time the first SSE event
(citations), the first content token, and the whole answer (max_tokens=64).

The peer on the same machine, in the same run: the same chat model answering the same
question through ``/v1/chat/completions`` with the same instructions and the same passages
(full chunk text) already in the prompt, i.e. what a client doing its own retrieval would
send. The ratio shows what
retrieval (query embedding, hybrid search, fusion) adds to the time to first token.

Usage: python benchmarks/rag.py [--questions 30] [--write]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

import common

SCIFACT = common.SHARED_DATA / "scifact"
DOCUMENTS = 1100
MAX_TOKENS = 64


async def build(data_dir: Path) -> tuple[str, int]:
    from ingot.config import load_settings
    from ingot.eval import beir
    from ingot.bootstrap import running
    from ingot.kb.service import TextDocument

    data = beir.load(SCIFACT, "train")
    docs = [TextDocument(source=d.id, text=d.text, title=d.title) for d in list(data.corpus.values())[:DOCUMENTS]]
    async with running(load_settings(data_dir=data_dir), chat=False) as services:
        kb = services.kb
        kb.ensure_collection("bench_rag")
        await kb.ingest_texts("bench_rag", docs)
        return "bench_rag", kb.collection("bench_rag").chunks


def questions(limit: int) -> list[str]:
    from ingot.eval import beir

    data = beir.load(SCIFACT, "train")
    present = set(list(data.corpus)[:DOCUMENTS])
    out = [q for qid, q in data.queries.items() if any(d in present for d in data.qrels[qid])]
    return out[:limit]


def stream_times(client: httpx.Client, url: str, body: dict) -> tuple[float, float | None, float, dict]:
    """(first event, first content token, total) seconds and the first event's payload."""
    started = time.perf_counter()
    first_event = first_token = None
    head: dict = {}
    with client.stream("POST", url, json=body, timeout=300) as r:
        r.raise_for_status()
        for line in r.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            payload = json.loads(line[6:])
            now = time.perf_counter() - started
            if first_event is None:
                first_event, head = now, payload
            choices = payload.get("choices") or []
            if first_token is None and choices and (choices[0].get("delta") or {}).get("content"):
                first_token = now
    return first_event or 0.0, first_token, time.perf_counter() - started, head


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--questions", type=int, default=30)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        collection, chunks = asyncio.run(build(data_dir))
        # SmolLM2 by name (the default `auto` serves the best model installed), so runs
        # on different machines compare; INGOT_MODEL in the environment overrides it.
        model = os.environ.get("INGOT_MODEL", "smollm2-135m-instruct")
        proc, base = common.start_ingot(data_dir, env={"INGOT_THREADS": "1", "INGOT_MODEL": model})
        try:
            rows = run(base, collection, questions(args.questions))
        finally:
            common.stop(proc)
    report(rows, chunks, args.write)


def run(base: str, collection: str, qs: list[str]) -> dict[str, list[float]]:
    rows: dict[str, list[float]] = {k: [] for k in ("rag_event", "rag_ttft", "rag_total", "chat_ttft", "chat_total")}
    with httpx.Client() as client:
        for q in qs:  # one at a time: latency, not throughput; RAG and its peer alternate
            body = {"messages": [{"role": "user", "content": q}], "collection": collection, "stream": True,
                    "max_tokens": MAX_TOKENS, "temperature": 0}
            event, ttft, total, head = stream_times(client, f"{base}/rag/chat/completions", body)
            if not head.get("citations") or ttft is None:
                continue  # refused ("documents do not say"): no model call to compare
            rows["rag_event"].append(event)
            rows["rag_ttft"].append(ttft)
            rows["rag_total"].append(total)
            plain = {"messages": same_prompt(client, base, collection, q, head), "stream": True,
                     "max_tokens": MAX_TOKENS, "temperature": 0}
            _, ttft, total, _ = stream_times(client, f"{base}/chat/completions", plain)
            rows["chat_ttft"].append(ttft or 0.0)
            rows["chat_total"].append(total)
    return rows


def same_prompt(client: httpx.Client, base: str, collection: str, q: str, head: dict) -> list[dict]:
    """The messages RAG sent to the model, rebuilt from the same passages (full chunk text
    from /v1/search), with the sources in reverse order so the peer cannot reuse RAG's
    cached prompt prefix (both then share only the system prompt)."""
    from ingot.rag.prompt import SYSTEM_PROMPT

    hits = client.post(f"{base}/search", json={"collection": collection, "query": q, "top_k": 50}).json()["data"]
    text = {h["chunk_id"]: h["text"] for h in hits}
    blocks = [f"[{c['index']}]\n{text.get(c['chunk_id'], c['snippet']).strip()}" for c in reversed(head["citations"])]
    user = "Sources:\n\n" + "\n\n".join(blocks) + f"\n\nQuestion: {q}"
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]


def report(rows: dict[str, list[float]], chunks: int, write: bool) -> None:
    def p(values: list[float], q: int) -> float:
        return float(np.percentile(values, q)) if values else float("nan")

    n = len(rows["rag_ttft"])
    lines = [
        f"## {dt.date.today()}: RAG answer latency (`benchmarks/rag.py`)\n",
        f"Machine: {common.machine()}. Collection: {DOCUMENTS} SciFact abstracts = {chunks} chunks; {n} questions "
        f"answered (streamed, max_tokens={MAX_TOKENS}, one at a time, 1 llama.cpp thread). Peer: the same model via "
        "/v1/chat/completions with the same passages pasted into the prompt.\n",
        "| measurement | p50 s | p95 s |",
        "|---|---|---|",
        f"| RAG: first SSE event (citations) | {p(rows['rag_event'], 50):.3f} | {p(rows['rag_event'], 95):.3f} |",
        f"| RAG: time to first token | {p(rows['rag_ttft'], 50):.3f} | {p(rows['rag_ttft'], 95):.3f} |",
        f"| RAG: total answer | {p(rows['rag_total'], 50):.3f} | {p(rows['rag_total'], 95):.3f} |",
        f"| plain chat, same passages: time to first token | {p(rows['chat_ttft'], 50):.3f} | {p(rows['chat_ttft'], 95):.3f} |",
        f"| plain chat, same passages: total | {p(rows['chat_total'], 50):.3f} | {p(rows['chat_total'], 95):.3f} |",
        "",
        f"TTFT ratio RAG / plain chat (p50): {p(rows['rag_ttft'], 50) / max(p(rows['chat_ttft'], 50), 1e-9):.2f}x",
        "",
    ]
    common.record("\n".join(lines) + "\n", write)


if __name__ == "__main__":
    main()
