"""Extreme inputs through the real ingestion stages (issue 16, item 5): each must finish or
fail with a clear per-file reason within the configured limits, memory bounded.

Cases: ``embed100k`` (Markdown giving ~100k chunks), ``pptx`` (5,000 slides), ``csv``
(1,000,000 rows), ``pdf`` (10,000 blank pages). Each case runs in a fresh Python process:
extraction through ``ingot.ingest.runner.extract_data`` (forkserver child, default time and
memory limits; the child's peak RSS is polled from /proc), then ``chunk_document`` with the
bundled MiniLM's token counter and the server's limits, then the real ONNX embedder. When a
full embedding would take more than 15 min, a measured sample is embedded and the full time
extrapolated; the row says so.

Run: ``nice -n 19 .venv/bin/python benchmarks/ingest_extremes.py [--cases pptx,csv] [--scale 0.01]``
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import io
import json
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

SIZES = {"embed100k": 100_000, "pptx": 5_000, "csv": 1_000_000, "pdf": 10_000}
FILENAMES = {"embed100k": "big.md", "pptx": "deck.pptx", "csv": "rows.csv", "pdf": "blank.pdf"}
EMBED_FULL_LIMIT_S = 15 * 60
EMBED_SAMPLE = 512


def generate(case: str, n: int) -> bytes:
    """The case's input with ``n`` units (sections, slides, rows, pages)."""
    if case == "embed100k":  # one heading per section: each section is its own chunk
        return "\n\n".join(f"## Section {i}\n\nShipment {i} reached depot {i % 97} after {i % 13} hops and was "
                           f"signed for by clerk {i % 31}." for i in range(n)).encode()
    if case == "csv":
        return ("id,name,depot,hops,date\n" + "".join(
            f"{i},item {i},depot {i % 97},{i % 13},2026-01-{i % 28 + 1:02d}\n" for i in range(n))).encode()
    if case == "pptx":
        from pptx import Presentation

        deck = Presentation()
        layout = deck.slide_layouts[1]
        for i in range(n):
            slide = deck.slides.add_slide(layout)
            slide.shapes.title.text = f"Slide {i}"
            slide.placeholders[1].text = f"Point {i}: depot {i % 97}"
        out = io.BytesIO()
        deck.save(out)
        return out.getvalue()
    if case == "pdf":
        import pypdfium2 as pdfium

        pdf = pdfium.PdfDocument.new()
        for _ in range(n):
            pdf.new_page(612, 792)
        out = io.BytesIO()
        pdf.save(out)
        pdf.close()
        return out.getvalue()
    raise ValueError(case)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class ChildPeak:
    """Polls VmHWM of the forkserver's children (the extraction child) while it runs."""

    def __init__(self) -> None:
        self.peak_kb, self._stop = 0, threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        from multiprocessing import forkserver

        while not self._stop.wait(0.05):
            server = getattr(forkserver._forkserver, "_forkserver_pid", None)
            if server is None:
                continue
            for pid in os.listdir("/proc"):
                if not pid.isdigit():
                    continue
                try:
                    status = Path(f"/proc/{pid}/status").read_text()
                except OSError:
                    continue
                fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
                if fields.get("PPid", "").strip() == str(server) and "VmHWM" in fields:
                    self.peak_kb = max(self.peak_kb, int(fields["VmHWM"].split()[0]))

    def __enter__(self) -> ChildPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def load_embedder():  # noqa: ANN201
    from ingot.bootstrap import _build_embeddings, plan_services
    from ingot.config import Settings
    from ingot.kb.embedder import KBEmbedder

    return KBEmbedder(_build_embeddings(plan_services(Settings(), chat=False)))


def measure_one(case: str, n: int, embed: bool = True) -> dict:
    """Runs in the child process: generate, extract (runner), chunk, embed."""
    from ingot.config import Settings
    from ingot.ingest.chunk import ChunkingError, chunk_document
    from ingot.ingest.elements import ExtractOptions
    from ingot.ingest.runner import extract_data, start_forkserver
    from ingot.kb.pipeline import PipelineOptions

    settings, limits = Settings(), PipelineOptions()
    started = time.perf_counter()
    data = generate(case, n)
    row = {"case": case, "units": n, "bytes": len(data), "generate_s": time.perf_counter() - started}
    start_forkserver()
    with ChildPeak() as child:
        result = extract_data(data, ExtractOptions(filename=FILENAMES[case]), timeout_s=settings.ingest_timeout_s)
    del data
    row.update(extract_s=result.seconds, extract_child_mb=child.peak_kb / 1024, elements=len(result.elements),
               pages=result.pages)
    if not result.ok:
        row["outcome"] = f"failed at extract: {result.error_reason}: {result.error}"
        return row
    embedder = load_embedder()
    max_tokens, counter = min(limits.chunk_max_tokens, embedder.max_tokens), embedder.token_counter()
    started = time.perf_counter()
    try:
        chunks = chunk_document(result.elements, document_id="d", content_hash=result.content_hash,
                                max_tokens=max_tokens, overlap_tokens=limits.chunk_overlap_tokens, tokenizer=counter,
                                timeout_s=settings.ingest_timeout_s, max_chunks=limits.max_chunks)
    except ChunkingError as exc:
        row.update(chunk_s=time.perf_counter() - started, chunk_mb=peak_rss_mb(),
                   outcome=f"failed at chunk: {exc.reason}: {exc.message}")
        return row
    row.update(chunk_s=time.perf_counter() - started, chunk_mb=peak_rss_mb(), chunks=len(chunks))
    if not chunks:
        row["outcome"] = "failed: empty (the file has no text to index)"
        return row
    if embed:
        row.update(embed_chunks(embedder, [c.text for c in chunks]))
    row["outcome"] = "finished"
    return row


def embed_chunks(embedder, texts: list[str]) -> dict:  # noqa: ANN001
    """Embeds the sample first; all of it only when the extrapolated full time fits."""
    from ingot.kb.pipeline import EMBED_SLICE

    async def run(part: list[str]) -> float:
        started = time.perf_counter()
        for i in range(0, len(part), EMBED_SLICE):
            await embedder.passages(part[i : i + EMBED_SLICE])
        return time.perf_counter() - started

    async def go() -> dict:
        sample = texts[:EMBED_SAMPLE]
        seconds = await run(sample)
        estimate = seconds * len(texts) / len(sample)
        if len(sample) == len(texts):
            out = {"embed_s": seconds, "embed_note": "full"}
        elif estimate > EMBED_FULL_LIMIT_S:
            out = {"embed_s": estimate, "embed_note": f"extrapolated from {len(sample)} chunks ({seconds:.1f} s)"}
        else:
            out = {"embed_s": seconds + await run(texts[len(sample):]), "embed_note": "full"}
        await embedder.service.batcher.stop()
        return out

    out = asyncio.run(go())
    out["embed_mb"] = peak_rss_mb()
    return out


def run_child(case: str, n: int, timeout: float, embed: bool = True) -> dict:
    args = [sys.executable, __file__, "--one", case, str(n)] + ([] if embed else ["--no-embed"])
    out = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def fmt(value: object, spec: str = ".1f") -> str:
    return "-" if value is None else format(value, spec)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", default=",".join(SIZES))
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every input size (0.01: a quick check)")
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument("--no-embed", action="store_true")
    parser.add_argument("--one", nargs=2, metavar=("CASE", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure_one(args.one[0], int(args.one[1]), embed=not args.no_embed)))
        return
    rows = []
    for case in args.cases.split(","):
        n = max(1, int(SIZES[case] * args.scale))
        r = run_child(case, n, args.timeout, embed=not args.no_embed)
        print(json.dumps(r), flush=True)
        rows.append(r)
    print(f"\nIngestion extremes, {dt.date.today().isoformat()}, scale {args.scale}; {common.machine()}\n")
    print("| case | input | outcome | extract s (child peak MB) | chunk s (peak MB) | chunks | embed s (peak MB) |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        embed = f"{fmt(r.get('embed_s'))} ({fmt(r.get('embed_mb'), '.0f')})"
        if r.get("embed_note") and r["embed_note"] != "full":
            embed += f", {r['embed_note']}"
        print(f"| {r['case']} | {r['units']} units, {r['bytes'] / 1e6:.1f} MB | {r['outcome']} | "
              f"{r['extract_s']:.1f} ({r['extract_child_mb']:.0f}) | {fmt(r.get('chunk_s'))} "
              f"({fmt(r.get('chunk_mb'), '.0f')}) | {r.get('chunks', '-')} | {embed} |")


if __name__ == "__main__":
    main()
