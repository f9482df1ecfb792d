"""Extraction quality and speed on real documents.

Quality: for every docling test document that has docling's expected Markdown
(``docling/tests/data/<format>/groundtruth``), the word-level similarity (difflib ratio
over words, Markdown punctuation stripped) between ingot's extraction and docling's.
Speed: pages/s on the text-layer PDFs (docling's PDFs and the 619-page DA-619p.pdf), each
file through the isolated runner (process start included). Goal: >= 10 pages/s.

Run: ``.venv/bin/python benchmarks/extraction.py``; appends to benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import difflib
import re
import sys
from pathlib import Path

# Kept light on purpose: the extraction forkserver re-runs this script (as __mp_main__) in
# every child it forks, so anything imported here is paid once per extracted file (httpx
# through ``common`` cost 0.14-0.21 s per child, more than a small PDF's extraction).
# Heavy imports live inside main().

DOCS = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "docs"  # common.SHARED_DATA / "docs"
DOCLING = DOCS / "docling" / "tests" / "data"
BIG_PDF = DOCS / "unstructured" / "example-docs" / "pdf" / "DA-619p.pdf"
MARKUP = re.compile(r"[|#*_`>\-]+|<!--.*?-->", re.S)


def words(markdown: str) -> list[str]:
    return MARKUP.sub(" ", markdown).lower().split()


def similarity(ours: str, theirs: str) -> float:
    return difflib.SequenceMatcher(None, words(ours), words(theirs), autojunk=False).ratio()


def groundtruth_for(source: Path) -> Path | None:
    folder = source.parent.parent / "groundtruth"
    for candidate in (folder / f"{source.name}.md", folder / f"{source.stem}.md"):
        if candidate.is_file():
            return candidate
    return None


def main() -> None:
    import common

    from ingot.ingest.render import to_markdown
    from ingot.ingest.runner import extract_path

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    if not DOCLING.is_dir():
        sys.exit(f"documents not found at {DOCLING}")

    rows = []
    pdf_pages = pdf_seconds = 0.0
    for fmt in ("pdf", "docx", "pptx", "xlsx", "html"):
        for source in sorted((DOCLING / fmt / "sources").iterdir()):
            truth = groundtruth_for(source)
            if truth is None:
                continue
            result = extract_path(source)
            if not result.ok:
                rows.append((fmt, source.name, None, result.error_reason, result.seconds))
                continue
            body = "\n".join(line for line in to_markdown(result).splitlines()[1:] if not line.startswith("<!--"))
            rows.append((fmt, source.name, similarity(body, truth.read_text()), None, result.seconds))
            if fmt == "pdf" and result.pages:
                pdf_pages += result.pages
                pdf_seconds += result.seconds
    big = extract_path(BIG_PDF, timeout_s=600) if BIG_PDF.is_file() else None

    lines = [
        f"\n## {dt.date.today().isoformat()}: extraction vs docling's expected Markdown (`benchmarks/extraction.py`)\n",
        f"Machine: {common.machine()}. Similarity: difflib ratio over words (Markdown punctuation stripped), "
        "1.0 = same words in the same order. Each file through the isolated runner (child process).\n",
        "| format | file | similarity | seconds |",
        "|---|---|---|---|",
    ]
    for fmt, name, score, error, seconds in rows:
        value = f"{score:.3f}" if score is not None else f"error: {error}"
        lines.append(f"| {fmt} | {name} | {value} | {seconds:.2f} |")
    scored = [r[2] for r in rows if r[2] is not None]
    lines.append(f"| all | mean of {len(scored)} | {sum(scored) / max(1, len(scored)):.3f} | |")
    lines.append("")
    if pdf_seconds:
        lines.append(f"Text-layer PDFs (docling set): {pdf_pages:.0f} pages in {pdf_seconds:.2f} s = "
                     f"{pdf_pages / pdf_seconds:.1f} pages/s (process start included).")
    if big is not None and big.ok:
        lines.append(f"DA-619p.pdf: {big.pages} pages in {big.seconds:.1f} s = {big.pages / big.seconds:.1f} pages/s "
                     f"({len(big.elements)} elements).")
    common.record("\n".join(lines) + "\n", write=not args.no_write)


if __name__ == "__main__":
    main()
