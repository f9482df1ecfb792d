"""Spreadsheet, HTML, Markdown and plain-text extraction on real documents (docling's and
unstructured's test files, used in place) and on small files of our own."""

from __future__ import annotations

import io
import time
import zipfile
from pathlib import Path

import pytest

from ingot.ingest.elements import Element, ExtractionError, ExtractOptions
from ingot.ingest.extract import extract_bytes, html, text, xlsx
from ingot.ingest.links import link_text

DOCS = Path(__file__).resolve().parents[2] / "shared" / "data" / "docs"
DOCLING = DOCS / "docling" / "tests" / "data"
UNSTRUCTURED = DOCS / "unstructured" / "example-docs"


def read(path: Path) -> bytes:
    if not path.exists():
        pytest.skip(f"test document not available: {path} (shared data is not checked out)")
    return path.read_bytes()


def by_location(elements: list[Element], location: str) -> list[Element]:
    return [e for e in elements if e.location == location]


def header_lines(table: str) -> str:
    return "\n".join(table.split("\n")[:2])


# ---------------------------------------------------------------- xlsx


def test_xlsx_sheets_become_tables_with_sheet_provenance() -> None:
    result = xlsx.extract(read(DOCLING / "xlsx/sources/xlsx_01.xlsx"), ExtractOptions(filename="xlsx_01.xlsx"))
    assert result.pages == 4
    sheet1 = by_location(result.elements, "Sheet1")
    assert [e.kind for e in sheet1] == ["table"]
    assert sheet1[0].page == 1 and sheet1[0].heading_path == ("Sheet1",)
    assert sheet1[0].text.startswith("| first | second | third |\n|---|---|---|\n| 1 | 5 | 9 |")
    assert sheet1[0].text.endswith("| 6 | 0 | -6 |")
    # Sheet2 holds three tables separated by empty columns/rows (each its own element, not
    # one wide table glued together) and two charts whose series become tables.
    sheet2 = by_location(result.elements, "Sheet2")
    assert {e.page for e in sheet2} == {2} and len(sheet2) == 5
    tables2 = [e for e in sheet2 if e.kind == "table"]
    assert [t.meta["range"] for t in tables2] == ["A1:D9", "G5:I9", "C14:E18"]
    assert [e.kind for e in sheet2].count("chart") == 2
    assert tables2[0].text.startswith("| col-1 | col-2 | col-3 | col-4 |\n|---|---|---|---|\n| 1 | 2 | 3 | 4 |")
    for table in tables2[1:]:
        assert table.text.startswith("| col-1 | col-2 | col-3 |\n") and table.text.endswith("| 4 | 8 | 12 |")
    # Sheet4 is hidden in the workbook.
    assert not by_location(result.elements, "Sheet4")


def test_xlsx_dates_and_split_parts_repeat_the_header() -> None:
    data = read(DOCLING / "xlsx/sources/xlsx_02_sample_sales_data.xlsm")
    result = xlsx.extract(data, ExtractOptions(filename="sales.xlsm", table_rows_per_element=6))
    tables = [e for e in result.elements if e.kind == "table"]
    assert len(tables) == 4  # 20 data rows in parts of 6
    header = "| Product | Date | Quantity | Revenue |\n|---|---|---|---|"
    assert all(header_lines(t.text) == header for t in tables)
    rows = [line for t in tables for line in t.text.split("\n")[2:]]
    assert len(rows) == 20 and len(set(rows)) == 20
    assert rows[0] == "| Widget A | 2024-01-01 | 5 | 5000 |"  # a date, not "2024-01-01 00:00:00"
    assert rows[-1] == "| Widget D | 2024-01-20 | 8 | 8900 |"
    assert [t.meta["rows"] for t in tables] == [[2, 7], [8, 13], [14, 19], [20, 21]]
    assert all(t.location == "SalesData" and t.page == 1 for t in tables)


def test_xlsx_number_formats_and_caption_rows() -> None:
    data = read(UNSTRUCTURED / "2023-half-year-analyses-by-segment.xlsx")
    result = xlsx.extract(data, ExtractOptions(filename="segments.xlsx"))
    assert result.pages == 5
    reconciliation = by_location(result.elements, "Reconciliation 30 06 2023")
    assert {e.page for e in reconciliation} == {5}
    table = next(e for e in reconciliation if e.kind == "table")
    assert "| Operating profit | 7,262 | 6,619 |" in table.text  # #,##0 -> thousands separator
    assert header_lines(table.text).startswith("| In millions of CHF | January–June 2023 | January–June 2022 |")
    first = by_location(result.elements, "OS-Rev.and results 30 06 2023")
    caption = first[0]
    assert caption.kind == "text" and "3.1 Operating segments" in caption.text
    assert any("| Zone NA | 12,553 | 2,713 | 2,632 | -81 |" in e.text for e in first)


def test_xlsx_parts_repeat_the_title_row_and_the_column_names_below_it() -> None:
    """The segment table's header is two rows ("In millions of CHF ... January-June 2023"
    over "Sales (a) | Underlying ..."): a part that repeated only the first named no column."""
    data = read(UNSTRUCTURED / "2023-half-year-analyses-by-segment.xlsx")
    result = xlsx.extract(data, ExtractOptions(filename="segments.xlsx", table_rows_per_element=4))
    tables = [e for e in by_location(result.elements, "OS-Rev.and results 30 06 2023") if e.kind == "table"]
    assert len(tables) == 7  # two tables (2023, 2022) of 10 and 15 rows (5 footnotes), in parts of 4
    for table in tables:
        lines = table.text.split("\n")
        assert "January–June 202" in lines[0] and "| Sales (a) | Underlying Trading operating profit (b) |" in lines[2]
    rows_2023 = [line for t in tables[:3] for line in t.text.split("\n")[3:]]
    assert len(rows_2023) == 10 and rows_2023[0].startswith("| Zone NA | 12,553 |")
    assert [t.meta["rows"] for t in tables[:3]] == [[9, 12], [13, 16], [17, 18]]


def test_xlsx_values_in_the_right_sheet_of_another_workbook() -> None:
    result = xlsx.extract(read(UNSTRUCTURED / "vodafone.xlsx"), ExtractOptions(filename="vodafone.xlsx"))
    table = next(e for e in result.elements if e.kind == "table")
    assert table.location == "Index" and table.heading_path == ("Index",)
    assert header_lines(table.text).startswith("| Topic | Period |")
    assert "| Quarterly revenue | Nine quarters to 30 June 2023 |" in table.text


def test_number_formatting_has_no_float_noise() -> None:
    assert xlsx.format_number(0.1 + 0.2) == "0.3"
    assert xlsx.format_number(0.125, "0.0%") == "12.5%"
    assert xlsx.format_number(1234567.891, "#,##0.00") == "1,234,567.89"
    assert xlsx.format_number(3.0) == "3"


def test_corrupt_workbook_raises_corrupt() -> None:
    data = read(DOCLING / "xlsx/sources/xlsx_01.xlsx")
    with pytest.raises(ExtractionError) as truncated:
        xlsx.extract(data[: len(data) // 2], ExtractOptions(filename="broken.xlsx"))
    assert truncated.value.reason == "corrupt"
    # A well-formed zip whose workbook part is garbage: detected as xlsx, fails as corrupt.
    source = zipfile.ZipFile(io.BytesIO(data))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as damaged:
        for info in source.infolist():
            body = b"<workbook><sheets><sheet" if info.filename == "xl/workbook.xml" else source.read(info)
            damaged.writestr(info.filename, body)
    with pytest.raises(ExtractionError) as garbage:
        extract_bytes(buffer.getvalue(), ExtractOptions(filename="broken.xlsx"))
    assert garbage.value.reason == "corrupt"


# ---------------------------------------------------------------- csv


def test_csv_semicolon_latin1_is_decoded_and_split(tmp_path: Path) -> None:
    path = tmp_path / "kunden.csv"
    rows = ["Name;Stadt;Betrag", "Müller;Köln;12,50", "Schröder;Düsseldorf;7,10", "Garçon;Besançon;3,00"]
    path.write_bytes("\r\n".join(rows).encode("latin-1"))
    fmt, result = extract_bytes(path.read_bytes(), ExtractOptions(filename=path.name, table_rows_per_element=2))
    assert fmt == "csv" and result.pages == 1
    assert [e.kind for e in result.elements] == ["table", "table"]
    first, second = result.elements
    assert first.text == (
        "| Name | Stadt | Betrag |\n|---|---|---|\n| Müller | Köln | 12,50 |\n| Schröder | Düsseldorf | 7,10 |"
    )
    assert second.text == "| Name | Stadt | Betrag |\n|---|---|---|\n| Garçon | Besançon | 3,00 |"
    assert first.page == 1 and first.meta["delimiter"] == ";"


def test_tsv_and_quoted_commas(tmp_path: Path) -> None:
    fmt, result = extract_bytes(b"city\tnote\nParis\t\"a, b\"\n", ExtractOptions(filename="notes.tsv"))
    assert fmt == "csv" and result.elements[0].text.endswith("| Paris | a, b |")
    _, result = extract_bytes(b'id,name,amount\n1,"Smith, J",3.5\n2,Lee,4\n', ExtractOptions(filename="x.csv"))
    assert result.elements[0].text.split("\n")[2] == "| 1 | Smith, J | 3.5 |"


# ---------------------------------------------------------------- html


def test_10k_html_tables_and_speed() -> None:
    data = read(UNSTRUCTURED / "example-10k.html")
    started = time.perf_counter()
    result = html.extract(data, ExtractOptions(filename="example-10k.html"))
    seconds = time.perf_counter() - started
    print(f"example-10k.html: {len(result.elements)} elements in {seconds:.2f}s")
    assert seconds < 15
    elements = result.elements
    tables = [e for e in elements if e.kind == "table" and e.meta["part"] == 0]
    layout = sum(e.meta.get("layout_table", 0) for e in elements)
    # 84 <table>s: 46 data tables, 37 one-row bullet/footnote layout tables, 1 one-column box.
    assert 40 <= len(tables) <= 84
    assert 80 <= len(tables) + layout <= 84
    inventory = next(e for e in tables if "Raw materials and component parts" in e.text)
    assert "| Raw materials and component parts | $413,320 | $300,244 |" in inventory.text
    assert "| Inventory | $770,248 | $668,525 |" in inventory.text
    assert any("| Net income (loss) | $2,111,812 | $(2,208,887) |" in e.text for e in tables)
    bullet = "- Expand our portfolio of services, products and technologies;"
    assert any(e.kind == "list" and bullet in e.text for e in elements)
    assert all(e.page is None for e in elements)
    assert not any("0000013156" in link_text(e.text) for e in elements)  # hidden inline-XBRL header dropped


def test_html_headings_give_heading_path_and_nav_is_dropped() -> None:
    result = html.extract(read(DOCLING / "html/sources/wiki_duck.html"), ExtractOptions(filename="wiki_duck.html"))
    titles = {e.text: e for e in result.elements if e.kind == "title"}
    assert titles["Duck"].heading_path == () and titles["Duck"].meta["level"] == 1
    assert titles["Feeding"].heading_path == ("Duck", "Behaviour")
    after_feeding = result.elements[result.elements.index(titles["Feeding"]) + 1]
    assert after_feeding.kind == "text" and after_feeding.heading_path == ("Duck", "Behaviour", "Feeding")
    assert "Contents" not in titles  # the table of contents lives in <nav>
    assert not any("function(" in e.text for e in result.elements)  # scripts dropped


def test_a_filing_without_h_tags_has_its_bold_paragraphs_as_headings() -> None:
    """The 10-K marks "ITEM 2. PROPERTIES" by <p style="font-weight:bold"> only; the
    paragraph under it carries it as its heading path, so the item is a section."""
    elements = html.extract(read(UNSTRUCTURED / "example-10k.html"), ExtractOptions(filename="example-10k.html")).elements
    titles = [e.text for e in elements if e.kind == "title"]
    assert {"ITEM 2. PROPERTIES", "ITEM 3. LEGAL PROCEEDINGS", "NOTE 9. LEASES"} <= set(titles), titles
    office = next(e for e in elements if "approximately 14,000 square feet" in e.text)
    assert office.kind == "text" and office.heading_path == ("ITEM 2. PROPERTIES",)
    # a bold run-in lead ("Product Strategy." then prose, in one paragraph) is no heading
    assert not any(t.startswith("Product Strategy") for t in titles)


@pytest.mark.parametrize(("page", "titles"), [
    (b"<p><b>Leave</b></p><p>Ask your lead.</p><p style='font-weight:700'>Travel <span>costs</span></p><p>Book early.</p>",
     ["Leave", "Travel costs"]),
    # partly bold, too long, or bold made normal inside: text
    (b"<p><b>Leave</b> is granted</p><p><b>" + b"word " * 13 + b"</b></p>"
     b"<p style='font-weight:bold'>Rules <span style='font-weight:normal'>apply</span></p>", []),
    # a page with real headings keeps its bold paragraphs as text
    (b"<h2>Policy</h2><p><b>Leave</b></p><p>Ask your lead.</p>", ["Policy"]),
])
def test_bold_paragraphs_are_headings_only_on_a_page_without_h_tags(page: bytes, titles: list[str]) -> None:
    elements = html.extract(b"<html><body>" + page + b"</body></html>", ExtractOptions(filename="p.html")).elements
    assert [e.text for e in elements if e.kind == "title"] == titles
    if titles == ["Leave", "Travel costs"]:
        assert elements[-1].heading_path == ("Travel costs",)


def test_html_nested_and_rich_table_cells() -> None:
    nested = html.extract(read(DOCLING / "html/sources/table_06.html"), ExtractOptions(filename="t.html")).elements
    assert [e.kind for e in nested] == ["title", "text", "table", "text"]
    # nested tables read as their cells' text, without invented "/" and ";"
    assert nested[2].text.startswith("| A | B |\n|---|---|\n| A1 B1 C1 D1 I II III")
    assert nested[2].heading_path == ("Header",) and nested[3].text == "After table"
    rich = html.extract(read(DOCLING / "html/sources/html_rich_table_cells.html"), ExtractOptions(filename="r.html"))
    tables = [e.text for e in rich.elements if e.kind == "table"]
    # lists in a cell keep their markers; an ordered list shows the numbers a browser shows
    assert "| Teal | - Pond - Marsh - Riverbank | 1. Fly south in winter 2. Build nest on ground |" in tables[0]
    assert tables[2].startswith("| Action |")
    assert any(e.text == "Duck family tree (simplified)" for e in rich.elements)


def test_html_spans_are_expanded(tmp_path: Path) -> None:
    page = b"""<html><body><h2>Plan</h2><table>
      <tr><th>Region</th><th colspan="2">2024</th></tr>
      <tr><td rowspan="2">North</td><td>Q1</td><td>10</td></tr>
      <tr><td>Q2</td><td>12</td></tr></table>
      <ul><li>one<ul><li>inner</li></ul></li><li>two</li></ul><pre>a  b
c</pre><script>var x = 1;</script></body></html>"""
    fmt, result = extract_bytes(page, ExtractOptions(filename="plan.html"))
    assert fmt == "html"
    kinds = [e.kind for e in result.elements]
    assert kinds == ["title", "table", "list", "text"]
    assert result.elements[1].text == "| Region | 2024 | 2024 |\n|---|---|---|\n| North | Q1 | 10 |\n| North | Q2 | 12 |"
    assert result.elements[2].text == "- one\n  - inner\n- two"
    assert result.elements[3].text == "a  b\nc" and result.elements[3].heading_path == ("Plan",)


def test_html_outbound_links_keep_their_targets() -> None:
    page = b"""<html><body><p>File it on <a href="https://example.org/forms/a(1).pdf">the <b>form</b> page</a>,
      see <a href="#notes">the notes</a> and <a href="javascript:void(0)">menu</a>,
      or <a href="https://example.org">https://example.org</a>.</p>
      <ul><li><a href="/wiki/Mallard">Mallard</a> [x]</li></ul>
      <table><tr><th>Bird</th><th>Page</th></tr><tr><td>Teal</td><td><a href="teal page.html">Teal</a></td></tr></table>
      <h2><a href="/wiki/Duck">Duck</a> facts</h2><p>After.</p></body></html>"""
    elements = html.extract(page, ExtractOptions(filename="links.html")).elements
    assert elements[0].text == ("File it on [the form page](https://example.org/forms/a(1).pdf), see the notes "
                                "and menu, or https://example.org.")
    assert elements[1].text == "- [Mallard](/wiki/Mallard) [x]"
    assert "| Teal | [Teal](<teal page.html>) |" in elements[2].text
    assert elements[3].kind == "title" and elements[3].text == "Duck facts"  # headings hold words only
    assert elements[4].heading_path == ("Duck facts",)


# ---------------------------------------------------------------- markdown and text


MARKDOWN = """# Travel policy

Book trains when the trip is **under 4 hours**; see [the portal](https://example.org).

## Allowances

- Meals: 30 EUR per day
- Hotels
  - up to 120 EUR in cities
  - up to 90 EUR elsewhere

| Country | Per diem |
|---------|---------:|
| France  | 35 |
| Spain   | 30 |
| Italy   | 32 |

```yaml
currency: EUR
```

# Approvals

Managers approve within 3 days.
"""


def test_markdown_structure(tmp_path: Path) -> None:
    path = tmp_path / "travel.md"
    path.write_text(MARKDOWN, encoding="utf-8")
    fmt, result = extract_bytes(path.read_bytes(), ExtractOptions(filename=path.name, table_rows_per_element=2))
    assert fmt == "markdown" and result.pages is None
    kinds = [(e.kind, e.heading_path) for e in result.elements]
    assert kinds == [
        ("title", ()),
        ("text", ("Travel policy",)),
        ("title", ("Travel policy",)),
        ("list", ("Travel policy", "Allowances")),
        ("table", ("Travel policy", "Allowances")),
        ("table", ("Travel policy", "Allowances")),
        ("text", ("Travel policy", "Allowances")),
        ("title", ()),
        ("text", ("Approvals",)),
    ]
    elements = result.elements
    assert elements[1].text == "Book trains when the trip is under 4 hours; see the portal."
    assert elements[3].text == "- Meals: 30 EUR per day\n- Hotels\n  - up to 120 EUR in cities\n  - up to 90 EUR elsewhere"
    assert elements[4].text == "| Country | Per diem |\n|---|---|\n| France | 35 |\n| Spain | 30 |"
    assert elements[5].text == "| Country | Per diem |\n|---|---|\n| Italy | 32 |"
    assert elements[6].text == "currency: EUR" and elements[6].meta["language"] == "yaml"
    assert elements[2].meta == {"level": 2, "line": 5}


def test_plain_text_paragraphs_and_encoding(tmp_path: Path) -> None:
    body = "Première ligne du paragraphe\nsuite du paragraphe.\n\n\n   Deuxième paragraphe, déjà là.\n"
    path = tmp_path / "notes.txt"
    path.write_bytes(body.encode("cp1252"))
    fmt, result = extract_bytes(path.read_bytes(), ExtractOptions(filename=path.name))
    assert fmt == "text"
    assert [e.text for e in result.elements] == [
        "Première ligne du paragraphe\nsuite du paragraphe.",
        "Deuxième paragraphe, déjà là.",
    ]
    assert [e.meta["line"] for e in result.elements] == [1, 5]
    assert all(e.kind == "text" and e.page is None for e in result.elements)
    utf16 = text.extract("Grüße aus Zürich".encode("utf-16"), ExtractOptions(filename="x.txt"))
    assert utf16.elements[0].text == "Grüße aus Zürich"


def test_blank_text_is_empty() -> None:
    with pytest.raises(ExtractionError) as error:
        text.extract(b" \n\n\t\n", ExtractOptions(filename="blank.txt"))
    assert error.value.reason == "empty"
