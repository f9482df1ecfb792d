"""Word (.docx) extraction with python-docx.

The body is walked in document order (paragraphs and tables interleaved, content-control
wrappers included) so headings can scope what follows them. Word has no reliable page
numbers (pages exist only once a renderer lays the text out), so every element has
``page=None``.

Decisions worth knowing:

* Headings are paragraphs whose style is ``Title`` (level 0) or ``Heading N`` (level N),
  or whose paragraph/style outline level is set (level = outline level + 1). A heading
  becomes a ``title`` element whose ``heading_path`` lists the headings *enclosing* it
  (not itself); every later element carries the path including the heading.
* Automatic numbering (``numbering.xml``, see :mod:`docx_numbering`) is rendered as Word
  shows it: a numbered heading reads ``1.2.1. Scope`` (the number is part of the title
  and of every ``heading_path``), a numbered list item ``a) item``, a numbered paragraph
  in a table cell ``1. item`` inside the cell. Counters run in document order over the
  body, text boxes and table cells (headers and footers do not count).
* Consecutive list paragraphs (a numbering reference, or a ``List ...`` style) are grouped
  into one ``list`` element, one line each, indented two spaces per level: the item's
  label (``1.``, ``2.3.1.``, ``iv)``) before its text, ``-`` for bullets.
* Tables become Markdown. A horizontally merged cell is repeated in every grid column it
  spans and a vertically merged cell repeats its value in every row it spans, so each
  row reads correctly on its own after the table is split. Nested tables are flattened
  into their parent cell as their cells' text joined by spaces (no invented separators).
* Large tables are split into elements of at most ``table_rows_per_element`` body rows,
  each repeating the header row.
* Text boxes anchored in a paragraph are walked right after that paragraph.
* Headers and footers are their own elements, never mixed into body text: once per
  distinct text (sections usually repeat them), headers before the body, footers after,
  kind ``text`` with ``meta={"region": "header"|"footer", "part": <same>, "variant":
  "default"|"first"|"even"}`` (``part`` is the older name, kept for callers). Page-number
  fields (PAGE, NUMPAGES) are left out of them: their stored value is just the page Word
  last rendered, so a footer holding only a page number disappears.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from typing import Any, Iterable, Iterator

import docx
from docx.document import Document
from docx.opc.exceptions import PackageNotFoundError
from docx.oxml.ns import qn
from docx.section import Section, _Footer, _Header
from lxml import etree

from ingot.ingest.elements import Element, Extraction, ExtractionError, ExtractOptions, split_table
from ingot.ingest.extract.docx_numbering import BULLET, Numbering, style_num_ids

W_P, W_TBL, W_SDT, W_SDT_CONTENT = qn("w:p"), qn("w:tbl"), qn("w:sdt"), qn("w:sdtContent")
W_R, W_TR, W_TC = qn("w:r"), qn("w:tr"), qn("w:tc")
# Paragraph children whose runs are visible text (revisions, links, fields, content controls).
INLINE_WRAPPERS = {
    qn(tag)
    for tag in ("w:hyperlink", "w:ins", "w:smartTag", "w:fldSimple", "w:customXml", "w:sdt", "w:sdtContent", "w:moveTo", "w:dir", "w:bdo")
}
# Block-level wrappers whose children are paragraphs/tables in document order.
BLOCK_WRAPPERS = {W_SDT_CONTENT, qn("w:customXml"), qn("w:ins"), qn("w:moveTo")}
W_TXBX = qn("w:txbxContent")
W_FLDCHAR, W_INSTR, W_FLDSIMPLE = qn("w:fldChar"), qn("w:instrText"), qn("w:fldSimple")
PAGE_FIELDS = {"PAGE", "NUMPAGES", "SECTIONPAGES"}  # layout-dependent numbers in headers/footers
MC_FALLBACK = "{http://schemas.openxmlformats.org/markup-compatibility/2006}Fallback"
MAX_STYLE_DEPTH = 20  # basedOn chains are short; this guards against cycles


# ---------------------------------------------------------------------------- styles


@dataclass(frozen=True)
class StyleInfo:
    """What a paragraph style implies, resolved once per style id (8k paragraphs share a few dozen styles)."""

    heading_level: int | None  # 0 = Title, 1.. = Heading N / outline level
    is_list: bool
    num_id: int | None = None  # numbering instance the style applies (Heading styles linked to a list)
    ilvl: int | None = None  # its list level


def _style_map(document: Document) -> tuple[dict[str, StyleInfo], str | None]:
    """Resolve every paragraph style through its ``basedOn`` chain. Returns the map and the
    default paragraph style id (used when a paragraph names no style)."""
    raw = {s.styleId: s for s in document.styles.element.style_lst if s.styleId}
    default = next((sid for sid, s in raw.items() if s.default and _is_paragraph_style(s)), None)
    return {sid: _resolve_style(sid, raw) for sid in raw}, default


def _is_paragraph_style(style: etree._Element) -> bool:
    return style.get(qn("w:type")) in (None, "paragraph")


def _resolve_style(style_id: str, raw: dict) -> StyleInfo:
    """Walk ``basedOn`` upward: the first style that is named as a heading/title or sets an
    outline level decides the level; a numbering reference or a ``List`` name anywhere
    in the chain makes it a list style."""
    level: int | None = None
    is_list = False
    num_id: int | None = None
    ilvl: int | None = None
    seen: set[str] = set()
    current = raw.get(style_id)
    while current is not None and style_id not in seen and len(seen) < MAX_STYLE_DEPTH:
        seen.add(style_id)
        name = (current.name_val or "").strip().lower()
        if level is None:
            level = _level_from_name(name)
        if level is None:
            level = _outline_level(current.pPr)
        # "List Paragraph" is only indentation; the numbering reference on the paragraph decides.
        if (name.startswith("list") and name != "list paragraph") or _num_id(current.pPr) not in (None, 0):
            is_list = True
        if num_id is None:
            num_id = _num_id(current.pPr)
        if ilvl is None and current.pPr is not None and current.pPr.numPr is not None and current.pPr.numPr.ilvl is not None:
            ilvl = current.pPr.numPr.ilvl.val
        style_id = current.basedOn_val or ""
        current = raw.get(style_id)
    return StyleInfo(heading_level=level, is_list=is_list, num_id=num_id, ilvl=ilvl)


def _level_from_name(name: str) -> int | None:
    """``Title`` -> 0, ``Heading 3`` -> 3 (style names are stored lower-case by Word for built-ins)."""
    if name == "title":
        return 0
    if name.startswith("heading"):
        suffix = name[len("heading"):].strip()
        if suffix.isdigit() and 1 <= int(suffix) <= 9:
            return int(suffix)
    return None


def _outline_level(pPr) -> int | None:
    """Outline level 0-8 marks a heading (9 means body text); mapped to levels 1-9."""
    if pPr is None or pPr.outlineLvl is None:
        return None
    value = pPr.outlineLvl.val
    return value + 1 if value is not None and 0 <= value <= 8 else None


def _num_id(pPr) -> int | None:
    if pPr is None or pPr.numPr is None or pPr.numPr.numId is None:
        return None
    return pPr.numPr.numId.val


def _ilvl(pPr) -> int | None:
    if pPr is None or pPr.numPr is None or pPr.numPr.ilvl is None:
        return None
    return pPr.numPr.ilvl.val or 0


def _numbering_of(pPr, info: StyleInfo) -> tuple[int | None, int]:
    """(numbering instance, level) of a paragraph: its own ``w:numPr`` wins, each part
    falling back to the style's; instance 0 means "numbering switched off"."""
    num_id = _num_id(pPr)
    if num_id is None:
        num_id = info.num_id
    ilvl = _ilvl(pPr)
    if ilvl is None:
        ilvl = info.ilvl
    return num_id, ilvl or 0


# ---------------------------------------------------------------------------- text


def _paragraph_text(p: etree._Element, skip_page_numbers: bool = False) -> str:
    """Visible text of a paragraph, including runs inside hyperlinks, insertions, fields and
    content controls (python-docx's ``Paragraph.text`` skips the latter). Deleted text is
    skipped because ``w:del`` is not descended into. With ``skip_page_numbers`` (headers
    and footers) the results of PAGE/NUMPAGES fields are left out: the stored value is
    whatever page Word last rendered, not a fact of the document."""
    parts: list[str] = []
    _collect_runs(p, parts, _Fields() if skip_page_numbers else None)
    return "".join(parts)


def _collect_runs(parent: etree._Element, parts: list[str], fields: _Fields | None = None) -> None:
    for child in parent:
        if child.tag == W_R:
            if fields is not None and fields.hides(child):
                continue
            parts.append(child.text)  # CT_R.text maps w:t, w:tab, w:br, ... (python-docx)
        elif fields is not None and child.tag == W_FLDSIMPLE and _is_page_field(child.get(qn("w:instr"), "")):
            continue
        elif child.tag in INLINE_WRAPPERS:
            _collect_runs(child, parts, fields)


def _is_page_field(instruction: str) -> bool:
    words = instruction.split()
    return bool(words) and words[0].upper() in PAGE_FIELDS


class _Fields:
    """The complex fields open at a run (``fldChar`` begin, ``instrText``, separate, result
    runs, end), so the result runs of a page-number field can be recognised."""

    def __init__(self) -> None:
        self.open: list[list] = []  # [instruction, showing its result], innermost last

    def hides(self, run: etree._Element) -> bool:
        """Update the field state with ``run`` and say whether its text is a page number."""
        for child in run:
            if child.tag == W_FLDCHAR:
                kind = child.get(qn("w:fldCharType"))
                if kind == "begin":
                    self.open.append(["", False])
                elif kind == "separate" and self.open:
                    self.open[-1][1] = True
                elif kind == "end" and self.open:
                    self.open.pop()
            elif child.tag == W_INSTR and self.open:
                self.open[-1][0] += child.text or ""
        return any(showing and _is_page_field(instruction) for instruction, showing in self.open)


def _text_boxes(p: etree._Element) -> list[etree._Element]:
    """Text-box contents anchored in a paragraph (cover pages, call-outs). Word stores each
    box twice, as DrawingML and as a VML fallback; only the first copy is kept."""
    boxes = []
    for box in p.iter(W_TXBX):
        parent = box.getparent()
        while parent is not None and parent is not p and parent.tag != MC_FALLBACK:
            parent = parent.getparent()
        if parent is p:
            boxes.append(box)
    return boxes


def _iter_blocks(container: etree._Element) -> Iterator[etree._Element]:
    """``w:p`` and ``w:tbl`` children in document order, unwrapping block content controls."""
    for child in container:
        if child.tag in (W_P, W_TBL):
            yield child
        elif child.tag == W_SDT:
            content = child.find(W_SDT_CONTENT)
            if content is not None:
                yield from _iter_blocks(content)
        elif child.tag in BLOCK_WRAPPERS:
            yield from _iter_blocks(child)


def _block_text(container: etree._Element, skip_page_numbers: bool = False, labeler: _Labeler | None = None) -> str:
    """Plain text of a header, footer or table cell: paragraphs on lines, nested tables
    flattened. With a ``labeler`` (table cells in the body) numbered paragraphs keep
    their number or bullet, as in the body."""
    lines: list[str] = []
    for block in _iter_blocks(container):
        if block.tag == W_P:
            text = _paragraph_text(block, skip_page_numbers).strip()
            if labeler is not None:
                text = labeler.prefixed(block, text)
        else:
            text = _flatten_table(block, labeler)
        if text.strip():
            lines.append(text.strip())
    return "\n".join(lines)


def _flatten_table(tbl: etree._Element, labeler: _Labeler | None = None) -> str:
    """A nested table as one line of text: its cells in reading order joined by spaces.
    No separator is added: "3 / 4" would read as a fraction and ";" as punctuation the
    author never wrote."""
    return " ".join(value for row in _table_grid(tbl, labeler) for value in row if value)


# ---------------------------------------------------------------------------- tables


def _children(parent: etree._Element, tag: str) -> Iterator[etree._Element]:
    """Children with ``tag``, looking through content controls (``w:sdt``) that wrap them."""
    for child in parent:
        if child.tag == tag:
            yield child
        elif child.tag == W_SDT:
            content = child.find(W_SDT_CONTENT)
            if content is not None:
                yield from _children(content, tag)


def _row_cells(tr: etree._Element) -> Iterator[etree._Element]:
    """``w:tc`` elements of a row, including those wrapped in content controls."""
    return _children(tr, W_TC)


def _table_rows(tbl: etree._Element) -> Iterator[etree._Element]:
    return _children(tbl, W_TR)


def _table_grid(tbl: etree._Element, labeler: _Labeler | None = None) -> list[list[str]]:
    """The table as a rectangular grid of cell text on Word's layout grid.

    ``gridBefore`` leaves leading columns empty; a ``gridSpan`` cell is repeated in each
    column it covers; a ``vMerge`` continuation takes the value above it. Built from the
    XML directly rather than ``Table.rows[i].cells`` because that looks up the cell above
    by re-scanning the table, which is quadratic on long tables."""
    grid: list[list[str]] = []
    for tr in _table_rows(tbl):
        row: list[str] = [""] * tr.grid_before
        for tc in _row_cells(tr):
            span = max(1, tc.grid_span)
            col = len(row)
            if tc.vMerge == "continue":
                above = grid[-1] if grid else []
                value = above[col] if col < len(above) else ""
            else:
                value = _block_text(tc, labeler=labeler)
            row.extend([value] * span)
        grid.append(row)
    width = max((len(r) for r in grid), default=0)
    return [r + [""] * (width - len(r)) for r in grid]


def _sole_cell(tbl: etree._Element) -> etree._Element | None:
    """The only cell of a 1x1 table (documents use these as frames around content), else None."""
    rows = list(_table_rows(tbl))
    if len(rows) != 1:
        return None
    cells = list(_row_cells(rows[0]))
    return cells[0] if len(cells) == 1 else None


def table_elements(rows: list[list[str]], max_rows: int, **common: Any) -> list[Element]:
    """Markdown ``table`` elements of at most ``max_rows`` body rows each, header repeated,
    so a large table never becomes one oversized chunk. Shared with the PowerPoint extractor."""
    rows = [r for r in rows if any(c.strip() for c in r)]
    if not rows:
        return []
    meta = {**(common.pop("meta", {}) or {}), "rows": len(rows) - 1, "columns": len(rows[0])}
    return [
        Element(kind="table", text=part.text, meta={**meta, **part.meta()}, **common)
        for part in split_table(rows, max_rows)
    ]


# ---------------------------------------------------------------------------- numbering


@dataclass(frozen=True)
class _Numbered:
    """What a paragraph's style and numbering say about it."""

    info: StyleInfo
    num_id: int | None  # 0 = numbering switched off
    ilvl: int
    label: str | None  # "1.2.", "a)", BULLET, "" (level shows nothing), None (not numbered)

    @property
    def is_item(self) -> bool:
        """A list item: numbered, or in a list style (a bullet even when the definition is missing)."""
        return self.num_id != 0 and (self.num_id is not None or self.info.is_list)

    @property
    def marker(self) -> str:
        return self.label if self.label and self.label != BULLET else "-"


class _Labeler:
    """Resolves each paragraph's style and numbering and advances Word's counters; called
    once per paragraph in document order (body, text boxes and table cells alike)."""

    def __init__(self, styles: dict[str, StyleInfo], default_style: str | None, numbering: Numbering) -> None:
        self.styles = styles
        self.default_style = default_style
        self.numbering = numbering

    def __call__(self, p: etree._Element) -> _Numbered:
        info = self.styles.get(p.style or self.default_style or "", StyleInfo(None, False))
        num_id, ilvl = _numbering_of(p.pPr, info)
        # Counted even when empty: Word shows (and counts) a number on an empty list paragraph.
        label = self.numbering.label(num_id, ilvl) if num_id else None
        return _Numbered(info, num_id, ilvl, label)

    def prefixed(self, p: etree._Element, text: str) -> str:
        """A table cell's paragraph with its list marker ("1. First", "- Bullet")."""
        numbered = self(p)
        return f"{numbered.marker} {text}" if text and numbered.is_item else text


# ---------------------------------------------------------------------------- body walk


class _BodyWalker:
    """Turns body blocks into elements, carrying the heading path and the open list."""

    def __init__(self, labeler: _Labeler, options: ExtractOptions) -> None:
        self.labeler = labeler
        self.options = options
        self.headings: list[tuple[int, str]] = []  # (level, text), outermost first
        self.list_lines: list[str] = []
        self.elements: list[Element] = []

    @property
    def path(self) -> tuple[str, ...]:
        return tuple(text for _, text in self.headings)

    def walk(self, body: etree._Element) -> list[Element]:
        self.walk_blocks(body)
        self._flush_list()
        return self.elements

    def walk_blocks(self, container: etree._Element) -> None:
        for block in _iter_blocks(container):
            if block.tag == W_P:
                self._paragraph(block)
            elif (cell := _sole_cell(block)) is not None:
                self.walk_blocks(cell)  # a one-cell table is a layout box, not data
            else:
                self._flush_list()
                self.elements += table_elements(
                    _table_grid(block, self.labeler), self.options.table_rows_per_element, heading_path=self.path
                )

    def _paragraph(self, p: etree._Element) -> None:
        self._emit_paragraph(p)
        for box in _text_boxes(p):
            self.walk_blocks(box)

    def _emit_paragraph(self, p: etree._Element) -> None:
        """Heading -> ``title`` (updates the path); numbered/bulleted -> open list; else ``text``.
        Automatic numbers are prefixed as Word shows them ("1.2.1. Scope", "a) item")."""
        text = _paragraph_text(p).strip()
        numbered = self.labeler(p)
        level = _outline_level(p.pPr)
        if level is None:
            level = numbered.info.heading_level
        if not text:
            return  # empty paragraphs are spacing; they do not end a list either
        if level is not None:
            label = numbered.label
            self._heading(level, f"{label} {text}" if label and label != BULLET else text)
            return
        if numbered.is_item:
            self.list_lines.append("  " * numbered.ilvl + numbered.marker + " " + " ".join(text.split()))
            return
        self._flush_list()
        self.elements.append(Element(kind="text", text=text, heading_path=self.path))

    def _heading(self, level: int, text: str) -> None:
        self._flush_list()
        text = " ".join(text.split())
        while self.headings and self.headings[-1][0] >= level:
            self.headings.pop()
        self.elements.append(Element(kind="title", text=text, heading_path=self.path, meta={"level": level}))
        self.headings.append((level, text))

    def _flush_list(self) -> None:
        if self.list_lines:
            self.elements.append(Element(kind="list", text="\n".join(self.list_lines), heading_path=self.path))
            self.list_lines = []


# ---------------------------------------------------------------------------- headers/footers


def _header_footer_elements(document: Document) -> tuple[list[Element], list[Element]]:
    """Distinct header and footer texts across all sections (default, first-page, even-page).
    A part linked to the previous section has no definition of its own and is skipped,
    which also avoids python-docx adding an empty definition on access. First-page and
    even-page variants count only when the document switches them on (Word ignores them
    otherwise, so their text is never shown)."""
    seen: dict[str, set[str]] = {"header": set(), "footer": set()}
    found: dict[str, list[Element]] = {"header": [], "footer": []}
    even_pages = document.settings.odd_and_even_pages_header_footer
    for section in document.sections:
        shown = {"default": True, "first": section.different_first_page_header_footer, "even": even_pages}
        for part, variant, story in _section_stories(section):
            if not shown[variant] or story.is_linked_to_previous:
                continue
            text = _block_text(story._element, skip_page_numbers=True)
            key = " ".join(text.split())
            if key and key not in seen[part]:
                seen[part].add(key)
                found[part].append(Element(kind="text", text=text, meta={"part": part, "region": part, "variant": variant}))
    return found["header"], found["footer"]


def _section_stories(section: Section) -> Iterable[tuple[str, str, _Header | _Footer]]:
    yield "header", "default", section.header
    yield "header", "first", section.first_page_header
    yield "header", "even", section.even_page_header
    yield "footer", "default", section.footer
    yield "footer", "first", section.first_page_footer
    yield "footer", "even", section.even_page_footer


# ---------------------------------------------------------------------------- entry point


def _open(data: bytes) -> Document:
    """Parse the package; every library failure on bad bytes becomes a ``corrupt`` error."""
    try:
        return docx.Document(io.BytesIO(data))
    except (zipfile.BadZipFile, PackageNotFoundError, KeyError, etree.XMLSyntaxError, ValueError, EOFError) as exc:
        raise ExtractionError("corrupt", f"could not open the Word file: {type(exc).__name__}: {exc}") from exc


def extract(data: bytes, options: ExtractOptions) -> Extraction:
    """Word document -> elements in reading order (headers first, footers last); no pages."""
    document = _open(data)
    try:
        styles, default_style = _style_map(document)
        numbering = Numbering.of(document, style_num_ids(document.styles.element.style_lst))
        body = _BodyWalker(_Labeler(styles, default_style, numbering), options).walk(document.element.body)
        headers, footers = _header_footer_elements(document)
    except (KeyError, etree.XMLSyntaxError, zipfile.BadZipFile, EOFError) as exc:  # a damaged part read lazily
        raise ExtractionError("corrupt", f"could not read the Word file: {type(exc).__name__}: {exc}") from exc
    return Extraction(elements=headers + body + footers, pages=None)
