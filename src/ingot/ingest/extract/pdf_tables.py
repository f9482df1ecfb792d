"""Ruled tables: cell boundaries from the lines a PDF draws.

A table drawn with rules (Word, LaTeX ``tabular`` with ``|``, most reports) carries its
grid in the content stream as path objects: thin filled rectangles or stroked lines.
PDFium exposes them with their bounds; the horizontal and vertical ones that cross each
other form a grid whose row and column boundaries say exactly which cell each piece of
text belongs to, so a cell that wraps onto several lines stays one cell and a row whose
cells have different line counts stays one row (the geometry-only table reading in
pdf.py splits both). Tables ruled only horizontally (booktabs) have no column
boundaries here and are left to that reading.
"""

from __future__ import annotations

import bisect
import ctypes
from dataclasses import dataclass
from typing import Callable

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c

THIN = 2.5  # points: a path this thin (and longer than MIN_RULE) is a rule
MIN_RULE = 8.0
MAX_OBJECTS = 5000  # a page drawn with more objects than this (a chart, a map) is not searched for rules
SNAP = 2.0  # rules this close are one boundary; a rule reaching this near another meets it
MAX_SHADE = 60.0  # points: a filled box up to this tall is a shaded cell or row, whose edges bound rows

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in points from the top-left corner


@dataclass
class Grid:
    """A ruled table: its row boundaries (top to bottom) and column boundaries (left to
    right), in points from the top-left corner."""

    ys: list[float]
    xs: list[float]

    @property
    def box(self) -> Box:
        return self.xs[0], self.ys[0], self.xs[-1], self.ys[-1]

    def cell(self, x: float, y: float) -> tuple[int, int] | None:
        """(row, column) of the cell holding the point, None outside the grid."""
        if not (self.xs[0] <= x <= self.xs[-1] and self.ys[0] <= y <= self.ys[-1]):
            return None
        row = min(bisect.bisect_right(self.ys, y) - 1, len(self.ys) - 2)
        col = min(bisect.bisect_right(self.xs, x) - 1, len(self.xs) - 2)
        return row, col


class Walls:
    """Vertical rules, to ask whether one stands between two glyphs of a line."""

    def __init__(self, vertical: list[Box]) -> None:
        self.rules = sorted(vertical)
        self.xs = [(b[0] + b[2]) / 2 for b in self.rules]

    def __bool__(self) -> bool:
        return bool(self.rules)

    def between(self, x_from: float, x_to: float, y: float) -> bool:
        """Is there a rule crossing height ``y`` strictly between the two x positions?"""
        k = bisect.bisect_right(self.xs, x_from)
        while k < len(self.xs) and self.xs[k] < x_to:
            if self.rules[k][1] <= y <= self.rules[k][3]:
                return True
            k += 1
        return False


_BOUNDS = [ctypes.c_float() for _ in range(4)]


@dataclass
class Rules:
    """A page's drawn lines, as boxes on the displayed page."""

    horizontal: list[Box]
    vertical: list[Box]
    shade_edges: list[Box]  # top and bottom edges of shaded cells and rows (filled boxes)


def rules(page: pdfium.PdfPage, to_box: Callable[[float, float, float, float], Box]) -> Rules:
    """The page's horizontal and vertical rules and its shaded boxes' edges, from its
    top-level path objects. ``to_box(left, right, bottom, top)`` maps PDF user space to
    the displayed page. Raw PDFium calls: this runs on every page."""
    raw = page.raw
    horizontal: list[Box] = []
    vertical: list[Box] = []
    shade_edges: list[Box] = []
    count = pdfium_c.FPDFPage_CountObjects(raw)
    if count > MAX_OBJECTS:
        return Rules(horizontal, vertical, shade_edges)
    left, bottom, right, top = _BOUNDS
    refs = [ctypes.byref(v) for v in _BOUNDS]
    for index in range(count):
        obj = pdfium_c.FPDFPage_GetObject(raw, index)
        if pdfium_c.FPDFPageObj_GetType(obj) != pdfium_c.FPDF_PAGEOBJ_PATH:
            continue
        if not pdfium_c.FPDFPageObj_GetBounds(obj, refs[0], refs[1], refs[2], refs[3]):
            continue
        x0, y0, x1, y1 = to_box(left.value, right.value, bottom.value, top.value)
        if y1 - y0 <= THIN and x1 - x0 >= MIN_RULE:
            horizontal.append((x0, y0, x1, y1))
        elif x1 - x0 <= THIN and y1 - y0 >= MIN_RULE:
            vertical.append((x0, y0, x1, y1))
        elif x1 - x0 >= MIN_RULE and y1 - y0 <= MAX_SHADE and _filled(obj):
            # A shaded header row often has no rule under it: the edge of its fill is the
            # boundary. Only the horizontal edges count, so a lone shaded box (a note's
            # background) never forms a grid of its own.
            shade_edges.append((x0, y0, x1, y0))
            shade_edges.append((x0, y1, x1, y1))
    return Rules(horizontal, vertical, shade_edges)


_FILL_MODE = ctypes.c_int()
_STROKE = ctypes.c_int()


def _filled(obj) -> bool:
    ok = pdfium_c.FPDFPath_GetDrawMode(obj, ctypes.byref(_FILL_MODE), ctypes.byref(_STROKE))
    return bool(ok) and _FILL_MODE.value != 0


def grids(drawn: Rules) -> list[Grid]:
    """Tables formed by rules that meet: groups of horizontal and vertical rules
    connected through their crossings, with at least two of each (a rule under a
    heading or a box around a note is not a table). A shaded row's edges bound rows
    like rules, but only real rules say that a table goes on past its grid."""
    rules_only, vertical = drawn.horizontal, drawn.vertical
    horizontal = rules_only + drawn.shade_edges
    if len(horizontal) < 2 or len(vertical) < 2:
        return []
    rules_ = [(box, True) for box in horizontal] + [(box, False) for box in vertical]
    parent = list(range(len(rules_)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, (h, is_h) in enumerate(rules_):
        if not is_h:
            continue
        for j in range(len(horizontal), len(rules_)):
            v = rules_[j][0]
            if h[0] - SNAP <= v[0] <= h[2] + SNAP and v[1] - SNAP <= h[1] <= v[3] + SNAP:
                parent[root(i)] = root(j)
    # A rule drawn in pieces (one segment per row, as LaTeX draws column rules) is one rule.
    for along, first, count in ((0, 0, len(horizontal)), (1, len(horizontal), len(vertical))):
        across = 1 - along
        order = sorted(range(first, first + count), key=lambda k: (round(rules_[k][0][across] / SNAP), rules_[k][0][along]))
        for a, b in zip(order, order[1:]):
            box_a, box_b = rules_[a][0], rules_[b][0]
            if abs(box_a[across] - box_b[across]) <= SNAP and box_b[along] <= box_a[along + 2] + SNAP:
                parent[root(a)] = root(b)
    groups: dict[int, list[tuple[Box, bool]]] = {}
    for i, rule in enumerate(rules_):
        groups.setdefault(root(i), []).append(rule)
    found = []
    for members in groups.values():
        # The outer edges: where the rules end (a table without outer vertical rules
        # still spans its horizontal ones).
        hs = [b for b, is_h in members if is_h]
        vs = [b for b, is_h in members if not is_h]
        ys = _boundaries([(b[1] + b[3]) / 2 for b in hs] + ([min(b[1] for b in vs), max(b[3] for b in vs)] if vs else []))
        xs = _boundaries([(b[0] + b[2]) / 2 for b in vs] + ([min(b[0] for b in hs), max(b[2] for b in hs)] if hs else []))
        if len(ys) >= 2 and len(xs) >= 2 and not _continues(Grid(ys=ys, xs=xs), rules_only):
            found.append(Grid(ys=ys, xs=xs))
    return found


def _continues(grid: Grid, horizontal: list[Box]) -> bool:
    """Does the table go on past the grid, under rules of the grid's width that no
    vertical rule meets, within a row's height of it? Then the grid is only its ruled header (a booktabs table with
    column rules in the head) and its columns cannot be trusted for the body."""
    x0, y0, x1, y1 = grid.box
    reach = max(b - a for a, b in zip(grid.ys, grid.ys[1:]))  # a row further on; a rule farther off is another thing
    return any(abs(h[0] - x0) <= 3 * SNAP and abs(h[2] - x1) <= 3 * SNAP
               and (y1 + SNAP < h[1] <= y1 + reach or y0 - reach <= h[1] < y0 - SNAP) for h in horizontal)


def _boundaries(values: list[float]) -> list[float]:
    """Positions of rules, those within SNAP of each other taken as one."""
    out: list[float] = []
    for value in sorted(values):
        if out and value - out[-1] <= SNAP:
            continue
        out.append(value)
    return out


def fill(grid: Grid, pieces: list, join: Callable[[list[str]], str]) -> list[list[str]] | None:
    """The grid's cells from the text pieces that fall in it (by their centre):
    several lines in a cell are joined as one paragraph (``join``); rows and columns
    left empty (rules drawn twice, a spacer row) are dropped. None when the grid holds
    no real table (fewer than two rows or columns with text)."""
    cells: dict[tuple[int, int], list] = {}
    for piece in pieces:
        where = grid.cell((piece.x0 + min(piece.x1, piece.x0 + 20)) / 2, (piece.y0 + piece.y1) / 2)
        if where is not None:
            cells.setdefault(where, []).append(piece)
    rows = sorted({r for r, _ in cells})
    cols = sorted({c for _, c in cells})
    if len(rows) < 2 or len(cols) < 2:
        return None
    table = []
    for r in rows:
        table.append([join([p.text for p in sorted(cells.get((r, c), []), key=lambda p: (p.y0, p.x0))])
                      if (r, c) in cells else "" for c in cols])
    return table
