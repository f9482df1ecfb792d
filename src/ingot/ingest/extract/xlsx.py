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
* Leading/trailing empty rows and columns are trimmed, fully empty columns and single
  empty spacer rows inside a block are dropped. Leading one-value rows above the first
  row with several values ("3.1 Operating segments") are captions: they become a ``text``
  element before the table instead of posing as its header. Two or more consecutive empty rows start a
  new block (a separate table), because that is how people lay out several tables on one
  sheet, and each block then gets its own header row.
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
from collections.abc import Iterable, Iterator
from pathlib import PurePath
from typing import Any

from ingot.ingest.elements import Element, Extraction, ExtractionError, ExtractOptions, split_table

Grid = list[list[str]]

MIN_BLOCK_GAP = 2  # this many empty rows in a row separate two tables on a sheet
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
        sheets = list(workbook.worksheets)
        for number, sheet in enumerate(sheets, start=1):
            if getattr(sheet, "sheet_state", "visible") != "visible":
                continue
            try:
                grid = _sheet_grid(sheet)
            except ExtractionError:
                raise
            except Exception as exc:  # damaged sheet XML surfaces only while streaming rows
                message = f"could not read sheet {sheet.title!r}: {type(exc).__name__}: {exc}"
                raise ExtractionError("corrupt", message) from exc
            elements += _grid_elements(grid, options, page=number, location=sheet.title, heading_path=(sheet.title,))
    finally:
        workbook.close()
    if not elements:
        raise ExtractionError("empty", "no visible sheet of the workbook has a value")
    return Extraction(elements=elements, pages=len(sheets))


def _sheet_grid(sheet: Any) -> Grid:
    """All rows of a sheet as display strings (ragged; missing rows come back empty)."""
    sheet.reset_dimensions()
    return [[format_cell(cell.value, getattr(cell, "number_format", None)) for cell in row] for row in sheet.iter_rows()]


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


def _grid_elements(
    grid: Grid,
    options: ExtractOptions,
    *,
    page: int,
    location: str | None,
    heading_path: tuple[str, ...],
) -> list[Element]:
    """Blocks of a grid as table elements, each split to at most N data rows."""
    out: list[Element] = []
    for block_index, (numbers, rows) in enumerate(_blocks(grid)):
        rows = _drop_empty_columns(rows)
        lead = _title_rows(rows)
        if lead:
            out.append(
                Element(
                    kind="text",
                    text="\n".join(" ".join(" ".join(c.split()) for c in row if c) for row in rows[:lead]),
                    page=page,
                    location=location,
                    heading_path=heading_path,
                    meta={"rows": [numbers[0], numbers[lead - 1]], "block": block_index},
                )
            )
            if lead == len(rows):
                continue
            numbers, rows = numbers[lead:], _drop_empty_columns(rows[lead:])
        for part in split_table(rows, options.table_rows_per_element):
            data_rows = numbers[part.first_row : part.first_row + len(part.rows) - 1] or numbers[:1]
            meta = {
                "header_row": numbers[0],  # 1-based row numbers in the sheet / file
                "rows": [data_rows[0], data_rows[-1]],
                "block": block_index,
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
    with a single value above the first row with several. A lone value is all caption."""
    filled = [sum(1 for c in row if c) for row in rows]
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
