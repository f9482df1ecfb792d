"""Does draft-model speculation pay on this machine? Qwen2.5-Coder-0.5B drafting for
Qwen2.5-Coder-1.5B (one tokenizer), measured with llama.cpp's own implementation.

Why llama-server's and not ingot's: issue 20 (item 2) asks for draft-model speculation "on
by default only where it measures faster". llama-server's draft-simple mode (the draft
model decodes ``--spec-draft-n-max`` tokens, the target verifies them in one batch, the
draft's KV kept in step) is the reference implementation on the same ggml kernels, so if it
is slower here, a second implementation in ingot's scheduler would be slower too, and the
cost of building it is better spent elsewhere until a machine where it pays is at hand.

What decides it: a verify pass of k+1 rows must cost much less than k+1 single-row passes
(memory-bound decode: GPUs, many-core CPUs with slow memory). On a compute-bound CPU a pass
costs nearly one row per row (benchmarks/RESULTS.md, prompt-lookup speculation), and the
draft model's own decode comes on top.

Per configuration (no draft; draft with n_max 4; draft with n_max 8), one llama-server
process (built by scripts/build_llama_server.sh), one slot, ``--threads`` threads for both
models, greedy non-streamed requests of ``--max-tokens`` tokens for three prompts (code,
story, a RAG prompt from benchmarks/rag_prompts.json), in alternating rounds; reported:
llama-server's own decode tok/s (``timings.predicted_per_second``) and the draft tokens
accepted / drafted. Run: ``.venv/bin/python benchmarks/draft_model.py``; appends a dated
section to benchmarks/RESULTS.md unless ``--no-write``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
from pathlib import Path

import httpx

import common
import generation

CACHE = Path.home() / ".local" / "share" / "ingot" / "models"
TARGET = CACHE / "qwen2.5-coder-1.5b-instruct" / "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
DRAFT = CACHE / "qwen2.5-coder-0.5b-instruct" / "qwen2.5-coder-0.5b-instruct.gguf"
PROMPTS = {
    "code": "Write a Python function that parses a CSV file and returns a list of dicts, with a docstring.",
    "story": "Tell me a story about a dragon who learns to bake bread.",
    "rag": json.loads(generation.RAG_PROMPTS.read_text())["prompts"][0]["prompt"],
}


def start(binary: Path, args: argparse.Namespace, draft_max: int, log: Path) -> tuple[subprocess.Popen, str]:
    port = common.free_port()
    cmd = generation.llama_server_args(binary, args.target, args.threads, 1, 4096, 512, port)
    if draft_max:
        cmd += ["-md", str(args.draft), "--spec-type", "draft-simple", "--spec-draft-n-max", str(draft_max),
                "-td", str(args.threads), "-tbd", str(args.threads)]
    proc = subprocess.Popen(cmd, stdout=log.open("ab"), stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    common.wait_ready(f"{base}/health", proc)
    return proc, base


def measure(base: str, max_tokens: int) -> dict[str, tuple[float, int, int]]:
    """{prompt name: (decode tok/s, drafted, accepted)} from llama-server's own timings."""
    out = {}
    with httpx.Client(timeout=900) as http:
        http.post(f"{base}/v1/chat/completions", json={"messages": [{"role": "user", "content": "Hi."}],
                                                      "max_tokens": 4}).raise_for_status()
        for name, prompt in PROMPTS.items():
            body = {"messages": [{"role": "user", "content": prompt}], "max_tokens": max_tokens, "temperature": 0}
            response = http.post(f"{base}/v1/chat/completions", json=body)
            response.raise_for_status()
            timings = response.json()["timings"]
            out[name] = (timings["predicted_per_second"], timings.get("draft_n", 0), timings.get("draft_n_accepted", 0))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", type=Path, default=TARGET, help="the target GGUF (default: the pulled 1.5B)")
    parser.add_argument("--draft", type=Path, default=DRAFT, help="the draft GGUF (default: the pulled 0.5B)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--draft-max", default="0,4,8", help="draft lengths to compare (0 = no draft model)")
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--llama-server", default=None)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    binary = generation.find_llama_server(args.llama_server)
    if not binary or not binary.exists():
        parser.error("llama-server not found: run scripts/build_llama_server.sh or pass --llama-server")
    for path in (args.target, args.draft):
        if not path.exists():
            parser.error(f"{path} not found: `ingot models pull` the Qwen2.5-Coder 1.5B and 0.5B first")
    lengths = [int(n) for n in args.draft_max.split(",")]
    results: dict[int, list[dict[str, tuple[float, int, int]]]] = {k: [] for k in lengths}
    started = dt.datetime.now(dt.timezone.utc)
    with common.scratch_dir("ingot-draft-") as (_, log):
        for round_index in range(args.rounds):
            for k in lengths if round_index % 2 == 0 else lengths[::-1]:
                proc, base = start(binary, args, k, log)
                try:
                    row = measure(base, args.max_tokens)
                finally:
                    common.stop(proc)
                print(f"round {round_index} draft_max {k}: {row}", flush=True)
                results[k].append(row)
    finished = dt.datetime.now(dt.timezone.utc)

    base_speed = {name: statistics.median(r[name][0] for r in results[lengths[0]]) for name in PROMPTS}
    lines = ["| draft | " + " | ".join(f"{name} tok/s (x no draft; kept/drafted)" for name in PROMPTS) + " |",
             "|---" * (len(PROMPTS) + 1) + "|"]
    for k in lengths:
        cells = []
        for name in PROMPTS:
            speed = statistics.median(r[name][0] for r in results[k])
            drafted = sum(r[name][1] for r in results[k])
            kept = sum(r[name][2] for r in results[k])
            ratio = f"{speed / base_speed[name]:.2f}x" if lengths[0] == 0 else ""
            cells.append(f"{speed:.2f} ({ratio}; {kept}/{drafted})" if k else f"{speed:.2f}")
        lines.append(f"| {'none' if k == 0 else f'0.5B, n_max {k}'} | " + " | ".join(cells) + " |")
    table = common.section(
        "draft-model speculation, llama-server's own (`benchmarks/draft_model.py`)", started, finished,
        f"{generation.llama_server_version(binary)}. Target {args.target.name}, draft {args.draft.name} "
        f"(`--spec-type draft-simple`), {args.threads} threads each, 1 slot, {args.max_tokens}-token greedy "
        f"replies; decode tok/s = llama-server's `timings.predicted_per_second`, medians of {args.rounds} "
        "alternating rounds.", lines)
    common.record(table, write=not args.no_write)


if __name__ == "__main__":
    main()
