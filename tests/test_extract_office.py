"""Word and PowerPoint extraction on real documents from the docling, unstructured and
python-pptx test suites (../shared/data/docs, used in place). Assertions name content
that is really in those files, checked against docling's groundtruth Markdown where it
exists, so a regression in ordering, merging or provenance shows up as a wrong value."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest

from ingot.ingest.elements import Element, ExtractionError, ExtractOptions
from ingot.ingest.extract import docx as docx_extract
from ingot.ingest.extract import extract_bytes
from ingot.ingest.extract import pptx as pptx_extract

DOCS = Path(__file__).resolve().parents[2] / "shared" / "data" / "docs"
DOCLING = "docling/tests/data"
UNSTRUCTURED = "unstructured/example-docs"
PYTHON_PPTX = "python-pptx/features/steps/test_files"


def load(relative: str) -> bytes:
    """Bytes of a shared test document; skips (not fails) when the data set is absent."""
    path = DOCS / relative
    if not path.is_file():
        pytest.skip(f"test document not available: {path} (see shared/data/README.md)")
    return path.read_bytes()


def docx_elements(relative: str, **options) -> list[Element]:
    return docx_extract.extract(load(relative), ExtractOptions(filename=Path(relative).name, **options)).elements


def pptx_elements(relative: str, **options) -> list[Element]:
    return pptx_extract.extract(load(relative), ExtractOptions(filename=Path(relative).name, **options)).elements


def find(elements: list[Element], needle: str, kind: str | None = None) -> list[Element]:
    return [e for e in elements if needle in e.text and (kind is None or e.kind == kind)]


# ------------------------------------------------------------------------------- docx


def test_docx_table_cells_and_merges() -> None:
    """word_tables.docx: horizontal spans repeat per column, vertical spans repeat per row,
    a late-starting row keeps its leading empty column (docling groundtruth agrees)."""
    elements = docx_elements(f"{DOCLING}/docx/sources/word_tables.docx")
    tables = [e for e in elements if e.kind == "table"]
    assert len(tables) == 7
    assert "| Cell 1.0 | Merged Cell 1.1 1.2 | Merged Cell 1.1 1.2 |" in tables[1].text
    vertical = tables[3].text
    assert "| Cell 1.0 | Merged Cell 1.1 2.1 | Cell 1.2 |" in vertical
    assert "| Cell 2.0 | Merged Cell 1.1 2.1 | Cell 2.2 |" in vertical
    assert "|  | Cell 1.1 |" in tables[5].text
    assert all(t.page is None for t in tables)


def test_docx_known_cell_and_heading_path() -> None:
    """word_sample.docx: the duck food table and the heading hierarchy around it."""
    elements = docx_elements(f"{DOCLING}/docx/sources/word_sample.docx")
    (table,) = [e for e in elements if e.kind == "table"]
    assert "| Berries | Blueberry, Strawberry, Cranberry | 150 |" in table.text
    assert table.text.splitlines()[0] == "|  | Food | Calories per portion |"

    (heading,) = find(elements, "Let’s eat", kind="title")
    assert heading.heading_path == ("Swimming in the lake", "Let’s swim!")
    (after,) = find(elements, "After we had a good day of swimming in the lake")
    assert after.kind == "text"
    assert after.heading_path == ("Swimming in the lake", "Let’s swim!", "Let’s eat")
    assert table.heading_path[-1] == "Let’s eat"
    assert elements.index(heading) < elements.index(after) < elements.index(table)


def test_docx_lists_grouped() -> None:
    elements = docx_elements(f"{DOCLING}/docx/sources/word_sample.docx")
    (bullets,) = find(elements, "Paddle about", kind="list")
    assert bullets.text == "- You can relax and look around\n- Paddle about\n- Enjoy summer warmth"
    assert bullets.heading_path == ("Swimming in the lake", "Let’s swim!")


def test_docx_heading_levels_pop_correctly() -> None:
    """unit_test_headers_numbered.docx: a level-3 heading after level 4 goes back up, and
    headings and list items carry the numbers Word shows (from numbering.xml; docling's
    groundtruth has the same: a level skipped under "2" counts as 1, so "2.1.1" comes
    before "2.2")."""
    elements = docx_elements(f"{DOCLING}/docx/sources/unit_test_headers_numbered.docx")
    deep = find(elements, "Paragraph 1.2.3.1")
    assert deep and deep[0].heading_path == ("Test Document", "1. Section 1", "1.2. Section 1.2", "1.2.1. Section 1.2.3")
    (second,) = find(elements, "Paragraph 2.1.2")
    assert second.heading_path == ("Test Document", "2. Section 2", "2.2. Section 2.1")
    (nested,) = find(elements, "Detail A.1.1", kind="list")
    assert "      2.3.8.1. First sub-item at this level" in nested.text.splitlines()


def test_docx_body_order_and_layout_table_unwrapped() -> None:
    """tablecell.docx: a list inside a one-cell frame table, then text, a table, text."""
    elements = docx_elements(f"{DOCLING}/docx/sources/tablecell.docx")
    assert [e.kind for e in elements] == ["list", "text", "table", "text"]
    assert elements[0].text == "- Hello world1\n- Hello2"
    assert elements[1].text == "Some text before"
    assert "| D | E | F |" in elements[2].text
    assert elements[3].text == "Some text after"


def test_docx_nested_table_flattened_into_cell() -> None:
    elements = docx_elements(f"{UNSTRUCTURED}/docx-tables.docx")
    tables = [e for e in elements if e.kind == "table"]
    assert len(tables) == 3  # the nested table is not emitted on its own
    # the nested table's cells read as their text, with no invented " / " or "; "
    assert "| d | e f g&t h | i |" in tables[1].text


def test_docx_headers_footers_once() -> None:
    elements = docx_elements(f"{DOCLING}/docx/sources/docx_page_header_footer_first_page.docx")
    for text, part in [
        ("REGULAR HEADER (page 2 onward)", "header"),
        ("FIRST PAGE HEADER (page 1 only)", "header"),
        ("REGULAR FOOTER (page 2 onward)", "footer"),
        ("FIRST PAGE FOOTER (page 1 only)", "footer"),
    ]:
        (hit,) = find(elements, text)
        assert hit.kind == "text" and hit.meta["part"] == part
    assert elements[0].meta["part"] == "header" and elements[-1].meta["part"] == "footer"
    assert not any("part" in e.meta for e in elements if e.kind == "title")


def test_docx_identical_headers_across_sections_deduplicated() -> None:
    """Three sections: two carry their own copy of the same header, one a new header."""
    import docx

    document = docx.Document(io.BytesIO(load(f"{DOCLING}/docx/sources/word_sample.docx")))
    document.sections[0].header.paragraphs[0].text = "ACME confidential"
    for text in ("ACME confidential", "Appendix header"):
        section = document.add_section()
        section.header.is_linked_to_previous = False
        section.header.paragraphs[0].text = text
        document.add_paragraph(f"Body of section with {text}")
    buffer = io.BytesIO()
    document.save(buffer)
    elements = docx_extract.extract(buffer.getvalue(), ExtractOptions()).elements
    headers = [e.text for e in elements if e.meta.get("part") == "header"]
    assert headers == ["ACME confidential", "Appendix header"]
    (body,) = find(elements, "Body of section with Appendix header")
    assert body.meta == {} and elements.index(body) > 1


def test_docx_large_table_split_repeats_header() -> None:
    elements = docx_elements(f"{DOCLING}/docx/sources/word_sample.docx", table_rows_per_element=2)
    tables = [e for e in elements if e.kind == "table"]
    assert len(tables) == 2
    for table in tables:
        assert table.text.splitlines()[0] == "|  | Food | Calories per portion |"
    assert "Leaves" in tables[0].text and "Berries" in tables[0].text and "Grain" not in tables[0].text
    assert "| Grain | Corn, Buckwheat, Barley | 200 |" in tables[1].text
    assert tables[1].meta["part"] == 2 and tables[1].meta["parts"] == 2


def test_docx_handbook_872_pages() -> None:
    """8,140 paragraphs of which only 4,750 hold text (the rest are blank spacing), so about
    4,740 elements, not the 5,000+ one might expect; 294 headings (the chapters occur more
    than once in this file); 7 distinct chapter footers across 29 sections. ~0.3 s here."""
    data = load(f"{UNSTRUCTURED}/handbook-872p.docx")
    started = time.perf_counter()
    elements = docx_extract.extract(data, ExtractOptions(filename="handbook-872p.docx")).elements
    elapsed = time.perf_counter() - started
    print(f"handbook-872p.docx: {len(elements)} elements in {elapsed:.2f}s")
    assert elapsed < 30
    assert len(elements) > 4700
    titles = [e for e in elements if e.kind == "title"]
    assert len(titles) == 294
    chapter = find(elements, "CHAPTER 5 – ADDITIONAL STANDING TRUSTEE RESPONSIBILITIES", kind="title")[0]
    following = elements[elements.index(chapter) + 1]
    assert following.heading_path[0] == chapter.text
    footers = [e for e in elements if e.meta.get("part") == "footer"]
    assert len(footers) == 7 and all("Handbook for Chapter 13 Standing Trustee" in f.text for f in footers)


# ------------------------------------------------------------------------------- pptx


def test_pptx_slides_in_order_with_titles() -> None:
    extraction = pptx_extract.extract(load(f"{DOCLING}/pptx/sources/powerpoint_sample.pptx"), ExtractOptions())
    elements = extraction.elements
    assert extraction.pages == 3
    pages = [e.page for e in elements]
    assert pages == sorted(pages) and set(pages) == {1, 2, 3}
    assert all(e.location == f"slide {e.page}" for e in elements)
    titles = [(e.page, e.text) for e in elements if e.kind == "title"]
    assert titles == [(1, "Test Table Slide"), (2, "Second slide title")]
    slide2 = [e for e in elements if e.page == 2 and e.kind != "title"]
    assert slide2 and all(e.heading_path == ("Second slide title",) for e in slide2)
    assert all(e.heading_path == () for e in elements if e.page == 3)


def test_pptx_speaker_notes_with_slide_number() -> None:
    elements = pptx_elements(f"{DOCLING}/pptx/sources/powerpoint_sample.pptx")
    notes = [(e.page, e.text) for e in elements if e.kind == "notes"]
    assert notes == [(2, "Some notes on the second slide."), (3, "Final notes on the third slide.\nSecond line of notes.")]


def test_pptx_table_with_merged_cells() -> None:
    elements = pptx_elements(f"{DOCLING}/pptx/sources/powerpoint_sample.pptx")
    (table,) = [e for e in elements if e.kind == "table"]
    assert table.page == 1
    lines = table.text.splitlines()
    assert lines[0] == "|  | Class1 | Class1 | Class1 | Class2 | Class2 | Class2 |"
    assert "|  | A merged with B | A merged with B | C | A | B | C |" in lines
    assert "| R1 | True | False |  | False | True | True |" in lines


def test_pptx_table_split() -> None:
    elements = pptx_elements(f"{DOCLING}/pptx/sources/powerpoint_sample.pptx", table_rows_per_element=3)
    tables = [e for e in elements if e.kind == "table"]
    assert len(tables) == 3  # 8 body rows -> 3 + 3 + 2
    assert all(t.text.startswith("|  | Class1 |") for t in tables)


def test_pptx_lists_and_reading_order() -> None:
    """Slide 3 holds five list boxes side by side with tops a few points apart: they read
    left to right (docling's groundtruth order), not by the tiny top differences."""
    elements = pptx_elements(f"{DOCLING}/pptx/sources/powerpoint_sample.pptx")
    slide3 = [e for e in elements if e.page == 3 and e.kind == "list"]
    firsts = [e.text.splitlines()[0] for e in slide3]
    assert firsts == ["- List item4", "- I1", "- Item A", "- List1", "- l1"]
    (intro,) = find(elements, "Some info:")
    assert intro.kind == "text" and intro.page == 3


def test_pptx_sub_bullets_indented() -> None:
    elements = pptx_elements(f"{UNSTRUCTURED}/sample-presentation.pptx")
    (bullets,) = find(elements, "And a list of bulleted information", kind="list")
    assert "  - With a sub-bullet" in bullets.text.splitlines()
    assert "    - This one is a sub-sub-bullet" in bullets.text.splitlines()
    assert bullets.page == 2 and bullets.heading_path == ("This is the first content slide",)


def test_pptx_nested_group_shapes() -> None:
    """group-shapes-nested.pptx: C and E sit two groups deep, F and G in a sibling group."""
    elements = pptx_elements(f"{UNSTRUCTURED}/group-shapes-nested.pptx")
    texts = [e.text for e in elements]
    assert sorted(texts) == list("ABCDEFGHIJ")
    (deep,) = find(elements, "C")
    assert deep.page == 1 and deep.bbox is not None
    x0, y0, x1, y1 = deep.bbox
    assert 0 <= x0 < x1 <= 960 and 0 <= y0 < y1 <= 540  # mapped onto the slide, in points
    assert texts.index("C") < texts.index("E") and texts.index("F") < texts.index("G")


def test_pptx_chart_table() -> None:
    elements = pptx_elements(f"{DOCLING}/pptx/sources/pptx_chart.pptx")
    charts = [e for e in elements if e.kind == "chart"]
    assert len(charts) == 2
    ducks = charts[0]
    assert ducks.page == 1 and ducks.heading_path == ("Quarterly Duck Survey",)
    assert ducks.text.startswith("Wild Duck Observations by Year\n\n")
    assert "|  | Freshwater Ducks | Saltwater Ducks |" in ducks.text
    assert "| 2021 | 150 | 110 |" in ducks.text
    # slide 2 is a 3-D bar chart that python-pptx cannot read: data comes from the XML cache
    assert charts[1].page == 2 and "| Q2 | 20 |" in charts[1].text


def test_pptx_chart_types() -> None:
    """Date categories become ISO dates, scatter charts use their X values."""
    elements = pptx_elements(f"{PYTHON_PPTX}/cht-chart-type.pptx")
    charts = {e.meta["chart_type"]: e.text for e in elements if e.kind == "chart"}
    assert "| 2002-01-05 | 32 | 12 |" in charts["AREA"]
    assert "| Category 2 | 2.5 | 4.4 | 2 |" in charts["BAR_CLUSTERED"]
    assert "| 1st Qtr | 8.2 |" in charts["PIE"]
    assert "| 0.7 | 2.7 |" in charts["XY_SCATTER"]


def test_pptx_ole_object_does_not_crash() -> None:
    extraction = pptx_extract.extract(load(f"{PYTHON_PPTX}/shp-access-ole-object.pptx"), ExtractOptions())
    assert extraction.pages == 1
    assert all(e.kind != "table" for e in extraction.elements)


# ------------------------------------------------------------------------------- errors & dispatch


@pytest.mark.parametrize(
    "module, relative",
    [
        (docx_extract, f"{DOCLING}/docx/sources/word_sample.docx"),
        (docx_extract, f"{UNSTRUCTURED}/handbook-872p.docx"),
        (pptx_extract, f"{DOCLING}/pptx/sources/powerpoint_sample.pptx"),
    ],
)
def test_truncated_file_is_corrupt(module, relative: str) -> None:
    with pytest.raises(ExtractionError) as info:
        module.extract(load(relative)[:2000], ExtractOptions())
    assert info.value.reason == "corrupt"


def test_wrong_kind_of_office_file_is_corrupt() -> None:
    """A presentation handed to the Word extractor is not silently read as empty."""
    with pytest.raises(ExtractionError) as info:
        docx_extract.extract(load(f"{DOCLING}/pptx/sources/powerpoint_sample.pptx"), ExtractOptions())
    assert info.value.reason == "corrupt"


def test_dispatch_by_content_not_extension() -> None:
    fmt, extraction = extract_bytes(load(f"{DOCLING}/docx/sources/word_sample.docx"), ExtractOptions(filename="notes.txt"))
    assert fmt == "docx"
    assert find(extraction.elements, "Let’s eat", kind="title")
    fmt, extraction = extract_bytes(load(f"{DOCLING}/pptx/sources/pptx_chart.pptx"), ExtractOptions(filename="deck.docx"))
    assert fmt == "pptx" and extraction.pages == 2
