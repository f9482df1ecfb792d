"""Generation throughput and latency: ingot vs llama-cpp-python's own OpenAI server.

Both servers get the same GGUF file, the same thread count and the same streamed chat
requests (greedy, end-of-turn tokens banned through ``logit_bias`` so every reply is
exactly ``--max-tokens`` long), one server at a time.

Measured per server, all on one server process, in the order of ``--levels`` (default
1, 8, 16, 32 and 8 again: the repeat shows whether a burst leaves the process slower):
- single stream: decode tok/s (tokens after the first / time after the first) and TTFT,
  median of ``--runs`` sequential requests;
- each level of N concurrent streams: aggregate tok/s (all tokens / wall time) and TTFT p50;
- for ingot, llama.cpp passes per decode step at each level (``ingot_decode_passes`` /
  ``ingot_decode_steps`` from /metrics): 1 per step when the running slots are contiguous.

Run: ``.venv/bin/python benchmarks/generation.py`` (needs the ``bench`` extra). Appends a
dated section to benchmarks/RESULTS.md unless ``--no-write``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import llama_cpp

import common

# SmolLM2's end-of-generation tokens (<|endoftext|>, <|im_end|>, <reponame>).
BAN_EOG = {"0": -100, "2": -100, "4": -100}


@dataclass
class Server:
    name: str
    proc: subprocess.Popen
    base_url: str
    model: str

    def stop(self) -> None:
        common.stop(self.proc)


def start_ingot(threads: int, parallel: int, precision: str, data_dir: Path, log: Path) -> Server:
    proc, base = common.start_ingot(data_dir, "--threads", str(threads), "--parallel", str(parallel),
                                    "--embedding-model", "none", env={"INGOT_MODEL_PRECISION": precision}, log=log)
    return Server(f"ingot ({precision})", proc, base, "smollm2-135m-instruct")


def start_peer(model_path: Path, threads: int, log: Path) -> Server:
    port = common.free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(model_path), "--model_alias", "m",
         "--n_threads", str(threads), "--n_threads_batch", str(threads), "--n_ctx", "4096",
         "--port", str(port), "--verbose", "False", "--interrupt_requests", "False"],
        stdout=log.open("ab"), stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}/v1"
    common.wait_ready(f"{base}/models", proc)
    return Server(f"llama_cpp.server ({model_path.name})", proc, base, "m")


async def one_stream(http: httpx.AsyncClient, url: str, model: str, prompt: str, max_tokens: int) -> tuple[float, float, float, int]:
    """Returns (ttft, first-token time, end time, tokens) for one streamed reply.

    A raw httpx SSE reader, not the openai SDK: the client shares this 2-core machine
    with the server, and the SDK's per-chunk parsing would eat the CPU being measured.
    """
    body = {"model": model, "messages": [{"role": "user", "content": prompt}], "max_tokens": max_tokens,
            "temperature": 0, "stream": True, "logit_bias": BAN_EOG}
    start = time.perf_counter()
    first = None
    tokens = 0
    async with http.stream("POST", url, json=body) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if not line.startswith("data: {"):
                continue
            choices = json.loads(line[6:]).get("choices") or [{}]
            if choices[0].get("delta", {}).get("content"):
                tokens += 1
                if first is None:
                    first = time.perf_counter()
    end = time.perf_counter()
    assert first is not None, "no tokens streamed"
    return first - start, first, end, tokens


def passes_so_far(server: Server) -> tuple[float, float] | None:
    """(decode steps, llama.cpp passes) from ingot's /metrics; None for the peer."""
    if not server.name.startswith("ingot"):
        return None
    text = httpx.get(server.base_url.removesuffix("/v1") + "/metrics", timeout=10).text
    values = {}
    for line in text.splitlines():
        for name in ("ingot_decode_steps_total", "ingot_decode_passes_total"):
            if line.startswith(name + "{"):
                values[name] = float(line.rsplit(" ", 1)[1])
    return values.get("ingot_decode_steps_total", 0.0), values.get("ingot_decode_passes_total", 0.0)


async def concurrent(http: httpx.AsyncClient, server: Server, streams: int, max_tokens: int, tag: str) -> dict:
    """``streams`` requests at once: aggregate tok/s, TTFT p50, and ingot's passes per step."""
    url = f"{server.base_url}/chat/completions"
    before = passes_so_far(server)
    start = time.perf_counter()
    results = await asyncio.gather(*(
        one_stream(http, url, server.model, f"Tell me a long story about city {tag}{i}.", max_tokens)
        for i in range(streams)
    ))
    wall = time.perf_counter() - start
    after = passes_so_far(server)
    out = {"agg_tok_s": sum(r[3] for r in results) / wall, "ttft_p50_s": statistics.median(r[0] for r in results)}
    if before and after and after[0] > before[0]:
        out["passes_per_step"] = (after[1] - before[1]) / (after[0] - before[0])
    return out


async def measure(server: Server, levels: list[int], max_tokens: int, runs: int) -> dict[str, float]:
    url = f"{server.base_url}/chat/completions"
    out: dict[str, float] = {}
    async with httpx.AsyncClient(timeout=600) as http:
        await one_stream(http, url, server.model, "Warm up.", 8)
        singles = []
        ttfts = []
        for i in range(runs):
            ttft, first, end, tokens = await one_stream(
                http, url, server.model, f"Tell me a long story about ship {i}.", max_tokens
            )
            singles.append((tokens - 1) / (end - first))
            ttfts.append(ttft)
        out["single_tok_s"] = statistics.median(singles)
        out["single_ttft_s"] = statistics.median(ttfts)
        for index, streams in enumerate(levels):
            level = await concurrent(http, server, streams, max_tokens, tag=f"{index}-")
            out.update({f"{key}@{index}": value for key, value in level.items()})
    return out


def run_pair(args: argparse.Namespace, precision: str, data_dir: Path, log: Path) -> tuple[dict, dict, str]:
    """Alternate ingot and the peer for ``--rounds`` rounds (this VM's speed drifts by
    +-15% over minutes); report per-metric medians over the rounds."""
    ours_rounds, theirs_rounds = [], []
    for _ in range(args.rounds):
        ingot = start_ingot(args.threads, args.parallel, precision, data_dir, log)
        try:
            model_path = Path(httpx.get(f"{ingot.base_url}/metadata").json()["modelInfo"][0]["path"])
            ours_rounds.append(asyncio.run(measure(ingot, args.levels, args.max_tokens, args.runs)))
        finally:
            ingot.stop()
        peer = start_peer(model_path, args.threads, log)
        try:
            theirs_rounds.append(asyncio.run(measure(peer, args.levels, args.max_tokens, args.runs)))
        finally:
            peer.stop()

    def median(rounds: list[dict]) -> dict:
        return {key: statistics.median(r[key] for r in rounds if key in r) for key in rounds[0]}

    return median(ours_rounds), median(theirs_rounds), model_path.name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--parallel", type=int, default=8, help="ingot's decode slots")
    parser.add_argument("--levels", default="1,8,16,32,8",
                        help="concurrent-stream levels, run in this order on one server process")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--runs", type=int, default=3, help="sequential single-stream requests per round")
    parser.add_argument("--rounds", type=int, default=3, help="alternating ingot/peer rounds (medians reported)")
    parser.add_argument("--precisions", default="auto", help="ingot precisions to compare (comma list)")
    parser.add_argument("--machine", default="", help="what to say about the machine (e.g. its load)")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    args.levels = [int(n) for n in args.levels.split(",")]

    data_dir = Path(tempfile.mkdtemp(prefix="ingot-bench-"))
    log = data_dir / "servers.log"
    rows = []
    try:
        for precision in args.precisions.split(","):
            ours, theirs, model_name = run_pair(args, precision, data_dir, log)
            rows.append((precision, model_name, ours, theirs))
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)

    machine = ", ".join(filter(None, [common.machine(f"llama-cpp-python {llama_cpp.__version__}"), args.machine]))
    header = (
        f"\n## {dt.date.today().isoformat()}: generation, ingot vs llama_cpp.server (`benchmarks/generation.py`)\n\n"
        f"Machine: {machine}. Threads: {args.threads} for both; ingot {args.parallel} slots. {args.max_tokens} "
        f"tokens per reply (greedy, EOG banned); single stream = median of {args.runs} requests; then "
        f"{', '.join(map(str, args.levels))} concurrent streams in that order on the same server process; "
        f"each value is the median of {args.rounds} alternating rounds.\n\n"
        "| GGUF (both servers) | metric | ingot | llama_cpp.server | ratio |\n|---|---|---|---|---|\n"
    )
    lines = []
    for precision, model_name, ours, theirs in rows:
        for key, label, better_high in metric_rows(args.levels):
            ratio = ours[key] / theirs[key] if theirs[key] else float("nan")
            lines.append(f"| {model_name} (ingot precision={precision}) | {label} | {ours[key]:.3f} | "
                         f"{theirs[key]:.3f} | {ratio:.2f}x{'' if better_high else ' (lower is better)'} |")
        passes = [f"{n} streams: {ours[f'passes_per_step@{i}']:.2f}" for i, n in enumerate(args.levels)
                  if f"passes_per_step@{i}" in ours]
        if passes:
            lines.append(f"\ningot llama.cpp passes per decode step ({precision}): {'; '.join(passes)}.\n")
    common.record(header + "\n".join(lines) + "\n", write=not args.no_write)


def metric_rows(levels: list[int]) -> list[tuple[str, str, bool]]:
    """(result key, table label, higher is better) for every row of the table."""
    rows = [("single_tok_s", "single-stream decode tok/s", True), ("single_ttft_s", "TTFT p50, 1 stream (s)", False)]
    for i, n in enumerate(levels):
        again = " (again)" if n in levels[:i] else ""
        rows.append((f"agg_tok_s@{i}", f"aggregate tok/s, {n} streams{again}", True))
    for i, n in enumerate(levels):
        again = " (again)" if n in levels[:i] else ""
        rows.append((f"ttft_p50_s@{i}", f"TTFT p50, {n} streams{again} (s)", False))
    return rows


if __name__ == "__main__":
    main()
