"""Text layers PDFium cannot map to Unicode, read with pdfminer.six instead.

PDFium turns glyphs into characters through the font's ToUnicode map, its encoding and
its built-in CID maps; some producers leave all of these out or broken (CJK fonts with
no ToUnicode, subset fonts with private codes), and PDFium then returns U+FFFD, control
or private-use codes, or nothing, for text that is plainly on the page. pdfminer.six
decodes such layers by other routes (the CIDSystemInfo ordering's CID-to-Unicode table,
glyph names), so a page whose layer PDFium leaves mostly unmapped is read with pdfminer:
its text is kept rather than thrown away and OCR'd (which, for a page with a layer,
costs seconds and reads worse). pdfminer is about a hundred times slower than PDFium, so
it only ever reads the pages that need it.
"""

from __future__ import annotations

import io
import re

from ingot.ingest.elements import Element
from ingot.ingest.extract.pdf_scripts import line_joint

UNMAPPED_SHARE = 0.3  # a layer with at least this share of glyphs PDFium gives no character for is unusable
CID_PLACEHOLDER = re.compile(r"\(cid:\d+\)")


def unmapped(code: int) -> bool:
    """Is this PDFium character code a glyph without a usable character?"""
    return code in (0xFFFD, 0xFFFE) or code < 0x20 or 0x80 <= code < 0xA0 or 0xE000 <= code <= 0xF8FF


def unusable(visible: int, unmapped_count: int, min_chars: int) -> bool:
    """Does the page carry text (``visible`` glyphs) that PDFium mostly cannot map?"""
    return visible >= min_chars and unmapped_count >= UNMAPPED_SHARE * visible


def usable_chars(text: str) -> int:
    """Letters and digits a reader gets from the text (pdfminer's "(cid:N)" placeholders
    and U+FFFD are not)."""
    return sum(ch.isalnum() for ch in CID_PLACEHOLDER.sub("", text))


def read_page(data: bytes, index: int, password: str | None, number: int) -> list[Element]:
    """Page ``index`` of the document read by pdfminer: its text boxes in pdfminer's
    reading order, each a text element, box in points from the top-left corner."""
    from pdfminer.high_level import extract_pages
    from pdfminer.layout import LAParams, LTTextContainer

    elements: list[Element] = []
    for page in extract_pages(io.BytesIO(data), password=password or "", page_numbers=[index], laparams=LAParams()):
        height = page.height
        for box in page:
            if not isinstance(box, LTTextContainer):
                continue
            text = _join(line.get_text() for line in box)
            if usable_chars(text) == 0:
                continue
            bbox = (round(box.x0, 2), round(height - box.y1, 2), round(box.x1, 2), round(height - box.y0, 2))
            elements.append(Element(kind="text", text=text, page=number, location=f"page {number}", bbox=bbox,
                                    meta={"text_layer": "pdfminer"}))
    return elements


def _join(lines) -> str:
    """pdfminer's lines of one box -> one paragraph; no space where CJK lines meet."""
    out = ""
    for line in lines:
        line = CID_PLACEHOLDER.sub("", line).strip()
        if not line:
            continue
        out = line if not out else out + line_joint(out, line) + line
    return re.sub(r"[ \t]+", " ", out)
