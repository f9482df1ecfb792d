"""Small real documents written on the fly, so the ingestion and RAG tests run without
../shared/data: a PDF (pypdfium2, standard Helvetica text objects), a DOCX (python-docx),
a PPTX (python-pptx) and an XLSX (openpyxl), each holding known facts on known
pages/slides/sheets.

The files are real: written by the same libraries people's tools use, read back here with
pypdfium2 / the writers' own readers (``page_of``), never through ingot. Each fact is
stated once, in one place, so a search for it has one right answer.

``write_multi_page_pdf`` makes a stand-in for docling's ``multi_page.pdf`` (five pages on
the history of word processors) with the facts the browser test asks about on the same
pages: page 1 "Patented in 1868 by Christopher Latham Sholes", page 2 "Google Docs
(2006)" and "Microsoft launched Word for MS-DOS in 1983". The wording is ours.
"""

from __future__ import annotations

import ctypes
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

# A page is a list of blocks: ("heading", text) or ("text", text).
Block = tuple[str, str]

PAGE_W, PAGE_H, MARGIN = 612.0, 792.0, 72.0  # US Letter, one-inch margins
FONTS = {"heading": ("Helvetica-Bold", 15.0), "text": ("Helvetica", 11.0)}
AVG_GLYPH_EM = 0.52  # Helvetica's average advance for running text, in ems (to wrap lines)


@dataclass(frozen=True)
class Fact:
    """A fact a test asks about: where it lives and words that must come back with it."""

    source: str  # file name as uploaded
    page: int | None  # 1-based page / slide / sheet; None for DOCX (Word has no pages)
    question: str
    needle: str  # a word of the fact that the passage found must contain
    heading: str | None = None  # the heading it sits under (DOCX sections, sheet names)


# --------------------------------------------------------------------------------------
# PDF
# --------------------------------------------------------------------------------------


def _wide(text: str):
    """A NUL-terminated UTF-16LE buffer for PDFium's FPDF_WIDESTRING arguments (kept alive by the caller)."""
    import pypdfium2.raw as pdfium_c

    data = (text + "\0").encode("utf-16-le")
    buf = ctypes.create_string_buffer(data, len(data))
    return buf, ctypes.cast(buf, pdfium_c.FPDF_WIDESTRING)


def write_pdf(path: Path, pages: Sequence[Sequence[Block]]) -> Path:
    """A text PDF: each block's lines as Helvetica text objects (bold, larger for headings),
    laid out top to bottom with paragraph spacing, one list of blocks per page."""
    import pypdfium2 as pdfium
    import pypdfium2.raw as pdfium_c

    pdf = pdfium.PdfDocument.new()
    try:
        keep = []  # buffers PDFium reads from until the content is generated
        for blocks in pages:
            page = pdf.new_page(PAGE_W, PAGE_H)
            y = PAGE_H - MARGIN
            for kind, text in blocks:
                font, size = FONTS[kind]
                per_line = int((PAGE_W - 2 * MARGIN) / (size * AVG_GLYPH_EM))
                for line in textwrap.wrap(text, per_line):
                    y -= size * 1.25
                    if y < MARGIN:
                        raise ValueError(f"page {len(pdf)} overflows; shorten its text")
                    obj = pdfium_c.FPDFPageObj_NewTextObj(pdf.raw, font.encode(), ctypes.c_float(size))
                    if not obj:
                        raise RuntimeError(f"PDFium could not make a {font} text object")
                    buf, wide = _wide(line)
                    keep.append(buf)
                    if not pdfium_c.FPDFText_SetText(obj, wide):
                        raise RuntimeError("PDFium could not set the text")
                    pdfium_c.FPDFPageObj_Transform(obj, 1, 0, 0, 1, MARGIN, y)
                    pdfium_c.FPDFPage_InsertObject(page.raw, obj)
                y -= size * (0.9 if kind == "text" else 0.5)  # paragraph / heading spacing
            if not pdfium_c.FPDFPage_GenerateContent(page.raw):
                raise RuntimeError("PDFium could not write the page content")
            page.close()
        path.parent.mkdir(parents=True, exist_ok=True)
        pdf.save(str(path))
    finally:
        pdf.close()
    return path


def pdf_pages_text(path: Path) -> list[str]:
    """Each page's text layer as PDFium reads it (independent of ingot)."""
    import pypdfium2 as pdfium

    doc = pdfium.PdfDocument(str(path))
    try:
        return [doc[i].get_textpage().get_text_range() for i in range(len(doc))]
    finally:
        doc.close()


# --------------------------------------------------------------------------------------
# Office files
# --------------------------------------------------------------------------------------


def write_docx(path: Path, sections: Sequence[tuple[str, Sequence[str]]], title: str | None = None) -> Path:
    """A Word document: an optional title, then a level-1 heading per section and its paragraphs."""
    import docx

    document = docx.Document()
    if title:
        document.add_heading(title, level=0)
    for heading, paragraphs in sections:
        document.add_heading(heading, level=1)
        for text in paragraphs:
            document.add_paragraph(text)
    path.parent.mkdir(parents=True, exist_ok=True)
    document.save(str(path))
    return path


def write_pptx(path: Path, slides: Sequence[tuple[str, Sequence[str]]]) -> Path:
    """A deck: slide 1 uses the title layout (title + subtitle), the others "Title and
    Content" with one bullet per line."""
    import pptx

    deck = pptx.Presentation()
    for number, (title, lines) in enumerate(slides, start=1):
        layout = deck.slide_layouts[0 if number == 1 else 1]
        slide = deck.slides.add_slide(layout)
        slide.shapes.title.text = title
        body = slide.placeholders[1].text_frame
        body.text = lines[0] if lines else ""
        for line in lines[1:]:
            body.add_paragraph().text = line
    path.parent.mkdir(parents=True, exist_ok=True)
    deck.save(str(path))
    return path


def write_xlsx(path: Path, sheets: Sequence[tuple[str, Sequence[Sequence[object]]]]) -> Path:
    """A workbook: one sheet per (name, rows), the first row a header."""
    import openpyxl

    book = openpyxl.Workbook()
    book.remove(book.active)
    for name, rows in sheets:
        sheet = book.create_sheet(name)
        for row in rows:
            sheet.append(list(row))
    path.parent.mkdir(parents=True, exist_ok=True)
    book.save(str(path))
    return path


def page_of(path: Path, needle: str) -> int | None:
    """1-based page (PDF), slide (PPTX) or sheet (XLSX) holding ``needle``, read back with
    the format's own library (not ingot); None for DOCX, which has no pages."""
    suffix = path.suffix.lower()
    if suffix == ".pdf":
        for number, text in enumerate(pdf_pages_text(path), start=1):
            if needle in text:
                return number
    elif suffix == ".pptx":
        import pptx

        for number, slide in enumerate(pptx.Presentation(str(path)).slides, start=1):
            if any(needle in shape.text_frame.text for shape in slide.shapes if shape.has_text_frame):
                return number
    elif suffix == ".xlsx":
        import openpyxl

        book = openpyxl.load_workbook(str(path), read_only=True)
        try:
            for number, sheet in enumerate(book.worksheets, start=1):
                if any(needle in str(v) for row in sheet.iter_rows(values_only=True) for v in row if v is not None):
                    return number
        finally:
            book.close()
    elif suffix == ".docx":
        import docx

        if any(needle in p.text for p in docx.Document(str(path)).paragraphs):
            return None
    raise AssertionError(f"{needle!r} not found in {path}")


# --------------------------------------------------------------------------------------
# The documents the tests use
# --------------------------------------------------------------------------------------

FIELD_GUIDE_PAGES: list[list[Block]] = [
    [
        ("heading", "Brennholm Lighthouse"),
        ("text", "The Brennholm lighthouse stands on a granite skerry at the mouth of the Varnes fjord. "
                 "It was lit for the first time on 3 October 1887 by its first keeper, Astrid Lundqvist, "
                 "who tended the paraffin lamp for thirty-one years."),
        ("text", "The tower is eighteen metres tall and painted white with one red band. Its light "
                 "flashes twice every ten seconds and can be seen from nineteen nautical miles away."),
        ("text", "Visitors reach the skerry by the small ferry from Varnes harbour. The lantern room "
                 "is open on summer weekends, and the keeper's house now holds a small museum about "
                 "the storms, shipwrecks and rescues of the outer coast."),
    ],
    [
        ("heading", "Heather Honey of the Oskar Valley"),
        ("text", "Beekeepers in the Oskar valley move their hives up to the moors in July and harvest "
                 "heather honey in the last week of August. A strong hive gives about fourteen "
                 "kilograms of thick, amber honey in a good year."),
        ("text", "Heather honey is so thick that it has to be pressed out of the comb instead of being "
                 "spun out. The valley's cooperative in Hallen runs the only honey press and sells the "
                 "harvest at the autumn market."),
        ("text", "The bees are a dark, calm local strain that copes with cold, wet summers; queens are "
                 "raised each spring at the cooperative's mating station on Kvitøy."),
    ],
    [
        ("heading", "The Night Train to Kolby"),
        ("text", "The night train from Varnes to Kolby leaves at 22:40 from platform 3 and arrives at "
                 "06:15 the next morning. Sleeping cars have compartments for one, two or four "
                 "travellers, and breakfast is served in the dining car before arrival."),
        ("text", "The line crosses the Dovrefjell plateau around two in the morning, the highest point "
                 "of the journey at 1,025 metres above sea level. In winter a snow plough runs ahead "
                 "of the train when drifts block the cuttings."),
        ("text", "Bicycles travel in the luggage van if booked a day ahead, and pets are allowed in "
                 "the compartments marked with a paw sign."),
    ],
]

POLICY_SECTIONS: list[tuple[str, list[str]]] = [
    ("Visitor parking", [
        "Visitors park in the blue garage on Tarn Street, entrance B. The code for the barrier "
        "is 4471 and it changes on the first Monday of every quarter.",
        "Reception hands out a day pass that must sit behind the windscreen.",
    ]),
    ("Travel expenses", [
        "Meals during business travel are refunded up to 38 euros per day with receipts. "
        "Taxi rides need the approval of a team lead before the trip.",
        "Claims are filed within sixty days of returning, in the expenses portal.",
    ]),
]

ROADMAP_SLIDES: list[tuple[str, list[str]]] = [
    ("Project Heron", ["A small weather satellite for the northern seas"]),
    ("Launch plan", [
        "The Heron satellite launches from the Andøya spaceport in March 2031.",
        "A Vega-C rocket places it in a polar orbit at 540 kilometres.",
    ]),
    ("Budget", [
        "The total budget is 84 million euros, spread over five years.",
        "Ground stations in Tromsø and Svalbard receive the data.",
    ]),
]

INVENTORY_SHEETS: list[tuple[str, list[list[object]]]] = [
    ("Summary", [
        ["Item", "Value"],
        ["Warehouses", 3],
        ["Reviewed by", "Operations team"],
    ]),
    ("Warehouses", [
        ["Warehouse", "City", "Capacity (pallets)", "Manager"],
        ["North Depot", "Tromsø", 1200, "Sigrid Falk"],
        ["Harbour Store", "Bergen", 860, "Nils Aamodt"],
        ["Ridge Hall", "Røros", 430, "Maren Dahl"],
    ]),
]

FACTS = {
    "lighthouse": Fact("field_guide.pdf", 1, "When was the Brennholm lighthouse lit for the first time?", "1887"),
    "honey": Fact("field_guide.pdf", 2, "When do beekeepers in the Oskar valley harvest heather honey?", "August"),
    "train": Fact("field_guide.pdf", 3, "When does the night train from Varnes to Kolby leave?", "22:40"),
    "parking": Fact("policy.docx", None, "What is the code for the visitor parking garage barrier?", "4471",
                    heading="Visitor parking"),
    "launch": Fact("roadmap.pptx", 2, "Where does the Heron satellite launch from?", "Andøya"),
    "warehouse": Fact("inventory.xlsx", 2, "Who manages the North Depot warehouse in Tromsø?", "Sigrid Falk",
                      heading="Warehouses"),
}


def write_all(folder: Path) -> dict[str, Path]:
    """The four generated documents in ``folder``, by file name."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [
        write_pdf(folder / "field_guide.pdf", FIELD_GUIDE_PAGES),
        write_docx(folder / "policy.docx", POLICY_SECTIONS),
        write_pptx(folder / "roadmap.pptx", ROADMAP_SLIDES),
        write_xlsx(folder / "inventory.xlsx", INVENTORY_SHEETS),
    ]
    return {p.name: p for p in paths}


# The stand-in for docling's multi_page.pdf: five pages, the browser test's facts on pages 1 and 2.
MULTI_PAGE_PAGES: list[list[Block]] = [
    [
        ("heading", "The Typewriter Era (19th Century)"),
        ("text", "Word processing began with the typewriter. Patented in 1868 by Christopher Latham "
                 "Sholes, the typewriter let people produce legible, professional documents much faster "
                 "than by hand, and its QWERTY keyboard is still the layout of most keyboards today."),
        ("text", "Offices hired typists, and carbon paper made copies in the same pass. The electric "
                 "typewriter, introduced by IBM in 1935, made typing quicker and less tiring."),
        ("text", "In 1964 IBM combined its Selectric typewriter with magnetic tape storage in the "
                 "MT/ST, so typed text could be recorded, corrected and played back: the first step "
                 "from typing towards editing."),
    ],
    [
        ("heading", "Personal Computers and the Cloud (1978 - 2006)"),
        ("text", "WordStar, released in 1978 for the CP/M operating system, was one of the first word "
                 "processing programs that many people used. It offered cut, copy and paste."),
        ("text", "Microsoft launched Word for MS-DOS in 1983, with mouse support, and over the following "
                 "decades Word became the standard word processor in offices."),
        ("text", "Google Docs (2006) moved the word processor into the web browser: documents live in "
                 "the cloud and several people can edit the same text at the same time."),
    ],
    [
        ("heading", "Specialized Writing Tools"),
        ("text", "Scientists and engineers adopted LaTeX, a markup language that typesets mathematical "
                 "formulas precisely. Screenwriters use programs such as Final Draft that format "
                 "dialogue and scene headings automatically."),
        ("text", "Law firms valued redlining and document comparison, features that track every change "
                 "made to a contract between two versions."),
    ],
    [
        ("heading", "Features That Changed Writing"),
        ("text", "Undo and redo made experimenting with text safe. Spell checking and grammar checking "
                 "became standard in the 1990s, and templates gave letters, invoices and resumes a "
                 "ready-made shape."),
        ("text", "Track changes let a reviewer suggest edits while the original text stays visible, "
                 "which turned writing into teamwork."),
    ],
    [
        ("heading", "What Comes Next"),
        ("text", "Writing assistants now suggest words, check tone and summarize long drafts. Speech "
                 "recognition makes dictation practical, and documents embed images, charts and video."),
        ("text", "From the clattering machines of the nineteenth century to assistants that draft whole "
                 "paragraphs, the tool keeps changing while the goal stays the same: clear writing."),
    ],
]


def write_multi_page_pdf(path: Path) -> Path:
    """Five text pages about word processors; "Sholes" on page 1, "Google Docs" only on page 2."""
    return write_pdf(path, MULTI_PAGE_PAGES)


# --------------------------------------------------------------------------------------
# Office files with structure the extractors must reproduce (tests/test_extract_fidelity_office.py)
# --------------------------------------------------------------------------------------

# One list level: (numFmt, lvlText, start), e.g. ("decimal", "%1.%2", 1) or ("lowerLetter", "%1)", 1).
NumberingLevel = tuple[str, str, int]
# A paragraph: (style name or None, numId or None, ilvl, text).
NumberedParagraph = tuple[str | None, int | None, int, str]


def write_numbered_docx(
    path: Path,
    definitions: dict[int, Sequence[NumberingLevel]],
    instances: dict[int, tuple[int, dict[int, int]]],
    paragraphs: Sequence[NumberedParagraph],
    header: str | None = None,
    footer: str | None = None,
) -> Path:
    """A Word document with its own list definitions, written the way Word stores them:
    ``definitions`` are abstractNums (levels in order), ``instances`` map a numId to
    (abstractNumId, {ilvl: startOverride}), and each paragraph names its numbering with a
    ``w:numPr``. ``footer`` gets a PAGE field after its text (cached result "7"), as Word's
    page-number footers have."""
    import docx
    from docx.oxml import parse_xml
    from docx.oxml.ns import nsdecls

    document = docx.Document()
    numbering = document.part.numbering_part.element
    for abstract_id, levels in definitions.items():
        lvls = "".join(
            f'<w:lvl w:ilvl="{i}"><w:start w:val="{start}"/><w:numFmt w:val="{fmt}"/>'
            f'<w:lvlText w:val="{text}"/></w:lvl>'
            for i, (fmt, text, start) in enumerate(levels)
        )
        element = parse_xml(f'<w:abstractNum {nsdecls("w")} w:abstractNumId="{abstract_id}">{lvls}</w:abstractNum>')
        first_num = numbering.find("{http://schemas.openxmlformats.org/wordprocessingml/2006/main}num")
        if first_num is not None:
            first_num.addprevious(element)  # the schema puts every abstractNum before the nums
        else:
            numbering.append(element)
    for num_id, (abstract_id, overrides) in instances.items():
        body = "".join(
            f'<w:lvlOverride w:ilvl="{ilvl}"><w:startOverride w:val="{start}"/></w:lvlOverride>'
            for ilvl, start in overrides.items()
        )
        numbering.append(parse_xml(
            f'<w:num {nsdecls("w")} w:numId="{num_id}"><w:abstractNumId w:val="{abstract_id}"/>{body}</w:num>'
        ))
    for style, num_id, ilvl, text in paragraphs:
        paragraph = document.add_paragraph(text, style=style)
        if num_id is not None:
            num_pr = paragraph._p.get_or_add_pPr().get_or_add_numPr()
            num_pr.get_or_add_ilvl().val = ilvl
            num_pr.get_or_add_numId().val = num_id
    section = document.sections[0]
    if header:
        section.header.paragraphs[0].text = header
    if footer:
        paragraph = section.footer.paragraphs[0]
        paragraph.text = footer + " "
        for xml in ('<w:r {ns}><w:fldChar w:fldCharType="begin"/></w:r>',
                    '<w:r {ns}><w:instrText xml:space="preserve"> PAGE </w:instrText></w:r>',
                    '<w:r {ns}><w:fldChar w:fldCharType="separate"/></w:r>',
                    '<w:r {ns}><w:t>7</w:t></w:r>',
                    '<w:r {ns}><w:fldChar w:fldCharType="end"/></w:r>'):
            paragraph._p.append(parse_xml(xml.format(ns=nsdecls("w"))))
    path.parent.mkdir(parents=True, exist_ok=True)
    document.save(str(path))
    return path


def write_sheet_xlsx(path: Path, name: str, cells: dict[str, object], merges: Sequence[str] = ()) -> Path:
    """A one-sheet workbook with values at given cells ("B2": 3) and merged ranges ("A1:C1"),
    for layouts a row-by-row writer cannot express: tables side by side, gaps, merges."""
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = name
    for ref, value in cells.items():
        sheet[ref] = value
    for ref in merges:
        sheet.merge_cells(ref)
    path.parent.mkdir(parents=True, exist_ok=True)
    book.save(str(path))
    return path


def write_chart_xlsx(path: Path, name: str, rows: Sequence[Sequence[object]], title: str, anchor: str) -> Path:
    """A one-sheet workbook: ``rows`` (header first, categories in column A, one series per
    further column) and a clustered bar chart of them at ``anchor``. openpyxl saves the
    chart with formula references only, no cached values, as generated workbooks do."""
    import openpyxl
    from openpyxl.chart import BarChart, Reference

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = name
    for row in rows:
        sheet.append(list(row))
    chart = BarChart()
    chart.title = title
    chart.add_data(Reference(sheet, min_col=2, max_col=len(rows[0]), min_row=1, max_row=len(rows)), titles_from_data=True)
    chart.set_categories(Reference(sheet, min_col=1, min_row=2, max_row=len(rows)))
    sheet.add_chart(chart, anchor)
    path.parent.mkdir(parents=True, exist_ok=True)
    book.save(str(path))
    return path
