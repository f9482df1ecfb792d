"""PDF extraction with pypdfium2 (PDFium): the text layer in reading order, page by page;
pages without a text layer go through OCR.

PDFium gives characters with their boxes in content-stream order, which is the order the
producing program happened to draw them in: usually line by line, but columns, tables,
headers and footnotes come in any order. So the layout is rebuilt from geometry:

1. characters -> *pieces*: runs of characters on one line with no gap wider than about
   an em (a wider gap is a column gutter or a table cell boundary);
2. pieces -> *blocks*: lines stacked at line spacing, aligned like a paragraph, with the
   same glyph size and weight;
3. blocks -> reading order by recursive cuts: a vertical whitespace channel that few
   blocks cross splits a region into columns (read left to right); the blocks that do
   cross it (a title, a full-width figure caption) split it into bands read top to bottom;
   with neither, horizontal gaps split the region, and what is left is read row by row.
   A would-be column split whose blocks line up row by row is a table, not columns, and
   is read row by row, as Markdown when it has a clean grid.

Around that core, each in a module of its own:

* pdf_scripts: lines holding right-to-left text are read in visual order and put back
  in logical order by the Unicode bidi algorithm; CJK lines join without spaces; the
  OCR language a document's text layer calls for.
* pdf_tables: ruled tables, read cell by cell from the rules the page draws (before the
  geometry-only table reading above, which handles tables without rules).
* pdf_furniture: running headers, footers and page numbers found across pages, kept out
  of the body as page metadata (``meta["page_header"]`` / ``["page_footer"]``).
* pdf_textlayer: a page whose layer PDFium maps mostly to no characters is read with
  pdfminer.six (that page only), instead of being OCR'd over.

All of it is a few passes over the characters of a page: a text PDF extracts at about a
hundred pages per second on one core. OCR (only for pages without a usable text layer;
a scan's own layer, in any script, is used) costs about a second a page; its language
is the caller's or, with "auto", chosen from the text layer's script or by tesseract's
script detection (see ocr.resolve_languages).
"""

from __future__ import annotations

import bisect
import ctypes
import re
import statistics
import struct
import threading
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Iterable

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c

from ingot.ingest.extract.pdf_scripts import (has_rtl, is_rtl_line, line_joint, ocr_language_of, to_logical,
                                              visual_order)
from ingot.ingest.extract import pdf_furniture as furniture
from ingot.ingest.extract import pdf_tables
from ingot.ingest.extract.pdf_textlayer import read_page as read_layer, unmapped, unusable, usable_chars
from ingot.ingest.elements import Element, ElementKind, Extraction, ExtractionError, ExtractOptions, split_table

if TYPE_CHECKING:
    from PIL import Image

OCR_DPI = 300
MIN_TEXT_CHARS = 16  # a page with fewer visible characters than this has no real text layer
MAX_STAMP_CHARS = 200  # ... and one with fewer, over images covering half of it, is a stamped scan
MIN_LAYER_LINES = 6  # ... unless its text runs to this many lines: then it is the scan's own text layer
MIN_OUTLINE_PATHS = 50  # a text-less page drawn with this many shapes may be text set as outlines
PIECE_GAP_EM = 1.0  # a gap wider than this (in ems), and than three word spaces of its line, ends a piece
LONE_GAP_EM = 1.6  # ... or, in a line with no word spaces to compare with, wider than this
SMALL_GLYPH_EM = 0.45  # a glyph lower than this (in ems) is punctuation; it joins a line by its centre
ROW_ALIGNED_SHARE = 0.6  # columns whose blocks start on the same lines this often are a table
HEADER_GAP_EM = 2.5  # column headings may sit this far above a table's first row (_header_over)
MAX_FURNITURE_CELLS = 4  # a row of more cells than this in a page margin is a table, not a running head
MAX_GAP_EM = 2.5  # a gap wider than this ends a piece whatever the line's word spacing
CELL_SPACE_EM = 0.6  # a space this wide, over a table's gutter, parts two column headings (_cut_at_gutters)
EM_PER_GLYPH = 1 / 0.7  # capitals, digits and ascenders (b d h k l) are about 0.7 em high
TALL = frozenset("ABCDEFGHIKLMNOPRSTUVWXYZbdhkl0123456789"  # not J or Q: they reach below the line
                 "\u0627\u05d3\u05d4\u05d7\u05ea")  # Arabic alef (lam may have a tail), Hebrew letters of full height
BOLD_WEIGHT = 600
BOLD_NAME = re.compile(r"bold|black|heavy|semibold|demi|medi|[-,_ ]bd|bx\d|^(?:[a-z]{6}\+)?(?:cm|sf|lm)b",
                       re.IGNORECASE)
FORCE_BOLD_FLAG = 1 << 18
LIST_MARKER = re.compile(r"^(?:[\u2022\u2023\u25aa\u25cf\u25e6\u2043\u2219\u00b7\u25a0\u25a1\u2013\u2014*\-]|"
                         r"\(?(?:\d{1,3}|[a-zA-Z]|[ivxIVX]{1,4})[.)]|\[\d{1,3}\])\s+[^\W_]")
LEADER = re.compile(r"(?:\.\s?){4,}\s*\S{1,8}$")  # a table-of-contents line: dot leaders, page number
NUMBERING = re.compile(r"^(?:\(?(?:\d{1,3}(?:\.\d{1,3})*|[IVXivx]{1,4}|[A-Za-z])[.)]?|"
                       r"[\u2022\u25aa\u25cf\u25e6\u25a0\u2013*\-\ufffe])$")  # "3.1", "(a)", "iv.", a bullet
BULLET = re.compile(r"^(?:[\u2022\u25aa\u25cf\u25e6\u25a0\u2013*\-\ufffe]|"
                    r"\(?(?:\d{1,3}|[A-Za-z]|[ivxIVX]{1,4})[.)])$")  # a list marker standing alone
URL_BREAK = re.compile(r"(?:https?://|www\.)\S*[/.\-_?=&#~]$|https?://$")  # a line ending inside a web address
URL_GOES_ON = re.compile(r"(?:www\.|[a-z0-9%~_])[\w%~/.\-?=&#:]*(?:\s|$)")
SENTENCE_END = re.compile(r"[.!?:;)\]\u201d\"']$")
MATH = re.compile(r"[=<>{}\u00b7\u2200-\u22ff]")  # relations, braces, operators: a formula, not a heading
SECTION_NUMBER = re.compile(r"^(\d{1,2}(?:\.\d{1,2}){0,4})\.?\s+[^\W\d_]")  # "4 Experimental Setup", "4.2. Data"
HEADING_GOES_ON = re.compile(r"(?:\b(?:and|or|of|for|the|in|on|to|with)|[&,\-\u2013])$", re.IGNORECASE)

# PDFium is not thread-safe: one document at a time per process.
_PDFIUM_LOCK = threading.Lock()


# --------------------------------------------------------------------------------------
# Geometry records
# --------------------------------------------------------------------------------------


@dataclass
class _Piece:
    """Characters on one line with no wide gap: a line of a paragraph or a table cell."""

    text: str
    x0: float
    y0: float
    x1: float
    y1: float
    h: float  # height of the tallest letter or digit, about 0.7 em
    bold: bool = False
    crowded: bool = False  # shares its line with other pieces (a column neighbour or cells)
    rtl: bool = False  # set right to left: aligned on its right edge
    # The spaces in ``text`` at least CELL_SPACE_EM of this piece wide, as (which space of
    # the text, counting from 0; x before; x after); None once the text no longer lines up
    # with them. Where a line of column headings drawn in one go is cut into its cells
    # (_cut_at_gutters). Only the wide ones: most lines have none, and every line of a
    # document is held until it is assembled.
    wide_spaces: tuple[tuple[int, float, float], ...] | None = ()

    @property
    def em(self) -> float:
        return max(self.h * EM_PER_GLYPH, 2.0)

    @property
    def width(self) -> float:
        return self.x1 - self.x0


@dataclass
class _Block:
    """Lines stacked like a paragraph (or a single table cell)."""

    lines: list[_Piece]
    closed: bool = False
    x0: float = 0.0
    y0: float = 0.0
    x1: float = 0.0
    y1: float = 0.0
    line_gap: float | None = None  # vertical gap between its first two lines
    cells: list[list[str]] | None = None  # a ruled table's cells (header row first), read from its rules

    def __post_init__(self) -> None:
        first = self.lines[0]
        self.x0, self.y0, self.x1, self.y1 = first.x0, first.y0, first.x1, first.y1

    def add(self, piece: _Piece) -> None:
        if self.line_gap is None:
            self.line_gap = max(0.0, piece.y0 - self.y1)
        self.lines.append(piece)
        self.x0, self.x1 = min(self.x0, piece.x0), max(self.x1, piece.x1)
        self.y0, self.y1 = min(self.y0, piece.y0), max(self.y1, piece.y1)

    @property
    def width(self) -> float:
        return self.x1 - self.x0

    @property
    def h(self) -> float:
        return max(p.h for p in self.lines)

    @property
    def em(self) -> float:
        return max(self.h * EM_PER_GLYPH, 2.0)

    @property
    def bold(self) -> bool:
        return all(p.bold for p in self.lines)


@dataclass
class _Region:
    """A leaf of the layout: blocks in reading order. A *tabular* region is one whose
    blocks sit side by side without being columns of running text (a table, a form); it
    is read row by row."""

    blocks: list[_Block]
    tabular: bool = False

    @property
    def x0(self) -> float:
        return min(b.x0 for b in self.blocks)

    @property
    def x1(self) -> float:
        return max(b.x1 for b in self.blocks)

    @property
    def y0(self) -> float:
        return min(b.y0 for b in self.blocks)

    @property
    def y1(self) -> float:
        return max(b.y1 for b in self.blocks)


@dataclass
class _PageText:
    """What one page's text layer holds, before it becomes elements."""

    number: int
    regions: list[_Region] = field(default_factory=list)
    rotated: list[_Piece] = field(default_factory=list)  # text at an angle (margin stamps, rotated labels)
    unusable: bool = False  # PDFium maps most of the layer's glyphs to no character (see pdf_textlayer)
    height: float = 0.0  # of the page as displayed, in points
    furniture: dict[str, list[str]] = field(default_factory=dict)  # running headers/footers set aside

    @property
    def line_count(self) -> int:
        return sum(len(block.lines) for region in self.regions for block in region.blocks)

    def text(self) -> str:
        return "\n".join(line.text for region in self.regions for block in region.blocks for line in block.lines)


# --------------------------------------------------------------------------------------
# Opening
# --------------------------------------------------------------------------------------


def _open(data: bytes, password: str | None) -> pdfium.PdfDocument:
    """Open the document; an encrypted one with the given password, else the empty one."""
    attempts: list[str | None] = [password] if password else []
    attempts.append(None)
    error: pdfium.PdfiumError | None = None
    for attempt in attempts:
        try:
            return pdfium.PdfDocument(data, password=attempt)
        except pdfium.PdfiumError as exc:
            error = exc
            if getattr(exc, "err_code", None) != pdfium_c.FPDF_ERR_PASSWORD:
                break
    if error is not None and getattr(error, "err_code", None) == pdfium_c.FPDF_ERR_PASSWORD:
        if password:
            raise ExtractionError("password_required", "the PDF is encrypted and the password given does not open it")
        raise ExtractionError("password_required",
                              "the PDF is encrypted with a password; give the password to extract it")
    raise ExtractionError("corrupt", f"not a readable PDF (PDFium: {error})")


# --------------------------------------------------------------------------------------
# Characters -> pieces
# --------------------------------------------------------------------------------------


class _PageFrame:
    """Maps PDF user space (origin bottom-left, maybe rotated by /Rotate) to the page as
    displayed: points from the top-left corner."""

    def __init__(self, page: pdfium.PdfPage) -> None:
        self.left, self.bottom, self.right, self.top = page.get_cropbox()
        self.rotation = page.get_rotation() % 360
        # PDFium measures character angles clockwise: upright text on a page shown turned
        # 90 degrees clockwise is drawn at 270 degrees.
        self.upright_angle = {0: 0.0, 90: 4.7123890, 180: 3.1415927, 270: 1.5707963}.get(self.rotation, 0.0)
        across, down = self.right - self.left, self.top - self.bottom
        self.width, self.height = (down, across) if self.rotation in (90, 270) else (across, down)

    def visible(self, box: tuple[float, float, float, float]) -> bool:
        """Is the box at least partly on the page? Text outside the crop box (the other
        half of a two-page spread, bleed) is never shown and is skipped."""
        return box[2] > -1 and box[0] < self.width + 1 and box[3] > -1 and box[1] < self.height + 1

    def box(self, left: float, right: float, bottom: float, top: float) -> tuple[float, float, float, float]:
        if self.rotation == 90:
            return bottom - self.bottom, left - self.left, top - self.bottom, right - self.left
        if self.rotation == 180:
            return self.right - right, bottom - self.bottom, self.right - left, top - self.bottom
        if self.rotation == 270:
            return self.top - top, self.right - right, self.top - bottom, self.right - left
        return left - self.left, self.top - top, right - self.left, self.top - bottom


class _PieceBuilder:
    """Accumulates characters into the current piece; flushes it to ``pieces``."""

    def __init__(self) -> None:
        self.pieces: list[_Piece] = []
        self.chars: list[str] = []
        self.gaps: list[tuple[int, float, float, float]] = []  # (index in chars, width in em, x before, x after)
        self.x0 = self.y0 = self.x1 = self.y1 = self.h = self.h_other = self.last_x1 = 0.0
        self.first_index = self.last_index = -1

    def active(self) -> bool:
        return bool(self.chars)

    def continues(self, x0: float, y0: float, y1: float) -> bool:
        """Is a glyph at this box on the current line, not past a wide gap?"""
        em = max((self.h or self.h_other) * EM_PER_GLYPH, 2.0)
        gap = x0 - self.last_x1
        if gap > MAX_GAP_EM * em or gap < -0.6 * em:
            return False
        if y1 - y0 < SMALL_GLYPH_EM * em:
            # A small glyph (comma, full stop, quote, dash, underscore) sits on, just
            # below or at the top of the line: its box barely overlaps a line of digits
            # or x-height letters, yet a comma that starts a line of its own turns
            # "12,111.06" into "12 111.06" and a stray "," line.
            return self.y0 - 0.2 * em <= (y0 + y1) / 2 <= self.y1 + 0.3 * em
        overlap = min(self.y1, y1) - max(self.y0, y0)
        return overlap >= 0.45 * min(y1 - y0, self.y1 - self.y0)

    def near(self, box: tuple[float, float, float, float]) -> bool:
        """Is the box next to the current piece (for text at an angle, where "the next
        character to the right" does not apply)?"""
        if not self.chars:
            return False
        reach = max(2.0, 1.5 * min(self.x1 - self.x0, self.y1 - self.y0))
        return (max(0.0, box[0] - self.x1, self.x0 - box[2]) <= reach
                and max(0.0, box[1] - self.y1, self.y0 - box[3]) <= reach)

    def start(self, ch: str, index: int, box: tuple[float, float, float, float]) -> None:
        self.chars = [ch]
        self.gaps = []
        self.x0, self.y0, self.x1, self.y1 = box
        self.h = self.h_other = 0.0
        self._measure(ch, box)
        self.last_x1 = box[2]
        self.first_index = self.last_index = index

    def _measure(self, ch: str, box: tuple[float, float, float, float]) -> None:
        """Track the glyph height that best tells the font size: capitals, digits and
        ascenders; other letters only as a fallback (their heights vary by glyph)."""
        if ch in TALL or ch.isupper() and ch > "\x7f":
            self.h = max(self.h, box[3] - box[1])
        elif ch.isalpha():
            self.h_other = max(self.h_other, (box[3] - box[1]) * (0.8 if ch >= "\u2e80" else 1.05))

    def add(self, ch: str, index: int, box: tuple[float, float, float, float], space: bool) -> None:
        em = max((self.h or self.h_other) * EM_PER_GLYPH, 2.0)
        gap = box[0] - self.last_x1
        if (space or gap > 0.6 * em) and self.chars[-1] != " ":
            self.chars.append(" ")
            self.gaps.append((len(self.chars) - 1, gap / em, self.x1, box[0]))
        self.chars.append(ch)
        self.x0, self.x1 = min(self.x0, box[0]), max(self.x1, box[2])
        self.y0, self.y1 = min(self.y0, box[1]), max(self.y1, box[3])
        self._measure(ch, box)
        self.last_x1 = max(self.last_x1, box[2]) if box[0] < self.last_x1 else box[2]
        self.last_index = index

    def flush(self, raw_textpage) -> None:
        if not self.chars:
            return
        h = self.h or self.h_other or (self.y1 - self.y0) * 0.8
        bold = _is_bold(raw_textpage, self.first_index) and _is_bold(raw_textpage, self.last_index)
        start, x0 = 0, self.x0
        for pos, x1, next_x0 in self._splits():
            self._emit(start, pos, x0, x1, h, bold)
            start, x0 = pos + 1, next_x0
        self._emit(start, len(self.chars), x0, self.x1, h, bold)
        self.chars = []

    def _splits(self) -> list[tuple[int, float, float]]:
        """Where the line has a gap much wider than its word spaces: a gutter between
        columns or between table cells that the content stream drew in one go."""
        if not any(g > PIECE_GAP_EM for _, g, _, _ in self.gaps):
            return []  # every split needs a gap wider than PIECE_GAP_EM: the common case, a line of words
        words = sorted(g for _, g, _, _ in self.gaps if g <= PIECE_GAP_EM)
        limit = max(PIECE_GAP_EM, 3 * words[len(words) // 2]) if len(words) >= 2 else LONE_GAP_EM
        text = "".join(self.chars)
        splits = [(pos, x1, x0) for pos, g, x1, x0 in self.gaps
                  if g > limit or g > PIECE_GAP_EM and _numeric_neighbour(text, pos)]
        if splits and NUMBERING.match("".join(self.chars[:splits[0][0]]).strip()) \
                and not NUMBER.match(_word_after(text, splits[0][0])):
            # "3.1<quad>Overview": a heading number stays with its heading (but "44.9<gap>66.8"
            # is two cells of a table row)
            splits = splits[1:]
        return splits

    def _emit(self, start: int, end: int, x0: float, x1: float, h: float, bold: bool) -> None:
        """A piece of ``chars[start:end]``, with its wide spaces."""
        text = "".join(self.chars[start:end]).strip()
        if text:
            piece = _Piece(text, x0, self.y0, x1, self.y1, h, bold)
            spaces = [(a, b) for pos, _, a, b in self.gaps if start <= pos < end]
            if len(spaces) == text.count(" "):
                wide = CELL_SPACE_EM * piece.em
                piece.wide_spaces = tuple((k, a, b) for k, (a, b) in enumerate(spaces) if b - a >= wide)
            else:
                piece.wide_spaces = None
            self.pieces.append(piece)


_FONT_NAME = ctypes.create_string_buffer(256)
_FONT_FLAGS = ctypes.c_int()
_BOLD_FONTS: dict[bytes, bool] = {}


NUMBER = re.compile(r"^[(\[]?[-+\u2212]?[$\u20ac\u00a3]?\d[\d.,:/]*[%)\]]?$")


def _numeric_neighbour(text: str, pos: int) -> bool:
    """Is the word just before or after position ``pos`` (a space) a number? A wide gap
    next to a number separates table cells, not words."""
    before = text[:pos].rsplit(" ", 1)[-1]
    after = _word_after(text, pos)
    # "Table 1.<wide space>Caption": a label ending in . or : is not a table cell.
    return any(NUMBER.match(word) and word[-1] not in ".:" for word in (before, after))


def _word_after(text: str, pos: int) -> str:
    """The word that starts just after position ``pos`` (a space)."""
    return text[pos + 1:].split(" ", 1)[0]


def _is_bold(raw_textpage, index: int) -> bool:
    """Bold by the declared weight, the ForceBold flag or the font's name: many PDFs
    (TeX fonts such as CMBX, subsetted TrueType) declare no usable weight."""
    if pdfium_c.FPDFText_GetFontWeight(raw_textpage, index) >= BOLD_WEIGHT:
        return True
    pdfium_c.FPDFText_GetFontInfo(raw_textpage, index, _FONT_NAME, 256, ctypes.byref(_FONT_FLAGS))
    if _FONT_FLAGS.value & FORCE_BOLD_FLAG:
        return True
    name = _FONT_NAME.value
    known = _BOLD_FONTS.get(name)
    if known is None:
        known = _BOLD_FONTS[name] = bool(BOLD_NAME.search(name.decode("latin-1")))
    return known


_LOOSE = pdfium_c.FS_RECTF()
_EDGES = struct.Struct("4d")  # a character box as FPDFText_GetCharBox writes it: left, right, bottom, top


def _loose_box(raw, index: int, edges) -> None:
    """Replace a flat character box (a glyph without an outline: a font that is not
    embedded, the invisible font of a scanner's OCR layer), in ``edges`` (left, right,
    bottom, top), by the box the font's ascent and descent give; the layout needs glyph
    heights."""
    if pdfium_c.FPDFText_GetLooseCharBox(raw, index, ctypes.byref(_LOOSE)):
        edges[:] = (_LOOSE.left, _LOOSE.right, _LOOSE.bottom, _LOOSE.top)


def _char_sequence(textpage: pdfium.PdfTextPage, frame: _PageFrame, bidi: bool) -> Iterable[int]:
    """The order to read a page's characters in: content-stream order, except that on
    a page with right-to-left text (``bidi``) a line holding some is read left to right
    (see pdf_scripts)."""
    raw = textpage.raw
    count = pdfium_c.FPDFText_CountChars(raw)
    if not bidi:
        return range(count)
    left, right, bottom, top = ctypes.c_double(), ctypes.c_double(), ctypes.c_double(), ctypes.c_double()
    refs = (ctypes.byref(left), ctypes.byref(right), ctypes.byref(bottom), ctypes.byref(top))
    chars: list[tuple[float, bool, bool]] = []
    band: tuple[float, float] | None = None  # the vertical extent of the line being read
    for index in range(count):
        ch = chr(min(pdfium_c.FPDFText_GetUnicode(raw, index), 0x10FFFF))
        pdfium_c.FPDFText_GetCharBox(raw, index, *refs)
        x0, y0, _, y1 = frame.box(left.value, right.value, bottom.value, top.value)
        if ch in "\r\n":  # PDFium's line break: ends the run, read first in the next
            chars.append((float("-inf"), True, False))
            band = None
            continue
        if ch.isspace() or left.value == right.value and bottom.value == top.value:
            # A space sits on the baseline, below the letters; a mark PDFium could not
            # place stays behind its base character.
            chars.append((x0 if ch.isspace() or not chars else chars[-1][0], False, False))
            continue
        mid, reach = (y0 + y1) / 2, 0.25 * (band[1] - band[0]) if band else 0.0
        starts = band is not None and not band[0] - reach <= mid <= band[1] + reach
        band = (y0, y1) if starts or band is None else band
        chars.append((x0, starts, has_rtl(ch)))
    return visual_order(chars)


def _unchecked(function, restype):
    """The same PDFium entry point without ctypes' argument conversion. pypdfium2 binds
    every function with ``argtypes``, and checking them costs more than the call: for
    the per-character calls (two or three per glyph, a million glyphs in a 600-page
    document) that check was a third of the extraction time. Arguments must then be
    passed as ctypes objects of the right C type (c_void_p, byref, c_int-sized ints)."""
    fast = type(function)(ctypes.cast(function, ctypes.c_void_p).value)
    fast.restype = restype
    return fast


_GET_UNICODE = _unchecked(pdfium_c.FPDFText_GetUnicode, ctypes.c_uint)
_GET_CHAR_BOX = _unchecked(pdfium_c.FPDFText_GetCharBox, ctypes.c_int)


def _read_pieces(textpage: pdfium.PdfTextPage, frame: _PageFrame, bidi: bool = False,
                 walls: pdf_tables.Walls | None = None) -> tuple[list[_Piece], list[_Piece], int, int]:
    """Characters -> (upright pieces, rotated pieces, visible character count, how many
    of those PDFium gave no usable character for). A drawn vertical rule (``walls``)
    between two glyphs always ends a piece: it is a cell boundary.

    This loop runs once per glyph (a million times for a 600-page document), so the
    common case, an upright glyph continuing the current piece, is written out inline:
    what _PieceBuilder.continues, .add and ._measure and _PageFrame.box and .visible do,
    on local copies of the upright piece's extent (``p_*``, written back to ``up``
    before any other _PieceBuilder method sees it)."""
    raw = textpage.raw
    handle = ctypes.cast(raw, ctypes.c_void_p)
    edges = (ctypes.c_double * 4)()  # left, right, bottom, top: read in one go by _EDGES.unpack_from
    get_box, get_angle, get_unicode = _GET_CHAR_BOX, pdfium_c.FPDFText_GetCharAngle, _GET_UNICODE
    refs = tuple(ctypes.byref(edges, k * ctypes.sizeof(ctypes.c_double)) for k in range(4))
    ref_l, ref_r, ref_b, ref_t = refs
    read_edges = _EDGES.unpack_from
    upright, rotated = _PieceBuilder(), _PieceBuilder()
    up = upright
    rotated_angle: float | None = None
    current = upright
    space = False
    visible = missing = 0
    walled = bool(walls)
    straight = frame.rotation not in (90, 180, 270)
    f_left, f_top = frame.left, frame.top
    max_x, max_y = frame.width + 1, frame.height + 1
    tall = TALL
    fast = False  # current is up, up has characters, and the p_* locals hold its extent
    p_x0 = p_y0 = p_x1 = p_y1 = p_h = p_ho = p_last = em = 0.0
    chars: list[str] = []
    # One call per character for its code: FPDFText_GetText drops and remaps some
    # characters, so its string does not line up with the character indices.
    for index in _char_sequence(textpage, frame, bidi):
        code = get_unicode(handle, index)
        if code == 32:
            space = True
            continue
        ch = chr(code) if code < 0x110000 else "\ufffd"
        if code == 0 or ch.isspace():
            space = True
            continue
        get_box(handle, index, ref_l, ref_r, ref_b, ref_t)
        l, r, b, t = read_edges(edges)
        if l == r and b == t:
            if current.chars:  # a mark PDFium could not place (a combining accent): keep it in the text
                current.chars.append(ch)
            continue
        if t - b < 0.1:
            _loose_box(raw, index, edges)
            l, r, b, t = read_edges(edges)
        if straight:
            x0, y0, x1, y1 = l - f_left, f_top - t, r - f_left, f_top - b
        else:
            x0, y0, x1, y1 = frame.box(l, r, b, t)
        if not (x1 > -1 and x0 < max_x and y1 > -1 and y0 < max_y):
            continue  # outside the crop box (see _PageFrame.visible)
        visible += 1
        if code < 0x20 or 0x80 <= code < 0xA0 or code == 0xFFFE:
            # PDFium's mark of a hyphen at a line end, or a glyph with no character (a
            # symbol font's checkbox comes as a C1 control code)
            ch = "\ufffe"
            missing += 1
        elif code >= 0xE000:
            missing += unmapped(code)  # private use, U+FFFD
        if fast:
            # _PieceBuilder.continues, inline
            gap = x0 - p_last
            if gap > MAX_GAP_EM * em or gap < -0.6 * em:
                joins = False
            elif y1 - y0 < SMALL_GLYPH_EM * em:
                joins = p_y0 - 0.2 * em <= (y0 + y1) / 2 <= p_y1 + 0.3 * em
            else:
                overlap = (p_y1 if p_y1 < y1 else y1) - (p_y0 if p_y0 > y0 else y0)
                glyph, piece = y1 - y0, p_y1 - p_y0
                joins = overlap >= 0.45 * (glyph if glyph < piece else piece)
            if joins and walled and walls.between(p_last, x0, (y0 + y1) / 2):
                joins = False
            if joins:
                # _PieceBuilder.add and ._measure, inline
                if (space or gap > 0.6 * em) and chars[-1] != " ":
                    chars.append(" ")
                    up.gaps.append((len(chars) - 1, gap / em, p_x1, x0))
                chars.append(ch)
                if x0 < p_x0:
                    p_x0 = x0
                if x1 > p_x1:
                    p_x1 = x1
                if y0 < p_y0:
                    p_y0 = y0
                if y1 > p_y1:
                    p_y1 = y1
                if ch in tall or ch.isupper() and ch > "\x7f":
                    if y1 - y0 > p_h:
                        p_h = y1 - y0
                        em = max((p_h or p_ho) * EM_PER_GLYPH, 2.0)
                elif ch.isalpha():
                    other = (y1 - y0) * (0.8 if ch >= "\u2e80" else 1.05)
                    if other > p_ho:
                        p_ho = other
                        em = max((p_h or p_ho) * EM_PER_GLYPH, 2.0)
                p_last = (p_last if p_last >= x1 else x1) if x0 < p_last else x1
                up.last_index = index
                space = False
                continue
            up.x0, up.y0, up.x1, up.y1, up.h, up.h_other, up.last_x1 = p_x0, p_y0, p_x1, p_y1, p_h, p_ho, p_last
        box = (x0, y0, x1, y1)
        if current is rotated and rotated.near(box) and abs(get_angle(raw, index) - (rotated_angle or 0.0)) < 0.05:
            rotated.add(ch, index, box, space)
        else:
            current.flush(raw)
            angle = get_angle(raw, index)
            tilt = abs(angle - frame.upright_angle)
            if angle >= 0 and tilt > 0.05 and abs(tilt - 6.2831853) > 0.05:
                current, rotated_angle = rotated, angle
            else:
                current, rotated_angle = upright, None
            current.start(ch, index, box)
        fast = current is up
        if fast:
            p_x0, p_y0, p_x1, p_y1, p_h, p_ho, p_last = up.x0, up.y0, up.x1, up.y1, up.h, up.h_other, up.last_x1
            em = max((p_h or p_ho) * EM_PER_GLYPH, 2.0)
            chars = up.chars
        space = False
    if fast:
        up.x0, up.y0, up.x1, up.y1, up.h, up.h_other, up.last_x1 = p_x0, p_y0, p_x1, p_y1, p_h, p_ho, p_last
    current.flush(raw)
    return upright.pieces, rotated.pieces, visible, missing


# --------------------------------------------------------------------------------------
# Pieces on one line: merge what the content stream split, mark crowded lines
# --------------------------------------------------------------------------------------


def _rows(items: list) -> list[list]:
    """Group boxes into rows of vertically overlapping items, top to bottom, each row
    sorted left to right. An item joins a row by overlapping the row's tallest item, not
    the row's growing union, so lines slightly offset never chain into one row, while
    superscripts and subscripts stay on their line."""
    rows: list[list] = []
    refs: list[tuple[float, float]] = []  # the y-range of each row's tallest item
    for item in sorted(items, key=lambda i: (i.y0 + i.y1) / 2):
        mid = (item.y0 + item.y1) / 2
        placed = False
        for k in range(len(rows) - 1, max(-1, len(rows) - 4), -1):
            r0, r1 = refs[k]
            if r0 <= mid <= r1 or item.y0 <= (r0 + r1) / 2 <= item.y1:
                rows[k].append(item)
                if item.y1 - item.y0 > r1 - r0:
                    refs[k] = (item.y0, item.y1)
                placed = True
                break
        if not placed:
            rows.append([item])
            refs.append((item.y0, item.y1))
    for row in rows:
        row.sort(key=lambda i: i.x0)
    return rows


def _merge_line(row: list[_Piece], walls: pdf_tables.Walls | None = None) -> list[_Piece]:
    """Join pieces of one row that the content stream drew apart but that touch,
    unless a drawn vertical rule (``walls``) stands between them."""
    merged: list[_Piece] = []
    for piece in row:
        if merged:
            prev = merged[-1]
            em = max(prev.em, piece.em)
            gap = piece.x0 - prev.x1
            similar = 0.6 < piece.h / max(prev.h, 0.1) < 1.6 or _is_mark(piece.text) or _is_mark(prev.text)
            reach = (3.0 if BULLET.match(prev.text) else PIECE_GAP_EM) * em  # a bullet and its item
            walled = bool(walls) and walls.between(prev.x1, piece.x0, (piece.y0 + piece.y1) / 2)
            if (gap <= reach and similar or piece.x1 <= prev.x1) and not walled:
                tight = gap < 0.25 * em or gap < 0.5 * em and piece.text[0] in ",.;:)]"
                sep = "" if tight or piece.x1 <= prev.x1 and _is_mark(piece.text) else " "
                prev.wide_spaces = _joined_wide_spaces(prev, piece, sep)
                prev.text = prev.text + sep + piece.text
                prev.x1, prev.y0, prev.y1 = max(prev.x1, piece.x1), min(prev.y0, piece.y0), max(prev.y1, piece.y1)
                prev.h = max(prev.h, piece.h)
                prev.bold = prev.bold and piece.bold
                continue
        merged.append(piece)
    crowded = len(merged) > 1
    for piece in merged:
        piece.crowded = crowded
    return merged


def _joined_wide_spaces(prev: _Piece, piece: _Piece, sep: str) -> tuple[tuple[int, float, float], ...] | None:
    """The wide spaces of ``prev`` + ``sep`` + ``piece`` (see _Piece.wide_spaces): the
    joining space kept when it is wide for either piece, ``piece``'s renumbered after it."""
    if prev.wide_spaces is None or piece.wide_spaces is None or piece.x0 < prev.x1:
        return None
    joint: tuple[tuple[int, float, float], ...] = ()
    offset = prev.text.count(" ")
    if sep:
        if piece.x0 - prev.x1 >= CELL_SPACE_EM * min(prev.em, piece.em):
            joint = ((offset, prev.x1, piece.x0),)
        offset += 1
    return prev.wide_spaces + joint + tuple((k + offset, a, b) for k, a, b in piece.wide_spaces)


def _is_mark(text: str) -> bool:
    """A footnote mark, accent or punctuation that PDFium placed on its own."""
    return len(text) <= 2


def _lines(pieces: list[_Piece], bidi: bool = False, walls: pdf_tables.Walls | None = None) -> list[_Piece]:
    """Pieces -> lines; with ``bidi`` (a page holding right-to-left text, read in visual
    order), each line is put back into logical order."""
    out: list[_Piece] = []
    for row in _rows(pieces):
        for piece in _merge_line(row, walls):
            if bidi and has_rtl(piece.text):
                piece.text, piece.wide_spaces = to_logical(piece.text), None
                piece.rtl = is_rtl_line(piece.text)
            if re.match("\ufffe(?: [^\\d]|$)", piece.text):
                piece.text = "\u2022" + piece.text[1:]  # a glyph with no character opening a line: a bullet
            out.append(piece)
    return out


# --------------------------------------------------------------------------------------
# Pieces -> blocks
# --------------------------------------------------------------------------------------


def _starts_item(text: str) -> bool:
    return bool(LIST_MARKER.match(text))


def _mirrored(piece: _Piece) -> _Piece:
    """The piece reflected left to right, so that right-aligned (right-to-left) text
    is judged by the rules for left-aligned text."""
    return replace(piece, x0=-piece.x1, x1=-piece.x0)


def _mirrored_block(block: _Block) -> _Block:
    mirrored = _Block([_mirrored(block.lines[0])])
    for line in block.lines[1:]:
        mirrored.add(_mirrored(line))
    return mirrored


def _joins(block: _Block, piece: _Piece) -> bool:
    """May ``piece`` continue ``block`` as its next line? Right-to-left lines are
    aligned on the right: they are judged mirrored."""
    if piece.rtl and block.lines[-1].rtl:
        return _joins_ltr(_mirrored_block(block), _mirrored(piece))
    return _joins_ltr(block, piece)


def _joins_ltr(block: _Block, piece: _Piece) -> bool:
    last = block.lines[-1]
    em = max(block.em, piece.em)
    gap = piece.y0 - last.y1
    if gap < -0.35 * em:
        return False
    limit = 0.95 * em if block.line_gap is None else block.line_gap + 0.3 * em
    if gap > limit:
        return False
    if not 0.8 <= piece.h / max(block.h, 0.1) <= 1.25 or piece.bold != last.bold:
        return False
    if piece.x0 >= block.x1 or piece.x1 <= block.x0:
        return False
    if _starts_item(piece.text):
        return False
    wide = block.width >= 10 * em
    if last.crowded and not wide or piece.crowded and not wide:
        return False  # table cells stay cells
    same_left = abs(piece.x0 - last.x0) <= 0.8 * em
    centred = abs((piece.x0 + piece.x1) - (block.x0 + block.x1)) <= 2 * em
    if piece.x1 > block.x1 + max(3 * em, 0.15 * block.width) and len(block.lines) > 1 and not centred:
        return False  # much wider than the block: the next region starts here
    if piece.x0 > last.x0 + 0.8 * em:
        # Indented against the line above: a new paragraph, unless the block is a list
        # item or reference whose wrapped lines hang under its first words (its first
        # line then runs on to the right edge, without ending a sentence).
        if len(block.lines) != 1 or piece.x0 > block.x0 + 5 * em:
            return False
        hanging = abs(piece.x1 - last.x1) <= 3 * em and not SENTENCE_END.search(last.text) and wide
        return _starts_item(last.text) or hanging
    if piece.x0 < last.x0 - 0.8 * em:
        # The block's first line was indented: this is its second line.
        return len(block.lines) == 1 and wide and not SENTENCE_END.search(last.text) or centred
    return same_left or centred


def _closes(block: _Block) -> bool:
    """A short line ending a sentence ends its paragraph."""
    last = block.lines[-1]
    if len(block.lines) < 2:
        return False
    if last.rtl:
        block = _mirrored_block(block)
        last = block.lines[-1]
    short = last.x1 < block.x1 - max(3 * block.em, 0.15 * block.width)
    return short and bool(SENTENCE_END.search(last.text))


def _blocks(pieces: list[_Piece]) -> list[_Block]:
    """Stack pieces into paragraph blocks, top to bottom."""
    blocks: list[_Block] = []
    open_blocks: list[_Block] = []
    for piece in sorted(pieces, key=lambda p: (round(p.y0, 1), p.x0)):
        open_blocks = [b for b in open_blocks if not b.closed and b.y1 >= piece.y0 - 3 * b.em]
        target = None
        for block in open_blocks:
            if _joins(block, piece):
                target = block
                break
        if target is None:
            target = _Block([piece])
            blocks.append(target)
            open_blocks.append(target)
        else:
            target.add(piece)
            if _closes(target):
                target.closed = True
    return blocks


# --------------------------------------------------------------------------------------
# Blocks -> reading order
# --------------------------------------------------------------------------------------


def _coverage_gaps(blocks: list[_Block], min_width: float, max_cover: float) -> list[tuple[float, float]]:
    """X-intervals at least ``min_width`` wide, strictly inside the blocks' extent, where
    the blocks covering them add up to at most ``max_cover`` points of height."""
    events: list[tuple[float, float]] = []
    for b in blocks:
        height = b.y1 - b.y0
        events.append((b.x0, height))
        events.append((b.x1, -height))
    events.sort()
    lo, hi = events[0][0], events[-1][0]
    gaps: list[tuple[float, float]] = []
    cover = 0.0
    start: float | None = None
    for x, delta in events:
        if start is not None and x > start and (cover + delta > max_cover or x >= hi):
            if x - start >= min_width and start > lo:
                gaps.append((start, x))
            start = None
        cover += delta
        if cover <= max_cover + 1e-6 and start is None and x < hi:
            start = x
    return [g for g in gaps if g[1] < hi]


def _sides_hold_text(blocks: list[_Block], gap: tuple[float, float], total: float) -> bool:
    left = sum(b.y1 - b.y0 for b in blocks if b.x1 <= gap[0] + 0.5)
    right = sum(b.y1 - b.y0 for b in blocks if b.x0 >= gap[1] - 0.5)
    return left >= 0.12 * total and right >= 0.12 * total


def _split_columns(blocks: list[_Block], gaps: list[tuple[float, float]]) -> list[list[_Block]]:
    bounds = [(g[0] + g[1]) / 2 for g in gaps]
    columns: list[list[_Block]] = [[] for _ in range(len(bounds) + 1)]
    for b in blocks:
        columns[bisect.bisect(bounds, (b.x0 + b.x1) / 2)].append(b)
    return [c for c in columns if c]


def _row_aligned(columns: list[list[_Block]], em: float) -> bool:
    """Do blocks on both sides of the gutters start on the same lines, row after row?
    Then this is a table (or a form), not running text in columns."""
    tops = [sorted(b.y0 for b in col) for col in columns]
    aligned = 0
    for left, right in zip(tops, tops[1:]):
        for y in left:
            k = bisect.bisect_left(right, y - 0.3 * em)
            if k < len(right) and abs(right[k] - y) <= 0.3 * em:
                aligned += 1
    smaller = min(len(t) for t in tops)
    # Columns set on one baseline grid (two pages of a spread, a form's two columns of
    # questions) share about half their block starts by chance; a table's cells nearly all.
    return aligned >= 3 and aligned >= ROW_ALIGNED_SHARE * smaller * (len(columns) - 1)


def _cells_aligned(left: list[_Block], right: list[_Block], em: float) -> bool:
    """Do the lines on either side of a gutter pair up row by row, with cells (several
    pieces on one line within a column) on at least one side? Then the two sides are
    columns of a table; two columns of text also share baselines, but their lines are
    single pieces."""
    def rows_of(col: list[_Block]) -> list[tuple[float, bool]]:
        return [((row[0].y0 + row[0].y1) / 2, len(row) > 1) for row in _rows([ln for b in col for ln in b.lines])]

    left_rows, right_rows = rows_of(left), rows_of(right)
    right_mids = [mid for mid, _ in right_rows]
    aligned = tabular = 0
    for mid, multi in left_rows:
        k = bisect.bisect_left(right_mids, mid - 0.3 * em)
        if k < len(right_mids) and abs(right_mids[k] - mid) <= 0.3 * em:
            aligned += 1
            tabular += multi or right_rows[k][1]
    # Most lines of both sides must pair up: running text beside a chart shares a few
    # baselines with the chart's labels, a table's columns share nearly all.
    most = 0.5 * max(len(left_rows), len(right_rows))
    return tabular >= 3 and tabular >= 0.5 * aligned and tabular >= most


def _gutters(blocks: list[_Block], em: float) -> list[tuple[float, float]]:
    """Candidate column gutters: vertical channels at least about an em wide that the
    blocks leave nearly empty (crossed by under 8 % of their total height), with a fair
    share of the text on both sides."""
    if len(blocks) < 2:
        return []
    total = sum(b.y1 - b.y0 for b in blocks)
    return [g for g in _coverage_gaps(blocks, 0.9 * em, 0.08 * total) if _sides_hold_text(blocks, g, total)]


def _text_columns(columns: list[list[_Block]], em: float, page_width: float) -> bool:
    """Are these columns of running text (read one after another), not a table?"""
    if len(columns) > 5:
        return False
    for col in columns:
        if max(b.x1 for b in col) - min(b.x0 for b in col) < max(8 * em, 0.12 * page_width):
            return False
    if _row_aligned(columns, em):
        return False
    return not any(_cells_aligned(a, b, em) for a, b in zip(columns, columns[1:]))


def _crosses(block: _Block, gap: tuple[float, float]) -> bool:
    """Does the block bridge the gap from one side to the other? (A block that only
    pokes into it is a ragged column edge and goes with its column.)"""
    inset = min(2.0, 0.25 * (gap[1] - gap[0]))
    return block.x0 < gap[0] + inset and block.x1 > gap[1] - inset


def _bands(blocks: list[_Block], crossing: list[_Block]) -> list[list[_Block]]:
    """Split a region top to bottom at the blocks that span its gutters."""
    others = [b for b in blocks if b not in crossing]
    crossing.sort(key=lambda b: b.y0)
    bands: list[list[_Block]] = []
    rest = sorted(others, key=lambda b: (b.y0 + b.y1) / 2)
    i = 0
    for cross in crossing:
        above: list[_Block] = []
        while i < len(rest) and (rest[i].y0 + rest[i].y1) / 2 < cross.y0:
            above.append(rest[i])
            i += 1
        if above:
            bands.append(above)
        if bands and bands[-1] and bands[-1][-1] in crossing and not above:
            bands[-1].append(cross)
        else:
            bands.append([cross])
    if i < len(rest):
        bands.append(rest[i:])
    return bands


def _y_slices(blocks: list[_Block]) -> list[list[_Block]]:
    """Split at every horizontal gap that no block spans."""
    ordered = sorted(blocks, key=lambda b: b.y0)
    slices: list[list[_Block]] = [[ordered[0]]]
    bottom = ordered[0].y1
    for b in ordered[1:]:
        if b.y0 > bottom:
            slices.append([b])
        else:
            slices[-1].append(b)
        bottom = max(bottom, b.y1)
    return slices


def _order(blocks: list[_Block], em: float, page_width: float, depth: int = 0) -> list[_Region]:
    """Recursive cuts (see the module docstring)."""
    if len(blocks) <= 1 or depth > 12:
        return [_leaf(blocks)]
    gaps = _gutters(blocks, em)
    if gaps:
        width = max(b.x1 for b in blocks) - min(b.x0 for b in blocks)
        spanning = [b for b in blocks if b.width >= 0.25 * width and any(_crosses(b, g) for g in gaps)]
        if spanning:
            bands = _bands(blocks, spanning)
            if len(bands) > 1:
                return [r for band in bands for r in _order(band, em, page_width, depth + 1)]
        else:  # a narrow block over a gutter (a centred page number, a table cell) goes by its centre
            columns = _split_columns(blocks, gaps)
            if len(columns) > 1 and _text_columns(columns, em, page_width):
                return [r for col in columns for r in _order(col, em, page_width, depth + 1)]
            if len(columns) > 1:  # side by side but not running text: a table, a form
                return [_Region(_leaf(blocks).blocks, tabular=True)]
    slices = _y_slices(blocks)
    if len(slices) > 1:
        return [r for s in slices for r in _order(s, em, page_width, depth + 1)]
    return [_leaf(blocks)]


def _leaf(blocks: list[_Block]) -> _Region:
    """Blocks with no further structure, read row by row."""
    rows = _rows(blocks)
    for row in rows:
        row.sort(key=lambda b: b.lines[0].x0)  # a run-in heading before the paragraph it opens
    return _Region([b for row in rows for b in row], tabular=sum(len(row) > 1 for row in rows) >= 2)


def _header_over(table: _Region, region: _Region) -> bool:
    """Is ``table`` a table's column headings (cells of words) and ``region`` its body (cells
    mostly numbers, each under a heading)? A rule under the headings often leaves more room
    than between rows (Data in Brief's "Inhibitor concentration (g) | ... | Corrosion rate
    (mm/year)": 1.6 em above the first row), which must not cut the headings off their
    numbers: the body's chunk would have no column names to be found by."""
    heads, cells = table.blocks, region.blocks
    if not region.tabular or len(heads) < 2 or len(cells) < 2:
        return False
    if sum(_is_number_cell(b) for b in heads) * 4 > len(heads):
        return False
    if sum(_is_number_cell(b) for b in cells) * 2 < len(cells):
        return False
    return all(any(b.x0 < h.x1 and h.x0 < b.x1 for h in heads) for b in cells)


def _is_number_cell(block: _Block) -> bool:
    return bool(NUMBER.match(_cell_text(block)))


def _merge_tables(regions: list[_Region], em: float) -> list[_Region]:
    """A table is often cut into several regions (a header cell spanning columns, a gap
    between row groups); put back together neighbouring tabular regions and the loose
    single-line cells between them."""
    merged: list[_Region] = []
    for region in regions:
        prev = merged[-1] if merged else None
        if prev is not None and prev.tabular and _table_part(prev, region, em):
            prev.blocks.extend(region.blocks)
            continue
        merged.append(_Region(list(region.blocks), region.tabular))
    return merged


def _table_part(table: _Region, region: _Region, em: float) -> bool:
    gap = region.y0 - table.y1
    if gap < -4 * em or region.x1 <= table.x0 or region.x0 >= table.x1:
        return False
    if gap > 1.5 * em and not (gap <= HEADER_GAP_EM * em and _header_over(table, region)):
        return False
    if region.tabular:
        return True
    width = table.x1 - table.x0
    return all(len(b.lines) == 1 and b.width < 0.5 * width for b in region.blocks)


# --------------------------------------------------------------------------------------
# Blocks -> elements
# --------------------------------------------------------------------------------------


def _join_lines(lines: Iterable[str]) -> str:
    """Lines of a paragraph -> one string: soft line breaks become spaces (none between
    Chinese or Japanese characters), words hyphenated at a line end are joined."""
    out = ""
    for line in lines:
        if not out:
            out = line
        elif LEADER.search(out, max(0, len(out) - 80)):  # the tail only: a long paragraph is searched once per line
            out += "\n" + line
        elif out.endswith("\ufffe"):
            out = out[:-1] + ("" if line[:1].islower() and out[-2:-1].isalpha() else "-") + line
        elif out.endswith("-") and out[-2:-1].islower() and line[:1].islower() and not out.endswith(" -"):
            out = out + line  # keep the hyphen: it may belong to the word (state-of-the-art)
        elif URL_BREAK.search(out, max(0, out.rfind(" ") + 1)) and URL_GOES_ON.match(line):
            out = out + line  # a web address broken after "://", a slash or a dot: "https:// www" is not two words
        else:
            out += line_joint(out, line) + line  # no space inside Chinese or Japanese text
    return _clean(out)


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def _clean(text: str) -> str:
    """Drop control characters; a glyph the PDF gives no character for (a minus sign in
    a math font, say) becomes U+FFFD, so that something visibly stands in its place."""
    text = re.sub("\ufffe(?=\n|$)", "-", text)  # PDFium's hyphen at a line end that nothing followed
    text = _CONTROL.sub(lambda m: "\ufffd" if m.group() == "\ufffe" else "", text)
    return re.sub(r"[ \t]+", " ", text).strip()


def _cell_text(block: _Block) -> str:
    return _join_lines(p.text for p in block.lines)


def _table_rows(region: _Region) -> list[list[_Piece]]:
    """A tabular region's lines regrouped into visual rows (a cell that wraps, or a
    group of rows that was stacked into one block, is taken apart again), each line cut
    at the column gutters it spans (see _cut_at_gutters)."""
    lines = [line for block in region.blocks for line in block.lines]
    return _rows([cell for line in lines for cell in _cut_at_gutters(line, lines)])


def _cut_at_gutters(line: _Piece, others: list[_Piece]) -> list[_Piece]:
    """A line of column headings drawn in one go ("Top-1 Top-5 Top-20 Top-100", each
    about an em apart, no narrower word spaces to tell them by) cut into one cell per
    heading: at every space at least CELL_SPACE_EM wide that lies in a gutter of the
    cells below (no cell there reaches into its middle third: headings are often centred
    over numbers wider than they are; the rows above for a table's last row). A word
    space (a third of an em) is never cut, nor a space that a cell below spans."""
    em = line.em
    spaces = [(k, a, b) for k, a, b in line.wide_spaces or () if b - a >= CELL_SPACE_EM * em]
    if not spaces:
        return [line]  # the common case, decided before looking at any other line
    # Judged by the rows below when there are any: a heading spanning two columns sits above
    # the ones it spans, and its width must not hide their gutter.
    below = [o for o in others if o.y0 >= line.y1]
    rest = below or [o for o in others if o.y1 <= line.y0]
    cuts = [(k, a, b) for k, a, b in spaces
            if not any(o.x0 < b - (b - a) / 3 and a + (b - a) / 3 < o.x1 for o in rest)
            and any(o.x1 <= a + 0.5 * em for o in rest) and any(o.x0 >= b - 0.5 * em for o in rest)]
    if not cuts:
        return [line]
    words = line.text.split(" ")
    cells: list[_Piece] = []
    first, x0 = 0, line.x0
    for k, a, b in cuts + [(len(words) - 1, line.x1, line.x1)]:
        inner = tuple((j - first, p, q) for j, p, q in line.wide_spaces if first <= j < k)
        cells.append(replace(line, text=" ".join(words[first:k + 1]), x0=x0, x1=a, wide_spaces=inner, crowded=True))
        first, x0 = k + 1, b
    return cells


def _headings_over_tables(regions: list[_Region]) -> list[_Region]:
    """A line of column headings set apart from its table (a rule, more space) lands in
    a region of its own, read as one heading ("Top-1 Top-5 Top-20 Top-100" over Table 5):
    a one-line region just above a table, whose wide spaces fall in the table's gutters,
    becomes the table's first row."""
    for region, below in zip(regions, regions[1:]):
        if region.tabular or not below.tabular or len(region.blocks) != 1 or len(region.blocks[0].lines) != 1:
            continue
        line = region.blocks[0].lines[0]
        if not 0 <= below.y0 - line.y1 <= HEADER_GAP_EM * line.em or line.x0 < below.x0 - line.em:
            continue
        cells = _cut_at_gutters(line, [cell for block in below.blocks for cell in block.lines])
        if len(cells) > 1:
            region.blocks, region.tabular = [_Block([cell]) for cell in cells], True
    return regions


def _grid(rows: list[list[_Piece]], em: float) -> list[list[str]] | None:
    """Rows of cells -> a rectangular table when the cells fall into clean columns (no
    cell straddles two, no row has two cells in one column, most cells are filled);
    None otherwise, and the caller keeps the rows as text."""
    if len(rows) < 3:
        return None
    spans: list[list[float]] = []
    for piece in sorted((p for row in rows for p in row), key=lambda p: p.x0):
        if spans and piece.x0 < spans[-1][1] + 0.3 * em:
            spans[-1][1] = max(spans[-1][1], piece.x1)
        else:
            spans.append([piece.x0, piece.x1])
    if not 2 <= len(spans) <= 20:
        return None
    starts = [s[0] for s in spans]
    table: list[list[str]] = []
    for row in rows:
        cells = [""] * len(spans)
        for piece in row:
            k = bisect.bisect_right(starts, piece.x0) - 1
            if cells[k]:
                return None
            cells[k] = _join_lines([piece.text])
        table.append(cells)
    table = _join_wrapped_rows(table, rows, em)
    filled = sum(1 for row in table for c in row if c)
    return table if filled >= 0.6 * len(table) * len(spans) else None


def _join_wrapped_rows(table: list[list[str]], rows: list[list[_Piece]], em: float) -> list[list[str]]:
    """Put back together cells that wrap onto further lines: a row with its first cell
    empty, set closer under the row above than rows are to each other (line spacing
    inside a cell, not the padding between rows), continues the row above."""
    tops = [min(p.y0 for p in row) for row in rows]
    bottoms = [max(p.y1 for p in row) for row in rows]
    gaps = [tops[k] - bottoms[k - 1] for k in range(1, len(rows))]
    if not gaps:
        return table
    row_gap = statistics.median(gaps)
    out = [list(table[0])]
    for k in range(1, len(table)):
        gap = gaps[k - 1]
        if not table[k][0] and gap < 0.75 * em and gap <= 0.6 * row_gap:
            out[-1] = [_join_lines([a, b]) if a and b else a or b for a, b in zip(out[-1], table[k])]
        else:
            out.append(list(table[k]))
    return out


def _bbox(blocks: Iterable[_Block]) -> tuple[float, float, float, float]:
    bs = list(blocks)
    return (round(min(b.x0 for b in bs), 2), round(min(b.y0 for b in bs), 2),
            round(max(b.x1 for b in bs), 2), round(max(b.y1 for b in bs), 2))


@dataclass
class _Styles:
    """Document-wide body style, to tell headings from body text."""

    body_h: float
    body_bold: bool


def _doc_styles(pages: list[_PageText]) -> _Styles:
    weights: dict[float, int] = {}
    bold_chars = chars = 0
    for page in pages:
        for region in page.regions:
            for block in region.blocks:
                for line in block.lines:
                    n = len(line.text)
                    key = round(line.h * 2) / 2
                    weights[key] = weights.get(key, 0) + n
                    chars += n
                    bold_chars += n if line.bold else 0
    if not weights:
        return _Styles(body_h=7.0, body_bold=False)
    body_h = max(weights.items(), key=lambda kv: kv[1])[0]
    return _Styles(body_h=body_h, body_bold=bold_chars > 0.5 * chars)


def _heading_level(block: _Block, styles: _Styles) -> float | None:
    """A sort key for headings (bigger is more important), or None for body text.
    Body text, set in the body size and weight, is told apart by its style alone: its
    text (joined from its lines) is only looked at for blocks styled like headings."""
    if len(block.lines) > 3:
        return None
    h, bold = block.h, block.bold
    large = h >= 1.18 * styles.body_h
    if not large and not (bold and not styles.body_bold and len(block.lines) <= 2 and h >= 0.9 * styles.body_h):
        return None
    text = _cell_text(block)
    if len(text) > 200 or not _wordy(text):
        return None
    if large:
        return h + (0.5 if bold else 0.0)
    if len(text) <= 120 and not re.search(r"[.,;]$", text):
        return h
    return None


def _wordy(text: str) -> bool:
    """Reads like a heading: mostly letters, not starting in lower case, no mathematics
    (a line holding a formula, set tall by its braces and subscripts, is not a heading)."""
    letters = sum(c.isalpha() for c in text)
    first = next((c for c in text if c.isalpha()), "")
    return (letters >= 2 and letters >= 0.5 * sum(not c.isspace() for c in text) and not first.islower()
            and not MATH.search(text))


def _section_depth(text: str) -> int | None:
    """How deep a numbered heading's number goes ("4" 1, "4.2" 2, "4.2.1" 3), or None
    for an unnumbered one."""
    match = SECTION_NUMBER.match(text)
    return match.group(1).count(".") + 1 if match else None


class _Assembler:
    """Turns ordered blocks into elements, keeping the heading path across pages."""

    def __init__(self, styles: _Styles, options: ExtractOptions) -> None:
        self.styles = styles
        self.options = options
        self.stack: list[tuple[float, str]] = []
        self.elements: list[Element] = []

    @property
    def path(self) -> tuple[str, ...]:
        return tuple(text for _, text in self.stack)

    def emit(self, kind: ElementKind, text: str, page: int, bbox, **meta) -> None:
        if len(text) <= 3 and not any(c.isalnum() for c in text):
            return  # a stray comma, accent or rule fragment left over from a formula or a drawing
        self.elements.append(Element(kind=kind, text=text, page=page, location=f"page {page}",
                                     heading_path=self.path, bbox=bbox, meta=meta))

    def title(self, text: str, level: float, page: int, bbox) -> None:
        """A heading: it closes the open headings it ranks with or above. Numbered ones
        rank by their numbers ("5 Experiments" closes "4 Setup" and "4.2 Datasets", set a
        hair larger or not); the others by their size and weight."""
        last = self.elements[-1] if self.elements else None
        if (last is not None and last.kind == "title" and last.page == page and self.stack
                and self.stack[-1][1] == last.text[:200] and HEADING_GOES_ON.search(last.text)):
            # a heading wrapped onto a line of its own ("D Joint Training of Retriever and" + "Reader")
            last.text = f"{last.text} {text}"
            self.stack[-1] = (self.stack[-1][0], last.text[:200])
            return
        depth = _section_depth(text)
        while self.stack:
            top_level, top_text = self.stack[-1]
            top_depth = _section_depth(top_text)
            if depth is not None and top_depth is not None:
                if top_depth < depth:
                    break
            elif top_level > level + 0.25:
                break
            self.stack.pop()
        self.emit("title", text, page, bbox)
        self.stack.append((level, text[:200]))

    def page(self, page: _PageText) -> None:
        start = len(self.elements)
        self._body(page)
        if page.furniture and len(self.elements) > start:
            self.elements[start].meta.update({band: "\n".join(texts) for band, texts in page.furniture.items()})

    def _body(self, page: _PageText) -> None:
        pending: list[_Block] = []  # consecutive blocks of one paragraph split by a column break

        def flush() -> None:
            if pending:
                text = _join_lines(p.text for b in pending for p in b.lines)
                kind: ElementKind = "list" if _starts_item(pending[0].lines[0].text) else "text"
                self.emit(kind, text, page.number, _bbox(pending))
                pending.clear()

        for region in page.regions:
            if region.tabular and not any(b.cells for b in region.blocks):
                flush()
                self._tabular(region, page.number)
                continue
            for block in region.blocks:
                if block.cells is not None:
                    flush()
                    for part in split_table(block.cells, self.options.table_rows_per_element):
                        self.emit("table", part.text, page.number, _bbox([block]), ruled=True, **part.meta())
                    continue
                level = _heading_level(block, self.styles)
                if level is not None:
                    flush()
                    self.title(_cell_text(block), level, page.number, _bbox([block]))
                    continue
                if pending and not _continues_paragraph(pending[-1], block):
                    flush()
                pending.append(block)
        flush()
        for piece in page.rotated:
            self.emit("text", _clean(piece.text), page.number,
                      (round(piece.x0, 2), round(piece.y0, 2), round(piece.x1, 2), round(piece.y1, 2)), rotated=True)

    def _tabular(self, region: _Region, page: int) -> None:
        """A table: Markdown when its grid is clean, else its rows as lines of text with
        the cells separated by " | ". A single row (a header line with a page number)
        is just text."""
        rows = _table_rows(region)
        bbox = _bbox(region.blocks)
        levels = [_heading_level(b, self.styles) for b in region.blocks]
        if all(level is not None for level in levels) and len(rows) <= 3:
            text = " ".join(_join_lines([p.text]) for row in rows for p in row)
            self.title(text, max(levels), page, bbox)  # a heading set in pieces ("Chapter 1." + its name)
            return
        if len(rows) == 1:
            self.emit("text", " ".join(_join_lines([p.text]) for p in rows[0]), page, bbox)
            return
        em = statistics.median(p.em for row in rows for p in row)
        table = _grid(rows, em)
        if table is None:
            text = "\n".join(" | ".join(_join_lines([p.text]) for p in row) for row in rows)
            self.emit("text", text, page, bbox, layout="table")
            return
        for part in split_table(table, self.options.table_rows_per_element):
            self.emit("table", part.text, page, bbox, **part.meta())


def _continues_paragraph(prev: _Block, block: _Block) -> bool:
    """Does ``block`` carry on the sentence ``prev`` broke off (a paragraph running from
    the foot of one column to the head of the next)?"""
    last = prev.lines[-1].text
    first = block.lines[0].text
    if SENTENCE_END.search(last) or not first[:1].islower():
        return False
    if block.y0 >= prev.y1 - 0.1:  # below: it would have been one block already
        return False
    return abs(block.h - prev.h) <= 0.15 * prev.h and block.bold == prev.bold


# --------------------------------------------------------------------------------------
# Pages
# --------------------------------------------------------------------------------------


def _text_page(page: pdfium.PdfPage, frame: _PageFrame, number: int) -> tuple[_PageText, int]:
    """Lay out one page's text layer; returns it and its count of visible characters."""
    textpage = page.get_textpage()
    try:
        bidi = has_rtl(textpage.get_text_range())
        drawn = pdf_tables.rules(page, frame.box)
        walls = pdf_tables.Walls(drawn.vertical)
        pieces, rotated, visible, missing = _read_pieces(textpage, frame, bidi, walls)
    finally:
        textpage.close()
    result = _PageText(number=number, rotated=rotated, unusable=unusable(visible, missing, MIN_TEXT_CHARS),
                       height=frame.height)
    if not pieces:
        return result, visible
    lines, tables = _ruled_tables(pdf_tables.grids(drawn), _lines(pieces, bidi, walls), rotated)
    blocks = _blocks(lines) + tables
    em = statistics.median(b.em for b in blocks)
    result.regions = _merge_tables(_headings_over_tables(_order(blocks, em, frame.width)), em)
    return result, visible


def _ruled_tables(grids: list[pdf_tables.Grid], lines: list[_Piece],
                  rotated: list[_Piece]) -> tuple[list[_Piece], list[_Block]]:
    """Find the page's ruled tables (see pdf_tables); returns the lines outside them
    and one block per table, holding its lines and its cells. Rotated text inside a
    grid (column headers set vertically to fit narrow columns) is its cell's text and
    leaves ``rotated`` (which would otherwise put it after the page's body)."""
    tables: list[_Block] = []
    for grid in grids:
        x0, y0, x1, y1 = grid.box

        def within(p: _Piece) -> bool:
            return x0 <= (p.x0 + p.x1) / 2 <= x1 and y0 <= (p.y0 + p.y1) / 2 <= y1

        inside = [p for p in lines if within(p)]
        turned = [p for p in rotated if within(p)]
        cells = pdf_tables.fill(grid, inside + turned, _join_lines) if inside else None
        if cells is None:
            continue
        taken = set(map(id, inside + turned))
        lines = [p for p in lines if id(p) not in taken]
        rotated[:] = [p for p in rotated if id(p) not in taken]
        block = _Block(sorted(inside, key=lambda p: (p.y0, p.x0)), cells=cells)
        block.x0, block.y0, block.x1, block.y1 = x0, y0, x1, y1
        tables.append(block)
    return lines, tables


def _scanned(page: pdfium.PdfPage, frame: _PageFrame, visible: int, lines: int) -> bool:
    """Is this page a scan: (almost) no text layer over images or drawn shapes (text
    converted to outlines), or a little text (a stamp, a header added later) over
    images that cover most of the page? A blank page is not worth OCR. A scan that
    carries a text layer of its own (lines of it, in any script: a Chinese page holds
    far fewer characters than an English one) keeps that layer."""
    if visible >= MAX_STAMP_CHARS or lines >= MIN_LAYER_LINES:
        return False
    covered = 0.0
    paths = 0
    for obj in page.get_objects(max_depth=3):
        if obj.type == pdfium_c.FPDF_PAGEOBJ_PATH:
            paths += 1
        elif obj.type == pdfium_c.FPDF_PAGEOBJ_IMAGE:
            left, bottom, right, top = obj.get_bounds()
            width = min(right, frame.right) - max(left, frame.left)
            height = min(top, frame.top) - max(bottom, frame.bottom)
            covered += max(0.0, width) * max(0.0, height)
    if visible < MIN_TEXT_CHARS:
        return covered > 0 or paths >= MIN_OUTLINE_PATHS
    return covered >= 0.5 * frame.width * frame.height


def _render(page: pdfium.PdfPage) -> "Image.Image":
    """The page as a grayscale image at OCR resolution."""
    bitmap = page.render(scale=OCR_DPI / 72, grayscale=True)
    try:
        return bitmap.to_pil()
    finally:
        bitmap.close()


def _ocr_elements(image: "Image.Image", number: int, options: ExtractOptions, languages: str) -> list[Element]:
    """OCR a rendered page (outside the PDFium lock: it takes a second or more)."""
    from ingot.ingest.extract.ocr import ocr_page

    scale = OCR_DPI / 72
    elements = []
    for block in ocr_page(image, languages):
        bbox = tuple(round(v / scale, 2) for v in block.bbox)
        for text, part in block.parts(options.table_rows_per_element):
            elements.append(Element(kind="table" if block.kind == "table" else "image-text", text=text,
                                    page=number, location=f"page {number}", bbox=bbox,  # type: ignore[arg-type]
                                    meta={"ocr": True, "confidence": block.confidence, **part}))
    return elements


def _ocr_languages(options: ExtractOptions, done: list[_PageText | list[Element]], image: "Image.Image") -> str:
    """The OCR languages for this document's scans: the caller's, or (``auto``) those
    the text layer read so far calls for, else those for the script tesseract sees on
    the first scan."""
    from ingot.ingest.extract.ocr import resolve_languages

    layer = "\n".join(page.text() if isinstance(page, _PageText) else "\n".join(e.text for e in page if not e.meta.get("ocr"))
                      for page in done)
    return resolve_languages(options.ocr_languages, image, ocr_language_of(layer))


def _pages(data: bytes, options: ExtractOptions) -> tuple[int, list[_PageText | list[Element]]]:
    """Every page laid out (or OCR'd); PDFium is only called under its lock."""
    with _PDFIUM_LOCK:
        document = _open(data, options.password)
        count = len(document)
    results: list[_PageText | list[Element]] = []
    languages = ""  # chosen at the first page that needs OCR, then kept for the document
    try:
        for index in range(count):
            scan = None
            with _PDFIUM_LOCK:
                page = document[index]
                try:
                    frame = _PageFrame(page)
                    text, visible = _text_page(page, frame, index + 1)
                    if options.ocr and (text.unusable or _scanned(page, frame, visible, text.line_count)):
                        scan = _render(page)
                finally:
                    page.close()
            if text.unusable:
                layer = read_layer(data, index, options.password, index + 1)
                if usable_chars("\n".join(e.text for e in layer)) > usable_chars(text.text()):
                    results.append(layer)
                    continue
            if scan is not None:
                languages = languages or _ocr_languages(options, results, scan)
                results.append(_ocr_elements(scan, index + 1, options, languages))
            else:
                results.append(text)
    finally:
        with _PDFIUM_LOCK:
            document.close()
    return count, results


def _set_aside_furniture(pages: list[_PageText], count: int, styles: _Styles) -> None:
    """Take running headers, footers and page numbers out of the pages' regions, into
    ``furniture`` (see pdf_furniture): short blocks in the top and bottom margins, set
    no larger than body text (a chapter title opening every chapter at the same place
    is a heading, not furniture)."""
    spots: list[tuple[_PageText, _Region, _Block]] = []
    candidates: list[furniture.Candidate] = []
    for page in pages:
        for region in page.regions:
            if region.tabular and len(region.blocks) > MAX_FURNITURE_CELLS:
                continue  # a table that starts or ends in the margin
            for block in region.blocks:
                candidate = furniture.Candidate(page.number, "", block.y0, block.y1, page.height)
                if candidate.band is not None and len(block.lines) <= 2 and block.h <= 1.1 * styles.body_h:
                    spots.append((page, region, block))
                    candidates.append(replace(candidate, text=_cell_text(block)))
    for index in sorted(furniture.find(candidates, count)):
        page, region, block = spots[index]
        region.blocks.remove(block)
        page.furniture.setdefault(f"page_{candidates[index].band}", []).append(candidates[index].text)
    for page in pages:
        page.regions = [region for region in page.regions if region.blocks]


def extract(data: bytes, options: ExtractOptions) -> Extraction:
    """Extract a PDF: the text layer of each page in reading order, OCR for pages that
    have none (when ``options.ocr``)."""
    count, results = _pages(data, options)
    text_pages = [r for r in results if isinstance(r, _PageText)]
    styles = _doc_styles(text_pages)
    _set_aside_furniture(text_pages, count, styles)
    assembler = _Assembler(styles, options)
    for result in results:
        if isinstance(result, _PageText):
            assembler.page(result)
        else:
            for element in result:
                element.heading_path = assembler.path
            assembler.elements.extend(result)
    return Extraction(elements=assembler.elements, pages=count)
