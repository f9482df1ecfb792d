"""Markdown tables in a passage -> one line per row, each value next to its column name.

Why: a small chat model reading a Markdown grid has to count pipes to know which column a
value sits in, and gets it wrong. Measured on the golden set with Qwen2.5-Coder-1.5B (see
benchmarks/RESULTS.md, "table rows as records"), it answered the "tables per document"
column with the "chunks per document" one, and "the colour below Green" with the one to
its right. Written as ``row 2: Processing: Chipper; total chunks: 20,843; ...`` every value
carries its column name and its row number, so the look-up is reading, not counting.

Two repairs on the way, both of shapes the extractors produce:

* The header's continuation rows (a spanned heading's sub-row, a heading wrapped onto a
  second line, a sheet's title row) are folded into one name per column (``Inference`` +
  ``time (secs)``; ``Polarization`` + ``resistance (Ω)``); which rows continue it is
  decided in ``ingest/table_header.py``, the same rule the chunker uses to repeat the
  whole header in every chunk of a table.
* A row whose cells hold the same number ``m > 1`` of words, at least two of them all
  plain numbers (``260.57 (145.80)`` is a value and its deviation, not two rows), is
  ``m`` rows that PDF extraction merged line by line (``OTSL HTML`` / ``0.938 0.952``):
  it is split back, the single-valued cells shared by every part.

Tables are found by markdown-it-py (the parser the Markdown extractor uses), so a pipe in
running text is never taken for a table; the text around a table is kept as it is.
"""

from __future__ import annotations

import re
from functools import lru_cache

from markdown_it import MarkdownIt

from ingot.ingest.table_header import continued_header

_PLAIN_NUMBER = re.compile(r"[-+]?\d[\d,.]*%?")


@lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    return MarkdownIt("commonmark").enable("table")


def tables_as_records(text: str) -> str:
    """``text`` with every Markdown table replaced by its rows as records (see module doc)."""
    if "|" not in text:
        return text
    lines = text.split("\n")
    spans: list[tuple[int, int, list[list[str]]]] = []  # (first line, end line, rows)
    rows: list[list[str]] | None = None
    start = end = 0
    for token in _parser().parse(text):
        if token.type == "table_open" and token.map:
            rows, (start, end) = [], token.map
        elif token.type == "tr_open" and rows is not None:
            rows.append([])
        elif token.type == "inline" and rows:
            rows[-1].append(" ".join(token.content.replace("\\|", "|").split()))
        elif token.type == "table_close" and rows is not None:
            spans.append((start, end, rows))
            rows = None
    for start, end, table in reversed(spans):
        lines[start:end] = records(table)
    return "\n".join(lines)


def records(rows: list[list[str]]) -> list[str]:
    """A table's rows (header first) as ``row n: column: value; ...`` lines; empty cells
    left out, a row that repeats one value in every cell (a merged cell spilled across
    the row) written once."""
    if not rows:
        return []
    header, body = continued_header(rows[0], rows[1:])
    names = [name or f"column {i}" for i, name in enumerate(header, start=1)]
    lines: list[str] = []
    for row in (part for row in body for part in split_merged_lines(row)):
        cells = [(names[i] if i < len(names) else f"column {i + 1}", value)
                 for i, value in enumerate(row) if value]
        if not cells:
            continue
        number = len(lines) + 1
        if len(cells) > 1 and len({value for _, value in cells}) == 1:
            lines.append(f"row {number}: {cells[0][1]}")
        else:
            lines.append(f"row {number}: " + "; ".join(f"{name}: {value}" for name, value in cells))
    return lines


def split_merged_lines(row: list[str]) -> list[list[str]]:
    """The rows a PDF line-merge packed into ``row`` (see module doc), or ``[row]``."""
    words = [cell.split() for cell in row]
    counts = {len(w) for w in words if len(w) > 1}
    if len(counts) != 1:
        return [row]
    m = counts.pop()
    numeric = sum(1 for w in words if len(w) == m and all(_PLAIN_NUMBER.fullmatch(x) for x in w))
    if numeric < 2:
        return [row]
    return [[w[j] if len(w) == m else cell for w, cell in zip(words, row)] for j in range(m)]

