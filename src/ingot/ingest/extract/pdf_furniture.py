"""Running headers, footers and page numbers: page furniture, kept out of the body.

A line that recurs at the same place near the top or bottom of many pages ("Global
Report", "Chapter 3 | Methods", "Page 12 of 40", a bare "12") is a running head or
foot, not part of the text it interrupts: left in, it splits paragraphs and sentences
across pages, is repeated in every chunk's neighbourhood and matches queries it has
nothing to do with. Furniture is found across pages: a short line no larger than body
text, with its digits masked (page numbers change), at about the same distance from
the top or bottom edge on at least MIN_PAGES pages.

Choice: furniture is taken out before the body becomes elements (so a running head set
large never becomes a heading of what follows); its text is kept as metadata of the
first element of its page (``meta["page_header"]`` / ``meta["page_footer"]``, lines
joined by newlines), so nothing is silently lost, while chunks and Markdown carry only
the body.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass

MARGIN_SHARE = 0.12  # furniture sits in the top or bottom this share of the page height
MIN_PAGES = 3  # a chapter's running head recurs on that chapter's pages only: a count, not a share
POSITION_TOLERANCE = 6.0  # points: the same place on every page, give or take
MAX_CHARS = 150  # running heads are short
DIGITS = re.compile(r"\d+")
ROMAN_PAGE = re.compile(r"^(?:page\s+)?[ivxlc]+$", re.IGNORECASE)
# A page number alone ("#", "- # -", "page # of #"); any other furniture has words: a
# number in a table cell ("#.#") recurs at the same place on many pages too.
PAGE_NUMBER = re.compile(r"^[-\u2013\u2014 ]*(?:page )?#(?: (?:of|/) #)?[-\u2013\u2014 ]*$")
LETTERS = re.compile(r"[^\W\d_]")


def _key(text: str) -> str:
    """The text as it repeats from page to page: digits (page numbers, dates of issue)
    masked, whitespace and case folded."""
    key = DIGITS.sub("#", " ".join(text.split()).lower())
    return "#" if ROMAN_PAGE.match(key) else key


@dataclass(frozen=True)
class Candidate:
    """A line or short block of a page, where it sits, and the page's height."""

    page: int
    text: str
    y0: float
    y1: float
    height: float

    @property
    def band(self) -> str | None:
        """"header" or "footer" when it lies in the page's top or bottom margin."""
        if len(self.text) > MAX_CHARS:
            return None
        if self.y1 <= MARGIN_SHARE * self.height:
            return "header"
        if self.y0 >= (1 - MARGIN_SHARE) * self.height:
            return "footer"
        return None

    @property
    def edge_distance(self) -> float:
        return self.y0 if self.band == "header" else self.height - self.y1


def find(candidates: list[Candidate], pages: int) -> set[int]:
    """Indices of the candidates that are running headers or footers of a document of
    ``pages`` pages."""
    if pages < MIN_PAGES:
        return set()
    groups: dict[tuple[str, str], list[tuple[int, Candidate]]] = defaultdict(list)
    for index, candidate in enumerate(candidates):
        band = candidate.band
        key = _key(candidate.text)
        if band is not None and (PAGE_NUMBER.match(key) or len(LETTERS.findall(key)) >= 3):
            groups[(band, key)].append((index, candidate))
    needed = MIN_PAGES
    found: set[int] = set()
    for members in groups.values():
        for cluster in _by_position(members):
            if len({c.page for _, c in cluster}) >= needed:
                found.update(index for index, _ in cluster)
    return found


def _by_position(members: list[tuple[int, Candidate]]) -> list[list[tuple[int, Candidate]]]:
    """Split same-text candidates into groups at about the same distance from the page
    edge (a heading that merely repeats in the body does not sit at the same place)."""
    clusters: list[list[tuple[int, Candidate]]] = []
    for member in sorted(members, key=lambda m: m[1].edge_distance):
        if clusters and member[1].edge_distance - clusters[-1][-1][1].edge_distance <= POSITION_TOLERANCE:
            clusters[-1].append(member)
        else:
            clusters.append([member])
    return clusters
