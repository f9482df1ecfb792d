"""PDF, OCR and image extraction on real documents from the test suites of docling and
unstructured (under /work/shared/data/docs; the tests skip when it is absent).

The expected strings come from docling's groundtruth Markdown or were read off the
rendered pages; every test fails if the extractor loses, reorders or misnumbers them.
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest

from ingot.ingest.elements import Element, ExtractionError, ExtractOptions
from ingot.ingest.extract import extract_bytes, image, pdf

DOCS = Path(__file__).resolve().parents[2] / "shared" / "data" / "docs"
DOCLING = DOCS / "docling" / "tests" / "data"
UNSTRUCTURED = DOCS / "unstructured" / "example-docs" / "pdf"

pytestmark = pytest.mark.skipif(not DOCS.is_dir(), reason=f"shared test documents not found at {DOCS}")
needs_tesseract = pytest.mark.skipif(shutil.which("tesseract") is None, reason="the tesseract binary is not installed")


def run_pdf(path: Path, **options) -> tuple[list[Element], int | None]:
    extraction = pdf.extract(path.read_bytes(), ExtractOptions(filename=path.name, **options))
    return extraction.elements, extraction.pages


def find(elements: list[Element], needle: str) -> Element:
    """The first element whose text contains ``needle`` (whitespace-normalised)."""
    for element in elements:
        if needle in " ".join(element.text.split()):
            return element
    raise AssertionError(f"{needle!r} not found in {len(elements)} elements")


def position(elements: list[Element], needle: str) -> int:
    return elements.index(find(elements, needle))


def render(path: Path, dpi: int = 200):
    """A page of a PDF as a PIL image (to make image files from real scans)."""
    import pypdfium2

    document = pypdfium2.PdfDocument(path.read_bytes())
    try:
        return document[0].render(scale=dpi / 72).to_pil()
    finally:
        document.close()


# ---------------------------------------------------------------------------- text layer


def test_groundtruth_paragraph_title_and_heading_path() -> None:
    elements, pages = run_pdf(DOCLING / "pdf" / "sources" / "2305.03393v1-pg9.pdf")
    assert pages == 1
    title = find(elements, "5.1 Hyper Parameter Optimization")
    assert title.kind == "title"
    # One paragraph, line breaks and all, exactly as in docling's groundtruth.
    paragraph = find(elements, "We have chosen the PubTabNet data set to perform HPO, since it includes a "
                               "highly diverse set of tables. Also we report TED scores separately for "
                               "simple and complex tables")
    assert paragraph.kind == "text"
    assert paragraph.page == 1 and paragraph.location == "page 1"
    assert paragraph.heading_path[-1] == "5.1 Hyper Parameter Optimization"
    assert position(elements, "5.1 Hyper Parameter Optimization") < position(elements, "We have chosen the PubTabNet")
    assert position(elements, "We have chosen the PubTabNet") < position(elements, "5.2 Quantitative Results")


def test_page_numbers_and_lists() -> None:
    elements, pages = run_pdf(DOCLING / "pdf" / "sources" / "multi_page.pdf")
    assert pages == 5
    assert find(elements, "The Evolution of the Word Processor").page == 1
    assert find(elements, "The Modern Era (1990s - Present)").page == 2
    assert find(elements, "Specialized Word Processing Tools").kind == "title"
    assert find(elements, "Specialized Word Processing Tools").page == 3
    assert find(elements, "A Glimpse Into the Future").page == 4
    assert find(elements, "The journey of the word processor").page == 5
    item = find(elements, "Introduced in 1964, this machine combined IBM's Selectric typewriter")
    assert item.kind == "list" and item.page == 1
    assert item.heading_path == ("The Birth of Word Processing (1960s - 1970s)",)


def test_bboxes_are_points_from_the_top_left() -> None:
    elements, _ = run_pdf(DOCLING / "pdf" / "sources" / "multi_page.pdf")
    width, height = 595.2, 841.92
    for element in elements:
        x0, y0, x1, y1 = element.bbox
        assert 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height, element
    title = find(elements, "The Evolution of the Word Processor")
    paragraph = find(elements, "The concept of the word processor")
    assert title.bbox[1] < paragraph.bbox[1]  # the title is above its paragraph: y grows downwards


def test_two_columns_are_read_column_by_column() -> None:
    elements, pages = run_pdf(UNSTRUCTURED / "multi-column-2p.pdf")
    assert pages == 2
    title = find(elements, "Dense Passage Retrieval for Open-Domain Question Answering")
    abstract = position(elements, "Open-domain question answering relies on efficient passage retrieval")
    first_column_end = position(elements, "indicating the needs of improving retrieval")
    second_column_top = position(elements, "Retrieval in open-domain QA is usually implemented using TF-IDF")
    assert title.kind == "title" and elements.index(title) < abstract < first_column_end < second_column_top
    # Words hyphenated at line ends are whole again, and lines are joined with spaces.
    assert "retrieval can be practically implemented using dense representations alone" in " ".join(
        elements[abstract].text.split())
    # The column gutter never glues a left-column line to a right-column line.
    assert not any("retrieval. Retrieval in open-domain" in e.text for e in elements)


def test_sentence_continued_at_the_top_of_the_next_column() -> None:
    elements, _ = run_pdf(UNSTRUCTURED / "multi-column.pdf", ocr=False)
    # Page 3: the paragraph at the foot of the left column ends "... is essen-" and goes
    # on "tially a metric learning problem" at the top of the right column.
    joined = find(elements, "good ranking function for retrieval is essentially a metric learning problem")
    assert joined.page == 3
    assert "than the irrelevant ones, by learning a better embedding function." in joined.text
    assert position(elements, "3.2 Training") < elements.index(joined)
    assert elements.index(joined) < position(elements, "Positive and negative passages")


def test_table_rows_stay_together() -> None:
    elements, _ = run_pdf(UNSTRUCTURED / "multi-column.pdf", ocr=False)
    table = find(elements, "Natural Questions | 79,168 | 58,880 | 8,757 | 3,610")
    assert table.page == 4
    assert "SQuAD | 78,713 | 70,096 | 8,886 | 10,570" in table.text


def test_column_headings_drawn_in_one_go_head_their_table() -> None:
    """Table 5 of the DPR paper (page 12): its headings "Top-1 Top-5 Top-20 Top-100" are
    one run of text about an em apart, set above the rows with more room than between
    them; and its first row's "44.9" and "66.8" look like "section 44.9, titled 66.8"."""
    elements, _ = run_pdf(UNSTRUCTURED / "multi-column.pdf", ocr=False)
    table = find(elements, "| Dist. Sup. | 43.9 | 65.3 | 77.1 | 84.4 |")
    assert table.kind == "table" and table.page == 12
    assert table.text.splitlines()[0] == "|  | Top-1 | Top-5 | Top-20 | Top-100 |"
    assert "| Gold | 44.9 | 66.8 | 78.1 | 85.0 |" in table.text
    assert not any(e.kind == "title" and "Top-1" in e.text for e in elements)
    # Table 2 (page 5): two dataset heading lines, each cut into its five datasets.
    table2 = find(elements, "None | BM25 | 59.1 | 66.9 | 55.0")
    assert "NQ | TriviaQA | WQ | TREC | SQuAD | NQ | TriviaQA | WQ | TREC | SQuAD" in table2.text


def test_heading_path_follows_section_numbers_not_formulas() -> None:
    """A formula line set tall by its braces ("Let D = {...}", page 3) is no heading;
    "5 Experiments" closes "4 Experimental Setup" though set a hair smaller; a heading
    wrapped onto a second line ("D Joint Training of Retriever and" + "Reader") is one."""
    elements, _ = run_pdf(UNSTRUCTURED / "multi-column.pdf", ocr=False)
    titles = [e.text for e in elements if e.kind == "title"]
    assert not any("Let D" in t for t in titles)
    assert "D Joint Training of Retriever and Reader" in titles
    assert "B Alternative Similarity Functions & Triplet Loss" in titles
    title = "Dense Passage Retrieval for Open-Domain Question Answering"
    assert find(elements, "5 Experiments: Passage Retrieval").heading_path == (title,)
    assert find(elements, "5.1 Main Results").heading_path == (title, "5 Experiments: Passage Retrieval")
    assert find(elements, "21,015,324 passages").heading_path == (
        title, "4 Experimental Setup", "4.1 Wikipedia Data Pre-processing")


@pytest.mark.parametrize("turn", [90, 180, 270])
def test_page_turned_by_its_rotate_key_reads_upright(turn: int) -> None:
    """A landscape page is often stored turned, with /Rotate to show it upright: the
    text must come out as shown, with boxes on the page as shown."""
    import pypdfium2

    source = DOCLING / "pdf" / "sources" / "multi_page.pdf"
    document = pypdfium2.PdfDocument(source.read_bytes())
    page = document[0]
    width, height = page.get_size()
    turned = pypdfium2.PdfMatrix().rotate(turn, ccw=True)
    for obj in list(page.get_objects(max_depth=1)):
        obj.transform(turned)
    corners = [turned.on_point(x, y) for x, y in [(0, 0), (width, 0), (0, height), (width, height)]]
    xs, ys = [x for x, _ in corners], [y for _, y in corners]
    box = (min(xs), min(ys), max(xs), max(ys))
    page.set_mediabox(*box)
    page.set_cropbox(*box)
    page.set_rotation(turn)
    page.gen_content()
    buffer = io.BytesIO()
    document.save(buffer)
    document.close()

    turned_elements = pdf.extract(buffer.getvalue(), ExtractOptions(ocr=False)).elements
    upright_elements, _ = run_pdf(source, ocr=False)
    needle = "The origins of word processing can be traced back to the invention of the typewriter"
    got, want = find(turned_elements, needle), find(upright_elements, needle)
    assert got.page == 1 and got.text == want.text and not got.meta.get("rotated")
    assert got.bbox == pytest.approx(want.bbox, abs=0.5)


def test_copy_protected_pdf_opens_with_the_empty_password() -> None:
    elements, pages = run_pdf(UNSTRUCTURED / "copy-protected.pdf")
    assert pages == 2
    assert sum(len(e.text) for e in elements) > 3000
    assert {e.page for e in elements} == {1, 2}


def test_password_protected_pdf_needs_its_password() -> None:
    data = (UNSTRUCTURED / "password.pdf").read_bytes()
    for password in (None, "not-the-password"):
        with pytest.raises(ExtractionError) as caught:
            pdf.extract(data, ExtractOptions(filename="password.pdf", password=password))
        assert caught.value.reason == "password_required"
        assert "password" in caught.value.message


def test_truncated_pdf_is_corrupt() -> None:
    data = (DOCLING / "pdf" / "sources" / "2305.03393v1-pg9.pdf").read_bytes()[:2000]
    with pytest.raises(ExtractionError) as caught:
        pdf.extract(data, ExtractOptions(filename="cut.pdf"))
    assert caught.value.reason == "corrupt"
    with pytest.raises(ExtractionError) as caught:  # the same through format dispatch
        extract_bytes(data, ExtractOptions(filename="cut.pdf"))
    assert caught.value.reason == "corrupt"


def test_dispatch_sends_pdf_bytes_to_the_pdf_extractor() -> None:
    data = (DOCLING / "pdf" / "sources" / "multi_page.pdf").read_bytes()
    fmt, extraction = extract_bytes(data, ExtractOptions(filename="no-extension"))
    assert fmt == "pdf" and extraction.pages == 5
    assert find(extraction.elements, "Patented in 1868 by Christopher Latham Sholes").page == 1


@pytest.mark.slow  # ~45 s
def test_619_pages_all_come_through() -> None:
    # The whole 619-page book. Its speed is measured in benchmarks/extraction.py, not here:
    # a wall-clock bound in a test fails on a busy machine and proves nothing on a quiet one.
    elements, pages = run_pdf(UNSTRUCTURED / "DA-619p.pdf", ocr=False)
    assert pages == 619
    last = find(elements, "If found, please return to Lady Yvette Montilyet")
    assert last.page == 619 and last.location == "page 619"
    assert len({e.page for e in elements}) > 600


# -------------------------------------------------------------------------------- OCR


@pytest.mark.slow  # OCR
@needs_tesseract
def test_scanned_pdf_is_read_by_ocr() -> None:
    elements, pages = run_pdf(DOCLING / "ocr" / "sources" / "ocr_test.pdf")
    assert pages == 1
    text = find(elements, "Docling bundles PDF document conversion to JSON and Markdown in an easy self "
                          "contained package")
    assert text.kind == "image-text" and text.page == 1 and text.meta["ocr"] is True


@pytest.mark.slow  # OCR
@needs_tesseract
def test_scanned_table_keeps_every_number() -> None:
    elements, _ = run_pdf(UNSTRUCTURED / "single_table.pdf")
    table = find(elements, "64,058")
    assert table.kind == "table" and table.page == 1
    rows = table.text.splitlines()
    assert rows[0] == "| Processing | total chunks | mean chunks per document (std) | tables mean (std) |"
    assert "| Base 256 | 32,051 | 400.64 (242.04) | N/A |" in rows
    assert "| Chipper | 20,843 | 260.57 (145.80) | 96.20 (57.53) |" in rows


@pytest.mark.slow  # OCR of four orientations, ~25 s
@needs_tesseract
def test_scanned_pages_turned_sideways_or_upside_down() -> None:
    elements, pages = run_pdf(DOCLING / "ocr" / "sources" / "nemotron_multipage.pdf")
    assert pages == 4
    phrase = "Docling bundles PDF document conversion to JSON and Markdown"
    assert sorted(e.page for e in elements if phrase in e.text) == [1, 2, 3, 4]


def test_ocr_off_leaves_scanned_pages_empty() -> None:
    elements, pages = run_pdf(DOCLING / "ocr" / "sources" / "ocr_test.pdf", ocr=False)
    assert pages == 1 and elements == []


# ------------------------------------------------------------------------------ images


@pytest.mark.slow  # OCR
@needs_tesseract
def test_png_image_is_read_by_ocr() -> None:
    buffer = io.BytesIO()
    render(UNSTRUCTURED / "single_table.pdf").save(buffer, "PNG")
    fmt, extraction = extract_bytes(buffer.getvalue(), ExtractOptions(filename="scan.png"))
    assert fmt == "image" and extraction.pages == 1
    table = find(extraction.elements, "| Base 512 | 16,046 | 200.58 (121.01) | N/A |")
    assert table.page == 1 and table.location == "page 1"


@pytest.mark.slow  # OCR
@needs_tesseract
def test_multi_page_tiff_gives_one_page_per_frame() -> None:
    first = render(DOCLING / "ocr" / "sources" / "ocr_test.pdf")
    second = render(UNSTRUCTURED / "single_table.pdf")
    buffer = io.BytesIO()
    first.save(buffer, "TIFF", save_all=True, append_images=[second], dpi=(200, 200))
    extraction = image.extract(buffer.getvalue(), ExtractOptions(filename="fax.tiff"))
    assert extraction.pages == 2
    assert find(extraction.elements, "Docling bundles PDF document conversion").page == 1
    number = find(extraction.elements, "96.20 (57.53)")
    assert number.page == 2
    # Boxes are in points: 200 dpi pixels scaled by 72/200, inside an A4 page.
    assert all(0 <= v <= 842 for v in number.bbox)


def test_unreadable_image_is_corrupt() -> None:
    with pytest.raises(ExtractionError) as caught:
        image.extract(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, ExtractOptions(filename="broken.png"))
    assert caught.value.reason == "corrupt"


@pytest.mark.slow  # OCR
@needs_tesseract
def test_missing_ocr_language_is_a_clear_failure() -> None:
    with pytest.raises(ExtractionError) as caught:
        run_pdf(DOCLING / "ocr" / "sources" / "ocr_test.pdf", ocr_languages="eng+xyz")
    assert caught.value.reason == "failed"
    assert "no language data for xyz" in caught.value.message


def test_missing_tesseract_is_a_clear_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    import pytesseract

    monkeypatch.setattr(pytesseract.pytesseract, "tesseract_cmd", "/nonexistent/tesseract")
    with pytest.raises(ExtractionError) as caught:
        run_pdf(DOCLING / "ocr" / "sources" / "ocr_test.pdf")
    assert caught.value.reason == "failed"
    assert "tesseract" in caught.value.message
