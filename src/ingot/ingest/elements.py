"""What every extractor produces, whatever the format: a flat list of elements in reading
order, each with exact provenance (page / slide / sheet, heading path, bbox where known).

Tables are GitHub-flavoured Markdown (``| a | b |`` rows under a ``|---|`` separator), so
chunkers, prompts and people read them the same way. A large table is split by
:func:`split_table` into parts that each repeat the header row, numbered the same way
whatever the format (``part`` 1-based, ``parts``, ``first_row``).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from ingot.ingest.table_header import header_rows

_MARKDOWN_CELL_SPLIT = re.compile(r"(?<!\\)\|")  # a pipe markdown_table did not escape

ElementKind = Literal["text", "title", "table", "list", "notes", "chart", "image-text"]


@dataclass
class Element:
    kind: ElementKind
    text: str
    page: int | None = None  # 1-based page (PDF), slide (PPTX) or sheet index (XLSX); None when the format has none
    location: str | None = None  # human label of the page: "slide 3", sheet name, ...
    heading_path: tuple[str, ...] = ()  # enclosing headings, outermost first
    bbox: tuple[float, float, float, float] | None = None  # (x0, y0, x1, y1) in points, top-left origin
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["heading_path"] = list(self.heading_path)
        return data


@dataclass
class Extraction:
    """An extractor's raw result."""

    elements: list[Element]
    pages: int | None = None  # page / slide / sheet count


@dataclass(frozen=True)
class ExtractOptions:
    filename: str = "document"
    password: str | None = None
    ocr: bool = True  # OCR pages and images that have no text layer
    ocr_languages: str = "auto"  # tesseract languages ("eng+deu"), or "auto": chosen from the document's script
    table_rows_per_element: int = 50  # large sheets/tables are split, header repeated


class ExtractionError(Exception):
    """A file that cannot be extracted. ``reason`` is a stable code for APIs and logs:
    unsupported, empty, corrupt, password_required, too_large, zip_bomb, timeout, failed."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def markdown_table(rows: list[list[str]], header: bool = True) -> str:
    """Rows of cell strings -> a Markdown table (first row is the header). Pipes and
    newlines inside cells are escaped so a cell never breaks the table."""
    if not rows:
        return ""
    width = max(len(r) for r in rows)

    def cell(value: str) -> str:
        return " ".join(str(value).split()).replace("|", "\\|")

    norm = [[cell(c) for c in r] + [""] * (width - len(r)) for r in rows]
    head = norm[0] if header else [""] * width
    body = norm[1:] if header else norm
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * width]
    lines += ["| " + " | ".join(r) + " |" for r in body]
    return "\n".join(lines)


def markdown_cells(line: str) -> list[str]:
    """The cells of one line of a :func:`markdown_table` (``| a | b |``), unescaped, spaces
    squeezed: its inverse, for the chunker, which sees only the text."""
    text = line.strip()
    if text.startswith("|"):
        text = text[1:]
    if text.endswith("|") and not text.endswith("\\|"):
        text = text[:-1]
    return [" ".join(cell.replace("\\|", "|").split()) for cell in _MARKDOWN_CELL_SPLIT.split(text)]


@dataclass(frozen=True)
class TablePart:
    """One element's share of a table: the header rows and at most N body rows."""

    rows: list[list[str]]  # header rows first
    index: int  # 0-based position among the parts
    count: int  # how many parts the table was split into
    first_row: int  # 1-based position of this part's first body row among the table's rows after the first
    header_rows: int = 1  # the leading rows of ``rows`` that are the header (ingest/table_header.py)

    @property
    def text(self) -> str:
        return markdown_table(self.rows)

    def meta(self) -> dict[str, int]:
        """The part numbering every extractor uses: ``part`` (1-based), ``parts`` and
        ``first_row``; nothing for a table that fits one element, so unsplit tables carry
        no noise."""
        if self.count == 1:
            return {}
        return {"part": self.index + 1, "parts": self.count, "first_row": self.first_row}


def split_table(rows: list[list[str]], max_rows: int) -> list[TablePart]:
    """A table (header row first) as parts of at most ``max_rows`` body rows, the header
    repeated in each, so a large table never becomes one oversized element and every part
    reads on its own. The header is the first row and the rows that continue its column
    names (ingest/table_header.py: "Polarization" over "resistance (Ω)"), so no part loses
    half of a column's name. A table without body rows is one part holding the header
    alone; no rows at all, no parts."""
    if not rows:
        return []
    band = header_rows(rows)
    header, body = rows[:band], rows[band:]
    step = max(1, max_rows)
    starts = range(0, len(body), step) or range(1)
    return [
        TablePart(rows=[*header, *body[start : start + step]], index=index, count=len(starts),
                  first_row=start + band, header_rows=band)
        for index, start in enumerate(starts)
    ]
