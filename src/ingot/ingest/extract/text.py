"""Markdown and plain text.

Markdown (``.md``/``.markdown``/``.mdown``/``.mkd``) is parsed by markdown-it-py (CommonMark +
GFM tables and strikethrough) and walked token by token, so structure comes from a real
parser rather than guesses:

* ``#`` headings become ``title`` elements. Like the other extractors, a title's
  ``heading_path`` lists the headings *enclosing* it (not itself; ``meta["level"]`` has its
  level) and every later element carries the path including it.
* Paragraphs (also inside block quotes) become ``text``; inline markup is dropped (link
  text and image alt text kept) because the text is for reading and embedding.
* A top-level list becomes one ``list`` element, one ``- item`` line per item, nested items
  indented two spaces per level (ordered lists too, as the other extractors do).
* Fenced and indented code becomes ``text`` (``meta["code"]``, with the fence language).
* Pipe tables become ``table`` elements re-rendered as normalised Markdown (leading and
  trailing pipes, ``|---|`` separator), the same shape every other extractor produces;
  more than ``table_rows_per_element`` body rows are split, the header row repeated.

Anything else (.txt, .log, .rst, .json, no extension) is plain text: paragraphs are runs
of lines separated by blank lines, kind ``text``, line breaks inside kept. Line-structured
formats (logs, JSON, JSONL/NDJSON) mark their paragraphs ``meta["lines"]``: one record per
line (or a pretty-printed JSON value over many lines) has no sentence ends, so the
chunker groups whole lines up to its budget instead of cutting a megabyte at words.

Every element has ``page=None`` and ``meta["line"]`` (1-based first source line). Bytes are
decoded by :func:`decode_text` (BOM, then strict UTF-8, then charset-normalizer).
"""

from __future__ import annotations

import codecs
from pathlib import PurePath
from typing import Any

from ingot.ingest.elements import Element, Extraction, ExtractionError, ExtractOptions, split_table

MARKDOWN_SUFFIXES = {".md", ".markdown", ".mdown", ".mkd", ".mkdn"}
LINE_SUFFIXES = {".log", ".json", ".jsonl", ".ndjson"}

WESTERN = "cp1252"
WESTERN_CHAOS_MARGIN = 0.1

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),  # before UTF-16: its BOM starts with UTF-16-LE's
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def extract(data: bytes, options: ExtractOptions) -> Extraction:
    text = decode_text(data)
    if not text.strip():
        raise ExtractionError("empty", "the file has no text")
    if PurePath(options.filename).suffix.lower() in MARKDOWN_SUFFIXES:
        elements = markdown_elements(text, options.table_rows_per_element)
    else:
        elements = plain_elements(text, lines=PurePath(options.filename).suffix.lower() in LINE_SUFFIXES)
    if not elements:
        raise ExtractionError("empty", "the file has no text")
    return Extraction(elements=elements, pages=None)


def decode_text(data: bytes) -> str:
    """Bytes -> str. A BOM is trusted, then strict UTF-8 (by far the most common and
    the one charset detectors sometimes second-guess on short inputs), then
    charset-normalizer's best guess. Newlines are normalised to ``\\n``."""
    text = _decode(data)
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _decode(data: bytes) -> str:
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return data.decode(encoding, errors="replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    results = from_bytes(data)
    best = results.best()
    if best is None:
        raise ExtractionError("unsupported", "the file is not text in any encoding we recognise")
    # On short Western text charset-normalizer often ranks DOS code pages (cp775, cp850)
    # first, turning "Müller" into "M³ller". Windows-1252 (a superset of Latin-1) is far
    # more common in office exports, so prefer it when it reads about as cleanly.
    for match in results:
        if WESTERN in match.could_be_from_charset and match.chaos <= best.chaos + WESTERN_CHAOS_MARGIN:
            return data.decode(WESTERN, errors="replace")
    return str(best)


# ---------------------------------------------------------------- plain text


def plain_elements(text: str, lines: bool = False) -> list[Element]:
    """Blank-line separated paragraphs, line breaks inside a paragraph kept; ``lines``:
    the text is line-structured (see the module docstring)."""
    meta: dict[str, Any] = {"lines": True} if lines else {}
    elements: list[Element] = []
    lines: list[str] = []
    start = 0
    for number, line in enumerate(text.split("\n") + [""], start=1):
        if line.strip():
            if not lines:
                start = number
            lines.append(line.rstrip())
        elif lines:
            body = "\n".join(lines).strip("\n")
            elements.append(Element(kind="text", text=_dedent(body), meta={"line": start, **meta}))
            lines = []
    return elements


def _dedent(text: str) -> str:
    import textwrap

    return textwrap.dedent(text).strip()


# ---------------------------------------------------------------- Markdown


def _parser() -> Any:
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark").enable(["table", "strikethrough"])


def markdown_elements(text: str, table_rows_per_element: int = 50) -> list[Element]:
    tokens = _parser().parse(text)
    return _MarkdownWalker(tokens, table_rows_per_element).run()


class _MarkdownWalker:
    """One pass over markdown-it's flat block-token stream. Lists and tables are consumed
    whole (from their open token to the matching close) and rendered at once."""

    def __init__(self, tokens: list[Any], table_rows_per_element: int = 50) -> None:
        self.tokens = tokens
        self.rows_per_table = max(1, table_rows_per_element)
        self.pos = 0
        self.headings: list[tuple[int, str]] = []
        self.elements: list[Element] = []

    @property
    def path(self) -> tuple[str, ...]:
        return tuple(text for _, text in self.headings)

    def run(self) -> list[Element]:
        while self.pos < len(self.tokens):
            token = self.tokens[self.pos]
            handler = {
                "heading_open": self._heading,
                "paragraph_open": self._paragraph,
                "bullet_list_open": self._list,
                "ordered_list_open": self._list,
                "fence": self._code,
                "code_block": self._code,
                "table_open": self._table,
                "html_block": self._html,
            }.get(token.type)
            if handler is None:
                self.pos += 1
            else:
                handler(token)
        return self.elements

    def _emit(self, kind: str, text: str, token: Any, **meta: Any) -> None:
        text = text.strip("\n")
        if not text.strip():
            return
        meta["line"] = token.map[0] + 1 if token.map else None
        self.elements.append(Element(kind=kind, text=text, heading_path=self.path, meta=meta))  # type: ignore[arg-type]

    def _closing(self, open_index: int) -> int:
        """Index of the token closing the one at open_index (same nesting level)."""
        opener = self.tokens[open_index]
        close_type = opener.type.replace("_open", "_close")
        for index in range(open_index + 1, len(self.tokens)):
            candidate = self.tokens[index]
            if candidate.type == close_type and candidate.level == opener.level:
                return index
        return len(self.tokens) - 1

    def _heading(self, token: Any) -> None:
        level = int(token.tag[1])
        text = " ".join(inline_text(self.tokens[self.pos + 1]).split())
        self.pos = self._closing(self.pos) + 1
        if not text:
            return
        while self.headings and self.headings[-1][0] >= level:
            self.headings.pop()
        self._emit("title", text, token, level=level)
        self.headings.append((level, text))

    def _paragraph(self, token: Any) -> None:
        self._emit("text", inline_text(self.tokens[self.pos + 1]), token)
        self.pos = self._closing(self.pos) + 1

    def _code(self, token: Any) -> None:
        language = (token.info or "").strip().split(" ")[0]
        self._emit("text", token.content.rstrip(), token, code=True, lines=True,
                   **({"language": language} if language else {}))
        self.pos += 1

    def _html(self, token: Any) -> None:
        from bs4 import BeautifulSoup

        text = BeautifulSoup(token.content, "lxml").get_text(" ", strip=True)
        self._emit("text", " ".join(text.split()), token, html=True)
        self.pos += 1

    def _list(self, token: Any) -> None:
        end = self._closing(self.pos)
        lines = _list_lines(self.tokens[self.pos : end + 1])
        self._emit("list", "\n".join(lines), token)
        self.pos = end + 1

    def _table(self, token: Any) -> None:
        end = self._closing(self.pos)
        rows: list[list[str]] = []
        for inner in self.tokens[self.pos : end + 1]:
            if inner.type == "tr_open":
                rows.append([])
            elif inner.type == "inline" and rows:
                rows[-1].append(inline_text(inner))
        for part in split_table(rows, self.rows_per_table):
            self._emit("table", part.text, token, **part.meta())
        self.pos = end + 1


def _list_lines(tokens: list[Any]) -> list[str]:
    """``- item`` lines for a list's tokens; depth from the list nesting. An item's further
    paragraphs and code join its line, so one line stays one item."""
    lines: list[str] = []
    depth = 0
    fresh = False  # the last line is a bare "- " waiting for its text
    for token in tokens:
        if token.type in ("bullet_list_open", "ordered_list_open"):
            depth += 1
        elif token.type in ("bullet_list_close", "ordered_list_close"):
            depth -= 1
        elif token.type == "list_item_open":
            lines.append("  " * (depth - 1) + "- ")
            fresh = True
        elif token.type in ("inline", "fence", "code_block") and lines:
            content = " ".join((inline_text(token) if token.type == "inline" else token.content).split())
            if content:
                lines[-1] += content if fresh else " " + content
                fresh = False
    return [line.rstrip() for line in lines if line.strip() != "-"]


def inline_text(token: Any) -> str:
    """An inline token as plain text: markup dropped, link text and image alt kept,
    soft breaks as spaces, hard breaks as newlines."""
    parts: list[str] = []
    for child in token.children or []:
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type == "softbreak":
            parts.append(" ")
        elif child.type == "hardbreak":
            parts.append("\n")
        elif child.type == "image":
            parts.append(child.content or "")
    return "".join(parts).strip()
