"""Extraction fidelity for Office and HTML files (issue 17): Word's automatic numbering,
headers/footers kept out of the body, several tables / merged cells / charts on one
sheet, nested HTML tables without invented separators.

Two kinds of input: documents written here (tests/docgen.py, python-docx / openpyxl), so
every expected string is known by construction and the tests run without shared data;
and docling's test documents from ../shared/data/docs (skipped, with the path, when the
data set is absent), whose expected values were checked against what Word/Excel/a browser
shows and against docling's groundtruth Markdown.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import docgen
from ingot.ingest.elements import Element, ExtractOptions
from ingot.ingest.extract import docx as docx_extract
from ingot.ingest.extract import html as html_extract
from ingot.ingest.extract import xlsx as xlsx_extract
from ingot.ingest.extract.docx_numbering import format_value

DOCLING = Path(__file__).resolve().parents[2] / "shared" / "data" / "docs" / "docling" / "tests" / "data"


def load(relative: str) -> bytes:
    """Bytes of a docling test document; skips (not fails) when the data set is absent."""
    path = DOCLING / relative
    if not path.is_file():
        pytest.skip(f"test document not available: {path} (see shared/data/README.md)")
    return path.read_bytes()


def docx_elements(data: bytes) -> list[Element]:
    return docx_extract.extract(data, ExtractOptions(filename="t.docx")).elements


def xlsx_elements(data: bytes) -> list[Element]:
    return xlsx_extract.extract(data, ExtractOptions(filename="t.xlsx")).elements


def html_elements(data: bytes) -> list[Element]:
    return html_extract.extract(data, ExtractOptions(filename="t.html")).elements


def titles(elements: list[Element]) -> list[str]:
    return [e.text for e in elements if e.kind == "title"]


# ------------------------------------------------------------------------------- DOCX numbering

OUTLINE = [("decimal", "%1", 1), ("decimal", "%1.%2", 1), ("decimal", "%1.%2.%3", 1)]


def test_docx_heading_numbers_follow_word_counters(tmp_path: Path) -> None:
    """Headings numbered through one multi-level list: deeper levels restart when a
    shallower one advances, and the number is part of the heading path."""
    paragraphs = [
        ("Heading 1", 50, 0, "Introduction"),
        ("Heading 2", 50, 1, "Scope"),
        ("Heading 2", 50, 1, "Terms"),
        ("Heading 3", 50, 2, "Title"),
        (None, None, 0, "Body under 1.2.1"),
        ("Heading 1", 50, 0, "Design"),
        ("Heading 2", 50, 1, "Layers"),
    ]
    path = docgen.write_numbered_docx(tmp_path / "n.docx", {50: OUTLINE}, {50: (50, {})}, paragraphs)
    elements = docx_elements(path.read_bytes())
    assert titles(elements) == ["1 Introduction", "1.1 Scope", "1.2 Terms", "1.2.1 Title", "2 Design", "2.1 Layers"]
    (body,) = [e for e in elements if e.text == "Body under 1.2.1"]
    assert body.heading_path == ("1 Introduction", "1.2 Terms", "1.2.1 Title")


def test_docx_list_formats_restart_and_continuation(tmp_path: Path) -> None:
    """lowerLetter / upperRoman / lowerRoman / upperLetter / bullet levels; a second
    instance of the same definition continues the count, one with a startOverride restarts."""
    definitions = {
        60: [("lowerLetter", "%1)", 1), ("upperRoman", "%2.", 1), ("lowerRoman", "(%3)", 1)],
        61: [("bullet", "\uf0b7", 1)],
        62: [("upperLetter", "%1.", 3)],
    }
    instances = {60: (60, {}), 61: (60, {}), 62: (60, {0: 1}), 63: (61, {}), 64: (62, {})}
    paragraphs = [
        (None, 60, 0, "alpha"),
        (None, 60, 1, "roman one"),
        (None, 60, 1, "roman two"),
        (None, 60, 2, "small roman"),
        (None, 60, 0, "beta"),
        (None, None, 0, "An interrupting paragraph."),
        (None, 61, 0, "gamma continues"),
        (None, None, 0, "Another paragraph."),
        (None, 62, 0, "restarted"),
        (None, 63, 0, "a bullet"),
        (None, 64, 0, "starts at C"),
        (None, 64, 0, "then D"),
    ]
    path = docgen.write_numbered_docx(tmp_path / "l.docx", definitions, instances, paragraphs)
    lists = [e.text for e in docx_elements(path.read_bytes()) if e.kind == "list"]
    assert lists == [
        "a) alpha\n  I. roman one\n  II. roman two\n    (i) small roman\nb) beta",
        "c) gamma continues",
        "a) restarted\n- a bullet\nC. starts at C\nD. then D",
    ]


def test_docx_numbered_paragraphs_in_table_cells_keep_numbers(tmp_path: Path) -> None:
    """Requirement tables number their rows with Word lists: the numbers stay in the cells
    and the count goes on through the table and after it."""
    import docx

    path = docgen.write_numbered_docx(tmp_path / "t.docx", {70: [("decimal", "%1.", 1)]}, {70: (70, {})},
                                      [(None, 70, 0, "Before the table")])
    document = docx.Document(str(path))
    table = document.add_table(rows=2, cols=2)
    for row, text in enumerate(("Encrypt data at rest", "Log every access")):
        table.cell(row, 0).text = text
        num_pr = table.cell(row, 0).paragraphs[0]._p.get_or_add_pPr().get_or_add_numPr()
        num_pr.get_or_add_ilvl().val = 0
        num_pr.get_or_add_numId().val = 70
        table.cell(row, 1).text = "must"
    after = document.add_paragraph("After the table")
    num_pr = after._p.get_or_add_pPr().get_or_add_numPr()
    num_pr.get_or_add_ilvl().val = 0
    num_pr.get_or_add_numId().val = 70
    document.save(str(path))
    elements = docx_elements(path.read_bytes())
    assert [e.text for e in elements] == [
        "1. Before the table",
        "| 2. Encrypt data at rest | must |\n|---|---|\n| 3. Log every access | must |",
        "4. After the table",
    ]


def test_number_formats_as_word_writes_them() -> None:
    assert [format_value(n, "lowerLetter") for n in (1, 26, 27, 28)] == ["a", "z", "aa", "bb"]
    assert [format_value(n, "upperRoman") for n in (4, 9, 14, 1994)] == ["IV", "IX", "XIV", "MCMXCIV"]
    assert format_value(3, "lowerRoman") == "iii" and format_value(7, "decimalZero") == "07"
    assert format_value(5, "cardinalText") == "5"  # no cheap rendering: digits, never nothing


def test_docx_real_numbered_headings_and_lists() -> None:
    """unit_test_headers_numbered.docx: Heading styles linked to list levels; a Heading 3
    straight after a Heading 1 shows the skipped level at its start (2.1.1) and the next
    Heading 2 follows it (2.2); a list whose first item is at level 3 of a definition
    starting at 2/3 shows 2.3.1; an invisible-number heading style shows no number."""
    elements = docx_elements(load("docx/sources/unit_test_headers_numbered.docx"))
    assert titles(elements) == [
        "Test Document", "1. Section 1", "1.1. Section 1.1", "1.2. Section 1.2", "1.2.1. Section 1.2.3",
        "2. Section 2", "2.1.1. Section 2.1.1", "2.2. Section 2.1", "REFERENCES",
    ]
    (items,) = [e for e in elements if e.kind == "list"]
    lines = items.text.splitlines()
    assert lines[:4] == [
        "1. Appendix A: Glossary",
        "  1.1. Section A.1",
        "    1.1.1. Detail A.1.1",
        "    2.3.1. Hardware Constraints – Egde Case",
    ]
    assert lines[-1] == "      2.3.8.3. Third sub-item at this level"


def test_docx_real_ordered_and_bulleted_lists() -> None:
    """word_sample.docx: a numbered list reads 1. 2. 3. and a bulleted one keeps "-"."""
    lists = [e.text for e in docx_elements(load("docx/sources/word_sample.docx")) if e.kind == "list"]
    assert "1. Wear sunglasses\n2. Don’t forget to drink water\n3. Use sun cream" in lists
    assert "1. Leaves\n2. Berries\n3. Grain" in lists
    assert "- You can relax and look around\n- Paddle about\n- Enjoy summer warmth" in lists


# ------------------------------------------------------------------------------- DOCX headers/footers


def test_docx_headers_footers_once_and_outside_the_body() -> None:
    """docx_page_header_footer_first_page.docx: four header/footer texts (first-page and
    default variants), each exactly once, in its own element marked with its region,
    never inside a body element."""
    elements = docx_elements(load("docx/sources/docx_page_header_footer_first_page.docx"))
    expected = {
        "REGULAR HEADER (page 2 onward)": "header",
        "FIRST PAGE HEADER (page 1 only)": "header",
        "REGULAR FOOTER (page 2 onward)": "footer",
        "FIRST PAGE FOOTER (page 1 only)": "footer",
    }
    for text, region in expected.items():
        holders = [e for e in elements if text in e.text]
        assert len(holders) == 1 and holders[0].text == text
        assert holders[0].meta["region"] == region and holders[0].kind == "text"
    body = [e for e in elements if "region" not in e.meta]
    assert body and not any("HEADER" in e.text or "FOOTER" in e.text for e in body)
    assert body[0].text == "Page header/footer regression fixture"


def test_docx_page_number_fields_left_out_of_footers(tmp_path: Path) -> None:
    """A footer's PAGE field result is whatever page Word last drew; the footer keeps its
    words, the number goes. word_sample.docx's footer is only a page number: no element."""
    path = docgen.write_numbered_docx(tmp_path / "f.docx", {}, {}, [(None, None, 0, "Body")],
                                      header="ACME confidential", footer="ACME Corp")
    elements = docx_elements(path.read_bytes())
    assert [(e.text, e.meta.get("region")) for e in elements] == [
        ("ACME confidential", "header"), ("Body", None), ("ACME Corp", "footer"),
    ]
    sample = docx_elements(load("docx/sources/word_sample.docx"))
    assert not any(e.meta.get("region") == "footer" for e in sample)


# ------------------------------------------------------------------------------- XLSX


def tables(elements: list[Element]) -> list[Element]:
    return [e for e in elements if e.kind == "table"]


def test_xlsx_tables_side_by_side_and_below_are_separate(tmp_path: Path) -> None:
    """Two tables one empty column apart, a third two empty rows below: three elements,
    each with its own header row and its range."""
    cells = {"A1": "Region", "B1": "Sales", "A2": "North", "B2": 10, "A3": "South", "B3": 12}
    cells |= {"D2": "Product", "E2": "Price", "D3": "Pen", "E3": 1.5, "D4": "Ink", "E4": 4}
    cells |= {"A7": "Year", "B7": "Staff", "A8": 2023, "B8": 41}
    path = docgen.write_sheet_xlsx(tmp_path / "t.xlsx", "Data", cells)
    found = tables(xlsx_elements(path.read_bytes()))
    assert [t.text for t in found] == [
        "| Region | Sales |\n|---|---|\n| North | 10 |\n| South | 12 |",
        "| Product | Price |\n|---|---|\n| Pen | 1.5 |\n| Ink | 4 |",
        "| Year | Staff |\n|---|---|\n| 2023 | 41 |",
    ]
    assert [t.meta["range"] for t in found] == ["A1:B3", "D2:E4", "A7:B8"]
    assert all(t.location == "Data" and t.page == 1 for t in found)


def test_xlsx_spacer_column_and_row_stay_in_one_table(tmp_path: Path) -> None:
    """An empty column inside a table (same first row on both sides) and a single empty
    row are spacing, not a table boundary."""
    cells = {"A1": "Topic", "B1": "Period", "D1": "Page", "A2": "Revenue", "B2": "FY23", "D2": 1}
    cells |= {"A4": "Cash", "B4": "FY23", "D4": 2}
    path = docgen.write_sheet_xlsx(tmp_path / "s.xlsx", "Index", cells)
    (table,) = tables(xlsx_elements(path.read_bytes()))
    assert table.text == "| Topic | Period | Page |\n|---|---|---|\n| Revenue | FY23 | 1 |\n| Cash | FY23 | 2 |"


def test_xlsx_merged_values_repeat_in_every_cell(tmp_path: Path) -> None:
    """A vertical merge repeats its value down, a horizontal one across; a title merged
    over the table's width is a caption, said once."""
    cells = {"A1": "Quarterly report", "A2": "Region", "B2": "Q1", "C2": "Q2"}
    cells |= {"A3": "North", "B3": 5, "C3": 6, "B4": 7, "C4": 8, "A5": "South", "B5": 9}
    path = docgen.write_sheet_xlsx(tmp_path / "m.xlsx", "Report", cells, merges=["A1:C1", "A3:A4", "B5:C5"])
    elements = xlsx_elements(path.read_bytes())
    assert elements[0].kind == "text" and elements[0].text == "Quarterly report"
    (table,) = tables(elements)
    assert table.text.splitlines()[2:] == ["| North | 5 | 6 |", "| North | 7 | 8 |", "| South | 9 | 9 |"]


def test_xlsx_real_sheet_tables_merges_and_charts() -> None:
    """xlsx_01.xlsx: Sheet2 holds three tables (A1:D9, G5:I9 beside it, C14:E18 below)
    and two charts (their cached series as tables); Sheet3 two tables whose merged
    cells repeat (docling's groundtruth agrees on every cell)."""
    elements = xlsx_elements(load("xlsx/sources/xlsx_01.xlsx"))
    sheet2 = [e for e in elements if e.location == "Sheet2"]
    assert [t.meta["range"] for t in tables(sheet2)] == ["A1:D9", "G5:I9", "C14:E18"]
    charts = [e for e in sheet2 if e.kind == "chart"]
    assert [c.meta["anchor"] for c in charts] == ["J5", "E22"]  # top to bottom
    line, scatter = charts
    assert line.text == "'col-3'\n\n|  | col-3 |\n|---|---|\n| 1 | 3 |\n| 2 | 6 |\n| 3 | 9 |\n| 4 | 12 |"
    assert scatter.meta["chart_type"] == "XY_SCATTER"
    assert scatter.text.splitlines()[2] == "| x | col-2 | col-3 | col-4 |"
    assert scatter.text.endswith("| 8 | 16 | 24 | 32 |")
    first, second = tables([e for e in elements if e.location == "Sheet3"])
    assert first.text.splitlines() == [
        "| first | header | header |", "|---|---|---|", "| first | second | third |",
        "| 1 | 2 | 3 |", "| 3 | 4 | 5 |", "| 3 | 6 | 7 |", "| 8 | 9 | 9 |", "| 10 | 9 | 9 |",
    ]
    assert second.text.splitlines()[0] == "| first (f) | header (f) | header (f) |"
    assert second.meta["range"] == "E7:G13"


def test_xlsx_chart_without_cached_values_reads_the_sheet(tmp_path: Path) -> None:
    """openpyxl writes charts with references only; the values come from the sheet."""
    rows = [["Quarter", "Ducks", "Geese"], ["Q1", 10, 4], ["Q2", 12.5, 6], ["Q3", 7, 9]]
    path = docgen.write_chart_xlsx(tmp_path / "c.xlsx", "Survey", rows, "Birds counted", "F2")
    elements = xlsx_elements(path.read_bytes())
    (chart,) = [e for e in elements if e.kind == "chart"]
    assert chart.text.splitlines() == [
        "Birds counted", "", "|  | Ducks | Geese |", "|---|---|---|", "| Q1 | 10 | 4 |", "| Q2 | 12.5 | 6 |", "| Q3 | 7 | 9 |",
    ]
    assert chart.meta["anchor"] == "F2" and chart.location == "Survey" and chart.page == 1
    assert elements.index(chart) == len(elements) - 1  # after the sheet's tables


def test_xlsx_damaged_chart_or_drawing_loses_only_the_charts() -> None:
    import io
    import zipfile

    source = zipfile.ZipFile(io.BytesIO(load("xlsx/sources/xlsx_01.xlsx")))
    for broken, charts in (("xl/charts/chart1.xml", 1), ("xl/drawings/drawing1.xml", 0)):
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as out:
            for info in source.infolist():
                out.writestr(info.filename, b"<not xml" if info.filename == broken else source.read(info))
        elements = xlsx_elements(buffer.getvalue())
        assert len(tables(elements)) == 6 and sum(e.kind == "chart" for e in elements) == charts


# ------------------------------------------------------------------------------- HTML


def test_html_nested_table_reads_without_invented_separators() -> None:
    """table_06.html: tables nested three deep inside a cell read as their text, in order."""
    elements = html_elements(load("html/sources/table_06.html"))
    (table,) = tables(elements)
    cell = "A1 B1 C1 D1 I II III IV V E1 E2 E3 E4 VII VIII F1"
    assert table.text == f"| A | B |\n|---|---|\n| {cell} | 2... |"
    assert "/" not in table.text and ";" not in table.text


def test_html_lists_in_cells_keep_markers_and_ol_numbers(tmp_path: Path) -> None:
    page = b"""<html><body><table>
      <tr><th>Duck</th><th>Where</th><th>Steps</th></tr>
      <tr><td>Teal</td><td><ul><li>Pond</li><li>Marsh</li></ul></td>
          <td><ol><li>Fly south</li><li>Nest</li></ol></td></tr>
      <tr><td>Inner</td><td><table><tr><td>3</td><td>4</td></tr><tr><td>5</td><td>6</td></tr></table></td><td>x</td></tr>
    </table>
    <ol start="3"><li>third</li><li>fourth</li></ol>
    <ol type="a"><li>first</li><li value="5">fifth</li><li>sixth</li></ol>
    <ol type="I" reversed><li>two</li><li>one</li></ol></body></html>"""
    elements = html_elements(page)
    (table,) = tables(elements)
    assert "| Teal | - Pond - Marsh | 1. Fly south 2. Nest |" in table.text
    assert "| Inner | 3 4 5 6 | x |" in table.text  # not "3 / 4; 5 / 6": that reads as fractions
    lists = [e.text for e in elements if e.kind == "list"]
    assert lists == ["3. third\n4. fourth", "a. first\ne. fifth\nf. sixth", "II. two\nI. one"]


def test_docx_nested_table_without_invented_separators(tmp_path: Path) -> None:
    import docx

    document = docx.Document()
    outer = document.add_table(rows=1, cols=2)
    outer.cell(0, 0).text = "Ratio"
    inner = outer.cell(0, 1).add_table(rows=2, cols=2)
    for (r, c), value in {(0, 0): "3", (0, 1): "4", (1, 0): "5", (1, 1): "6"}.items():
        inner.cell(r, c).text = value
    path = tmp_path / "nested.docx"
    document.save(str(path))
    (table,) = tables(docx_elements(path.read_bytes()))
    assert table.text == "| Ratio | 3 4 5 6 |\n|---|---|"


def test_docx_header_footer_rendered_as_comments_outside_the_body(tmp_path: Path) -> None:
    """`ingot extract`'s Markdown (render.to_markdown, also what benchmarks/extraction.py
    scores) shows a page header/footer as `<!-- header: ... -->` / `<!-- footer: ... -->`
    lines: visible to whoever debugs the extraction, but not body text (the benchmark drops
    comment lines; docling's groundtruth has no header/footer). A "-->" in the header must
    not end its comment early."""
    import hashlib

    from ingot.ingest.render import to_markdown
    from ingot.ingest.runner import FileResult

    path = docgen.write_numbered_docx(
        tmp_path / "hf.docx", {}, {},
        [("Heading 1", None, 0, "Quarterly report"), (None, None, 0, "Revenue grew in every region.")],
        header="ACME Corp --> Confidential", footer="Page footer text",
    )
    data = path.read_bytes()
    extraction = docx_extract.extract(data, ExtractOptions(filename="hf.docx"))
    result = FileResult(filename="hf.docx", size=len(data), content_hash=hashlib.sha256(data).hexdigest(),
                        format="docx", pages=extraction.pages, elements=extraction.elements)
    lines = to_markdown(result).splitlines()
    header, footer = "<!-- header: ACME Corp -- > Confidential -->", "<!-- footer: Page footer text -->"
    # each said once (the footer's PAGE field value "7" left out), header before the body,
    # footer after it
    assert [line for line in lines if line.startswith(("<!-- header:", "<!-- footer:"))] == [header, footer]
    assert lines.index(header) < lines.index("## Quarterly report") < lines.index(footer)
    assert lines.index("Revenue grew in every region.") < lines.index(footer)
    body = [line for line in lines[1:] if not line.startswith("<!--")]
    assert "Revenue grew in every region." in body
    assert not any("ACME" in line or "Confidential" in line or "footer text" in line for line in body)
