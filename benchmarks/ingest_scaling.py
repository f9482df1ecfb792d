"""Ingestion cost against input size: seconds and peak RSS per stage (extract, chunk) for
generated text (a log), JSON (pretty-printed), CSV and Markdown from 10 KB up.

Each (format, size) runs in a fresh Python process so its peak RSS is its own: the
extractor in-process (the server runs the same code in a limited child), then the
chunker with the tokenizer-free counter (the embedding model's tokenizer adds a constant
factor, not a power). Linear means: 10x the input, ~10x the seconds.

Run: ``.venv/bin/python benchmarks/ingest_scaling.py [--sizes 10k,100k,1m,10m,50m]``;
prints a Markdown table (paste it into benchmarks/RESULTS.md).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

UNITS = {"k": 1_000, "m": 1_000_000}
FORMATS = {"text": "app.log", "json": "export.json", "csv": "table.csv", "markdown": "notes.md"}


def parse_size(text: str) -> int:
    text = text.strip().lower()
    return int(float(text[:-1]) * UNITS[text[-1]]) if text[-1] in UNITS else int(text)


def generate(fmt: str, size: int) -> bytes:
    """About ``size`` bytes of the format, shaped like what people upload."""
    if fmt == "json":
        records = [{"id": i, "name": f"item {i}", "tags": ["a", "b"], "nested": {"x": i, "y": "value text"}}
                   for i in range(max(1, size // 120))]
        return json.dumps(records, indent=2).encode()
    lines, total, i = [], 0, 0
    while total < size:
        if fmt == "csv":
            line = f"{i},item {i},depot {i % 97},{i % 13},2026-01-{i % 28 + 1:02d}" if i else "id,name,depot,hops,date"
        elif fmt == "markdown":
            line = (f"## Section {i}\n\nThe shipment {i} reached depot {i % 97} after {i % 13} hops. "
                    f"It was signed for by clerk {i % 31}.\n" if i % 5 == 0 else f"- item {i}: {i % 13} units")
        else:
            line = f"2026-01-01T00:00:{i % 60:02d} INFO worker-{i % 7} request id={i} took {i % 900}ms"
        lines.append(line)
        total += len(line) + 1
        i += 1
    return "\n".join(lines).encode()


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def measure_one(fmt: str, size: int) -> dict:
    """Runs in the child: generate, extract, chunk; seconds and peak RSS after each stage."""
    from ingot.ingest.chunk import chunk_document
    from ingot.ingest.elements import ExtractOptions
    from ingot.ingest.extract import extract_bytes

    data = generate(fmt, size)
    base = peak_rss_mb()
    started = time.perf_counter()
    _, extraction = extract_bytes(data, ExtractOptions(filename=FORMATS[fmt]))
    extract_s, extract_rss = time.perf_counter() - started, peak_rss_mb()
    started = time.perf_counter()
    chunks = chunk_document(extraction.elements, document_id="d", content_hash="h", max_tokens=256,
                            overlap_tokens=32)
    chunk_s = time.perf_counter() - started
    return {"format": fmt, "bytes": len(data), "elements": len(extraction.elements), "chunks": len(chunks),
            "extract_s": extract_s, "chunk_s": chunk_s, "base_mb": base, "extract_peak_mb": extract_rss,
            "chunk_peak_mb": peak_rss_mb()}


def run_child(fmt: str, size: int, timeout: float) -> dict:
    out = subprocess.run([sys.executable, __file__, "--one", fmt, str(size)], capture_output=True, text=True,
                         timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10k,100k,1m,10m", help="comma-separated sizes (k, m suffixes)")
    parser.add_argument("--formats", default=",".join(FORMATS))
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--one", nargs=2, metavar=("FORMAT", "BYTES"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure_one(args.one[0], int(args.one[1]))))
        return
    print("| format | input | elements | chunks | extract s | chunk s | chunk MB/s | peak RSS extract / chunk (MB, base) |")
    print("|---|---|---|---|---|---|---|---|")
    for fmt in args.formats.split(","):
        for size in map(parse_size, args.sizes.split(",")):
            r = run_child(fmt, size, args.timeout)
            rate = r["bytes"] / 1e6 / r["chunk_s"] if r["chunk_s"] else float("inf")
            print(f"| {fmt} | {r['bytes'] / 1e6:.2f} MB | {r['elements']} | {r['chunks']} | {r['extract_s']:.2f} | "
                  f"{r['chunk_s']:.2f} | {rate:.2f} | {r['extract_peak_mb']:.0f} / {r['chunk_peak_mb']:.0f} "
                  f"({r['base_mb']:.0f}) |", flush=True)


if __name__ == "__main__":
    main()
