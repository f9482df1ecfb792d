"""Spreadsheets: Excel workbooks (.xlsx/.xlsm, via openpyxl) and delimited text (CSV/TSV).

Both become the same thing: Markdown ``table`` elements, because a sheet is a grid and a
grid reads best (for people, prompts and the chunker) as a table with its header row.

Decisions worth knowing:

* Workbooks open with ``read_only=True`` (streams rows, constant memory) and
  ``data_only=True`` (formulas give their cached value, which is what the user saw).
  ``reset_dimensions()`` is called because the stored sheet dimension is often wrong or
  huge (``A1:XFD1048576``); we only trust cells that exist.
* One sheet = ``page`` (1-based position in the workbook, hidden sheets counted so the
  number matches what Excel shows), ``location`` = sheet name, ``heading_path=(name,)``.
  Hidden and very-hidden sheets are skipped: they hold lookups and scratch data the author
  chose not to show. Sheets without a value are skipped.
* Several tables on one sheet are found as connected regions of non-empty cells
  (``_regions``): an empty column or two empty rows separate tables, because that is how
  people lay them out side by side and one under another; a single empty row is spacing
  inside a table, and a region one empty column beside another that starts on the same
  row is the same table (a spacer column). Each region is its own ``table`` element with
  its own header row, in reading order (top, then left), ``meta["range"]`` = its cells in
  A1 notation. CSV/TSV files are one table by construction: only empty rows split them.
* Merged cells repeat their value (the top-left cell's) in every cell they cover, so a
  row read alone still names its group. Read-only mode hides merges, so they are read
  from the sheet part with lxml.
* Fully empty columns and single empty spacer rows inside a table are dropped. Leading
  one-value rows above the first row with several values ("3.1 Operating segments") are
  captions: they become a ``text`` element before the table instead of posing as its
  header (a caption merged across the table counts as one value).
* Charts drawn on a sheet become ``chart`` elements after its tables (title + Markdown
  table of the cached series values, the same code as PowerPoint charts:
  :mod:`charts`), ``meta["anchor"]`` = the cell the chart's corner sits on. A chart
  saved without cached values (openpyxl writes only the formula references) gets them
  from the sheets already read. Chart sheets (a sheet that is only a chart) are not read.
* Numbers are formatted from the cell's number format where that is cheap (decimals,
  percent, thousands separator); otherwise shortest round-trip repr, so float noise like
  0.30000000000000004 never shows. Dates are ISO (time only when not midnight).
* Blocks longer than ``options.table_rows_per_element`` data rows are split into several
  elements, each starting with the block's header row.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

from lxml import etree
from openpyxl.packaging.relationship import get_dependents, get_rels_path
from openpyxl.utils.cell import get_column_letter, range_boundaries, range_to_tuple

from ingot.ingest.elements import Element, Extraction, ExtractionError, ExtractOptions, split_table
from ingot.ingest.extract.charts import chart_element, chart_from_xml

Grid = list[list[str]]

MIN_BLOCK_GAP = 2  # this many empty rows in a row separate two tables on a sheet
MAX_REGIONS_TO_MERGE = 2000  # box merging is quadratic; beyond this the regions stay as found
MAX_MERGE_CELLS = 1_000_000  # a merge over a whole column is formatting, not a value to repeat
_MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
ROW_TAG, MERGE_CELL_TAG = f"{_MAIN}row", f"{_MAIN}mergeCell"
_XDR = "{http://schemas.openxmlformats.org/drawingml/2006/spreadsheetDrawing}"
XDR_FROM_TAG, XDR_ROW_TAG, XDR_COL_TAG = f"{_XDR}from", f"{_XDR}row", f"{_XDR}col"
_C = "{http://schemas.openxmlformats.org/drawingml/2006/chart}"
C_CHART_TAG = f"{_C}chart"
# Parts come from untrusted files: no entity expansion, no network, no huge trees.
SAFE_XML = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
R_ID = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"
CFB_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # OLE container: encrypted OOXML or legacy .xls


def extract(data: bytes, options: ExtractOptions) -> Extraction:
    """Workbook when the bytes are a zip (OOXML), delimited text otherwise: the dispatcher
    routes both "xlsx" and "csv" here."""
    if data.startswith(b"PK\x03\x04"):
        return _extract_workbook(data, options)
    if data.startswith(CFB_MAGIC):
        if "EncryptedPackage".encode("utf-16-le") in data:
            raise ExtractionError("password_required", "the workbook is encrypted with a password")
        raise ExtractionError("unsupported", "legacy binary .xls workbooks are not supported; save as .xlsx")
    return _extract_delimited(data, options)


# ---------------------------------------------------------------- workbooks


def _open_workbook(data: bytes) -> Any:
    """Open lazily and turn every parser failure into a stable "corrupt" error."""
    import openpyxl

    try:
        return openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True, keep_links=False)
    except Exception as exc:  # BadZipFile, KeyError (missing part), lxml/openpyxl XML errors, ...
        raise ExtractionError("corrupt", f"could not open the workbook: {type(exc).__name__}: {exc}") from exc


def _extract_workbook(data: bytes, options: ExtractOptions) -> Extraction:
    workbook = _open_workbook(data)
    elements: list[Element] = []
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))  # the parts openpyxl's read-only mode does not expose
        has_charts = any(name.startswith("xl/charts/") for name in archive.namelist())
        grids: dict[str, Grid] = {}  # sheets read so far, kept only to fill charts' missing caches
        sheets = list(workbook.worksheets)
        for number, sheet in enumerate(sheets, start=1):
            if getattr(sheet, "sheet_state", "visible") != "visible":
                continue
            common: dict[str, Any] = {"page": number, "location": sheet.title, "heading_path": (sheet.title,)}
            path = getattr(sheet, "_worksheet_path", None)  # read-only sheets know their part's name
            try:
                grid = _sheet_grid(sheet)
                if path:
                    _fill_merges(grid, _merged_ranges(archive, path))
            except ExtractionError:
                raise
            except Exception as exc:  # damaged sheet XML surfaces only while streaming rows
                message = f"could not read sheet {sheet.title!r}: {type(exc).__name__}: {exc}"
                raise ExtractionError("corrupt", message) from exc
            if has_charts:
                grids[sheet.title] = grid
            elements += _block_elements(_regions(grid), options, **common)
            if path and has_charts:
                elements += _chart_elements(archive, path, common, grids)
    except zipfile.BadZipFile as exc:
        raise ExtractionError("corrupt", f"could not open the workbook: {exc}") from exc
    finally:
        workbook.close()
    if not elements:
        raise ExtractionError("empty", "no visible sheet of the workbook has a value")
    return Extraction(elements=elements, pages=len(sheets))


def _sheet_grid(sheet: Any) -> Grid:
    """All rows of a sheet as display strings (ragged; missing rows come back empty)."""
    sheet.reset_dimensions()
    return [[format_cell(cell.value, getattr(cell, "number_format", None)) for cell in row] for row in sheet.iter_rows()]


# ---------------------------------------------------------------- merged cells


def _merged_ranges(archive: zipfile.ZipFile, sheet_path: str) -> list[tuple[int, int, int, int]]:
    """``(min_col, min_row, max_col, max_row)`` (1-based) of each merged range of a sheet.
    Read-only worksheets do not expose merges, so the part is streamed once more with
    lxml; rows are cleared as they pass, keeping memory flat on large sheets."""
    ranges: list[tuple[int, int, int, int]] = []
    if not _mentions(archive, sheet_path, b"mergeCell"):
        return ranges  # most sheets have none: skip the XML parse (a tenth of the sheet's time)
    with archive.open(sheet_path) as source:
        for _, element in etree.iterparse(source, events=("end",), tag=(ROW_TAG, MERGE_CELL_TAG), resolve_entities=False, no_network=True):
            if element.tag == MERGE_CELL_TAG and element.get("ref"):
                try:
                    ranges.append(range_boundaries(element.get("ref")))
                except (ValueError, TypeError):
                    pass  # a malformed reference merges nothing
            element.clear(keep_tail=True)
    return ranges


def _mentions(archive: zipfile.ZipFile, part: str, needle: bytes) -> bool:
    """Whether a part's bytes contain ``needle``: a decompress-and-search pass in C, far
    cheaper than parsing, used to skip parses that would find nothing."""
    tail = b""
    with archive.open(part) as source:
        while chunk := source.read(1 << 20):
            if needle in tail + chunk:
                return True
            tail = chunk[-len(needle):]
    return False


def _fill_merges(grid: Grid, ranges: Iterable[tuple[int, int, int, int]]) -> None:
    """Repeat each merged range's value (its top-left cell) in every cell it covers, so a
    row read on its own (after a split, in a chunk) still says which group it belongs to."""
    for min_col, min_row, max_col, max_row in ranges:
        if min_row > len(grid) or min_col < 1 or (max_row - min_row + 1) * (max_col - min_col + 1) > MAX_MERGE_CELLS:
            continue
        first = grid[min_row - 1]
        value = first[min_col - 1] if min_col - 1 < len(first) else ""
        if not value:
            continue
        for r in range(min_row - 1, min(max_row, len(grid))):
            row = grid[r]
            if len(row) < max_col:
                row.extend([""] * (max_col - len(row)))
            row[min_col - 1 : max_col] = [value] * (max_col - min_col + 1)


# ---------------------------------------------------------------- charts


def _chart_elements(
    archive: zipfile.ZipFile, sheet_path: str, common: dict[str, Any], grids: dict[str, Grid]
) -> list[Element]:
    """The charts drawn on a sheet, top to bottom then left to right, each as a ``chart``
    element (title + Markdown table of its cached series, :mod:`charts`) with
    ``meta["anchor"]`` = the cell its top-left corner sits on."""
    drawing = _related(archive, sheet_path, "/drawing")
    if not drawing:
        return []
    charts = {rel.Id: rel.Target for rel in _relationships(archive, drawing) if rel.Type.endswith("/chart")}
    anchored: list[tuple[tuple[int, int], str]] = []
    try:
        with archive.open(drawing) as source:
            root = etree.parse(source, SAFE_XML).getroot()
    except (KeyError, etree.XMLSyntaxError, zipfile.BadZipFile):
        return []  # a damaged drawing loses the charts, not the workbook
    for anchor in root:
        for ref in anchor.iter(C_CHART_TAG):
            target = charts.get(ref.get(R_ID))
            if target and target in archive.NameToInfo:
                anchored.append((_anchor_cell(anchor), target))
    out = []
    for (row, col), target in sorted(anchored):
        try:
            element = chart_element(chart_from_xml(_with_caches(archive.read(target), grids)), dict(common))
        except (etree.XMLSyntaxError, ValueError, KeyError, TypeError):
            continue  # a damaged chart loses its data, not the workbook
        if element is not None:
            element.meta["anchor"] = f"{get_column_letter(col + 1)}{row + 1}"
            out.append(element)
    return out


def _with_caches(data: bytes, grids: dict[str, Grid]) -> bytes:
    """A chart part with every data reference that lacks cached values given them from the
    sheets already read. Excel always saves the caches; openpyxl and other writers save
    only the formula (``'Sheet'!$B$2:$B$4``) and leave Excel to compute them on open, so
    without this a generated workbook's chart would come out empty. References to sheets
    not read (hidden, or later in the workbook) stay empty."""
    root = etree.fromstring(data, SAFE_XML)
    changed = False
    for ref in root.iter(f"{_C}numRef", f"{_C}strRef"):
        cache_tag = f"{_C}numCache" if ref.tag == f"{_C}numRef" else f"{_C}strCache"
        values = None if ref.find(cache_tag) is not None else _range_values(ref.findtext(f"{_C}f") or "", grids)
        if values is None:
            continue
        cache = etree.SubElement(ref, cache_tag)
        etree.SubElement(cache, f"{_C}ptCount").set("val", str(len(values)))
        for index, value in enumerate(values):
            if value:
                point = etree.SubElement(cache, f"{_C}pt", idx=str(index))
                etree.SubElement(point, f"{_C}v").text = value
        changed = True
    return etree.tostring(root) if changed else data


def _range_values(formula: str, grids: dict[str, Grid]) -> list[str] | None:
    """The displayed values of a one-sheet range reference, row by row; None when the
    reference is not a plain range on a sheet read so far."""
    try:
        sheet, (min_col, min_row, max_col, max_row) = range_to_tuple(formula.strip())
    except (ValueError, TypeError):
        return None
    grid = grids.get(sheet)
    if grid is None:
        return None
    values = []
    for r in range(min_row - 1, max_row):
        row = grid[r] if r < len(grid) else []
        values += [row[c] if c < len(row) else "" for c in range(min_col - 1, max_col)]
    return values


def _relationships(archive: zipfile.ZipFile, part: str) -> list:
    """A part's relationships with targets resolved to archive names (openpyxl's reader)."""
    rels = get_rels_path(part)
    return list(get_dependents(archive, rels)) if rels in archive.NameToInfo else []


def _related(archive: zipfile.ZipFile, part: str, kind: str) -> str | None:
    return next((rel.Target for rel in _relationships(archive, part) if rel.Type.endswith(kind)), None)


def _anchor_cell(anchor: etree._Element) -> tuple[int, int]:
    """0-based (row, column) of a drawing anchor's top-left cell; absolute anchors sort first."""
    start = anchor.find(XDR_FROM_TAG)
    if start is None:
        return (0, 0)
    try:
        return (int(start.findtext(XDR_ROW_TAG) or 0), int(start.findtext(XDR_COL_TAG) or 0))
    except ValueError:
        return (0, 0)


# ---------------------------------------------------------------- cell formatting


def format_cell(value: Any, number_format: str | None = None) -> str:
    """A cell value as the reader expects to see it (see module docstring)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (int, float)):
        return format_number(value, number_format)
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0, 0):
            return value.date().isoformat()
        return value.isoformat(sep=" ", timespec="seconds" if value.second else "minutes")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dt.time):
        return value.isoformat(timespec="seconds" if value.second else "minutes")
    if isinstance(value, dt.timedelta):
        return _format_duration(value)
    return str(value).strip()


def _format_duration(value: dt.timedelta) -> str:
    seconds = int(value.total_seconds())
    sign, seconds = ("-", -seconds) if seconds < 0 else ("", seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{sign}{hours}:{minutes:02d}" + (f":{secs:02d}" if secs else "")


_QUOTED = re.compile(r'"[^"]*"|\\.|\[[^\]]*\]|_.|\*.')


def format_number(value: int | float, number_format: str | None = None) -> str:
    """Decimals, percent and thousands separators from the number format's positive
    section; anything fancier falls back to a plain, noise-free number. Negative numbers
    keep a minus sign even when the format would show parentheses (clearer as text)."""
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return str(value)
    spec = _QUOTED.sub("", (number_format or "General").split(";")[0])
    if spec.strip().lower() in ("general", "@", ""):
        return _plain_number(value)
    if "%" in spec:
        decimals = _decimals(spec)
        return f"{value * 100:.{decimals}f}%"
    if not re.search(r"[0#?]", spec) or re.search(r"[eE][+-]", spec):
        return _plain_number(value)
    decimals = _decimals(spec)
    grouping = "," if re.search(r"[0#?],[0#?]", spec) else ""
    return f"{value:{grouping}.{decimals}f}"


def _decimals(spec: str) -> int:
    match = re.search(r"\.([0#?]+)", spec)
    return len(match.group(1)) if match else 0


def _plain_number(value: int | float) -> str:
    if isinstance(value, int):
        return str(value)
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    text = repr(value)
    if "e" not in text and len(text.split(".")[-1]) > 10:
        text = f"{value:.12g}"  # binary noise beyond Excel's 15 significant digits
    return text


# ---------------------------------------------------------------- grids -> elements


@dataclass
class Block:
    """One table's worth of a sheet: its non-empty rows and where they are."""

    numbers: list[int]  # 1-based sheet row of each row
    rows: Grid
    first_col: int | None = None  # 1-based sheet column of the first cell (workbooks), None for CSV
    last_col: int | None = None

    @property
    def range(self) -> str | None:
        """The block's cells in A1 notation (``E5:G9``), for a reader to find it in the sheet."""
        if self.first_col is None or self.last_col is None:
            return None
        return f"{get_column_letter(self.first_col)}{self.numbers[0]}:{get_column_letter(self.last_col)}{self.numbers[-1]}"


def _grid_elements(grid: Grid, options: ExtractOptions, **common: Any) -> list[Element]:
    """Row blocks of a delimited-text grid as table elements (a CSV file is one table, so
    only empty rows separate blocks there)."""
    return _block_elements((Block(numbers, rows) for numbers, rows in _blocks(grid)), options, **common)


def _block_elements(
    blocks: Iterable[Block],
    options: ExtractOptions,
    *,
    page: int,
    location: str | None,
    heading_path: tuple[str, ...],
) -> list[Element]:
    """Blocks as table elements, each split to at most N data rows; leading caption rows
    become a ``text`` element."""
    out: list[Element] = []
    for block_index, block in enumerate(blocks):
        numbers, rows = block.numbers, _drop_empty_columns(block.rows)
        where = {"range": block.range} if block.range else {}
        lead = _title_rows(rows)
        if lead:
            out.append(
                Element(
                    kind="text",
                    text="\n".join(" ".join(dict.fromkeys(" ".join(c.split()) for c in row if c)) for row in rows[:lead]),
                    page=page,
                    location=location,
                    heading_path=heading_path,
                    meta={"rows": [numbers[0], numbers[lead - 1]], "block": block_index, **where},
                )
            )
            if lead == len(rows):
                continue
            numbers, rows = numbers[lead:], _drop_empty_columns(rows[lead:])
        for part in split_table(rows, options.table_rows_per_element):
            data_rows = numbers[part.first_row : part.first_row + len(part.rows) - part.header_rows] or numbers[:1]
            meta = {
                "header_row": numbers[0],  # 1-based row numbers in the sheet / file
                "rows": [data_rows[0], data_rows[-1]],
                "block": block_index,
                **where,
                **part.meta(),
            }
            out.append(
                Element(
                    kind="table",
                    text=part.text,
                    page=page,
                    location=location,
                    heading_path=heading_path,
                    meta=meta,
                )
            )
    return out


def _title_rows(rows: Grid) -> int:
    """How many leading rows are captions ("3.1 Operating segments"), not the header: rows
    with a single value above the first row with several. A lone value is all caption.
    Values are counted distinct, so a caption merged across the table's width (repeated
    in every cell it covers) is still one value."""
    filled = [len({c for c in row if c}) for row in rows]
    if max(filled) <= 1:
        return len(rows) if len(rows) == 1 else 0
    lead = 0
    while filled[lead] <= 1:
        lead += 1
    return lead


def _blocks(grid: Grid) -> Iterator[tuple[list[int], Grid]]:
    """Non-empty rows grouped into blocks separated by MIN_BLOCK_GAP empty rows; yields
    (1-based source row number of each kept row, rows)."""
    numbers: list[int] = []
    rows: Grid = []
    gap = 0
    for number, row in enumerate(grid, start=1):
        if not any(cell for cell in row):
            gap += 1
            continue
        if rows and gap >= MIN_BLOCK_GAP:
            yield numbers, rows
            numbers, rows = [], []
        gap = 0
        numbers.append(number)
        rows.append(row)
    if rows:
        yield numbers, rows


# ---------------------------------------------------------------- tables on a sheet


def _regions(grid: Grid) -> list[Block]:
    """The separate tables of a sheet: connected regions of non-empty cells, in reading
    order (top row, then left column).

    Cells touching (diagonals included) are connected; so are cells with a single empty
    row between them, which people use as spacing inside a table. An empty column, or
    two empty rows, separate tables. Regions whose boxes overlap are one table (a sparse
    table can come apart cell by cell), and two side-by-side regions spanning exactly the
    same rows with one empty column between are one table with a spacer column."""
    segments, parent = _connected_segments(grid)
    boxes: dict[int, list[int]] = {}  # root -> [top, left, bottom, right], 0-based
    for index, (row, left, right) in enumerate(segments):
        root = _find(parent, index)
        box = boxes.setdefault(root, [row, left, row, right])
        box[0], box[1], box[2], box[3] = min(box[0], row), min(box[1], left), max(box[2], row), max(box[3], right)
    merged = _merge_boxes(list(boxes.values()))
    return [_block_of(grid, box) for box in sorted(merged, key=lambda b: (b[0], b[1]))]


def _connected_segments(grid: Grid) -> tuple[list[tuple[int, int, int]], list[int]]:
    """Runs of adjacent non-empty cells per row, ``(row, first, last column)`` 0-based,
    and a union-find forest joining runs that touch a run up to MIN_BLOCK_GAP rows above."""
    segments: list[tuple[int, int, int]] = []
    parent: list[int] = []
    recent: list[tuple[int, list[int]]] = []  # (row, its segment ids) of the last rows with values
    for r, row in enumerate(grid):
        runs = _runs(row)
        if not runs:
            continue
        recent = [(pr, ids) for pr, ids in recent if r - pr <= MIN_BLOCK_GAP]
        ids = list(range(len(segments), len(segments) + len(runs)))
        segments += [(r, left, right) for left, right in runs]
        parent += ids
        for _, above in recent:
            _join_touching(segments, parent, ids, above)
        recent.append((r, ids))
    return segments, parent


def _join_touching(segments: list[tuple[int, int, int]], parent: list[int], ids: list[int], above: list[int]) -> None:
    """Union each run of a row with the runs of an earlier row it touches (diagonals
    count). Both rows' runs are sorted and disjoint, so one sweep finds every pair: a
    sparse row of a thousand runs costs a thousand steps, not a million."""
    i = j = 0
    while i < len(ids) and j < len(above):
        _, left, right = segments[ids[i]]
        _, o_left, o_right = segments[above[j]]
        if o_left <= right + 1 and left <= o_right + 1:
            _union(parent, ids[i], above[j])
        if right < o_right:
            i += 1
        else:
            j += 1


def _runs(row: list[str]) -> list[tuple[int, int]]:
    """Maximal runs of non-empty cells in a row, as (first, last) 0-based columns."""
    if all(row):
        return [(0, len(row) - 1)] if row else []  # a full row, checked at C speed
    runs: list[tuple[int, int]] = []
    start = None
    for c, value in enumerate(row):
        if value and start is None:
            start = c
        elif not value and start is not None:
            runs.append((start, c - 1))
            start = None
    if start is not None:
        runs.append((start, len(row) - 1))
    return runs


def _find(parent: list[int], i: int) -> int:
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


def _union(parent: list[int], a: int, b: int) -> None:
    ra, rb = _find(parent, a), _find(parent, b)
    if ra != rb:
        parent[max(ra, rb)] = min(ra, rb)


def _merge_boxes(boxes: list[list[int]]) -> list[list[int]]:
    """Join boxes that overlap, or sit side by side one spacer column apart
    (``_belong_together``), until none do. Sorted by top row, each box is compared only
    with the boxes starting above its bottom; a sheet of thousands of scattered regions
    skips the step."""
    if len(boxes) > MAX_REGIONS_TO_MERGE:
        return boxes
    boxes.sort(key=lambda b: b[0])  # by top: a box can only join later ones starting above its bottom
    changed = True
    while changed:  # a grown box may now reach one it did not: pass again until stable
        changed = False
        i = 0
        while i < len(boxes):
            j = i + 1
            while j < len(boxes) and boxes[j][0] <= max(boxes[i][2], boxes[i][0] + 1):
                if _belong_together(boxes[i], boxes[j]):
                    a, b = boxes[i], boxes.pop(j)
                    boxes[i] = [min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])]
                    changed = True
                else:
                    j += 1
            i += 1
    return boxes


def _belong_together(a: list[int], b: list[int]) -> bool:
    """Boxes ``[top, left, bottom, right]`` that are one table: overlapping, or one empty
    column apart with the same start (within a row: a caption above one side) and one's
    rows inside the other's (a "Page" column beside a table of contents). A table that
    starts lower down beside another is a table of its own."""
    if a[0] <= b[2] and b[0] <= a[2] and a[1] <= b[3] and b[1] <= a[3]:
        return True
    left, right = (a, b) if a[1] < b[1] else (b, a)
    if right[1] - left[3] != 2 or abs(a[0] - b[0]) > 1:
        return False
    return (a[0] <= b[0] and b[2] <= a[2]) or (b[0] <= a[0] and a[2] <= b[2])


def _block_of(grid: Grid, box: list[int]) -> Block:
    """The cells of one region's box; empty rows inside it (spacing) are dropped."""
    top, left, bottom, right = box
    numbers, rows = [], []
    for r in range(top, bottom + 1):
        row = grid[r][left : right + 1]
        if any(row):
            numbers.append(r + 1)
            rows.append(row + [""] * (right - left + 1 - len(row)))
    return Block(numbers, rows, first_col=left + 1, last_col=right + 1)


def _drop_empty_columns(rows: Grid) -> Grid:
    width = max(len(r) for r in rows)
    keep = [c for c in range(width) if any(c < len(r) and r[c] for r in rows)]
    return [[r[c] if c < len(r) else "" for c in keep] for r in rows]


# ---------------------------------------------------------------- delimited text


def _extract_delimited(data: bytes, options: ExtractOptions) -> Extraction:
    from ingot.ingest.extract.text import decode_text

    text = decode_text(data)
    text, delimiter = _delimiter_hint(text, options.filename)
    if not text.strip():
        raise ExtractionError("empty", "the file has no text")
    if delimiter is None:
        delimiter = sniff_delimiter(text)
    rows = [[cell.strip() for cell in row] for row in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)]
    elements = _grid_elements(rows, options, page=1, location=None, heading_path=())
    if not elements:
        raise ExtractionError("empty", "the file has no values")
    for element in elements:
        element.meta["delimiter"] = delimiter
    return Extraction(elements=elements, pages=1)


def _delimiter_hint(text: str, filename: str) -> tuple[str, str | None]:
    """Excel's ``sep=;`` first line wins, then a .tsv extension; else sniff."""
    first, _, rest = text.partition("\n")
    match = re.fullmatch(r"\s*sep=(.)\s*", first)
    if match:
        return rest, match.group(1)
    if PurePath(filename).suffix.lower() == ".tsv":
        return text, "\t"
    return text, None


CANDIDATE_DELIMITERS = ",;\t|"


def sniff_delimiter(text: str) -> str:
    """csv.Sniffer on a sample of whole lines; if it cannot decide, the candidate that
    splits the first lines into the most consistent, widest rows."""
    sample = "\n".join(text.splitlines()[:50])
    try:
        return csv.Sniffer().sniff(sample, delimiters=CANDIDATE_DELIMITERS).delimiter
    except csv.Error:
        return _most_consistent(sample.splitlines()[:20])


def _most_consistent(lines: Iterable[str]) -> str:
    lines = [line for line in lines if line.strip()]

    def score(delimiter: str) -> tuple[int, int]:
        counts = [line.count(delimiter) for line in lines]
        if not counts or counts[0] == 0:
            return (0, 0)
        return (sum(c == counts[0] for c in counts), counts[0])

    return max(CANDIDATE_DELIMITERS, key=score)
