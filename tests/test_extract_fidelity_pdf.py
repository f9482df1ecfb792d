"""PDF extraction fidelity (issue 17, PDF half): numbers exactly as printed, right-to-left
text in logical order, text layers PDFium cannot map, CJK line joins, two-column forms,
running headers and footers.

Expected values come from the documents themselves (their text layer, read with PDFium's
or pdfminer's plain text API) or from docling's groundtruth, never from ingot's output.
Real documents come from docling's and unstructured's test sets under
/work/shared/data/docs; the tests skip when it is absent.
"""

from __future__ import annotations

import difflib
import io
import re
from pathlib import Path

import pypdfium2 as pdfium
import pytest

from ingot.ingest.elements import Element, ExtractOptions
from ingot.ingest.extract import pdf

DOCS = Path(__file__).resolve().parents[2] / "shared" / "data" / "docs"
DOCLING_PDF = DOCS / "docling" / "tests" / "data" / "pdf"
UNSTRUCTURED_PDF = DOCS / "unstructured" / "example-docs" / "pdf"

needs_docs = pytest.mark.skipif(not DOCS.is_dir(), reason=f"shared test documents not found at {DOCS}")
NUMBER = re.compile(r"[-+(\u2212]?\d[\d,.]*%?\)?")
ARABIC_WORD = re.compile(r"[\u0600-\u06ff]+")


def _extract(data: bytes, **options) -> list[Element]:
    return pdf.extract(data, ExtractOptions(ocr=False, **options)).elements


def _page_pdf(path: Path, index: int) -> bytes:
    """One page of a document as a PDF of its own (a 619-page book is slow to extract
    whole)."""
    source = pdfium.PdfDocument(path)
    single = pdfium.PdfDocument.new()
    single.import_pages(source, [index])
    out = io.BytesIO()
    single.save(out)
    return out.getvalue()


def _layer_lines(path: Path, index: int) -> list[str]:
    """The page's text layer as PDFium's plain-text API gives it, line by line."""
    page = pdfium.PdfDocument(path)[index]
    return [line.strip() for line in page.get_textpage().get_text_range().splitlines() if line.strip()]


def _cells(element: Element) -> list[list[str]]:
    """The rows of a table element (Markdown) or of tabular text (cells joined by " | ")."""
    rows = []
    for line in element.text.splitlines():
        if re.fullmatch(r"\|?(?:-+\|)+", line):
            continue
        rows.append([c.strip() for c in line.strip().strip("|").split("|")])
    return rows


# --------------------------------------------------------------------------------------
# Numbers exactly as printed
# --------------------------------------------------------------------------------------


@needs_docs
def test_table_numbers_match_text_layer_cell_by_cell():
    """Table 1 of the DPR paper: every number of every row, in its own cell, exactly as
    the text layer has it (thousands separators included)."""
    path = UNSTRUCTURED_PDF / "multi-column.pdf"
    layer = _layer_lines(path, 3)
    start = next(i for i, line in enumerate(layer) if line.startswith("Dataset"))
    end = next(i for i, line in enumerate(layer) if line.startswith("Table 1:"))
    expected = {line.split(" ")[0]: NUMBER.findall(line) for line in layer[start + 1:end]}
    assert len(expected) == 5 and all(len(v) == 4 for v in expected.values())
    table = next(e for e in _extract(path.read_bytes()) if e.page == 4 and "Dataset" in e.text and "SQuAD" in e.text)
    rows = {row[0].split(" ")[0]: row[1:] for row in _cells(table)}
    for label, numbers in expected.items():
        assert rows[label] == numbers, label


@needs_docs
def test_measurements_table_cell_by_cell():
    """A table of measurements (embedded-images-tables.pdf), row by row, cell by cell,
    as the text layer has it. The layer's minus signs are glyphs without a character:
    PDFium's plain text drops them, ingot keeps U+FFFD in their place."""
    path = UNSTRUCTURED_PDF / "embedded-images-tables.pdf"
    expected = [line.split() for line in _layer_lines(path, 0) if re.fullmatch(r"\d+( [\d.E-]+){6}", line)]
    assert len(expected) == 6
    table = next(e for e in _extract(path.read_bytes()) if e.kind == "table" and "0.0335" in e.text)
    rows = [[cell.replace("\ufffd", "").strip() for cell in row] for row in _cells(table)]
    assert [row for row in rows if row[0][:1].isdigit()] == expected
    # The column headings (set 1.6 em above the first row, past a rule) are the table's own
    # rows, so the chunk holding the numbers also holds what they measure.
    assert rows[0] == ["Inhibitor", "bc (V/dec)", "ba (V/dec)", "Ecorr (V)", "icorr (A/cm2 )", "Polarization", "Corrosion"]
    assert rows[1] == ["concentration (g)", "", "", "", "", "resistance (Ω)", "rate (mm/year)"]


@needs_docs
def test_commas_stay_on_their_line():
    """A comma whose box barely overlaps its line (letters without descenders before
    it) stays attached to its word: no stray "," line, every "word," of the layer kept."""
    path = UNSTRUCTURED_PDF / "DA-619p.pdf"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    elements = _extract(_page_pdf(path, 395))
    text = "\n".join(e.text for e in elements)
    assert not [line for line in text.splitlines() if line.strip(" ,|") == ""]
    with_comma = re.findall(r"\w+,", " ".join(_layer_lines(path, 395)))
    assert len(with_comma) > 20
    assert [w for w in with_comma if w not in text] == []


# --------------------------------------------------------------------------------------
# Right to left
# --------------------------------------------------------------------------------------


@needs_docs
def test_arabic_in_logical_order_with_word_spaces():
    """right_to_left_01.pdf: the Arabic words, in the order docling's groundtruth reads
    them (the groundtruth is logical order, as typed), with their spaces."""
    source = DOCLING_PDF / "sources" / "right_to_left_01.pdf"
    truth = ARABIC_WORD.findall((DOCLING_PDF / "groundtruth" / "right_to_left_01.md").read_text())
    ours = ARABIC_WORD.findall("\n".join(e.text for e in _extract(source.read_bytes())))
    assert len(truth) > 200
    ratio = difflib.SequenceMatcher(None, ours, truth, autojunk=False).ratio()
    assert ratio >= 0.9, ratio
    title = next(e for e in _extract(source.read_bytes()) if e.kind == "title")
    assert ARABIC_WORD.findall(title.text)[:3] == truth[:3]


# --------------------------------------------------------------------------------------
# Text layers in any script; PDFium-unmappable layers; OCR language
# --------------------------------------------------------------------------------------

HANGUL = re.compile(r"[\uac00-\ud7af]")
HAN = re.compile(r"[\u4e00-\u9fff]")
CHINESE_LINES = ["中文测试文本，这是第一行内容", "第二行继续说明文字的内容", "第三行也是正文的一部分。",
                 "第四行写的是扫描件的文字", "第五行继续写下去", "第六行还有内容，", "第七行在这里", "第八行结束。"]


def _chinese_pdf(lines: list[str], scan: bool) -> bytes:
    """A page of Chinese text in Adobe's STSong-Light (a CID font PDF readers supply,
    Identity-H codes, no ToUnicode: the text is mapped through the Adobe-GB1 ordering).
    ``scan``: the text is an invisible layer (render mode 3) over a page-sized image, as
    a scanner's OCR writes it."""
    from pdfminer.cmapdb import CMapDB

    cids: dict[str, int] = {}
    for cid, char in CMapDB.get_unicode_map("Adobe-GB1", vertical=False).cid2unichr.items():
        cids.setdefault(char, cid)
    shown = " ".join("<" + "".join(f"{cids[ch]:04X}" for ch in line) + "> Tj T*" for line in lines)
    content = ("q 612 0 0 792 0 0 cm /Im1 Do Q BT 3 Tr " if scan else "BT ") + f"/F1 12 Tf 16 TL 72 720 Td {shown} ET"
    pixels = bytes([235]) * 64
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        "/Resources << /Font << /F1 5 0 R >> /XObject << /Im1 8 0 R >> >> >>",
        f"<< /Length {len(content)} >>\nstream\n{content}\nendstream",
        "<< /Type /Font /Subtype /Type0 /BaseFont /STSong-Light /Encoding /Identity-H /DescendantFonts [6 0 R] >>",
        "<< /Type /Font /Subtype /CIDFontType0 /BaseFont /STSong-Light /DW 1000 /FontDescriptor 7 0 R "
        "/CIDSystemInfo << /Registry (Adobe) /Ordering (GB1) /Supplement 2 >> >>",
        "<< /Type /FontDescriptor /FontName /STSong-Light /Flags 6 /FontBBox [0 -200 1000 900] /ItalicAngle 0 "
        "/Ascent 880 /Descent -120 /CapHeight 700 /StemV 80 >>",
        "<< /Type /XObject /Subtype /Image /Width 8 /Height 8 /ColorSpace /DeviceGray /BitsPerComponent 8 "
        f"/Length {len(pixels)} >>\nstream\n{pixels.decode('latin-1')}\nendstream",
    ]
    out = b"%PDF-1.4\n"
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n{body}\nendobj\n".encode("latin-1")
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return out


def test_chinese_lines_join_without_spaces():
    """Eight lines of one Chinese paragraph -> one element holding every character, with
    no space where the lines meet."""
    elements = _extract(_chinese_pdf(CHINESE_LINES, scan=False))
    assert [e.text for e in elements] == ["".join(CHINESE_LINES)]


def test_scan_with_chinese_text_layer_keeps_the_layer():
    """A scanned page carrying its own (invisible) Chinese text layer: the layer is the
    text, not an OCR pass over the image (a Chinese page holds too few characters for
    the 'stamp over a scan' rule that sends English pages of that length to OCR)."""
    elements = pdf.extract(_chinese_pdf(CHINESE_LINES, scan=True), ExtractOptions(ocr=True)).elements
    assert "".join(e.text for e in elements) == "".join(CHINESE_LINES)
    assert not any(e.meta.get("ocr") for e in elements)


@needs_docs
def test_korean_text_layer_kept():
    """korean-text-with-tables.pdf: the Hangul of the text layer (as pdfminer decodes
    it) is in the extraction."""
    from pdfminer.high_level import extract_text

    path = UNSTRUCTURED_PDF / "korean-text-with-tables.pdf"
    words = {w for w in re.findall(r"[\uac00-\ud7af]{2,}", extract_text(str(path)))}
    ours = "\n".join(e.text for e in _extract(path.read_bytes()))
    assert len(words) > 50
    assert [w for w in words if w not in ours] == []


def test_unmapped_layer_detection():
    from ingot.ingest.extract import pdf_textlayer

    assert pdf_textlayer.unmapped(0xFFFD) and pdf_textlayer.unmapped(0xE012) and pdf_textlayer.unmapped(0)
    assert not pdf_textlayer.unmapped(ord("中")) and not pdf_textlayer.unmapped(ord("a"))
    assert pdf_textlayer.unusable(visible=400, unmapped_count=300, min_chars=16)
    assert not pdf_textlayer.unusable(visible=400, unmapped_count=10, min_chars=16)
    assert not pdf_textlayer.unusable(visible=5, unmapped_count=5, min_chars=16)


@needs_docs
def test_unusable_layer_is_read_with_pdfminer(monkeypatch):
    """A page whose layer PDFium cannot map is read with pdfminer (not OCR'd): forced
    here on the Korean file, the page's Hangul comes back from pdfminer, marked so."""
    monkeypatch.setattr(pdf, "unusable", lambda visible, missing, min_chars: True)
    path = UNSTRUCTURED_PDF / "korean-text-with-tables.pdf"
    elements = pdf.extract(path.read_bytes(), ExtractOptions(ocr=False)).elements
    assert elements and all(e.meta.get("text_layer") == "pdfminer" for e in elements)
    assert len(HANGUL.findall("".join(e.text for e in elements))) > 500
    assert any("빅포인트 적립" in e.text for e in elements)


def test_ocr_language_from_text_layer():
    from ingot.ingest.extract.pdf_scripts import ocr_language_of

    assert ocr_language_of("".join(CHINESE_LINES)) == "chi_sim"
    assert ocr_language_of("تحسين الإنتاجية وحل المشكلات من خلال البرمجة") == "ara"
    assert ocr_language_of("Die Größe der Übersetzung hängt von der Länge ab, für alle Fälle.") == "deu"
    assert ocr_language_of("Le système général de sécurité a été créé à partir du modèle.") == "fra"
    assert ocr_language_of("The quick brown fox jumps over the lazy dog again and again.") == "eng"
    assert ocr_language_of("12 34") is None


@pytest.mark.slow
def test_ocr_language_chosen_by_script_detection():
    """An Arabic scan (no text layer at all) is read with the Arabic pack, chosen by
    tesseract's script detection: Arabic words come back, not Latin-letter noise."""
    from PIL import Image, ImageDraw, ImageFont, features

    from ingot.ingest.extract import image, ocr

    font_path = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
    if not font_path.is_file() or not features.check("raqm") or "ara" not in ocr.supported_languages():
        pytest.skip("needs DejaVuSans, Pillow with raqm (Arabic shaping) and tesseract's ara pack")
    truth = ARABIC_WORD.findall((DOCLING_PDF / "groundtruth" / "right_to_left_01.md").read_text()) if DOCS.is_dir() \
        else "تحسين الإنتاجية وحل المشكلات من خلال البرمجة بلغة".split() * 12
    font = ImageFont.truetype(str(font_path), 40)
    page = Image.new("L", (1700, 1200), 255)
    draw = ImageDraw.Draw(page)
    for row in range(12):
        draw.text((1600, 80 + row * 70), " ".join(truth[row * 7:(row + 1) * 7]), font=font, fill=0, anchor="ra",
                  direction="rtl")
    assert ocr.resolve_languages("auto", page) == "ara"
    buffer = io.BytesIO()
    page.save(buffer, format="PNG")
    read = ARABIC_WORD.findall(" ".join(e.text for e in image.extract(buffer.getvalue(), ExtractOptions()).elements))
    drawn = set(truth[:84])  # 84 distinct words from the ground truth; 8 in the stand-in without ../shared
    assert len(set(read) & drawn) >= min(30, len(drawn) * 3 // 4)


@needs_docs
@pytest.mark.parametrize("path", [UNSTRUCTURED_PDF / "multi-column.pdf", UNSTRUCTURED_PDF / "embedded-images-tables.pdf",
                                  DOCLING_PDF / "sources" / "2305.03393v1-pg9.pdf",
                                  DOCLING_PDF / "sources" / "redp5110_sampled.pdf"], ids=lambda p: p.name)
def test_every_number_of_the_text_layer_comes_through(path):
    """Every multi-digit number of the text layer is in the extraction as often as in
    the layer (in the body, or a running header's metadata): none split, merged or
    dropped, e.g. a table cell taken for a page number."""
    from collections import Counter

    token = re.compile(r"(?<![\w.,])(?:\d+(?:[.,]\d+)+|\d{2,})(?![\w])")
    layer = Counter(token.findall(" ".join(" ".join(_layer_lines(path, i)) for i in range(len(pdfium.PdfDocument(path))))))
    ours = Counter(token.findall(" ".join(" ".join([e.text, e.meta.get("page_header", ""), e.meta.get("page_footer", "")])
                                          for e in _extract(path.read_bytes()))))
    assert sum(layer.values()) > 30
    assert layer - ours == Counter()


# --------------------------------------------------------------------------------------
# Running headers and footers; two-column forms
# --------------------------------------------------------------------------------------


@needs_docs
def test_running_headers_and_footers_leave_the_body():
    """redp5110_sampled.pdf: the running foot "... Support in IBM DB2 for i" and the
    copyright line recur on many pages (found in the text layer itself); they are not in
    the body but kept as page metadata, and the body text around them is intact."""
    path = DOCLING_PDF / "sources" / "redp5110_sampled.pdf"
    count = len(pdfium.PdfDocument(path))
    footer = "Row and Column Access Control Support in IBM DB2 for i"
    on_pages = [i for i in range(count) if any(line.endswith(footer) for line in _layer_lines(path, i))]
    assert len(on_pages) >= 3
    elements = _extract(path.read_bytes())
    # (the book's title, on its covers, stays: it is not at a running foot's place)
    assert not [e.text for e in elements if re.fullmatch(r"\d+ " + footer, e.text) or "All rights reserved" in e.text]
    kept = [e.meta["page_footer"] for e in elements if footer in e.meta.get("page_footer", "")]
    assert len(kept) >= len(on_pages) - 1  # a page whose only text is furniture has no element to carry it
    assert any("IBM DB2® for i Row and Column Access Control (RCAC). It offers" in e.text for e in elements)


@needs_docs
def test_two_column_form_is_read_column_by_column():
    """table_mislabeled_as_picture.pdf: two pages of a questionnaire side by side. Each
    question comes whole and the questions in order 23, 24, 25 (left) then 26, 27, 28
    (right), not interleaved row by row as a table."""
    path = DOCLING_PDF / "sources" / "table_mislabeled_as_picture.pdf"
    elements = _extract(path.read_bytes())
    questions = [int(m.group(1)) for e in elements for m in [re.match(r"(\d\d)\. ", e.text)] if m]
    assert questions == [23, 24, 25, 26, 27, 28]
    q24 = next(e.text for e in elements if e.text.startswith("24. "))
    assert q24.endswith("international due process rights and human rights?")
    assert not any(e.kind == "table" and "Yes, at" in e.text for e in elements)


# --------------------------------------------------------------------------------------
# Ruled tables; web addresses across lines
# --------------------------------------------------------------------------------------


@needs_docs
def test_ruled_table_keeps_multi_line_cells_whole():
    """korean-text-with-tables.pdf: a ruled table whose "온라인쇼핑몰" cell wraps onto
    two lines in the text layer comes out as one Markdown row under a header row, the
    cell holding both lines."""
    path = UNSTRUCTURED_PDF / "korean-text-with-tables.pdf"
    layer = _layer_lines(path, 0)
    start = layer.index(next(line for line in layer if line.startswith("온라인쇼핑몰 ")))
    expected_cell = layer[start].split(" ", 1)[1] + " " + layer[start + 1]
    table = next(e for e in _extract(path.read_bytes()) if e.kind == "table" and "온라인쇼핑몰" in e.text)
    assert table.meta.get("ruled") is True
    rows = _cells(table)
    assert rows[0] == ["업종", "적립 대상"]  # the header row
    assert ["온라인쇼핑몰", expected_cell] in rows
    assert ["주유", "모든 주유소"] in rows


@needs_docs
def test_ruled_table_numbers_cell_by_cell():
    """2305.03393v1-pg9.pdf, Table 1 (rules drawn one segment per row): each data row's
    numbers, as the text layer gives them, in their own columns of one Markdown table."""
    path = DOCLING_PDF / "sources" / "2305.03393v1-pg9.pdf"
    layer = [re.sub(r"^\d \d ", "", line) for line in _layer_lines(path, 0)
             if re.fullmatch(r"(\d \d )?(OTSL|HTML)( [\d.]+){5}", line)]
    assert len(layer) == 8
    table = next(e for e in _extract(path.read_bytes()) if e.kind == "table")
    rows = _cells(table)
    assert "TEDs" in rows[0]
    otsl_html = [row for row in rows if any(cell == "OTSL HTML" for cell in row)]
    assert len(otsl_html) == 4
    for k, row in enumerate(otsl_html):  # each cell holds the OTSL value, then the HTML one
        values = row[row.index("OTSL HTML") + 1:]
        otsl, html = layer[2 * k].split()[1:], layer[2 * k + 1].split()[1:]
        assert values == [f"{a} {b}" for a, b in zip(otsl, html)]


def _text_pdf(lines: list[tuple[float, float, str]], size: float = 10.0) -> bytes:
    """A page with Helvetica text at (x, y from the top) positions, made by PDFium."""
    import ctypes

    import pypdfium2.raw as raw

    document = pdfium.PdfDocument.new()
    page = document.new_page(612, 792)
    font = raw.FPDFText_LoadStandardFont(document.raw, b"Helvetica")
    for x, y, text in lines:
        obj = raw.FPDFPageObj_CreateTextObj(document.raw, font, size)
        buffer = ctypes.create_string_buffer((text + "\0").encode("utf-16-le"))
        raw.FPDFText_SetText(obj, ctypes.cast(buffer, ctypes.POINTER(raw.FPDF_WCHAR)))
        raw.FPDFPageObj_Transform(obj, 1, 0, 0, 1, x, 792 - y)
        raw.FPDFPage_InsertObject(page.raw, obj)
    raw.FPDFPage_GenerateContent(page.raw)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def test_web_address_broken_across_lines_is_rejoined():
    data = _text_pdf([(72, 100, "The final rules are published at https://"),
                      (72, 112, "www.example.org/rules/2024/ and take effect"),
                      (72, 124, "in the spring, as the notice explains.")])
    text = " ".join(e.text for e in _extract(data))
    assert "https://www.example.org/rules/2024/ and take effect" in text
    assert "final rules" in text


def test_column_headings_well_above_the_first_row_stay_with_their_table():
    """Headings in two lines, then a gap of ~2 em (where a rule would be) before rows of
    numbers: one table, headings first, not a line of text and a table without names."""
    columns = (72, 200, 330)
    lines = [(72, 60, "The samples were weighed and exposed to the acid for a full day before the"),
             (72, 72, "corrosion rate of each was measured, as the following table shows.")]
    lines += [(x, 100, t) for x, t in zip(columns, ("Sample", "Mass", "Corrosion"))]
    lines += [(x, 111, t) for x, t in zip(columns, ("name", "(g)", "rate (mm/year)"))]
    for i, row in enumerate((("A1", "1.25", "0.3100"), ("B2", "2.50", "0.1520"), ("C3", "5.00", "0.0919"))):
        lines += [(x, 138 + 12 * i, t) for x, t in zip(columns, row)]
    lines += [(72, 200, "The rate falls as the mass of the sample grows, in every one of the runs."),
              (72, 212, "Further runs at other temperatures are left for a later study of the acid.")]
    tables = [e for e in _extract(_text_pdf(lines)) if e.kind == "table"]
    assert len(tables) == 1
    rows = _cells(tables[0])
    assert rows[0] == ["Sample", "Mass", "Corrosion"]
    assert rows[-1] == ["C3", "5.00", "0.0919"]
    assert "rate (mm/year)" in tables[0].text


@needs_docs
def test_ruled_table_cells_do_not_run_into_each_other():
    """normal_4pages.pdf, [표 1]: the "before" and "after" columns are divided by a
    drawn rule only; the text on either side of it is drawn as one run. Each cell
    holds its own lines, as the text layer lists them cell after cell."""
    path = DOCLING_PDF / "sources" / "normal_4pages.pdf"
    layer = _layer_lines(path, 1)
    start = layer.index("◦ 마시는 물 또는 식품을 매개로")
    before = " ".join(layer[start:start + 3])
    after = " ".join(layer[start + 3:start + 6])
    table = next(e for e in _extract(path.read_bytes()) if e.kind == "table" and "개정전" in e.text)
    rows = _cells(table)
    assert ["분류 기준", before, after] in rows
    assert next(r for r in rows if r[0] == "U코드")[1] == layer[layer.index("U코드 ◦ 대상질병에 U코드 없음")].split(" ", 1)[1]


@needs_docs
def test_shaded_header_row_is_its_own_row():
    """normal_4pages.pdf, [표 1]: the header row ("구분 | 개정전 | 개정후") is set off by a
    filled box, not a rule; its edges still divide it from the first data row. The
    expected cells are the words of the text layer's own header line."""
    path = DOCLING_PDF / "sources" / "normal_4pages.pdf"
    layer = _layer_lines(path, 1)
    assert "구분 개정전 개정후" in layer  # one text-layer line, three cells
    table = next(e for e in _extract(path.read_bytes()) if e.kind == "table" and "개정전" in e.text)
    rows = _cells(table)
    assert rows[0] == ["구분", "개정전", "개정후"]
    assert rows[1][0] == "분류"


@needs_docs
def test_rotated_column_headers_stay_in_their_ruled_table():
    """redp5110_sampled.pdf, Table 2-2: the column headers are printed vertically; they
    belong in the table's header row, one per column, not as loose text after it."""
    path = DOCLING_PDF / "sources" / "redp5110_sampled.pdf"
    document = pdfium.PdfDocument(path)
    index = next(i for i in range(len(document))
                 if "Table 2-2 Comparison" in document[i].get_textpage().get_text_range())
    table = next(e for e in _extract(_page_pdf(path, index)) if e.kind == "table" and "User action" in e.text)
    rows = _cells(table)
    assert rows[0] == ["User action", "*JOBCTL", "QIBM_DB_SECADM", "QIBM_DB_SQLADM", "QIBM_DB_SYSMON", "No Authority"]
    assert all(len(row) == 6 for row in rows)
    assert ["SET CURRENT DEGREE (SQL statement)", "X", "", "X", "", ""] in rows
