"""HTML (and XHTML / inline-XBRL filings) with BeautifulSoup on lxml.

The body is walked once, in document order. Block tags end the running paragraph, inline
tags feed it, so text that sits directly in a ``div`` (or in ``body``) is not lost.

Decisions worth knowing:

* Dropped: script, style, nav, noscript, template, svg, iframe, form controls, and
  anything hidden (``hidden`` attribute, ``display:none``); inline XBRL filings carry
  a hidden ``ix:header`` full of machine facts that is not document text.
* ``h1``-``h6`` become ``title`` elements. As in the other extractors, a title's
  ``heading_path`` lists the headings enclosing it (not itself; ``meta["level"]``), later
  elements carry the path including it.
* A page with no ``h1``-``h6`` at all (SEC filings, Word and PDF exports) marks its
  headings by style: a short paragraph whose every word is bold ("ITEM 2. PROPERTIES",
  ``<p style="font-weight:bold">``) is a heading there, all of one level
  (``_StyledHeadings``). Without it a 10-K is one section: every chunk straddles two
  items and has no heading path.
* ``p``/``div``/... text -> ``text``; ``pre`` -> ``text`` with its line breaks kept;
  ``ul``/``ol`` -> one ``list`` element, one line per item, nested lists indented two
  spaces per level: ``- item`` in a ul, the number the browser shows in an ol
  (``1. item``; ``start``, ``type``, ``reversed`` and ``value`` honoured).
* Tables: cells are laid on a grid with ``colspan``/``rowspan`` expanded (the value is
  repeated in every grid cell it covers, so each row reads on its own after a split).
  Then the grid is cleaned the way financial filings need it: a lone currency symbol
  cell joins the number after it, a lone ``)`` or ``%`` joins the number before it, and
  columns/rows that hold nothing of their own (empty, or only a copy of a spanned cell
  kept elsewhere) are dropped. A first row that is one cell spanning the whole table is
  a caption: it becomes a ``text`` element before the table. A nested table inside a
  data table is flattened into its cell as its cells' text joined by spaces (no
  separator the page did not show); a list in a cell keeps its markers on one line
  (``- a - b``, ``1. a 2. b``).
* Layout tables are not tables: a table with one column is walked as ordinary content,
  and a one-row table whose first cell is a bullet or marker ("•", "(1)", "a.", "☐")
  becomes a list item (consecutive ones merge into one ``list``); other one-row tables
  become ``text``. Elements made from layout tables have ``meta["layout_table"]`` set.
* Links that leave the page keep their target as a Markdown link
  (``[text](href)``, ``ingest/links.py``), wherever they sit (paragraphs, lists, cells);
  in-page anchors (``#...``), ``javascript:`` links and bare URLs stay plain text.
* Large tables are split into elements of at most ``options.table_rows_per_element``
  body rows, each repeating the header row. HTML has no pages: ``page=None``.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from typing import Any

from bs4 import BeautifulSoup, NavigableString, Tag, XMLParsedAsHTMLWarning
from bs4.element import Comment, Declaration, Doctype, ProcessingInstruction

from ingot.ingest.elements import Element, Extraction, ExtractionError, ExtractOptions, split_table
from ingot.ingest.extract.docx_numbering import format_value
from ingot.ingest.links import link_text, markdown_link

DROP_TAGS = {
    "script", "style", "nav", "noscript", "template", "svg", "iframe", "object", "embed",
    "button", "input", "select", "textarea", "head", "title", "meta", "link",
}
HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
BLOCK_TAGS = {
    "p", "div", "section", "article", "main", "header", "footer", "aside", "blockquote",
    "address", "center", "figure", "figcaption", "form", "fieldset", "legend", "details",
    "summary", "dl", "dt", "dd", "li", "hr", "body", "html", "caption", "tbody", "thead",
    "tfoot", "tr", "td", "th", "hgroup", "menu", "dialog", "picture", "video", "audio",
}
LIST_TAGS = {"ul", "ol"}
OL_TYPES = {"1": "decimal", "a": "lowerLetter", "A": "upperLetter", "i": "lowerRoman", "I": "upperRoman"}
MARKER = re.compile(  # a bullet glyph, "1." / "1)" / "(1)", "a." / "(a)", "iv."
    r"^(?:[•●○◦▪▫■□◆◇►▸‣⁃∙·\-–—*☐☑☒✓✔]|\(?[0-9]{1,3}[.)]|\(?[a-zA-Z][.)]|\([0-9a-zA-Z]{1,4}\)|[ivxIVX]{1,4}[.)])$"
)
BULLET_GLYPHS = set("•●○◦▪▫■□◆◇►▸‣⁃∙·-–—*")
CURRENCY = {"$", "€", "£", "¥", "US$", "CHF", "C$", "A$", "R$", "₹"}
TRAILERS = {")", "%", ")%", "%)"}
WHITESPACE = re.compile(r"\s+")
HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.I)


def extract(data: bytes, options: ExtractOptions) -> Extraction:
    soup = _parse(data)
    root = soup.body or soup
    _write_links(root)
    walker = _Walker(options, None if root.find(list(HEADINGS)) else _StyledHeadings.of(root))
    walker.walk(root)
    walker.flush()
    if not walker.elements:
        raise ExtractionError("empty", "the page has no visible text")
    return Extraction(elements=walker.elements, pages=None)


def _parse(data: bytes) -> Any:
    """lxml's HTML parser via BeautifulSoup; given bytes so the declared charset (or
    BeautifulSoup's detection) picks the encoding. XHTML filings parse fine as HTML."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", XMLParsedAsHTMLWarning)
        return BeautifulSoup(data, "lxml")


def _write_links(root: Any) -> None:
    """Replace each outbound ``<a href>`` by its Markdown link text, so every gatherer below
    (paragraphs, list items, table cells) carries the target without knowing links.
    Anchors inside dropped or hidden parts are left alone: the walk skips them anyway."""
    for anchor in root.find_all("a", href=True):
        target = anchor["href"].strip()
        text = _clean(anchor.get_text())
        if not text or not target or target.startswith("#") or target.lower().startswith("javascript:"):
            continue
        if target == text or _is_hidden(anchor) or any(p.name in DROP_TAGS for p in anchor.parents if p.name):
            continue
        anchor.replace_with(NavigableString(markdown_link(text, target)))


def _is_hidden(tag: Any) -> bool:
    if tag.has_attr("hidden"):
        return True
    style = tag.get("style")
    return bool(style) and bool(HIDDEN_STYLE.search(style))


def _is_text(node: Any) -> bool:
    return isinstance(node, NavigableString) and not isinstance(
        node, (Comment, Declaration, Doctype, ProcessingInstruction)
    )


def _clean(text: str) -> str:
    return " ".join(text.split())


# ---------------------------------------------------------------- styled headings

BOLD_STYLE = re.compile(r"font-weight\s*:\s*(?:bold(?:er)?|[6-9]00)\b", re.I)
NOT_BOLD_STYLE = re.compile(r"font-weight\s*:\s*(?:normal|lighter|[1-5]00)\b", re.I)
HEADING_MAX_WORDS = 12
STYLED_HEADING_LEVEL = 1
HEADING_BLOCKERS = BLOCK_TAGS | LIST_TAGS | {"table", "pre", "br", "img"}


def _bold_here(tag: Any) -> bool | None:
    """Whether ``tag`` itself sets bold (True), unsets it (False) or says nothing (None)."""
    if tag.name in ("b", "strong"):
        return True
    style = tag.get("style") or ""
    if BOLD_STYLE.search(style):
        return True
    if NOT_BOLD_STYLE.search(style):
        return False
    return None


def _all_bold(block: Any) -> bool:
    """Every visible word of ``block`` is set bold, by the block or an inline tag in it."""
    inherited = _bold_here(block) is True
    seen = False
    for node in block.descendants:
        if not _is_text(node) or not str(node).strip():
            continue
        bold = inherited
        for parent in node.parents:
            if parent is block:
                break
            here = _bold_here(parent)
            if here is not None:
                bold = here
                break
        if not bold:
            return False
        seen = True
    return seen


def _styled_heading(block: Any) -> bool:
    """A leaf block of a few words with a letter in them, all bold: a heading by style."""
    if block.find(HEADING_BLOCKERS) is not None or _is_hidden(block):
        return False
    text = _clean(block.get_text(" "))
    if not text or len(text.split()) > HEADING_MAX_WORDS or not any(c.isalpha() for c in text):
        return False
    return _all_bold(block)


@dataclass
class _StyledHeadings:
    """The blocks of a page that are headings by style. All are one level: a filing sets
    its cover lines largest and its items and notes alike, so font sizes would nest the
    whole filing under its cover; at one level each heading starts a section, which is
    what the chunker needs (a chunk never straddles two items)."""

    blocks: set[int]  # id() of each heading block

    @classmethod
    def of(cls, root: Any) -> _StyledHeadings:
        return cls({id(tag) for tag in root.find_all(["p", "div"]) if _styled_heading(tag)})

    def level(self, block: Any) -> int | None:
        return STYLED_HEADING_LEVEL if id(block) in self.blocks else None


# ---------------------------------------------------------------- the walk


class _Walker:
    """Document-order walk that keeps the heading stack and the running paragraph."""

    def __init__(self, options: ExtractOptions, styled: _StyledHeadings | None = None) -> None:
        self.options = options
        self.styled = styled  # headings marked by style, on a page without h1-h6
        self.elements: list[Element] = []
        self.headings: list[tuple[int, str]] = []
        self.buffer: list[str] = []

    @property
    def path(self) -> tuple[str, ...]:
        return tuple(text for _, text in self.headings)

    def add(self, kind: str, text: str, **meta: Any) -> None:
        if text.strip():
            self.elements.append(Element(kind=kind, text=text, heading_path=self.path, meta=meta))  # type: ignore[arg-type]

    def flush(self) -> None:
        """End the running paragraph: inline text gathered so far becomes one element."""
        if not self.buffer:
            return
        lines = [_clean(line) for line in "".join(self.buffer).split("\n")]
        self.buffer = []
        self.add("text", "\n".join(line for line in lines if line))

    def walk(self, node: Any) -> None:
        for child in node.children:
            if isinstance(child, Tag):
                self.visit(child)
            elif _is_text(child):
                self.buffer.append(WHITESPACE.sub(" ", str(child)))  # source newlines are spaces; <br> is "\n"

    def visit(self, tag: Any) -> None:
        name = tag.name.lower()
        if name in DROP_TAGS or _is_hidden(tag):
            return
        if name in HEADINGS:
            self.heading(HEADINGS[name], link_text(_clean(tag.get_text(" "))))  # a heading path holds words
        elif name == "table":
            self.flush()
            self.table(tag)
        elif name in LIST_TAGS:
            self.flush()
            self.add("list", "\n".join(_list_lines(tag, 0)))
        elif name == "pre":
            self.flush()
            self.add("text", tag.get_text().strip("\n"), pre=True)
        elif name == "br":
            self.buffer.append("\n")
        elif name == "img":
            return
        elif name in BLOCK_TAGS:
            self.flush()
            level = self.styled.level(tag) if self.styled is not None else None
            if level is not None:
                self.heading(level, link_text(_clean(tag.get_text(" "))))
                return
            self.walk(tag)
            self.flush()
        else:
            self.walk(tag)

    def heading(self, level: int, text: str) -> None:
        self.flush()
        if not text:
            return
        while self.headings and self.headings[-1][0] >= level:
            self.headings.pop()
        self.add("title", text, level=level)
        self.headings.append((level, text))

    # ------------------------------------------------------------ tables

    def table(self, tag: Any) -> None:
        grid = _TableGrid.from_tag(tag)
        grid.clean()
        if grid.width == 0:
            return
        if grid.width == 1:
            self.walk_layout_cells(tag)
            return
        caption = _caption(tag)
        if grid.height > 1 and grid.is_caption_row(0):
            caption = " ".join(filter(None, [caption, grid.rows[0][0].text]))
            grid.drop_row(0)
            grid.clean()
        if caption:
            self.add("text", caption, caption=True)
        if grid.height == 1:
            self.layout_row([cell.text for cell in grid.rows[0] if cell.text])
            return
        self.table_elements(grid.text_rows())

    def walk_layout_cells(self, tag: Any) -> None:
        """A one-column table is a layout box: its cells are ordinary content."""
        for row in _own_rows(tag):
            for cell in _own_cells(row):
                self.walk(cell)
                self.flush()

    def layout_row(self, cells: list[str]) -> None:
        """A one-row table: a marker first cell makes a list item (merged with the list
        item just before it), anything else is a line of text."""
        if len(cells) >= 2 and MARKER.match(cells[0]):
            marker = "" if cells[0] in BULLET_GLYPHS else cells[0] + " "
            line = "- " + marker + " ".join(cells[1:])
            last = self.elements[-1] if self.elements else None
            if last is not None and last.kind == "list" and last.meta.get("layout_table") and last.heading_path == self.path:
                last.text += "\n" + line
                last.meta["layout_table"] += 1
            else:
                self.add("list", line, layout_table=1)
            return
        self.add("text", " ".join(cells), layout_table=1)

    def table_elements(self, rows: list[list[str]]) -> None:
        """Split by the shared :func:`split_table`, but numbered as HTML always was: every
        part carries ``part`` counted from 0 and ``parts``, even a whole table, because
        callers (tests/test_extract_sheets_html_text.py) pick first parts with
        ``meta["part"] == 0``."""
        for part in split_table(rows, self.options.table_rows_per_element):
            self.add("table", part.text, part=part.index, parts=part.count)


def _caption(tag: Any) -> str:
    caption = tag.find("caption", recursive=False)
    return _clean(caption.get_text(" ")) if caption else ""


def _own_rows(table: Any) -> list[Any]:
    """The table's rows, not those of tables nested in its cells."""
    rows = []
    for child in table.children:
        name = getattr(child, "name", None)
        if name == "tr":
            rows.append(child)
        elif name in ("thead", "tbody", "tfoot"):
            rows.extend(c for c in child.children if getattr(c, "name", None) == "tr")
    return rows


def _own_cells(row: Any) -> list[Any]:
    return [c for c in row.children if getattr(c, "name", None) in ("td", "th")]


def _cell_text(cell: Any) -> str:
    """A cell's visible text. A nested table reads as its cells' text in document order,
    separated by spaces only (any separator would be text the page never showed); a list
    keeps its item markers on one line (``- Pond - Marsh``, ``1. Fly 2. Nest``), because
    a Markdown cell cannot hold line breaks."""
    parts: list[str] = []

    def gather(node: Any) -> None:
        for child in node.children:
            if isinstance(child, Tag):
                name = child.name.lower()
                if name in DROP_TAGS or _is_hidden(child):
                    continue
                if name == "table":
                    cells = [_cell_text(c) for r in _own_rows(child) for c in _own_cells(r)]
                    parts.append(" " + " ".join(c for c in cells if c) + " ")
                elif name in LIST_TAGS:
                    parts.append(" " + " ".join(line.strip() for line in _list_lines(child, 0)) + " ")
                elif name == "br" or name in BLOCK_TAGS:
                    parts.append(" ")
                    gather(child)
                    parts.append(" ")
                else:
                    gather(child)
            elif _is_text(child):
                parts.append(str(child))

    gather(cell)
    return _clean("".join(parts))


@dataclass
class _Cell:
    text: str
    origin: int  # id of the source cell; copies from colspan/rowspan share it
    header: bool = False  # a th, or a cell in thead


class _TableGrid:
    """A table as a rectangular grid of cells with spans expanded."""

    def __init__(self, rows: list[list[_Cell]]) -> None:
        self.rows = rows

    @property
    def height(self) -> int:
        return len(self.rows)

    @property
    def width(self) -> int:
        return len(self.rows[0]) if self.rows else 0

    @classmethod
    def from_tag(cls, table: Any) -> _TableGrid:
        grid: dict[tuple[int, int], _Cell] = {}
        origin = 0
        for r, row in enumerate(_own_rows(table)):
            c = 0
            in_head = getattr(row.parent, "name", None) == "thead"
            for cell in _own_cells(row):
                while (r, c) in grid:
                    c += 1
                text = _cell_text(cell)
                header = in_head or cell.name == "th"
                colspan, rowspan = _span(cell, "colspan", 1000), _span(cell, "rowspan", 10000)
                for dr in range(rowspan):
                    for dc in range(colspan):
                        grid[(r + dr, c + dc)] = _Cell(text, origin, header)
                origin += 1
                c += colspan
        if not grid:
            return cls([])
        height = 1 + max(r for r, _ in grid)
        width = 1 + max(c for _, c in grid)
        blank = -1
        rows = []
        for r in range(height):
            row = []
            for c in range(width):
                cell = grid.get((r, c))
                if cell is None:
                    cell, blank = _Cell("", blank), blank - 1
                row.append(cell)
            rows.append(row)
        return cls(rows)

    def clean(self) -> None:
        self._merge_symbols()
        self._drop_columns()
        self._drop_rows()

    def _merge_symbols(self) -> None:
        """"(12" | ")" -> "(12)" and "26.1" | "%" -> "26.1%" first, then
        "$" | "1,234" -> "$1,234" (so "$" | "(12" | ")" ends as "$(12)")."""
        for row in self.rows:
            for i, cell in enumerate(row):
                if cell.text in TRAILERS:
                    prev = _next_filled(row, i, -1)
                    if prev is not None and _numeric(row[prev].text):
                        row[prev] = _Cell(row[prev].text + cell.text, row[prev].origin, row[prev].header)
                        row[i] = _Cell("", cell.origin)
            for i, cell in enumerate(row):
                if cell.text in CURRENCY:
                    nxt = _next_filled(row, i, +1)
                    if nxt is not None and _numeric(row[nxt].text):
                        row[nxt] = _Cell(cell.text + row[nxt].text, row[nxt].origin, row[nxt].header)
                        row[i] = _Cell("", cell.origin)

    def _drop_columns(self) -> None:
        """Drop each column whose every cell is empty or a span copy that survives in a
        kept neighbour column. Left to right, so the last copy of a span always stays;
        spans are contiguous, so the nearest kept neighbours are the only ones to check."""
        kept: list[int] = []
        for c in range(self.width):
            near = [i for i in (kept[-1] if kept else None, c + 1) if i is not None and i < self.width]
            if not all(_redundant(row[c], [row[i] for i in near]) for row in self.rows):
                kept.append(c)
        self.rows = [[row[c] for c in kept] for row in self.rows] if kept else []

    def _drop_rows(self) -> None:
        """The same for rows (empty, or only copies of a rowspan kept above/below)."""
        kept: list[int] = []
        for r in range(self.height):
            near = [self.rows[i] for i in (kept[-1] if kept else None, r + 1) if i is not None and i < self.height]
            if not all(_redundant(cell, [row[c] for row in near]) for c, cell in enumerate(self.rows[r])):
                kept.append(r)
        self.rows = [self.rows[r] for r in kept]

    def drop_row(self, index: int) -> None:
        del self.rows[index]

    def is_caption_row(self, index: int) -> bool:
        """One data cell filling the whole row (a title spanning the table); a spanning
        th is a real header ("Action" over two columns) and stays."""
        row = self.rows[index]
        first = row[0]
        return self.width > 1 and bool(first.text) and not first.header and all(c.origin == first.origin for c in row)

    def text_rows(self) -> list[list[str]]:
        """Cell texts; a body row that is one cell spanning the table (a section label such
        as "PART II" or a merged address) keeps its text once, in the first column."""
        out = []
        for index, row in enumerate(self.rows):
            if index and len(row) > 1 and all(cell.origin == row[0].origin for cell in row):
                out.append([row[0].text] + [""] * (len(row) - 1))
            else:
                out.append([cell.text for cell in row])
        return out


def _redundant(cell: _Cell, neighbours: list[_Cell]) -> bool:
    """Empty, or the same source cell as a kept neighbour (a span copy kept there)."""
    return not cell.text or any(n.origin == cell.origin for n in neighbours)


def _span(cell: Any, name: str, limit: int) -> int:
    """A span attribute as a sane int (browsers clamp too; junk means 1)."""
    match = re.match(r"\s*(\d+)", str(cell.get(name, "1")))
    value = int(match.group(1)) if match else 1
    return min(max(value, 1), limit)


def _next_filled(row: list[_Cell], index: int, step: int) -> int | None:
    """Index of the nearest non-empty cell in direction step (at most two cells away)."""
    for distance in (1, 2):
        j = index + step * distance
        if 0 <= j < len(row) and row[j].text:
            return j if row[j].origin != row[index].origin else None
    return None


def _numeric(text: str) -> bool:
    return bool(re.fullmatch(r"\(?[-+]?[\d.,]*\d[\d.,]*\s*%?\)?|—|–|-", text))


# ---------------------------------------------------------------- lists


def _list_lines(tag: Any, depth: int) -> list[str]:
    """One line per item, nested lists indented two spaces per level: ``- item`` for a
    ul, the number the browser shows for an ol (``1. item``, ``c. item``, ``iv. item``),
    so "step 3" and reference "[12]" can be found."""
    lines: list[str] = []
    items = tag.find_all("li", recursive=False)
    markers = _ordered_markers(tag, items) if tag.name == "ol" and items else None
    for index, item in enumerate(items or [tag]):
        own, nested = _item_parts(item)
        if own:
            lines.append("  " * depth + (markers[index] if markers else "-") + " " + own)
        for sub in nested:
            lines += _list_lines(sub, depth + 1 if own else depth)
    return lines


def _ordered_markers(ol: Any, items: list[Any]) -> list[str]:
    """The numbers of an ol's items as a browser renders them: ``start``, ``reversed``,
    ``type`` (1, a, A, i, I) and an item's own ``value`` (later items count on from it)."""
    fmt = OL_TYPES.get(str(ol.get("type", "1")), "decimal")
    step = -1 if ol.has_attr("reversed") else 1
    value = _int_attr(ol, "start", len(items) if step < 0 else 1)
    markers = []
    for item in items:
        value = _int_attr(item, "value", value)
        markers.append(format_value(value, fmt) + ".")
        value += step
    return markers


def _int_attr(tag: Any, name: str, default: int) -> int:
    match = re.match(r"\s*(-?\d+)", str(tag.get(name, "")))
    return int(match.group(1)) if match else default


def _item_parts(item: Any) -> tuple[str, list[Any]]:
    """An li's own text (nested lists excluded) and its nested lists."""
    texts: list[str] = []
    nested: list[Any] = []

    def gather(node: Any) -> None:
        for child in node.children:
            if isinstance(child, Tag):
                name = child.name.lower()
                if name in DROP_TAGS or _is_hidden(child):
                    continue
                if name in LIST_TAGS:
                    nested.append(child)
                elif name in BLOCK_TAGS or name == "br" or name == "table":
                    texts.append(" ")
                    gather(child)
                    texts.append(" ")
                else:
                    gather(child)
            elif _is_text(child):
                texts.append(str(child))

    gather(item)
    return _clean("".join(texts)), nested
