"""Extraction quality and speed on real documents, ingot side by side with its peers.

Quality: for every docling test document that has docling's expected Markdown
(``docling/tests/data/<format>/groundtruth``), two scores of each extractor's Markdown
against it (``extraction_metrics.py``): word similarity (difflib ratio over words,
Markdown punctuation stripped) and table-cell F1 (cells of every pipe table).
Speed: the 619-page DA-619p.pdf, pages per CPU-second and per wall-second of the
conversion alone (imports and model loading excluded, for every extractor alike), and the
peak RSS of the process that converted it.

Every extractor runs in its own process through a worker that speaks one protocol: ingot
through ``extraction_worker.py`` (this project's venv), the peers through
``peers/worker.py`` in ``.venv-peers`` (``bash benchmarks/peers/install.sh``): markitdown,
unstructured ("fast"), pymupdf4llm, PyMuPDF, docling (only what runs without downloaded
models). "Structure-aware" peers are all but plain PyMuPDF; the speed goal (issue 17) is
ingot >= 3x the fastest of them on DA-619p, pages per CPU-second.

Run: ``.venv/bin/python benchmarks/extraction.py [--peers] [--no-write]``; appends to
benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from extraction_metrics import similarity, table_cell_f1

HERE = Path(__file__).resolve().parent
DOCS = HERE.parent.parent / "shared" / "data" / "docs"  # common.SHARED_DATA / "docs"
DOCLING = DOCS / "docling" / "tests" / "data"
BIG_PDF = DOCS / "unstructured" / "example-docs" / "pdf" / "DA-619p.pdf"
FORMATS = ("pdf", "docx", "pptx", "xlsx", "html")
PEERS = ("markitdown", "unstructured", "pymupdf4llm", "pymupdf", "docling")
PLAIN_TEXT_PEERS = {"pymupdf"}  # no tables or headings: not a structure-aware peer
PEER_PYTHON = HERE.parent / ".venv-peers" / "bin" / "python"
WORKER_TIMEOUT_S = 3600


def groundtruth_for(source: Path) -> Path | None:
    folder = source.parent.parent / "groundtruth"
    for candidate in (folder / f"{source.name}.md", folder / f"{source.stem}.md"):
        if candidate.is_file():
            return candidate
    return None


def reference_files() -> list[tuple[str, Path, Path]]:
    """(format, source, expected Markdown) for every docling test file that has one."""
    found = []
    for fmt in FORMATS:
        for source in sorted((DOCLING / fmt / "sources").iterdir()):
            truth = groundtruth_for(source)
            if truth is not None:
                found.append((fmt, source, truth))
    return found


@dataclass
class Run:
    """One worker process's answers: per-file JSON lines and its peak RSS."""

    files: dict[str, dict] = field(default_factory=dict)
    peak_rss_mb: float | None = None
    error: str | None = None


EMPTY = "empty output"
EMPTY_CHARS = 20


def run_worker(extractor: str, files: list[Path], out: Path) -> Run:
    if extractor == "ingot":
        command = [sys.executable, str(HERE / "extraction_worker.py")]
    else:
        command = [str(PEER_PYTHON), str(HERE / "peers" / "worker.py"), "--extractor", extractor]
    command += ["--out", str(out), *map(str, files)]
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=WORKER_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return Run(error=f"worker timed out after {WORKER_TIMEOUT_S} s")
    run = Run()
    for line in proc.stdout.splitlines():
        if not line.startswith("{"):
            continue
        record = json.loads(line)
        if "peak_rss_mb" in record:
            run.peak_rss_mb = record["peak_rss_mb"]
        elif "file" in record:
            run.files[Path(record["file"]).name] = record
    if proc.returncode != 0:
        run.error = f"exit {proc.returncode}: {proc.stderr.strip().splitlines()[-1:] or ''}"
    return run


@dataclass
class Scores:
    extractor: str
    per_file: list[tuple[str, str, float | None, float | None, str | None]] = field(default_factory=list)
    big: dict | None = None
    peak_rss_mb: float | None = None
    error: str | None = None

    def similarity(self, fmt: str | None = None) -> float | None:
        values = [s for f, _, s, _, _ in self.per_file if s is not None and fmt in (None, f)]
        return statistics.fmean(values) if values else None

    def cell_f1(self, fmt: str | None = None) -> float | None:
        values = [c for f, _, _, c, _ in self.per_file if c is not None and fmt in (None, f)]
        return statistics.fmean(values) if values else None

    def empty(self) -> int:
        """Files converted "fine" to (next to) no text: a silent failure, worse than an error."""
        return sum(1 for *_, why in self.per_file if why == EMPTY)

    def pages_per_cpu_s(self) -> float | None:
        if not self.big or not self.big.get("ok") or not self.big.get("cpu_s") or self.big.get("empty"):
            return None
        return (self.big.get("pages") or 0) / self.big["cpu_s"]

    def pages_per_wall_s(self) -> float | None:
        if not self.big or not self.big.get("ok") or not self.big.get("wall_s") or self.big.get("empty"):
            return None
        return (self.big.get("pages") or 0) / self.big["wall_s"]


def score(extractor: str, references: list[tuple[str, Path, Path]], work: Path) -> Scores:
    """Run one extractor over the reference files, then over DA-619p.pdf alone."""
    out = work / extractor
    run = run_worker(extractor, [source for _, source, _ in references], out)
    scores = Scores(extractor, peak_rss_mb=run.peak_rss_mb, error=run.error)
    for fmt, source, truth in references:
        record = run.files.get(source.name)
        produced = out / f"{source.name}.md"
        if record is None or not record["ok"] or not produced.is_file():
            reason = (record or {}).get("error") or run.error or "no output"
            scores.per_file.append((fmt, source.name, None, None, str(reason)[:80]))
            continue
        ours, theirs = produced.read_text(), truth.read_text()
        if len(ours.strip()) < EMPTY_CHARS:
            scores.per_file.append((fmt, source.name, 0.0, None, EMPTY))
            continue
        scores.per_file.append((fmt, source.name, similarity(ours, theirs), table_cell_f1(ours, theirs), None))
    if BIG_PDF.is_file():
        big = run_worker(extractor, [BIG_PDF], work / f"{extractor}-big")
        scores.big = big.files.get(BIG_PDF.name) or {"ok": False, "error": big.error}
        produced = work / f"{extractor}-big" / f"{BIG_PDF.name}.md"
        # An empty result is not speed: 619 pages "done" in a second means nothing was read.
        scores.big["empty"] = not produced.is_file() or len(produced.read_text().strip()) < EMPTY_CHARS
        if big.peak_rss_mb is not None:
            scores.peak_rss_mb = max(scores.peak_rss_mb or 0.0, big.peak_rss_mb)
    return scores


def _number(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def report(all_scores: list[Scores], machine: str) -> str:
    references = len(all_scores[0].per_file)
    ingot = all_scores[0]
    lines = [
        f"\n## {dt.date.today().isoformat()}: extraction vs docling's expected Markdown, with peers "
        "(`benchmarks/extraction.py`)\n",
        f"Machine: {machine}. Similarity: difflib ratio over words (Markdown punctuation stripped); "
        "cell F1: table cells against the reference's (mean over files whose reference has a table); "
        "speed: DA-619p.pdf (619 pages), conversion only, one process per extractor; peak RSS of "
        "that process over all its files. Formats an extractor cannot read score as missing (-), "
        "not zero; `all` averages what it read; an empty output (under 20 characters) scores 0 and is "
        "counted under `empty`. docling's expected Markdown for DOCX, PPTX, XLSX and HTML is "
        "docling's own output, so its scores there measure agreement with itself; its PDF "
        "references come from its model pipeline, while here docling runs the model-free one "
        "(no table model: PDF cell F1 0 by construction).\n",
        "| extractor | PDF | DOCX | PPTX | XLSX | HTML | all | files read | empty | PDF cell F1 | cell F1 (all) "
        "| DA-619p pages/CPU-s | pages/wall-s | peak RSS MB |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in all_scores:
        read = sum(1 for row in s.per_file if row[2] is not None and row[4] is None)
        lines.append(
            f"| {s.extractor} | " + " | ".join(_number(s.similarity(fmt)) for fmt in FORMATS)
            + f" | {_number(s.similarity())} | {read}/{references} | {s.empty()} | {_number(s.cell_f1('pdf'))} "
            f"| {_number(s.cell_f1())} | {_number(s.pages_per_cpu_s(), 1)} | {_number(s.pages_per_wall_s(), 1)} "
            f"| {_number(s.peak_rss_mb, 0)} |"
        )
    peers = [s for s in all_scores[1:] if s.extractor not in PLAIN_TEXT_PEERS and s.pages_per_cpu_s()]
    if peers and ingot.pages_per_cpu_s():
        fastest = max(peers, key=lambda s: s.pages_per_cpu_s() or 0.0)
        ratio = ingot.pages_per_cpu_s() / fastest.pages_per_cpu_s()  # type: ignore[operator]
        lines.append(f"\nSpeed: ingot {ratio:.1f}x the fastest structure-aware peer ({fastest.extractor}) "
                     "in pages per CPU-second on DA-619p.pdf (goal >= 3x).")
    failures = [(s.extractor, name, why) for s in all_scores for _, name, score_, _, why in s.per_file if why]
    failures += [(s.extractor, BIG_PDF.name, s.big.get("error")) for s in all_scores if s.big and not s.big.get("ok")]
    if failures:
        lines.append("\nNot read: " + "; ".join(f"{e} {n} ({why})" for e, n, why in failures) + ".")
    lines += ["", "ingot per file:", "", "| format | file | similarity | cell F1 |", "|---|---|---|---|"]
    for fmt, name, sim, f1, why in ingot.per_file:
        lines.append(f"| {fmt} | {name} | {_number(sim) if why is None else 'error: ' + why} | {_number(f1)} |")
    low = [name for _, name, sim, _, _ in ingot.per_file if sim is not None and sim < 0.7]
    lines.append(f"\nFiles below 0.7: {', '.join(low) if low else 'none'}.")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--peers", action="store_true", help="also run the peers from .venv-peers")
    parser.add_argument("--only", nargs="*", choices=PEERS, help="these peers only (with --peers)")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    if not DOCLING.is_dir():
        sys.exit(f"documents not found at {DOCLING}")
    if args.peers and not PEER_PYTHON.is_file():
        sys.exit(f"peers not installed at {PEER_PYTHON}: run `bash benchmarks/peers/install.sh`")

    import common

    references = reference_files()
    extractors = ["ingot"] + (list(args.only or PEERS) if args.peers else [])
    with tempfile.TemporaryDirectory(prefix="ingot-extraction-") as tmp:
        all_scores = []
        for extractor in extractors:
            print(f"[extraction] {extractor} ...", file=sys.stderr, flush=True)
            all_scores.append(score(extractor, references, Path(tmp)))
    common.record(report(all_scores, common.machine()), write=not args.no_write)


if __name__ == "__main__":
    main()
