"""Table captions: which text element names the table beside it ("Table 5: Retrieval
accuracy on ...").

Why: a caption is the only prose a table of figures has, and what a passage that cites
the table ("Table 5 shows ...") points at. Packed into another chunk than its table, the
table's chunk cannot be found by its number or its subject, and the caption's chunk holds
no figures (the DPR paper's Table 5 was split so). The chunker keeps each caption with its
table (ingest/chunk.py); RAG finds a cited table by its caption (rag/references.py).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal

from ingot.ingest.elements import Element

# A table's label: "5", "5a", "2-1" and "3.2" (chapter-numbered, as in IBM Redbooks), "IV".
_OPENING = r"^[#*_>\s|]*(?:Table|TABLE|Tab\.)\s+"
# "Table 5:", "**Table 5.**", "TABLE IV.", "Table 5 - Results" opening a text; not "Table 5
# shows" (prose that names the table) nor "Tables 5-7".
_PUNCTUATED = re.compile(_OPENING + r"(\d{1,3}(?:[-.]\d{1,3})?[a-z]?|[IVXL]{1,6})(?:\s*\**\s*(?:[:|—–]|\.(?!\d))|\s+-\s)")
# A chapter-numbered label followed by a name: "Table 2-1 FUNCTION_USAGE view"; not
# "Table 2-2 shows a comparison".
_NAMED = re.compile(_OPENING + r"(\d{1,3}[-.]\d{1,3}[a-z]?)\s+(?=[A-Z])")

Side = Literal["above", "below"]


def caption_label(text: str) -> str | None:
    """The label ("5", "IV") when ``text`` opens with a table caption, else None."""
    match = _PUNCTUATED.match(text) or _NAMED.match(text)
    return match.group(1) if match else None


def captions_in(text: str) -> list[str]:
    """The labels of the captions that open a line of ``text`` (a chunk's tables)."""
    return [label for line in text.split("\n") if (label := caption_label(line))]


def table_captions(elements: Sequence[Element]) -> dict[int, Side]:
    """Index of each caption element -> the side of its table it stands on. A caption
    next to one table captions that one; one between two tables goes with the side the
    document's other captions take (a paper puts every caption above its table, or every
    one below), below when they do not tell."""
    present = [i for i, e in enumerate(elements) if e.text.strip()]
    sides: dict[int, tuple[bool, bool]] = {}
    for at, i in enumerate(present):
        element = elements[i]
        if element.kind == "table" or caption_label(element.text.strip()) is None:
            continue
        before = at > 0 and elements[present[at - 1]].kind == "table"
        after = at + 1 < len(present) and elements[present[at + 1]].kind == "table"
        if before or after:
            sides[i] = (before, after)
    above = sum(1 for before, after in sides.values() if after and not before)
    below = sum(1 for before, after in sides.values() if before and not after)
    between: Side = "above" if above > below else "below"
    return {i: (between if before and after else "below" if before else "above")
            for i, (before, after) in sides.items()}
