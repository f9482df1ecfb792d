"""How close one extractor's Markdown is to a reference Markdown: the two scores of issue 17.

- ``similarity``: difflib ratio over words with Markdown punctuation stripped (1.0 = the
  same words in the same order). It rewards reading order and complete text.
- ``table_cell_f1``: F1 over the multiset of non-empty table cells (text normalised the
  same way as the words) of every Markdown table in each document. It rewards cells that
  stay whole: a multi-line cell split into rows, two cells run together, or a table
  flattened into prose all lose cells, which word similarity barely notices.

Kept import-light (stdlib only): benchmarks/extraction.py imports it at module level and
the extraction forkserver re-runs that script in every child.
"""

from __future__ import annotations

import difflib
import re
from collections import Counter

MARKUP = re.compile(r"[|#*_`>\-]+|<!--.*?-->", re.S)
_SEPARATOR_CELL = re.compile(r"^:?-{3,}:?$")
_UNESCAPED_PIPE = re.compile(r"(?<!\\)\|")


def words(markdown: str) -> list[str]:
    """The document's words, lower-cased, without Markdown punctuation or comments."""
    return MARKUP.sub(" ", markdown).lower().split()


def similarity(ours: str, theirs: str) -> float:
    """Word-level difflib ratio (autojunk off: common words must count too)."""
    return difflib.SequenceMatcher(None, words(ours), words(theirs), autojunk=False).ratio()


def table_cells(markdown: str) -> Counter[str]:
    """Every non-empty cell of every pipe table, normalised to its lower-cased words.

    A table line is one that starts with ``|``; the header separator (``|---|``) is
    skipped. Cells repeated by merges count as often as they are written.
    """
    cells: Counter[str] = Counter()
    for raw in markdown.splitlines():
        line = raw.strip()
        if not line.startswith("|"):
            continue
        parts = _UNESCAPED_PIPE.split(line.strip("|"))
        stripped = [part.strip() for part in parts]
        if stripped and all(_SEPARATOR_CELL.match(part) for part in stripped if part):
            continue
        for part in stripped:
            text = " ".join(words(part.replace("\\|", "|")))
            if text:
                cells[text] += 1
    return cells


def table_cell_f1(ours: str, theirs: str) -> float | None:
    """F1 of our table cells against the reference's; None when the reference has no table."""
    expected = table_cells(theirs)
    if not expected:
        return None
    found = table_cells(ours)
    matched = sum((found & expected).values())
    if not matched:
        return 0.0
    precision = matched / sum(found.values())
    recall = matched / sum(expected.values())
    return 2 * precision * recall / (precision + recall)
