"""Writing systems in a PDF's text layer: right-to-left runs, CJK line joins, and the
OCR language a page's script calls for.

Right to left: PDFium hands characters over in content-stream order, which for Arabic
or Hebrew may be logical (the order they are read) or visual (left to right, as some
producers draw them). The layout code works left to right, so characters of a line
holding right-to-left text are put in visual order (by x) first, and each finished line
is turned back into logical order by the Unicode bidirectional algorithm (python-bidi).
Applying the algorithm to a visual line with the paragraph direction of the line
undoes the reordering it describes (runs of the other direction, digits and Latin
words inside Arabic, stay left to right), so both producer orders end up the same.

CJK: Chinese and Japanese set no spaces between words, so a line break inside such
text joins without one; Korean sets spaces between words and keeps them.
"""

from __future__ import annotations

import re
from typing import Sequence

# Every document's pages are checked for right-to-left text (RTL, compiled here); the
# other patterns are only needed on pages that hold some, or once per document that
# goes to OCR, so they stay strings and are compiled on first use (re caches them):
# compiling these large character classes at import cost each extraction child (a new
# process per file) about 15 ms, as much as extracting a short PDF.
RTL = re.compile("[\u0590-\u08ff\ufb1d-\ufdff\ufe70-\ufefc]")  # Hebrew, Arabic, Syriac, Thaana, NKo ... and their presentation forms
LETTER_RTL = "[\u05d0-\u05ea\u0620-\u064a\u0671-\u06d3\u06fa-\u06ff\ufb1d-\ufdff\ufe70-\ufefc]"
LATIN = "[A-Za-z\u00c0-\u024f]"
# A Latin letter touching a right-to-left one: no word runs across scripts, so this is a
# word break whose space the producer left out (Word drops it next to an embedded Latin word).
SCRIPT_CHANGE = f"(?<={LETTER_RTL})(?={LATIN})|(?<={LATIN})(?={LETTER_RTL})"
# Han, Hiragana, Katakana, CJK punctuation and full-width forms: written without spaces.
# (As ranges, not a pattern: line_joint runs at every line break of every document.)
UNSPACED = (("\u3000", "\u30ff"), ("\u3400", "\u4dbf"), ("\u4e00", "\u9fff"), ("\uf900", "\ufaff"), ("\uff01", "\uff60"))
HAN = "[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]"
KANA = "[\u3040-\u30ff]"
HANGUL = "[\u1100-\u11ff\u3130-\u318f\uac00-\ud7af]"
ARABIC = "[\u0600-\u06ff\u0750-\u077f\ufb50-\ufdff\ufe70-\ufefc]"


def has_rtl(text: str) -> bool:
    """Does the text hold any right-to-left character?"""
    return RTL.search(text) is not None


def visual_order(chars: Sequence[tuple[float, bool, bool]]) -> list[int]:
    """Character indices in the order the layout code wants: runs of characters that
    share a line (in content-stream order) and hold right-to-left text are sorted left
    to right; everything else keeps its order.

    ``chars`` holds, per character, (x of its left edge, starts a new run: a line break
    or a jump to another line, is a right-to-left character)."""
    order: list[int] = []
    run: list[int] = []
    rtl_run = False
    for index, (_, starts, rtl) in enumerate(chars):
        if starts and run:
            order.extend(sorted(run, key=lambda i: chars[i][0]) if rtl_run else run)
            run, rtl_run = [], False
        run.append(index)
        rtl_run = rtl_run or rtl
    order.extend(sorted(run, key=lambda i: chars[i][0]) if rtl_run else run)  # stable: ligature parts keep their order
    return order


def to_logical(visual: str) -> str:
    """A line of text in visual order (left to right as drawn) -> logical order, by the
    Unicode bidi algorithm with the line's own paragraph direction: right to left when
    its right-to-left letters outnumber its Latin ones."""
    from bidi import get_display  # only pages with right-to-left text get here

    rtl = len(re.findall(LETTER_RTL, visual)) >= len(re.findall(LATIN, visual))
    return get_display(re.sub(SCRIPT_CHANGE, " ", visual), base_dir="R" if rtl else "L")


def is_rtl_line(text: str) -> bool:
    """Is this (logical) line set right to left: more right-to-left letters than Latin?"""
    return len(re.findall(LETTER_RTL, text)) > len(re.findall(LATIN, text))


def line_joint(before: str, after: str) -> str:
    """What goes between two lines of one paragraph: nothing inside Chinese or Japanese
    text (a line break there is not a word break), else a space."""
    if before and after and _unspaced(before[-1]) and _unspaced(after[0]):
        return ""
    return " "


def _unspaced(ch: str) -> bool:
    """Is the character Chinese or Japanese script, set without spaces (UNSPACED)?"""
    return ch >= "\u3000" and any(low <= ch <= high for low, high in UNSPACED)


GERMAN = "[äöüßÄÖÜ]"
FRENCH = "[éèêëàâçùûîïôœÉÈÊÀÇ]"


def ocr_language_of(text: str) -> str | None:
    """The Tesseract language pack a document's text layer says its scans need: by
    script (Han -> chi_sim, Arabic -> ara), and for Latin script by the letters German
    and French use (a share of the letters no English text reaches). None without
    enough text to tell."""
    han, arabic, latin = len(re.findall(HAN, text)), len(re.findall(ARABIC, text)), len(re.findall(LATIN, text))
    if max(han, arabic, latin) < 20:
        return None
    if han >= max(arabic, latin):
        return "chi_sim"
    if arabic >= latin:
        return "ara"
    if len(re.findall(GERMAN, text)) >= 0.005 * latin:
        return "deu"
    if len(re.findall(FRENCH, text)) >= 0.01 * latin:
        return "fra"
    return "eng"
