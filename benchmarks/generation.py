"""Generation throughput and latency: ingot vs llama.cpp's ``llama-server`` and/or
llama-cpp-python's own OpenAI server (``llama_cpp.server``).

Peers (``--peer``): ``llama-server`` is llama.cpp's C++ server (continuous batching, the same
ggml kernels as ingot), built by ``scripts/build_llama_server.sh`` from the llama.cpp that
llama-cpp-python vendors; ``llama-cpp-python`` serves one request at a time. The default is
both when the llama-server binary is found (``--llama-server``, ``$LLAMA_SERVER``, the
build script's cache, or ``PATH``), else llama-cpp-python alone.

All servers get the same GGUF file, the same thread count and the same streamed chat
requests (greedy, end-of-turn tokens banned through ``logit_bias`` so every reply is
exactly ``--max-tokens`` long), one server at a time. llama-server also gets ingot's slot
count (``-np``), context per slot (``-c`` = slots x per-slot context: llama-server's ``-c``
is the total), batch size, separate per-slot KV (``--no-kv-unified``) and the GGUF's own
chat template (``--jinja``; ingot renders the same template).

Workloads (``--workloads``): ``stories`` (short prompts, free generation), ``rag``
(three ~150-word passages and a question, from benchmarks/rag_prompts.json) and ``doc``
(the same three passages for every request of a level, each request with its own question:
readers asking about one document at once). Every request starts with a tag unique to the
run (for ``doc``: to the level), so no server reuses a prefix cached by an earlier level;
within a ``doc`` level the requests share ~90% of their prompt, and a server that shares
prefixes across slots prefills it once.

Before measuring, each server gets one short request and one unmeasured burst of
``--parallel`` streams (every slot used once, nothing queued): the first burst on a fresh
process is ~3x slower on both servers (first prefill of several sequences: 1.45 s TTFT for
ingot, 1.62 s for llama-server; 0.45 s afterwards), which would otherwise make the first
level look slower than its repeat.

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
import glob
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import llama_cpp

import common

# End-of-generation tokens per catalog model (``--model``), banned so every reply is full length.
EOG_TOKENS = {
    "smollm2-135m-instruct": ("0", "2", "4"),  # <|endoftext|>, <|im_end|>, <reponame>
    "qwen2.5-coder-1.5b-instruct": ("151643", "151645", "151662", "151663", "151664"),  # + FIM pad/repo/file
}


def eog_ban(model: str) -> dict[str, int]:
    """The ``logit_bias`` that bans ``model``'s end-of-generation tokens."""
    return {token: -100 for token in EOG_TOKENS[model]}


# The model every request of this run names, and its ban; main() sets both from --model.
CHAT_MODEL = "smollm2-135m-instruct"
BAN_EOG = eog_ban(CHAT_MODEL)


@dataclass
class Server:
    name: str
    proc: subprocess.Popen
    base_url: str
    model: str

    def stop(self) -> None:
        common.stop(self.proc)


def start_ingot(threads: int, parallel: int, precision: str, data_dir: Path, log: Path,
                ctx_per_slot: int = 4096, batch: int = 512, draft: int | None = None) -> Server:
    # The model by name (``--model``): the default `auto` may serve another, and BAN_EOG is per model.
    env = {"INGOT_MODEL": CHAT_MODEL, "INGOT_MODEL_PRECISION": precision,
           "INGOT_CONTEXT_LENGTH": str(ctx_per_slot),
           "INGOT_BATCH_TOKENS": str(batch)}
    if draft is not None:
        env["INGOT_SPECULATIVE_DRAFT_TOKENS"] = str(draft)
    proc, base = common.start_ingot(data_dir, "--threads", str(threads), "--parallel", str(parallel),
                                    "--embedding-model", "none", env=env, log=log)
    return Server(ingot_name(precision, draft), proc, base, CHAT_MODEL)


def ingot_name(precision: str, draft: int | None) -> str:
    return f"ingot ({precision})" if draft is None else f"ingot ({precision}, draft {draft})"


RAG_PROMPTS = Path(__file__).resolve().parent / "rag_prompts.json"
LONG_PROMPTS = ("rag", "doc")  # workloads measured at --rag-levels
PEERS = ("llama-server", "llama-cpp-python")


def find_llama_server(explicit: str | None) -> Path | None:
    """The llama-server binary: --llama-server, $LLAMA_SERVER, build_llama_server.sh's cache
    (newest first), then PATH."""
    for candidate in (explicit, os.environ.get("LLAMA_SERVER")):
        if candidate:
            return Path(candidate)
    cached = sorted(glob.glob(str(Path.home() / ".cache/ingot/llama-server-*/llama-server")), key=os.path.getmtime)
    if cached:
        return Path(cached[-1])
    found = shutil.which("llama-server")
    return Path(found) if found else None


def llama_server_args(binary: Path, model_path: Path, threads: int, parallel: int, ctx_per_slot: int,
                      batch: int, port: int, unified_kv: bool = False) -> list[str]:
    """llama-server's command line, like for like with ingot's llama.cpp context
    (``unified_kv``: llama-server's own default, one KV buffer for all slots)."""
    return [str(binary), "-m", str(model_path), "-a", "m", "--host", "127.0.0.1", "--port", str(port),
            "-t", str(threads), "-tb", str(threads), "-np", str(parallel), "-c", str(parallel * ctx_per_slot),
            "-b", str(batch), "-ub", str(batch), "--cont-batching", "--kv-unified" if unified_kv else "--no-kv-unified", "--jinja", "--no-webui"]


def start_llama_server(binary: Path, model_path: Path, args: argparse.Namespace, log: Path) -> Server:
    port = common.free_port()
    cmd = llama_server_args(binary, model_path, args.threads, args.parallel, args.ctx_per_slot, args.batch, port,
                            args.peer_unified_kv)
    proc = subprocess.Popen(cmd, stdout=log.open("ab"), stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}/v1"
    common.wait_ready(f"http://127.0.0.1:{port}/health", proc)
    return Server("llama-server", proc, base, "m")


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
    return Server("llama_cpp.server", proc, base, "m")


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


def passes_so_far(server: Server) -> tuple[float, float, float, float] | None:
    """(decode steps, llama.cpp passes, draft tokens, accepted draft tokens) from ingot's
    /metrics; None for the peer."""
    if not server.name.startswith("ingot"):
        return None
    text = httpx.get(server.base_url.removesuffix("/v1") + "/metrics", timeout=10).text
    values = {}
    for line in text.splitlines():
        for name in ("ingot_decode_steps_total", "ingot_decode_passes_total", "ingot_spec_draft_tokens_total",
                     "ingot_spec_accepted_tokens_total"):
            if line.startswith(name + "{"):
                values[name] = float(line.rsplit(" ", 1)[1])
    return tuple(values.get(name, 0.0) for name in (  # type: ignore[return-value]
        "ingot_decode_steps_total", "ingot_decode_passes_total", "ingot_spec_draft_tokens_total",
        "ingot_spec_accepted_tokens_total"))


def make_prompt(workload: str, tag: str, i: int) -> str:
    """Request ``i`` of a level; ``tag`` (unique per run, level and round) comes first so
    no prompt shares a cacheable prefix with an earlier one beyond the chat template's."""
    if workload == "stories":
        return f"Tell me a long story about city {tag}{i}."
    prompts = json.loads(RAG_PROMPTS.read_text())["prompts"]
    if workload == "doc":
        passages = prompts[0]["prompt"].split("\n\nQuestion:")[0]
        n = i % 3 + 1
        return (f"(document {tag}) {passages}\n\nQuestion (reader {i}): what does passage [{n}] report? Answer "
                f"in two or three sentences, quote the passage's own words for the key finding, and cite it as [{n}].")
    return f"(request {tag}{i}) " + prompts[i % len(prompts)]["prompt"]


async def concurrent(http: httpx.AsyncClient, server: Server, streams: int, max_tokens: int, tag: str,
                     workload: str = "stories") -> dict:
    """``streams`` requests at once: aggregate tok/s, TTFT p50, and ingot's passes per step."""
    url = f"{server.base_url}/chat/completions"
    prompts = [make_prompt(workload, tag, i) for i in range(streams)]
    before = passes_so_far(server)
    start = time.perf_counter()
    results = await asyncio.gather(*(one_stream(http, url, server.model, prompt, max_tokens) for prompt in prompts))
    wall = time.perf_counter() - start
    after = passes_so_far(server)
    out = {"agg_tok_s": sum(r[3] for r in results) / wall, "ttft_p50_s": statistics.median(r[0] for r in results),
           "min_tokens": min(r[3] for r in results)}  # == max_tokens when EOG banning held
    if before and after and after[0] > before[0]:
        out["passes_per_step"] = (after[1] - before[1]) / (after[0] - before[0])
        drafted = after[2] - before[2]
        out["draft_acceptance"] = (after[3] - before[3]) / drafted if drafted else 0.0
    return out


async def measure(server: Server, levels: list[int], max_tokens: int, runs: int,
                  workload: str = "stories", tag: str = "", warm_streams: int = 8) -> dict[str, float]:
    url = f"{server.base_url}/chat/completions"
    out: dict[str, float] = {}
    # A fresh connection per request: llama-server closes idle keep-alive connections after
    # 5 s, and twice a pooled one it had just closed was reused ("Server disconnected without
    # sending a response", the request never reached it). A local connect costs ~0.1 ms.
    async with httpx.AsyncClient(timeout=1800, limits=httpx.Limits(max_keepalive_connections=0)) as http:
        await one_stream(http, url, server.model, "Warm up.", 8)
        await concurrent(http, server, warm_streams, 8, tag=f"{tag}warm-")
        singles = []
        ttfts = []
        for i in range(runs):
            prompt = (f"Tell me a long story about ship {tag}{i}." if workload == "stories"
                      else make_prompt(workload, f"{tag}s", i))
            ttft, first, end, tokens = await one_stream(http, url, server.model, prompt, max_tokens)
            singles.append((tokens - 1) / (end - first))
            ttfts.append(ttft)
        out["single_tok_s"] = statistics.median(singles)
        out["single_ttft_s"] = statistics.median(ttfts)
        for index, streams in enumerate(levels):
            level = await concurrent(http, server, streams, max_tokens, tag=f"{tag}{index}-", workload=workload)
            out.update({f"{key}@{index}": value for key, value in level.items()})
    return out


def run_pair(args: argparse.Namespace, precision: str, data_dir: Path, log: Path) -> tuple[dict, str]:
    """Alternate ingot and the peers for ``--rounds`` rounds (this VM's speed drifts by
    +-15% over minutes); report per-metric medians over the rounds.

    Returns ({workload: {server name: medians}}, GGUF file name)."""
    rounds: dict[str, dict[str, list[dict]]] = {w: {} for w in args.workloads}
    model_path: Path | None = None

    def one(server: Server, round_no: int) -> None:
        try:
            for workload in args.workloads:
                tag = f"r{round_no}{workload[0]}-"
                levels = args.rag_levels if workload in LONG_PROMPTS else args.levels
                result = asyncio.run(measure(server, levels, args.max_tokens, args.runs, workload, tag,
                                             warm_streams=args.parallel))
                rounds[workload].setdefault(server.name, []).append(result)
                print(f"[bench] round {round_no} {server.name} {workload}: "
                      f"{ {k: round(v, 3) for k, v in result.items()} }", file=sys.stderr, flush=True)
        finally:
            server.stop()

    for round_no in range(args.rounds):
        for draft in args.drafts:
            ingot = start_ingot(args.threads, args.parallel, precision, data_dir, log, args.ctx_per_slot, args.batch,
                                draft)
            model_path = Path(httpx.get(f"{ingot.base_url}/metadata").json()["modelInfo"][0]["path"])
            one(ingot, round_no)
        for peer in args.peers:
            if peer == "llama-server":
                one(start_llama_server(args.llama_server, model_path, args, log), round_no)
            else:
                one(start_peer(model_path, args.threads, log), round_no)

    def median(results: list[dict]) -> dict:
        return {key: statistics.median(r[key] for r in results if key in r) for key in results[0]}

    medians = {w: {name: median(rs) for name, rs in by_server.items()} for w, by_server in rounds.items()}
    assert model_path is not None
    return medians, model_path.name


def llama_server_version(binary: Path) -> str:
    try:
        done = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unknown ({exc})"
    lines = [line.strip() for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    return "; ".join(line for line in lines if line.startswith(("version", "built with"))) or "; ".join(lines[-2:])


def main() -> None:
    global CHAT_MODEL, BAN_EOG  # --model picks them for every request this run sends
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--parallel", type=int, default=8, help="decode slots (ingot --parallel, llama-server -np)")
    parser.add_argument("--ctx-per-slot", type=int, default=4096,
                        help="context per slot: ingot's default context_length; llama-server gets -c parallel x this")
    parser.add_argument("--batch", type=int, default=512, help="ingot's batch_tokens; llama-server -b and -ub")
    parser.add_argument("--levels", default="1,8,16,32,8",
                        help="concurrent-stream levels, run in this order on one server process")
    parser.add_argument("--workloads", default="stories,rag", help="stories and/or rag (comma list)")
    parser.add_argument("--rag-levels", default=None,
                        help="levels for the rag workload (default: --levels); its ~800-token prompts make "
                             "each level's prefill far longer than the stories'")
    parser.add_argument("--peer", choices=["llama-server", "llama-cpp-python", "both"], default=None,
                        help="servers to compare with (default: both when llama-server is found, "
                             "else llama-cpp-python)")
    parser.add_argument("--model", choices=sorted(EOG_TOKENS), default=CHAT_MODEL,
                        help="catalog chat model both servers run (the GGUF ingot serves for it)")
    parser.add_argument("--peer-unified-kv", action="store_true",
                        help="run llama-server with its default unified KV cache instead of ingot's per-slot one")
    parser.add_argument("--llama-server", default=None, help="the llama-server binary (scripts/build_llama_server.sh)")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--runs", type=int, default=3, help="sequential single-stream requests per round")
    parser.add_argument("--rounds", type=int, default=3, help="alternating ingot/peer rounds (medians reported)")
    parser.add_argument("--precisions", default="auto", help="ingot precisions to compare (comma list)")
    parser.add_argument("--drafts", default=None,
                        help="ingot INGOT_SPECULATIVE_DRAFT_TOKENS values to compare (comma list, 0 = no "
                        "speculation); default: the server's own default only")
    parser.add_argument("--machine", default="", help="what to say about the machine (e.g. its load)")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    args.levels = [int(n) for n in args.levels.split(",")]
    args.rag_levels = [int(n) for n in args.rag_levels.split(",")] if args.rag_levels else args.levels
    args.workloads = [w.strip() for w in args.workloads.split(",") if w.strip()]
    args.drafts = [int(n) for n in args.drafts.split(",")] if args.drafts else [None]
    CHAT_MODEL, BAN_EOG = args.model, eog_ban(args.model)
    if unknown := set(args.workloads) - {"stories", *LONG_PROMPTS}:
        parser.error(f"unknown workloads: {sorted(unknown)}")
    binary = find_llama_server(args.llama_server)
    if args.peer is None:
        args.peer = "both" if binary and binary.exists() else "llama-cpp-python"
    args.peers = list(PEERS) if args.peer == "both" else [args.peer]
    if "llama-server" in args.peers:
        if not binary or not binary.exists():
            parser.error("llama-server not found: run scripts/build_llama_server.sh or pass --llama-server")
        args.llama_server = binary

    rows = []
    started = dt.datetime.now(dt.timezone.utc)
    with common.scratch_dir("ingot-bench-") as (data_dir, log):
        for precision in args.precisions.split(","):
            medians, model_name = run_pair(args, precision, data_dir, log)
            rows.append((precision, model_name, medians))
    finished = dt.datetime.now(dt.timezone.utc)

    names = {"llama-server": "llama-server", "llama-cpp-python": "llama_cpp.server"}
    peer_names = [names[p] for p in args.peers]
    machine = ", ".join(filter(None, [common.machine(f"llama-cpp-python {llama_cpp.__version__}"), args.machine]))
    settings = [
        f"ingot: `INGOT_CONTEXT_LENGTH={args.ctx_per_slot} INGOT_BATCH_TOKENS={args.batch} ingot serve "
        f"--threads {args.threads} --parallel {args.parallel} --embedding-model none` (per-slot context "
        f"{args.ctx_per_slot}, n_batch = n_ubatch = {args.batch}, separate KV per slot, flash attention at "
        "llama.cpp's default)"]
    if "llama-server" in args.peers:
        cmd = llama_server_args(Path("llama-server"), Path("<same GGUF>"), args.threads, args.parallel,
                                args.ctx_per_slot, args.batch, 0, args.peer_unified_kv)
        at = cmd.index("--port")
        del cmd[at:at + 2]
        settings.append(f"llama-server ({llama_server_version(args.llama_server)}): `{' '.join(cmd)}`")
    if "llama-cpp-python" in args.peers:
        settings.append(f"llama_cpp.server: `--n_threads {args.threads} --n_threads_batch {args.threads} "
                        "--n_ctx 4096 --interrupt_requests False` (one request at a time)")
    header = (
        f"\n## {dt.date.today().isoformat()}: generation, ingot vs {' and '.join(peer_names)} "
        f"(`benchmarks/generation.py`)\n\n"
        f"Run {started:%H:%M}-{finished:%H:%M} UTC. Machine: {machine}. {args.max_tokens} tokens per reply (greedy, "
        f"EOG banned); single stream = median of {args.runs} requests; then "
        f"{', '.join(map(str, args.levels))} concurrent streams in that order on the same server process"
        + (f" (rag: {', '.join(map(str, args.rag_levels))})" if args.rag_levels != args.levels else "") + "; "
        f"each value is the median of {args.rounds} alternating round(s). Workloads: "
        f"{', '.join(args.workloads)}.\n\n" + "".join(f"- {line}\n" for line in settings) + "\n"
        f"| GGUF | workload | metric | ingot | "
        + " | ".join(f"{n} | ingot / {n}" for n in peer_names) + " |\n|---|---|---|---|"
        + "---|---|" * len(peer_names) + "\n"
    )
    lines = []
    for precision, model_name, medians in rows:
        for workload, draft in ((w, d) for w in args.workloads for d in args.drafts):
            ours = medians[workload][ingot_name(precision, draft)]
            variant = precision if draft is None else f"{precision}, draft {draft}"
            levels = args.rag_levels if workload in LONG_PROMPTS else args.levels
            for key, label, better_high in metric_rows(levels):
                cells = []
                for peer in peer_names:
                    theirs = medians[workload][peer]
                    ratio = ours[key] / theirs[key] if theirs.get(key) else float("nan")
                    cells.append(f"{theirs[key]:.3f} | {ratio:.2f}x{'' if better_high else ' (lower is better)'}")
                lines.append(f"| {model_name} ({variant}) | {workload} | {label} | {ours[key]:.3f} | "
                             + " | ".join(cells) + " |")
        for workload, draft in ((w, d) for w in args.workloads for d in args.drafts):
            ours = medians[workload][ingot_name(precision, draft)]
            variant = precision if draft is None else f"{precision}, draft {draft}"
            levels = args.rag_levels if workload in LONG_PROMPTS else args.levels
            passes = [f"{n} streams: {ours[f'passes_per_step@{i}']:.2f}" for i, n in enumerate(levels)
                      if f"passes_per_step@{i}" in ours]
            if passes:
                lines.append(f"\ningot llama.cpp passes per decode step ({variant}, {workload}): "
                             f"{'; '.join(passes)}.")
            kept = [f"{n} streams: {ours[f'draft_acceptance@{i}']:.2f}" for i, n in enumerate(levels)
                    if ours.get(f"draft_acceptance@{i}")]
            if kept:
                lines.append(f"\ningot draft tokens kept / sent ({variant}, {workload}): {'; '.join(kept)}.")
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
