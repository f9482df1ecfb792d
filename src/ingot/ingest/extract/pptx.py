"""PowerPoint (.pptx) extraction with python-pptx.

One slide is one page: every element has ``page`` = slide number (1-based) and
``location="slide N"``. Per slide, in this order:

1. the title placeholder as a ``title`` element (its ``heading_path`` is empty; every
   other element of the slide carries ``heading_path=(title,)``);
2. the other shapes top-to-bottom, then left-to-right, group shapes recursed (nested
   groups included) and their children ordered the same way within the group. Text
   frames become ``text`` elements, with runs of bulleted paragraphs split out as
   ``list`` elements; tables become Markdown ``table`` elements (merged cells repeated
   in every cell they cover); charts become a ``chart`` element holding the chart title
   and a Markdown table of categories x series values (:mod:`charts`, shared with the
   Excel extractor);
3. the speaker notes as a ``notes`` element.

``bbox`` is the shape's box in points from the slide's top-left corner (children of
groups mapped through the group transform). Pictures, media and embedded OLE objects
carry no text here and are skipped; an OLE object's ProgID is recorded in
``meta["embedded"]`` of the slide's first element so a reader knows something was there.
Slide-number and date placeholders are skipped: they repeat on every slide.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from typing import Iterable, Iterator

from lxml import etree
from pptx import Presentation
from pptx.enum.shapes import MSO_SHAPE_TYPE, PP_PLACEHOLDER
from pptx.exc import PackageNotFoundError
from pptx.oxml.ns import qn
from pptx.slide import Slide

from ingot.ingest.elements import Element, Extraction, ExtractionError, ExtractOptions
from ingot.ingest.extract.charts import chart_element
from ingot.ingest.extract.docx import table_elements

EMU_PER_POINT = 12700
ROW_TOLERANCE = 6 * EMU_PER_POINT  # tops closer than this are one visual row
SKIPPED_PLACEHOLDERS = {PP_PLACEHOLDER.SLIDE_NUMBER, PP_PLACEHOLDER.DATE}
TITLE_PLACEHOLDERS = {PP_PLACEHOLDER.TITLE, PP_PLACEHOLDER.CENTER_TITLE, PP_PLACEHOLDER.VERTICAL_TITLE}
BULLETED_PLACEHOLDERS = {PP_PLACEHOLDER.BODY, PP_PLACEHOLDER.OBJECT, PP_PLACEHOLDER.VERTICAL_BODY, PP_PLACEHOLDER.VERTICAL_OBJECT}
OLE_TYPES = {MSO_SHAPE_TYPE.EMBEDDED_OLE_OBJECT, MSO_SHAPE_TYPE.LINKED_OLE_OBJECT}
A_BU_NONE, A_BU_CHAR, A_BU_AUTONUM = qn("a:buNone"), qn("a:buChar"), qn("a:buAutoNum")

Box = tuple[float, float, float, float]


# ---------------------------------------------------------------------------- geometry


@dataclass(frozen=True)
class Transform:
    """Maps a group's child coordinates (EMU) to slide coordinates; identity at slide level."""

    dx: float = 0.0
    dy: float = 0.0
    sx: float = 1.0
    sy: float = 1.0

    def box(self, shape) -> Box | None:
        """The shape's box on the slide in points, or None when it has no position."""
        if None in (shape.left, shape.top, shape.width, shape.height):
            return None
        x0, y0 = self.dx + shape.left * self.sx, self.dy + shape.top * self.sy
        x1, y1 = x0 + shape.width * self.sx, y0 + shape.height * self.sy
        return (x0 / EMU_PER_POINT, y0 / EMU_PER_POINT, x1 / EMU_PER_POINT, y1 / EMU_PER_POINT)

    def into_group(self, group) -> Transform:
        """The transform for a group's children: child offset/extent mapped onto the group's
        own offset/extent (python-pptx exposes the ``chOff``/``chExt`` elements only)."""
        xfrm = group._element.grpSpPr.xfrm
        if xfrm is None or xfrm.off is None or xfrm.ext is None:
            return self
        ch_off, ch_ext = xfrm.chOff, xfrm.chExt
        cx, cy = (ch_off.x, ch_off.y) if ch_off is not None else (xfrm.off.x, xfrm.off.y)
        cw, chh = (ch_ext.cx, ch_ext.cy) if ch_ext is not None else (xfrm.ext.cx, xfrm.ext.cy)
        sx = xfrm.ext.cx / cw if cw else 1.0
        sy = xfrm.ext.cy / chh if chh else 1.0
        # slide = outer(group.off + (child - chOff) * scale)
        return Transform(
            dx=self.dx + (xfrm.off.x - cx * sx) * self.sx,
            dy=self.dy + (xfrm.off.y - cy * sy) * self.sy,
            sx=self.sx * sx,
            sy=self.sy * sy,
        )


def _reading_order(shapes: Iterable) -> list:
    """Top-to-bottom, then left-to-right. Shapes whose tops differ by less than
    ``ROW_TOLERANCE`` count as one row (hand-placed columns rarely align to the EMU), so
    a row reads left to right. Shapes without a position keep document order at the end."""
    placed = sorted((s for s in shapes if s.top is not None), key=lambda s: s.top)
    unplaced = [s for s in shapes if s.top is None]
    rows: list[list] = []
    for shape in placed:
        if rows and shape.top - rows[-1][0].top < ROW_TOLERANCE:
            rows[-1].append(shape)
        else:
            rows.append([shape])
    ordered = [s for row in rows for s in sorted(row, key=lambda s: s.left or 0)]
    return ordered + unplaced


# ---------------------------------------------------------------------------- text frames


def _placeholder_type(shape) -> PP_PLACEHOLDER | None:
    return shape.placeholder_format.type if shape.is_placeholder else None


def _is_bullet(paragraph, bulleted_by_default: bool) -> bool:
    """Explicit ``buChar``/``buAutoNum`` wins, explicit ``buNone`` loses; otherwise body
    placeholders are bulleted (their master says so) and free text boxes are not. The
    layout/master inheritance chain is not followed."""
    pPr = paragraph._p.pPr
    if pPr is not None:
        if pPr.find(A_BU_CHAR) is not None or pPr.find(A_BU_AUTONUM) is not None:
            return True
        if pPr.find(A_BU_NONE) is not None:
            return False
    return bulleted_by_default


def _text_frame_elements(shape, common: dict) -> list[Element]:
    """Paragraphs of a text frame: consecutive plain paragraphs form one ``text`` element,
    consecutive bulleted ones one ``list`` element (``- item``, two spaces per level)."""
    bulleted = _placeholder_type(shape) in BULLETED_PLACEHOLDERS
    groups: list[tuple[str, list[str]]] = []
    for paragraph in shape.text_frame.paragraphs:
        text = " ".join(paragraph.text.split())
        if not text:
            continue
        kind = "list" if _is_bullet(paragraph, bulleted) else "text"
        line = "  " * paragraph.level + "- " + text if kind == "list" else text
        if groups and groups[-1][0] == kind:
            groups[-1][1].append(line)
        else:
            groups.append((kind, [line]))
    return [Element(kind=kind, text="\n".join(lines), **common) for kind, lines in groups]


# ---------------------------------------------------------------------------- tables


def _table_rows(table) -> list[list[str]]:
    """Cell text on the table grid; a merged cell's text fills every cell it spans so each
    row stands alone when the table is split."""
    grid = [[" ".join(cell.text.split()) for cell in row.cells] for row in table.rows]
    for r, row in enumerate(table.rows):
        for c, cell in enumerate(row.cells):
            if cell.is_merge_origin:
                for rr in range(r, min(r + cell.span_height, len(grid))):
                    for cc in range(c, min(c + cell.span_width, len(grid[rr]))):
                        grid[rr][cc] = grid[r][c]
    return grid


# ---------------------------------------------------------------------------- slides


class _SlideWalker:
    """Collects one slide's elements; ``embedded`` gathers OLE ProgIDs for the slide meta."""

    def __init__(self, number: int, title_path: tuple[str, ...], options: ExtractOptions) -> None:
        self.number = number
        self.title_path = title_path
        self.options = options
        self.elements: list[Element] = []
        self.embedded: list[str] = []

    def common(self, box: Box | None) -> dict:
        return {"page": self.number, "location": f"slide {self.number}", "heading_path": self.title_path, "bbox": box}

    def walk(self, shapes: Iterable, transform: Transform, skip_id: int | None = None) -> None:
        """Shapes in reading order; ``skip_id`` is the title placeholder, already emitted."""
        for shape in _reading_order(shapes):
            if skip_id is None or shape.shape_id != skip_id:
                self.shape(shape, transform)

    def shape(self, shape, transform: Transform) -> None:
        box = transform.box(shape)
        shape_type = _shape_type(shape)
        if shape_type == MSO_SHAPE_TYPE.GROUP:
            self.walk(shape.shapes, transform.into_group(shape))
        elif shape_type in OLE_TYPES:
            self.embedded.append(_prog_id(shape))
        elif getattr(shape, "has_table", False) and shape.has_table:
            self.elements += table_elements(
                _table_rows(shape.table), self.options.table_rows_per_element, **self.common(box)
            )
        elif getattr(shape, "has_chart", False) and shape.has_chart:
            element = chart_element(shape.chart, self.common(box))
            if element is not None:
                self.elements.append(element)
        elif shape.has_text_frame and _placeholder_type(shape) not in SKIPPED_PLACEHOLDERS:
            self.elements += _text_frame_elements(shape, self.common(box))


def _shape_type(shape) -> MSO_SHAPE_TYPE | None:
    """python-pptx raises for an ``sp`` with neither preset nor custom geometry; such a
    shape can still hold text, so it is treated as a plain shape."""
    try:
        return shape.shape_type
    except NotImplementedError:
        return None


def _prog_id(shape) -> str:
    """The OLE object's ProgID (``Excel.Sheet.12``, ...), or a generic marker."""
    try:
        return shape.ole_format.prog_id or "ole-object"
    except (AttributeError, ValueError, KeyError):
        return "ole-object"


def _title_shape(slide: Slide):
    """The slide's title placeholder, found by placeholder *type*: python-pptx's
    ``shapes.title`` picks any placeholder with idx 0, which a body placeholder without an
    explicit idx also has."""
    for shape in slide.placeholders:
        if shape.placeholder_format.type in TITLE_PLACEHOLDERS:
            return shape
    return None


def _notes_text(slide: Slide) -> str:
    if not slide.has_notes_slide:
        return ""
    frame = slide.notes_slide.notes_text_frame
    return frame.text.strip() if frame is not None else ""


def _slide_elements(slide: Slide, number: int, options: ExtractOptions) -> list[Element]:
    title_shape = _title_shape(slide)
    title = " ".join(title_shape.text_frame.text.split()) if title_shape is not None and title_shape.has_text_frame else ""
    walker = _SlideWalker(number, (title,) if title else (), options)
    out: list[Element] = []
    if title:
        out.append(Element(kind="title", text=title, page=number, location=f"slide {number}", bbox=Transform().box(title_shape)))
    walker.walk(slide.shapes, Transform(), title_shape.shape_id if title_shape is not None else None)
    out += walker.elements
    notes = _notes_text(slide)
    if notes:
        out.append(Element(kind="notes", text=notes, **walker.common(None)))
    if slide._element.get("show") in ("0", "false"):  # hidden slides are still content; flag them
        for element in out:
            element.meta["hidden"] = True
    if walker.embedded and out:
        out[0].meta["embedded"] = walker.embedded
    return out


# ---------------------------------------------------------------------------- entry point


def _open(data: bytes):
    """Parse the package; every library failure on bad bytes becomes a ``corrupt`` error."""
    try:
        return Presentation(io.BytesIO(data))
    except (zipfile.BadZipFile, PackageNotFoundError, KeyError, etree.XMLSyntaxError, ValueError, EOFError) as exc:
        raise ExtractionError("corrupt", f"could not open the PowerPoint file: {type(exc).__name__}: {exc}") from exc


def _iter_slides(presentation) -> Iterator[tuple[int, Slide]]:
    return enumerate(presentation.slides, start=1)


def extract(data: bytes, options: ExtractOptions) -> Extraction:
    """Presentation -> elements slide by slide; ``pages`` is the slide count."""
    presentation = _open(data)
    elements: list[Element] = []
    try:
        for number, slide in _iter_slides(presentation):
            elements += _slide_elements(slide, number, options)
        pages = len(presentation.slides)
    except (KeyError, etree.XMLSyntaxError, zipfile.BadZipFile, EOFError) as exc:  # a damaged part read lazily
        raise ExtractionError("corrupt", f"could not read the PowerPoint file: {type(exc).__name__}: {exc}") from exc
    return Extraction(elements=elements, pages=pages)
