"""Which leading rows of a table are its header: the first row and the rows that continue
its column names (a spanned heading's sub-row, a heading wrapped onto a second line, a
sheet's title row over the real column names).

Why it is decided once, here: every consumer needs the same answer. An extractor that
splits a big table into parts (``elements.split_table``) and the chunker that splits a
table between chunks repeat the *whole* header in each part, so a continuation chunk of
"Polarization / resistance (Ω)" still names its column "Polarization resistance (Ω)";
the RAG prompt (``rag/tables.py``) folds the same rows into one name per column.

The rules, each from a shape in the golden set's documents:

* A header with empty cells is continued by the mostly-word rows right below it (fewer
  than half of their cells numbers) that put a value under at least one of its empty
  cells (``Inference`` + ``time (secs)``; ``mAP`` + ``(0.75)``; "In millions of CHF ...
  January-June 2023" over "Sales (a) | Underlying trading operating profit (b) | ..."),
  up to two. A row that fills none of them is data, even when it is words: an index
  sheet's "Quarterly revenue | Nine quarters to 30 June 2023 | 1" under "Topic | Period |
  | Page". An empty *first* cell does not count: it heads the row labels' column
  ("| | Food | Calories |" over "| Leaves | Ash, Elm | 50 |").
* A full header is continued only by a row whose cells all start in lower case or with
  "(": a heading wrapped onto a second line (``Polarization`` + ``resistance (Ω)``), not a
  data row of words.
* One merged cell spilled across a row (a note repeated in every cell) never continues
  a header.
* A heading centred over the columns it spans (PDF text has no spans): "TEDs" over the
  middle one of "simple | complex | all", empty cells either side of it, names all
  three when the continuation row fills them ("TEDs simple", "TEDs complex", "TEDs
  all"), not only "complex". The run spread to is symmetric: a centred label covers as
  many columns on its left as on its right.
"""

from __future__ import annotations

import re

MAX_HEADER_CONTINUATIONS = 2
NUMBER = re.compile(r"[-+(]?[$€£]?\d[\d,.]*%?\)?")  # a cell that is a number: 1,234  (0.75)  -3%


def continued_header(header: list[str], body: list[list[str]]) -> tuple[list[str], list[list[str]]]:
    """The header with the rows below it that continue its column names folded in (one
    name per column, parts joined by a space), and the body that is left."""
    folded, count = _fold(header, body)
    return folded, body[count:]


def continuation_rows(header: list[str], body: list[list[str]]) -> int:
    """How many rows at the top of ``body`` continue ``header`` (module doc)."""
    return _fold(header, body)[1]


def _fold(header: list[str], body: list[list[str]]) -> tuple[list[str], int]:
    """(the header with its continuation rows folded in, how many rows that was)."""
    count = 0
    current = list(header)
    for row in body[:MAX_HEADER_CONTINUATIONS]:
        filled = [cell for cell in row if cell]
        if not filled or 2 * sum(1 for cell in filled if NUMBER.fullmatch(cell)) >= len(filled):
            break
        if len(filled) > 1 and len(set(filled)) == 1:
            break
        if all(current):
            if not all(_continues_words(cell) for cell in filled):
                break
        elif not any(value and not _at(current, i) for i, value in enumerate(row) if i > 0):
            break  # fills no empty column name (an empty first one is the row labels' column)
        width = max(len(current), len(row))
        if count == 0:
            current = _spread_centred(current, row)
        current = [" ".join(part for part in (_at(current, i), _at(row, i)) if part) for i in range(width)]
        count += 1
    return current, count


def _spread_centred(header: list[str], below: list[str]) -> list[str]:
    """``header`` with each label flanked by equally many empty cells, all filled in
    ``below``, copied into them (a heading centred over the columns it spans)."""
    spread = list(header)
    for i, label in enumerate(header):
        if not label:
            continue
        reach = 0
        while (i - reach - 1 > 0 and i + reach + 1 < len(header)
               and not header[i - reach - 1] and not header[i + reach + 1]
               and _at(below, i - reach - 1) and _at(below, i + reach + 1)):
            reach += 1
        for j in range(i - reach, i + reach + 1):
            spread[j] = label
    return spread


def header_rows(rows: list[list[str]]) -> int:
    """How many leading rows of a table (header first) are its header: 1 + continuations
    (0 for no rows)."""
    if not rows:
        return 0
    return 1 + continuation_rows(rows[0], rows[1:])


def _continues_words(cell: str) -> bool:
    """Does a cell read as the second line of a heading ("concentration (g)" under
    "Inhibitor")? A full header is continued only by a row of such cells."""
    return cell[:1].islower() or cell[:1] == "("


def _at(cells: list[str], i: int) -> str:
    return cells[i] if i < len(cells) else ""
