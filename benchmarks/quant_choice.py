"""Which GGUF format runs each catalog model fastest on this CPU, and what it costs in quality.

Why: the shipped files are 4-bit (SmolLM2 Q4_1, Qwen2.5-Coder Q4_K_M / mixed); llama.cpp's
CPU kernels differ per format (q8_0 and Q4_0 have the fastest AVX2 dot products, Q4_0 is
repacked for GEMM at load where the build supports it), so the format a model is served in
is a speed choice, and a re-quantization can also lose accuracy. This measures, per model
and format, in process (no HTTP, so only the kernels differ):

- decode cost: ``llama_decode`` time per step with 1 and with 8 sequences of one new token
  each (median of ``--reps``), after a 256-token prompt per sequence; reported as tok/s;
- prefill: tok/s of one 512-token chunk;
- quality against the shipped file: top-1 agreement (how often the format's most likely
  next token equals the shipped file's, teacher-forced over held text: SciFact abstracts)
  and the perplexity of that text.

A format qualifies when its top-1 agreement is at least ``--min-agreement`` and its
perplexity at most ``--max-ppl-ratio`` times the shipped file's; the pick is the qualifying
format with the highest 8-stream tok/s (ties: 1-stream). Threads: 1 (the default on this
2-core VM: cores - 1).

Run: ``.venv/bin/python benchmarks/quant_choice.py [--models smollm2-135m-instruct,...]``.
Appends to benchmarks/RESULTS.md unless ``--no-write``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

from ingot.engines.llamacpp.binding import Batch, LlamaContext, LlamaModel, quantize  # noqa: E402
from ingot.models.files import ModelFileError, prepare_model_file  # noqa: E402
from ingot.models.registry import find_model  # noqa: E402

FORMATS = ("source", "q8_0", "q4_0", "q4_1", "q4_k_m")
SCIFACT = common.SHARED_DATA / "scifact" / "corpus.jsonl"


def held_text(n_docs: int = 12) -> str:
    """Abstracts from the end of the SciFact corpus (no model here was tuned on them)."""
    if not SCIFACT.is_file():
        raise SystemExit(f"held text missing: {SCIFACT} (../shared/data)")
    lines = SCIFACT.read_text().splitlines()[-n_docs:]
    return "\n\n".join(json.loads(line)["title"] + ". " + json.loads(line)["text"] for line in lines)


class DecodeBench:
    """One format's context, warmed with a 256-token prompt in each of 8 sequences, ready
    to time decode steps; the formats' steps are interleaved so machine drift hits all."""

    def __init__(self, model: LlamaModel, threads: int) -> None:
        self.ctx = LlamaContext(model, 8, 1024, 512, threads=threads)
        self.batch = Batch(512)
        self.prompt = model.tokenize("The history of the river city and its bridges. " * 40, True)[:256]
        for slot in range(8):
            self._fill(slot, self.prompt)
        self.times: dict[int, list[float]] = {1: [], 8: []}

    def _fill(self, slot: int, tokens: list[int]) -> float:
        self.batch.clear()
        for i, token in enumerate(tokens):
            self.batch.add(token, i, slot, i == len(tokens) - 1)
        start = time.perf_counter()
        assert self.ctx.decode(self.batch) == 0
        return time.perf_counter() - start

    def step(self, n_seq: int) -> None:
        self.batch.clear()
        for slot in range(n_seq):
            self.batch.add(self.prompt[slot], len(self.prompt), slot, True)
        start = time.perf_counter()
        assert self.ctx.decode(self.batch) == 0
        self.times[n_seq].append(time.perf_counter() - start)
        for slot in range(n_seq):
            self.ctx.trim_sequence(slot, len(self.prompt))

    def prefill_tok_s(self) -> float:
        chunk = (self.prompt * 3)[:512]
        self.ctx.clear_sequence(0)
        seconds = self._fill(0, chunk)
        self.ctx.clear_sequence(0)
        self._fill(0, self.prompt)
        return len(chunk) / seconds

    def result(self, prefill: list[float]) -> dict[str, float]:
        return {"decode_tok_s_1": 1 / statistics.median(self.times[1]),
                "decode_tok_s_8": 8 / statistics.median(self.times[8]),
                "prefill_tok_s": statistics.median(prefill)}

    def close(self) -> None:
        self.batch.close()
        self.ctx.close()


def teacher_forced(model: LlamaModel, tokens: list[int], threads: int) -> tuple[np.ndarray, float]:
    """Argmax next token at every position, and the mean negative log-likelihood."""
    window = 512
    ctx = LlamaContext(model, 1, window, window, threads=threads)
    batch = Batch(window)
    argmax: list[int] = []
    nll: list[float] = []
    try:
        for start in range(0, len(tokens) - 1, window):
            piece = tokens[start:start + window]
            ctx.clear_sequence(0)
            batch.clear()
            for i, token in enumerate(piece):
                batch.add(token, i, 0, True)
            assert ctx.decode(batch) == 0
            for i in range(len(piece) - 1):
                row = ctx.logits_row(i).astype(np.float64)
                argmax.append(int(row.argmax()))
                shifted = row - row.max()
                nll.append(float(np.log(np.exp(shifted).sum()) - shifted[piece[i + 1]]))
        return np.array(argmax), float(np.mean(nll))
    finally:
        batch.close()
        ctx.close()


def measure_model(model_id: str, formats: list[str], models_dir: Path, args: argparse.Namespace) -> list[dict]:
    spec = find_model(model_id)
    text = held_text()
    loaded: list[tuple[str, object, LlamaModel]] = []
    for fmt in formats:
        try:
            model_file = prepare_model_file(spec, models_dir, fmt,
                                            lambda src, dst, p: quantize(src, dst, p, threads=args.quant_threads))
        except (ModelFileError, RuntimeError) as exc:
            print(f"[quant] {model_id} {fmt}: skipped ({exc})", file=sys.stderr)
            continue
        loaded.append((fmt, model_file, LlamaModel(model_file.path)))
    assert loaded and loaded[0][0] == "source", "the shipped file comes first: it is the quality reference"
    try:
        quality = {}
        for fmt, _, model in loaded:
            tokens = model.tokenize(text, True)[: args.tokens]
            quality[fmt] = teacher_forced(model, tokens, args.quality_threads)
        benches = {fmt: DecodeBench(model, args.threads) for fmt, _, model in loaded}
        prefill: dict[str, list[float]] = {fmt: [] for fmt in benches}
        for rep in range(args.reps):  # round-robin over the formats, so drift hits them all
            for fmt, bench in benches.items():
                bench.step(1)
                bench.step(8)
                if rep % 5 == 0:
                    prefill[fmt].append(bench.prefill_tok_s())
        rows = []
        reference, reference_nll = quality["source"]
        for fmt, model_file, _ in loaded:
            argmax, nll = quality[fmt]
            row = {"model": model_id, "format": fmt, "file": model_file.path.name,
                   "size_mb": model_file.path.stat().st_size / 1e6, **benches[fmt].result(prefill[fmt]),
                   "agreement": float((argmax == reference).mean()), "ppl": float(np.exp(nll)),
                   "ppl_ratio": float(np.exp(nll - reference_nll))}
            rows.append(row)
            print(f"[quant] {json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()})}",
                  file=sys.stderr, flush=True)
        for bench in benches.values():
            bench.close()
        return rows
    finally:
        for _, _, model in loaded:
            model.close()


def pick(rows: list[dict], args: argparse.Namespace) -> dict | None:
    qualified = [r for r in rows if r["agreement"] >= args.min_agreement and r["ppl_ratio"] <= args.max_ppl_ratio]
    return max(qualified, key=lambda r: (r["decode_tok_s_8"], r["decode_tok_s_1"]), default=None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="smollm2-135m-instruct,qwen2.5-coder-0.5b-instruct")
    parser.add_argument("--formats", default=",".join(FORMATS))
    parser.add_argument("--threads", type=int, default=1, help="llama.cpp threads for the speed measurements")
    parser.add_argument("--quality-threads", type=int, default=2, help="threads for the teacher-forced pass")
    parser.add_argument("--quant-threads", type=int, default=2)
    parser.add_argument("--reps", type=int, default=30, help="decode steps per format and batch size")
    parser.add_argument("--tokens", type=int, default=1024, help="held-text tokens for the quality check")
    parser.add_argument("--min-agreement", type=float, default=0.95)
    parser.add_argument("--max-ppl-ratio", type=float, default=1.03)
    parser.add_argument("--machine", default="")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()

    started = dt.datetime.now(dt.timezone.utc)
    all_rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="ingot-quant-") as tmp:
        for model_id in [m.strip() for m in args.models.split(",") if m.strip()]:
            all_rows += measure_model(model_id, args.formats.split(","), Path(tmp), args)
    finished = dt.datetime.now(dt.timezone.utc)

    machine = ", ".join(filter(None, [common.machine(), args.machine]))
    lines = [
        f"\n## {dt.date.today().isoformat()}: GGUF format per model on this CPU (`benchmarks/quant_choice.py`)\n",
        f"Run {started:%H:%M}-{finished:%H:%M} UTC. Machine: {machine}. In process, {args.threads} llama.cpp "
        f"thread(s); decode = one new token per sequence after a 256-token prompt (median of {args.reps}, the formats interleaved step by step); "
        f"prefill = one 512-token chunk; quality = teacher-forced over {args.tokens} tokens of SciFact abstracts "
        f"against the shipped file (top-1 agreement, perplexity). Qualifies: agreement >= {args.min_agreement}, "
        f"perplexity <= {args.max_ppl_ratio}x the shipped file's.\n",
        "| model | format | MB | decode tok/s, 1 seq | decode tok/s, 8 seqs | prefill tok/s | top-1 agreement "
        "| perplexity | vs shipped |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in all_rows:
        lines.append(f"| {r['model']} | {r['format']} ({r['file']}) | {r['size_mb']:.0f} | {r['decode_tok_s_1']:.1f} | "
                     f"{r['decode_tok_s_8']:.1f} | {r['prefill_tok_s']:.0f} | {r['agreement']:.3f} | "
                     f"{r['ppl']:.2f} | {r['ppl_ratio']:.3f}x |")
    lines.append("")
    for model_id in dict.fromkeys(r["model"] for r in all_rows):
        winner = pick([r for r in all_rows if r["model"] == model_id], args)
        lines.append(f"- {model_id}: pick **{winner['format'] if winner else 'source'}**"
                     + (f" ({winner['decode_tok_s_8']:.1f} tok/s at 8 seqs, {winner['decode_tok_s_1']:.1f} at 1)"
                        if winner else " (nothing qualified)"))
    common.record("\n".join(lines) + "\n", write=not args.no_write)


if __name__ == "__main__":
    main()
