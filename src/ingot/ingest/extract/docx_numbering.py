"""Word's automatic numbering (``word/numbering.xml``) rendered as Word shows it.

Word does not store "1.2.1" or "a)" in the text: a paragraph names a numbering instance
(``w:numId``) and a level (``w:ilvl``), directly or through its style, and the label is
computed while the document is laid out. Without that, headings lose the numbers people
cite ("see 4.2") and ordered lists read as bullets. This module replays the counters in
document order.

Model (ECMA-376 Part 1, 17.9):

* ``w:abstractNum`` defines up to nine levels: ``start``, ``numFmt`` (decimal,
  lowerLetter, upperLetter, lowerRoman, upperRoman, bullet, none, ...), ``lvlText``
  (``%1.%2.`` = this level's and enclosing levels' values), ``lvlRestart``, ``isLgl``.
  One that only says ``numStyleLink`` borrows the definition of a numbering style.
* ``w:num`` is an instance pointing at an abstractNum; its ``lvlOverride`` may carry a
  ``startOverride`` (Word's "restart numbering": the level starts again there) or a whole
  replacement ``w:lvl``.
* Counters belong to the abstract definition, so two instances of the same definition
  continue each other's numbering unless one overrides the start; that is how Word
  continues a list interrupted by other paragraphs.
* Using a level restarts the deeper levels (unless ``lvlRestart`` says otherwise). A level
  shown in a label before it was ever used (a Heading 3 straight after a Heading 1) shows
  its start value and counts as used, so the next item at that level follows it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable

from docx.document import Document
from docx.opc.constants import RELATIONSHIP_TYPE as RT
from docx.oxml.ns import qn
from lxml import etree

LEVELS = 9
BULLET = "-"  # what a bullet level renders as: Word's glyph is often a private-use Symbol character
_PLACEHOLDER = re.compile(r"%([1-9])")
_ROMAN = [(1000, "m"), (900, "cm"), (500, "d"), (400, "cd"), (100, "c"), (90, "xc"),
          (50, "l"), (40, "xl"), (10, "x"), (9, "ix"), (5, "v"), (4, "iv"), (1, "i")]


@dataclass(frozen=True)
class Level:
    """One level of a list definition, as far as its label is concerned."""

    start: int = 1
    fmt: str = "decimal"
    text: str = "%1."
    restart: int | None = None  # lvlRestart: restart after this 1-based level; 0 = never; None = default
    legal: bool = False  # isLgl: enclosing levels shown as decimal numbers


@dataclass
class _Instance:
    """A ``w:num``: the abstract definition it uses and its per-level overrides."""

    abstract: str
    start_overrides: dict[int, int] = field(default_factory=dict)
    level_overrides: dict[int, Level] = field(default_factory=dict)


def _int(element: etree._Element | None, default: int) -> int:
    if element is None:
        return default
    try:
        return int(element.get(qn("w:val")))
    except (TypeError, ValueError):
        return default


def _level(lvl: etree._Element) -> Level:
    """A ``w:lvl`` element as a :class:`Level` (missing parts take Word's defaults)."""
    fmt = lvl.find(qn("w:numFmt"))
    text = lvl.find(qn("w:lvlText"))
    restart = lvl.find(qn("w:lvlRestart"))
    legal = lvl.find(qn("w:isLgl"))
    return Level(
        start=_int(lvl.find(qn("w:start")), 1),
        fmt=(fmt.get(qn("w:val")) if fmt is not None else None) or "decimal",
        text=text.get(qn("w:val"), "") if text is not None else "",
        restart=_int(restart, 0) if restart is not None else None,
        legal=legal is not None and legal.get(qn("w:val"), "true") not in ("0", "false", "off"),
    )


def _levels(abstract: etree._Element) -> dict[int, Level]:
    return {_int_attr(lvl, "w:ilvl"): _level(lvl) for lvl in abstract.iter(qn("w:lvl"))}


def _int_attr(element: etree._Element, name: str, default: int = 0) -> int:
    try:
        return int(element.get(qn(name)))
    except (TypeError, ValueError):
        return default


# ---------------------------------------------------------------------------- label formats


def _letters(value: int) -> str:
    """Word's letter numbering: a..z, then aa..zz, aaa.. (the letter repeated, not base 26)."""
    if value < 1:
        return str(value)
    return chr(ord("a") + (value - 1) % 26) * ((value - 1) // 26 + 1)


def _roman(value: int) -> str:
    if value < 1:
        return str(value)
    out = []
    for amount, digits in _ROMAN:
        count, value = divmod(value, amount)
        out.append(digits * count)
    return "".join(out)


def _ordinal(value: int) -> str:
    suffix = "th" if 10 <= value % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(value % 10, "th")
    return f"{value}{suffix}"


def format_value(value: int, fmt: str) -> str:
    """One counter in a level's number format; formats without a cheap rendering
    (Chinese counting, spelled-out numbers, ...) fall back to decimal digits."""
    if fmt == "lowerLetter":
        return _letters(value)
    if fmt == "upperLetter":
        return _letters(value).upper()
    if fmt == "lowerRoman":
        return _roman(value)
    if fmt == "upperRoman":
        return _roman(value).upper()
    if fmt == "decimalZero":
        return f"{value:02d}"
    if fmt == "ordinal":
        return _ordinal(value)
    if fmt == "none":
        return ""
    return str(value)


# ---------------------------------------------------------------------------- definitions


class Numbering:
    """The document's list definitions plus the running counters; :meth:`label` is called
    once per numbered paragraph, in document order."""

    def __init__(self, root: etree._Element | None, style_num_ids: dict[str, int]) -> None:
        self.abstracts: dict[str, dict[int, Level]] = {}
        self.instances: dict[int, _Instance] = {}
        self.values: dict[str, list[int | None]] = {}  # abstract id -> current value per level
        self.started: set[int] = set()  # instances whose start overrides were applied
        if root is not None:
            self._load(root, style_num_ids)

    @classmethod
    def of(cls, document: Document, style_num_ids: dict[str, int]) -> "Numbering":
        """The numbering of a document (empty when it has no numbering part). Looked up by
        relationship so python-docx does not create a part on access."""
        try:
            part = document.part.part_related_by(RT.NUMBERING)
        except KeyError:
            return cls(None, style_num_ids)
        return cls(part.element, style_num_ids)

    def _load(self, root: etree._Element, style_num_ids: dict[str, int]) -> None:
        raw = {a.get(qn("w:abstractNumId")): a for a in root.iter(qn("w:abstractNum"))}
        nums = {_int_attr(n, "w:numId", -1): n for n in root.iter(qn("w:num"))}
        for num_id, num in nums.items():
            ref = num.find(qn("w:abstractNumId"))
            if ref is None:
                continue
            abstract = self._resolve_link(ref.get(qn("w:val")), raw, nums, style_num_ids)
            instance = _Instance(abstract=abstract)
            for override in num.iter(qn("w:lvlOverride")):
                ilvl = _int_attr(override, "w:ilvl")
                start = override.find(qn("w:startOverride"))
                if start is not None:
                    instance.start_overrides[ilvl] = _int(start, 1)
                lvl = override.find(qn("w:lvl"))
                if lvl is not None:
                    instance.level_overrides[ilvl] = _level(lvl)
            self.instances[num_id] = instance
        self.abstracts = {aid: _levels(a) for aid, a in raw.items()}

    @staticmethod
    def _resolve_link(abstract_id: str, raw: dict, nums: dict, style_num_ids: dict[str, int]) -> str:
        """Follow ``numStyleLink`` (an abstractNum that only names a numbering style) to
        the abstractNum that really defines the levels; a few hops at most."""
        seen: set[str] = set()
        while abstract_id in raw and abstract_id not in seen:
            seen.add(abstract_id)
            link = raw[abstract_id].find(qn("w:numStyleLink"))
            num_id = style_num_ids.get(link.get(qn("w:val"), "")) if link is not None else None
            num = nums.get(num_id) if num_id is not None else None
            ref = num.find(qn("w:abstractNumId")) if num is not None else None
            if ref is None:
                break
            abstract_id = ref.get(qn("w:val"))
        return abstract_id

    def _definition(self, instance: _Instance, ilvl: int) -> Level | None:
        return instance.level_overrides.get(ilvl) or self.abstracts.get(instance.abstract, {}).get(ilvl)

    def _start(self, instance: _Instance, ilvl: int) -> int:
        if ilvl in instance.start_overrides:
            return instance.start_overrides[ilvl]
        level = self._definition(instance, ilvl)
        return level.start if level is not None else 1

    # ------------------------------------------------------------------------ counting

    def label(self, num_id: int, ilvl: int) -> str | None:
        """Advance the counters for one paragraph and return its label: ``"1.2.1."``,
        ``"a)"``, :data:`BULLET` for a bullet, ``""`` for a level that shows nothing, or
        None when the instance or level is not defined (the caller treats it as a bullet)."""
        instance = self.instances.get(num_id)
        if instance is None:
            return None
        ilvl = min(max(ilvl, 0), LEVELS - 1)
        level = self._definition(instance, ilvl)
        if level is None:
            return None
        values = self.values.setdefault(instance.abstract, [None] * LEVELS)
        if num_id not in self.started:
            self.started.add(num_id)
            for overridden in instance.start_overrides:
                if 0 <= overridden < LEVELS:
                    values[overridden] = None  # "restart numbering": count again from the override
        current = values[ilvl]
        values[ilvl] = self._start(instance, ilvl) if current is None else current + 1
        self._restart_deeper(instance, values, ilvl)
        if level.fmt == "bullet":
            return BULLET
        return self._render(instance, level, values)

    def _restart_deeper(self, instance: _Instance, values: list[int | None], ilvl: int) -> None:
        """Using level ``ilvl`` restarts each deeper level whose ``lvlRestart`` allows it
        (by default every deeper level; ``0`` never)."""
        for deeper in range(ilvl + 1, LEVELS):
            definition = self._definition(instance, deeper)
            restart_after = definition.restart if definition is not None and definition.restart is not None else deeper
            if ilvl < restart_after:
                values[deeper] = None

    def _render(self, instance: _Instance, level: Level, values: list[int | None]) -> str:
        """``lvlText`` with each ``%n`` replaced by level n's value in level n's format."""

        def value_of(match: re.Match[str]) -> str:
            ilvl = int(match.group(1)) - 1
            if values[ilvl] is None:  # an enclosing level never used: shown (and counted) at its start
                values[ilvl] = self._start(instance, ilvl)
            definition = self._definition(instance, ilvl)
            fmt = "decimal" if level.legal or definition is None else definition.fmt
            return format_value(values[ilvl], fmt)

        return _PLACEHOLDER.sub(value_of, level.text).strip()


def style_num_ids(styles: Iterable[etree._Element]) -> dict[str, int]:
    """Numbering styles' own instance ids (``w:style w:type="numbering"``), which
    ``numStyleLink`` refers to."""
    out: dict[str, int] = {}
    for style in styles:
        if style.get(qn("w:type")) != "numbering":
            continue
        num_id = style.find(f"{qn('w:pPr')}/{qn('w:numPr')}/{qn('w:numId')}")
        if num_id is not None and style.get(qn("w:styleId")):
            out[style.get(qn("w:styleId"))] = _int(num_id, -1)
    return out
