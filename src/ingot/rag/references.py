"""Tables a retrieved passage points at ("Table 5 shows the performance ...").

Why: papers state a result in a table and discuss it in prose a column or a page away.
The prose embeds close to the question ("What Top-20 accuracy did distant supervision
reach?") and wins retrieval; the table that holds the number is a grid of figures that
embeds far from any question. A passage that names "Table N" of its own document, while no
retrieved passage is that table, is followed to the table's chunk, which takes the place
of the weakest passage. Measured on the golden set (benchmarks/RESULTS.md, "RAG: following
a passage's table reference").
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from ingot.ingest.captions import caption_label, captions_in

# "Table 5", "Tab. 5", "Table 5a", "Table 2-1", "TABLE IV"; not "Tables 5-7" (a range names no one
# table to fetch).
_REFERENCE = re.compile(r"\b(?:Table|TABLE|Tab\.)\s+(\d{1,3}(?:[-.]\d{1,3})?[a-z]?|[IVXL]{1,6})\b")


@dataclass(frozen=True)
class TableReference:
    """``document_id``'s table ``label`` (the "5" of "Table 5"), named by a passage."""

    document_id: str
    label: str

    @property
    def query_text(self) -> str:
        return f"Table {self.label}"


def referenced_labels(text: str) -> list[str]:
    """The table labels ``text`` names, first mention first, each once."""
    return list(dict.fromkeys(m.group(1) for m in _REFERENCE.finditer(text)))


def is_caption_of(label: str, text: str, heading_path: Iterable[str] = ()) -> bool:
    """Whether a chunk holds table ``label``: a line of its text opens with the caption
    (ingest/captions.py; the chunker keeps a caption with its table), or its heading path
    names it."""
    return label in captions_in(text) or any(caption_label(heading) == label for heading in heading_path)


def unresolved_references(passages: Iterable[tuple[str, str, Iterable[str]]]) -> list[tuple[int, TableReference]]:
    """References to tables that none of ``passages`` (document id, text, heading path)
    holds, each with the index of the first passage naming it: the ones worth fetching,
    in the order the passages name them."""
    items = [(doc, text, tuple(headings)) for doc, text, headings in passages]
    wanted: dict[TableReference, int] = {}
    for index, (doc, text, _) in enumerate(items):
        for label in referenced_labels(text):
            reference = TableReference(doc, label)
            if reference in wanted or any(d == doc and is_caption_of(label, t, h) for d, t, h in items):
                continue
            wanted[reference] = index
    return [(index, reference) for reference, index in wanted.items()]
