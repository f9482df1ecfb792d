"""llama.cpp thread count under load: ``threads`` = cores vs cores - 1, with the embedder idle
and with it busy (issue 20, item 5).

Why: ingot serves chat and embeddings from one process on the same cores. llama.cpp's
worker threads meet at a barrier after every graph node and spin while they wait; when a
core is taken by something else (the ONNX embedder, the event loop, ingestion) a thread
that is descheduled holds every other one up. So the thread count that is fastest on an
idle machine can be the slowest one under a mixed load, and the default has to be chosen
under the load the server actually sees.

Per thread count (``--threads``, default cores - 1, cores, and ``auto``: cores while nothing
else computes, ``threads_when_busy`` while the embedder does), one ``ingot serve`` process
with the default embedder, measured in alternating rounds (medians reported):
- embedder alone: /v1/embeddings texts/s with no chat running;
- chat with the embedder idle, then chat while ``--embed-clients`` clients post
  /v1/embeddings batches without pause: single-stream decode tok/s, TTFT of one RAG-shaped
  prompt (~800 tokens, prefill-bound), and aggregate tok/s of ``--streams`` concurrent
  streams; during the busy phase also the embeddings texts/s the chat left over.

Chat requests are greedy with end-of-turn tokens banned, so every reply has exactly
``--max-tokens`` tokens (generation.py's client). Run:
``.venv/bin/python benchmarks/threads.py`` (needs the ``bench`` extra); appends a dated
section to benchmarks/RESULTS.md unless ``--no-write``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import itertools
import os
import statistics
import time
from pathlib import Path

import httpx

import common
import generation

DEFAULT_MODEL = "qwen2.5-coder-1.5b-instruct"
EMBED_BATCH = 32  # texts per /v1/embeddings request: an ingestion-sized batch
WORDS = ("the corrosion rate of steel samples rose with chloride concentration while polarization "
         "resistance fell and the coating delayed the onset of pitting in every test").split()


def embed_texts(tag: str, start: int) -> list[str]:
    """A batch of ~40-word texts, each unique (``tag`` + counter) so nothing can be cached."""
    return [f"{tag} {start + i}: " + " ".join(WORDS[(start + i + j) % len(WORDS)] for j in range(40))
            for i in range(EMBED_BATCH)]


class EmbedLoad:
    """``clients`` loops posting embedding batches back to back until stopped; counts texts."""

    def __init__(self, base_url: str, clients: int, tag: str) -> None:
        self.url, self.clients, self.tag = f"{base_url}/embeddings", clients, tag
        self.texts = 0
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self._counter = itertools.count(0, EMBED_BATCH)
        self._started = 0.0

    async def __aenter__(self) -> EmbedLoad:
        self._started = time.perf_counter()
        self._tasks = [asyncio.create_task(self._client()) for _ in range(self.clients)]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._started
        self._stop.set()
        await asyncio.gather(*self._tasks)

    @property
    def rate(self) -> float:
        return self.texts / self.seconds

    async def _client(self) -> None:
        async with httpx.AsyncClient(timeout=600) as http:
            while not self._stop.is_set():
                texts = embed_texts(self.tag, next(self._counter))
                response = await http.post(self.url, json={"model": "all-minilm-l6-v2", "input": texts})
                response.raise_for_status()
                if not self._stop.is_set():
                    self.texts += len(texts)


async def chat_phase(server: generation.Server, args: argparse.Namespace, tag: str) -> dict[str, float]:
    """Single-stream decode tok/s, one RAG prompt's TTFT, and ``--streams`` streams' aggregate."""
    url = f"{server.base_url}/chat/completions"
    async with httpx.AsyncClient(timeout=1800, limits=httpx.Limits(max_keepalive_connections=0)) as http:
        singles = []
        for i in range(args.runs):
            ttft, first, end, tokens = await generation.one_stream(
                http, url, server.model, generation.make_prompt("stories", f"{tag}s", i), args.max_tokens)
            singles.append((tokens - 1) / (end - first))
        rag_ttft, *_ = await generation.one_stream(http, url, server.model,
                                                   generation.make_prompt("rag", f"{tag}r", 0), 8)
        level = await generation.concurrent(http, server, args.streams, args.max_tokens, tag=f"{tag}c")
    return {"decode_tok_s": statistics.median(singles), "rag_ttft_s": rag_ttft,
            f"agg_tok_s@{args.streams}": level["agg_tok_s"]}


async def measure(server: generation.Server, args: argparse.Namespace, tag: str) -> dict[str, float]:
    async with httpx.AsyncClient(timeout=600) as http:  # warm both models
        await http.post(f"{server.base_url}/embeddings", json={"model": "all-minilm-l6-v2", "input": ["warm up"]})
        await generation.one_stream(http, f"{server.base_url}/chat/completions", server.model, "Warm up.", 8)
    out: dict[str, float] = {}
    async with EmbedLoad(server.base_url, args.embed_clients, f"{tag}alone") as load:
        await asyncio.sleep(args.embed_seconds)
    out["embed_alone_texts_s"] = load.rate
    out.update({f"idle {k}": v for k, v in (await chat_phase(server, args, f"{tag}i")).items()})
    async with EmbedLoad(server.base_url, args.embed_clients, f"{tag}busy") as load:
        busy = await chat_phase(server, args, f"{tag}b")
    out.update({f"busy {k}": v for k, v in busy.items()})
    out["busy embed_texts_s"] = load.rate
    return out


def start(threads: str, args: argparse.Namespace, data_dir: Path, log: Path) -> generation.Server:
    """``threads`` "N": N threads whatever else computes; "auto": the defaults (all cores alone,
    ``threads_when_busy`` while the embedder or an extraction computes)."""
    env = {"INGOT_MODEL": args.model}
    flags = []
    if threads != "auto":
        env["INGOT_THREADS_WHEN_BUSY"] = threads
        flags = ["--threads", threads]
    cache = Path.home() / ".local" / "share" / "ingot" / "models"
    if cache.is_dir():  # reuse the pulled weights instead of assembling them again per process
        env["INGOT_MODELS_CACHE_DIR"] = str(cache)
    proc, base = common.start_ingot(data_dir, *flags, "--parallel", str(args.parallel), env=env, log=log)
    return generation.Server(f"threads {threads}", proc, base, args.model)


def main() -> None:
    cores = os.cpu_count() or 2
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=sorted(generation.EOG_TOKENS), default=DEFAULT_MODEL)
    parser.add_argument("--threads", default=f"{max(1, cores - 1)},{cores},auto",
                        help="thread counts (comma list); auto = the defaults, fewer threads while the embedder computes")
    parser.add_argument("--parallel", type=int, default=4, help="decode slots")
    parser.add_argument("--streams", type=int, default=4, help="concurrent chat streams in the aggregate phase")
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--runs", type=int, default=2, help="single-stream requests per phase")
    parser.add_argument("--embed-clients", type=int, default=1)
    parser.add_argument("--embed-seconds", type=float, default=10.0, help="length of the embedder-alone phase")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    generation.CHAT_MODEL, generation.BAN_EOG = args.model, generation.eog_ban(args.model)
    thread_counts = [n.strip() for n in args.threads.split(",")]

    results: dict[str, list[dict[str, float]]] = {n: [] for n in thread_counts}
    started = dt.datetime.now(dt.timezone.utc)
    with common.scratch_dir("ingot-threads-") as (data_dir, log):
        for round_index in range(args.rounds):
            order = thread_counts if round_index % 2 == 0 else thread_counts[::-1]
            for threads in order:
                server = start(threads, args, data_dir, log)
                try:
                    row = asyncio.run(measure(server, args, f"t{threads}r{round_index}"))
                finally:
                    server.stop()
                print(f"round {round_index} threads {threads}: "
                      + ", ".join(f"{k} {v:.2f}" for k, v in row.items()), flush=True)
                results[threads].append(row)
    finished = dt.datetime.now(dt.timezone.utc)

    keys = list(results[thread_counts[0]][0])
    medians = {n: {k: statistics.median(r[k] for r in rows) for k in keys} for n, rows in results.items()}
    header = "| measurement | " + " | ".join(f"threads {n}" for n in thread_counts) + " |"
    lines = [header, "|---" * (len(thread_counts) + 1) + "|"]
    for key in keys:
        lines.append(f"| {key} | " + " | ".join(f"{medians[n][key]:.2f}" for n in thread_counts) + " |")
    table = common.section(
        "llama.cpp threads under load (`benchmarks/threads.py`)", started, finished,
        f"{args.model}, `ingot serve --threads N --parallel {args.parallel}` (N fixed: `INGOT_THREADS_WHEN_BUSY=N`; auto: "
        f"the defaults, {cores} alone and {max(1, cores - 1)} while the embedder encodes) with the default embedder "
        f"(all-MiniLM-L6-v2, ONNX, embed_threads {cores}); {args.max_tokens}-token greedy replies, EOG banned; "
        f"single stream = median of {args.runs}; rag_ttft = one ~800-token RAG prompt; busy = "
        f"{args.embed_clients} client(s) posting {EMBED_BATCH}-text /v1/embeddings batches back to back; "
        f"medians of {args.rounds} alternating rounds.", lines)
    common.record(table, write=not args.no_write)


if __name__ == "__main__":
    main()
