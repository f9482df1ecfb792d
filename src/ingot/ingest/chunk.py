"""Elements -> chunks for embedding: token-aware, structure-respecting, deterministic.

Why each rule exists:

* **Token budget from the embedding tokenizer**, which the caller passes (the knowledge
  base passes the tokenizer and limit of the embedding model in use: ``kb/embedder.py``).
  ``token_count`` counts what the model sees, special tokens included, so ``max_tokens``
  at the embedder's own limit guarantees nothing is silently truncated. This module
  knows no model: without a tokenizer it falls back to :func:`approximate_counter`.
* **Sections stay apart.** A change of the top-level heading (``heading_path[0]``: the
  sheet of a workbook, the slide title of a deck, the ``#`` section of a page) closes the
  chunk, so a chunk never mixes two sections. A title element is grouped with what
  follows it, whichever heading-path convention its extractor uses, and a title is never
  left alone at the end of a chunk: it moves to the next one with its content.
* **Elements are packed whole** while they fit; an element that does not fit in the
  current chunk starts the next one. Only an element larger than a whole chunk is split:
  lists between items, text at sentence ends, and a sentence still too long by words
  (and a single huge "word" by characters).
* **A caption stays with its table** (``ingest/captions.py``): one above a table packs
  like a title (never left at the end of a chunk without it), and a table that fits a
  chunk with the caption below it starts a fresh chunk rather than leave the caption
  to the next one. A table without its caption is a grid of figures nothing names.
* **Tables split only between rows**, and each continuation chunk starts with the
  table's header again (its first row, the ``|---|`` separator and the rows that continue
  its column names: ``ingest/table_header.py``), so every chunk of a table reads on
  its own. A single row too big for a chunk is the only exception (split by words).
* **Overlap** (``overlap_tokens``) carries the last sentences of the previous chunk into
  the next one when a chunk closes for size inside running text. It never carries table
  rows (numbers repeated in two chunks would be counted twice) and never crosses a
  section boundary. When even the last sentence is longer than the overlap, its last
  words are carried instead.
* **Stable ids**: sha256 of ``document_id:content_hash:index``, so re-ingesting the same
  content gives the same ids (idempotent upserts) and changed content gives new ones.

Headings stay data (``heading_path``), not text: nothing is prefixed to ``text``.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from ingot.ingest.captions import Side, table_captions
from ingot.ingest.elements import Element, markdown_cells
from ingot.ingest.table_header import MAX_HEADER_CONTINUATIONS, continuation_rows

TABLE_SEPARATOR = re.compile(r"^\|?\s*:?-{1,}:?\s*(\|\s*:?-{1,}:?\s*)*\|?\s*$")


@dataclass
class Chunk:
    id: str
    document_id: str
    index: int
    text: str
    token_count: int  # tokens the embedding model sees, special tokens included
    page_start: int | None
    page_end: int | None
    location: str | None  # the first location; "first – last" when the chunk spans several
    heading_path: tuple[str, ...]  # headings shared by everything in the chunk
    kinds: list[str] = field(default_factory=list)  # sorted element kinds in the chunk

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["heading_path"] = list(self.heading_path)
        return data


def chunk_id(document_id: str, content_hash: str, index: int) -> str:
    return hashlib.sha256(f"{document_id}:{content_hash}:{index}".encode()).hexdigest()[:32]


def chunk_document(
    elements: list[Element],
    *,
    document_id: str,
    content_hash: str,
    max_tokens: int = 512,
    overlap_tokens: int = 64,
    tokenizer: Any = None,
    timeout_s: float | None = None,
    max_chunks: int | None = None,
) -> list[Chunk]:
    """Chunks of a document's elements (see the module docstring for the rules).

    ``tokenizer``: the embedding model's, as a :class:`TokenCounter`, a
    ``tokenizers.Tokenizer``, a Hugging Face ``PreTrainedTokenizer`` or any
    ``callable(text) -> token count``; None (no embedder at hand) for
    :func:`approximate_counter`.

    ``timeout_s`` and ``max_chunks`` bound the work (the caller runs this in its own
    process): past either, :class:`ChunkingError` with reason ``timeout`` or
    ``too_large``, so a pathological file fails alone instead of stalling the queue."""
    counter = TokenCounter.of(tokenizer)
    budget = max_tokens - counter.special_tokens
    if budget < 8:
        raise ValueError(f"max_tokens={max_tokens} leaves no room for text")
    overlap = max(0, min(overlap_tokens, budget // 2))
    limits = _Limits(timeout_s, max_chunks)
    drafts: list[list[_Piece]] = []
    captions = table_captions(elements)
    for section in _sections(elements):
        per_element = [(index, _pieces(element, index, counter, budget, overlap, limits, captions.get(index)))
                       for index, element in section]
        _reserve_captions_below(per_element, captions)
        pieces = [p for _, element_pieces in per_element for p in element_pieces]
        drafts += _Packer(counter, budget, max_tokens, overlap, limits, len(drafts)).pack(pieces)
    return [_finish(draft, i, document_id, content_hash, counter) for i, draft in enumerate(drafts)]


class ChunkingError(Exception):
    """Chunking stopped at a limit. ``reason`` is one of the stable codes extraction uses
    (``timeout``, ``too_large``), so a job item reports it the same way."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class _Limits:
    """The time and size bounds of one ``chunk_document`` call, checked as pieces are made
    and packed (a clock read per piece is far cheaper than the piece itself)."""

    def __init__(self, timeout_s: float | None, max_chunks: int | None) -> None:
        self.timeout_s = timeout_s
        self.deadline = None if timeout_s is None else time.monotonic() + timeout_s
        self.max_chunks = max_chunks

    def check(self, chunks: int = 0) -> None:
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise ChunkingError("timeout", f"chunking took longer than {self.timeout_s:.0f} s and was stopped")
        if self.max_chunks is not None and chunks > self.max_chunks:
            raise ChunkingError("too_large", f"the document makes more than {self.max_chunks} chunks")


# ---------------------------------------------------------------- token counting


_CACHE_MAX_CHARS = 16_384


class TokenCounter:
    """Counts tokens with whatever tokenizer it was given; results are cached because
    the packer asks about the same sentence more than once."""

    def __init__(self, count: Callable[[str], int], special_tokens: int) -> None:
        self._count = count
        self.special_tokens = special_tokens
        self._cache: dict[str, int] = {}

    @classmethod
    def of(cls, tokenizer: Any) -> TokenCounter:
        if isinstance(tokenizer, TokenCounter):
            return tokenizer
        if tokenizer is None:
            return approximate_counter()
        if hasattr(tokenizer, "encode") and hasattr(tokenizer, "no_truncation"):  # tokenizers.Tokenizer
            tok = tokenizer

            def count(text: str) -> int:
                return len(tok.encode(text, add_special_tokens=False).ids)

            return cls(count, len(tok.encode("", add_special_tokens=True).ids))
        if hasattr(tokenizer, "encode"):  # transformers tokenizer
            hf = tokenizer

            def count(text: str) -> int:
                return len(hf.encode(text, add_special_tokens=False, truncation=False))

            return cls(count, len(hf.encode("", add_special_tokens=True)))
        if callable(tokenizer):
            return cls(tokenizer, 0)
        raise TypeError(f"unsupported tokenizer: {type(tokenizer).__name__}")

    def __call__(self, text: str) -> int:
        value = self._cache.get(text)
        if value is None:
            value = self._count(text) if text else 0
            if len(text) <= _CACHE_MAX_CHARS:  # a chunk-sized text; caching every prefix of a
                self._cache[text] = value  # 1 MB element kept gigabytes alive
        return value

    def with_specials(self, text: str) -> int:
        return self(text) + self.special_tokens


# Words cut into pieces of at most 4 letters, and each punctuation mark: more pieces than
# WordPiece or BPE make of ordinary text, so approximate chunks still fit a real model.
_APPROXIMATE_PIECE = re.compile(r"\w{1,4}|[^\w\s]")


def approximate_counter() -> TokenCounter:
    """A tokenizer-free estimate for callers that have no embedding model (scripts, tests
    of other stages): it overcounts ordinary text a little, so chunks sized by it fit a
    subword model's limit. Two special tokens per input, as BERT-style models add."""
    return TokenCounter(lambda text: len(_APPROXIMATE_PIECE.findall(text)), 2)


# ---------------------------------------------------------------- sections


def _sections(elements: Sequence[Element]) -> list[list[tuple[int, Element]]]:
    """Runs of elements sharing a top-level heading. A title takes the key of the next
    non-title element (extractors differ on whether a title's path includes itself)."""
    keys: list[tuple[str, ...]] = [()] * len(elements)
    following: tuple[str, ...] | None = None
    for i in range(len(elements) - 1, -1, -1):
        element = elements[i]
        own = tuple(element.heading_path[:1])
        if element.kind == "title":
            keys[i] = following if following is not None else (own or (element.text.strip(),))
        else:
            keys[i] = own
            following = own
    sections: list[list[tuple[int, Element]]] = []
    previous: tuple[str, ...] | None = None
    for i, element in enumerate(elements):
        if not element.text.strip():
            continue
        if not sections or keys[i] != previous:
            sections.append([])
        sections[-1].append((i, element))
        previous = keys[i]
    return sections


# ---------------------------------------------------------------- pieces


@dataclass
class _Piece:
    """An unbreakable bit of text for the packer."""

    text: str
    tokens: int
    sep: str  # joins it to the piece before it in a chunk
    role: str  # "text" | "title" | "header" | "row"
    element: Element
    table: int | None = None  # element index for table header/rows
    table_tokens: int = 0  # on a header: the whole table's tokens (header + rows)
    caption_tokens: int = 0  # on a header: the caption below the table, kept with it when both fit
    header: _Piece | None = None  # on a row: its table's header, repeated after a split
    overlap: bool = False  # carried over from the previous chunk


def _pieces(
    element: Element, index: int, count: TokenCounter, budget: int, overlap: int = 0, limits: _Limits | None = None,
    caption: Side | None = None,
) -> list[_Piece]:
    """An element as packer pieces: whole when it fits a chunk, else items / lines /
    sentences (:func:`_units`), and units longer than ``budget - overlap`` by words (so
    the overlap carried into the next chunk still leaves room for the next part).
    ``caption``: the side of its table the element captions, if it is a caption; one
    above packs as a title, so it goes where its table goes."""
    text = element.text.strip()
    if element.kind == "table":
        return _table_pieces(element, text, index, count, budget)
    role = "title" if element.kind == "title" or caption == "above" else "text"
    if _fits(text, count, budget):
        return [_Piece(text, count(text), "\n\n", role, element)]
    out: list[_Piece] = []
    for unit_text, sep in _units(element, text, count, budget - overlap):
        if limits is not None:
            limits.check()
        for part, part_sep in _fit(unit_text, sep, count, budget - overlap):
            out.append(_Piece(part, count(part), part_sep, role, element))
    if out:
        out[0].sep = "\n\n"
    return out


def _reserve_captions_below(per_element: list[tuple[int, list[_Piece]]], captions: dict[int, Side]) -> None:
    """Give each table's header the tokens of the one-piece caption right below it, so
    the packer places the two together (``_Packer._table_start``)."""
    for (_, above), (index, pieces) in zip(per_element, per_element[1:]):
        if captions.get(index) != "below" or len(pieces) != 1:
            continue
        header = next((p for p in above if p.role == "header"), None)
        if header is not None:
            header.caption_tokens = pieces[0].tokens


def _units(element: Element, text: str, count: TokenCounter, budget: int) -> list[tuple[str, str]]:
    """How an oversized element is cut before words: a list between items; a
    line-structured text (``meta["lines"]``: logs, JSON, JSONL, code) between lines, so
    records are grouped up to the budget; prose at sentence ends, and a "sentence" still
    over the budget that spans lines (a log or pretty-printed JSON with no full stop in
    a megabyte) at its line breaks rather than as one run of words."""
    if element.kind == "list" or element.meta.get("lines"):
        return _split_lines(text)
    out: list[tuple[str, str]] = []
    for sentence, sep in _split_sentences(text):
        if "\n" in sentence and not _fits(sentence, count, budget):
            lines = _split_lines(sentence)
            out += [(lines[0][0], sep), *lines[1:]]
        else:
            out.append((sentence, sep))
    return out


def _table_pieces(element: Element, text: str, index: int, count: TokenCounter, budget: int) -> list[_Piece]:
    lines = [line for line in text.split("\n") if line.strip()]
    if len(lines) >= 2 and TABLE_SEPARATOR.match(lines[1]):
        # The header is its first line and the rows continuing its column names
        # (ingest/table_header.py), so a continuation chunk repeats both.
        below = [markdown_cells(line) for line in lines[2 : 2 + MAX_HEADER_CONTINUATIONS]]
        band = 2 + continuation_rows(markdown_cells(lines[0]), below)
        head_text, rows = "\n".join(lines[:band]), lines[band:]
    else:
        head_text, rows = "", lines
    head_tokens = count(head_text)
    if head_tokens > budget // 2:  # a header this big cannot be repeated; it becomes a row
        head_text, rows, head_tokens = "", lines, 0
    total = count(text)
    header = _Piece(head_text, head_tokens, "\n\n", "header", element, table=index, table_tokens=total)
    out = [header] if head_text else []
    for row in rows:
        room = budget - head_tokens
        if count(row) <= room:
            out.append(_Piece(row, count(row), "\n", "row", element, table=index, header=header if head_text else None))
            continue
        for part, sep in _fit(row, "\n", count, budget):  # an oversized row: the one exception
            out.append(_Piece(part, count(part), sep, "text", element))
    if out:
        out[0].sep = "\n\n"
        if not head_text:
            out[0].table_tokens = total
    return out


def _split_lines(text: str) -> list[tuple[str, str]]:
    return [(line, "\n") for line in text.split("\n") if line.strip()]


# Sentence ends: . ! ? (plus closing quotes/brackets) before whitespace and an upper-case
# letter, digit or opening quote; CJK full stops need no space. Abbreviations and initials
# ("e.g.", "Inc.", "J. Smith") are not ends.
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"'”’)\]]*\s+(?=[\"'“‘(\[]?[A-Z0-9À-Ý])|(?<=[。！？])\s*")
_ABBREVIATIONS = {
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "inc", "ltd", "co", "corp", "no", "vs",
    "e.g", "i.e", "etc", "fig", "eq", "approx", "dept", "u.s", "jan", "feb", "mar", "apr",
    "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "art", "sec", "vol", "p", "pp",
}


def _split_sentences(text: str) -> list[tuple[str, str]]:
    """(sentence, separator before it) pairs; separators keep a line break when the
    original had one."""
    out: list[tuple[str, str]] = []
    start = 0
    pending_sep = ""
    for match in _SENTENCE_END.finditer(text):
        candidate = text[start : match.start()].rstrip()
        last_word = candidate.rsplit(None, 1)[-1].rstrip(".!?\"'”’)]").lower() if candidate else ""
        if last_word in _ABBREVIATIONS or (len(last_word) == 1 and last_word.isalpha()):
            continue
        sentence = text[start : match.start()] + text[match.start() : match.end()].rstrip()
        if sentence.strip():
            out.append((sentence.strip(), pending_sep))
        pending_sep = "\n" if "\n" in match.group() else " "
        start = match.end()
    tail = text[start:].strip()
    if tail:
        out.append((tail, pending_sep))
    return out or [(text, "")]


def _fit(text: str, sep: str, count: TokenCounter, budget: int) -> list[tuple[str, str]]:
    """A unit as parts of at most ``budget`` tokens: whole if it fits, else the longest
    word prefixes that fit, else (one giant word) character slices. Parts are found by
    offset with a galloping search, so the cost is linear in the unit's length."""
    if _fits(text, count, budget):
        return [(text, sep)]
    words = text.split()
    if len(words) > 1:
        parts: list[tuple[str, str]] = []
        start = 0
        while start < len(words):
            first = start
            take = _longest_prefix(len(words) - first, lambda n: count(" ".join(words[first : first + n])) <= budget)
            if take == 0:  # the word alone is too long
                parts += _fit(words[first], sep if not parts else " ", count, budget)
                start += 1
                continue
            parts.append((" ".join(words[first : first + take]), sep if not parts else " "))
            start += take
        return parts
    parts = []
    start = 0
    while start < len(text):
        first = start
        take = max(1, _longest_prefix(len(text) - first, lambda n: count(text[first : first + n]) <= budget))
        parts.append((text[first : first + take], sep if not parts else ""))
        start += take
    return parts


_PROBE_CHARS_PER_TOKEN = 16


def _fits(text: str, count: TokenCounter, budget: int) -> bool:
    """``count(text) <= budget`` without tokenizing a megabyte to learn that it does not
    fit: when a prefix cut at whitespace is already over the budget, so is the text
    (tokenizers split at whitespace first, so tokens only add up past the cut)."""
    probe = budget * _PROBE_CHARS_PER_TOKEN
    if len(text) > probe:
        head = text[:probe]
        cut = max(head.rfind(" "), head.rfind("\n"))
        if cut > 0 and count(head[:cut]) > budget:
            return False
    return count(text) <= budget


def _longest_prefix(size: int, fits: Callable[[int], bool]) -> int:
    """Largest n in [0, size] with fits(n), assuming fits is monotone. Galloping (1, 2,
    4, ...) before the binary search makes the cost follow the answer, not ``size``:
    cutting a megabyte into chunk-sized parts must not count the whole rest each time."""
    if size <= 0 or not fits(1):
        return 0
    low, high = 1, 2
    while high <= size and fits(high):
        low, high = high, high * 2
    high = min(high - 1, size)
    while low < high:
        middle = (low + high + 1) // 2
        if fits(middle):
            low = middle
        else:
            high = middle - 1
    return low


# ---------------------------------------------------------------- packing


class _Packer:
    """Greedy packing of one section's pieces into chunk drafts."""

    def __init__(
        self, count: TokenCounter, budget: int, max_tokens: int, overlap: int, limits: _Limits | None = None,
        earlier: int = 0,
    ) -> None:
        self.count = count
        self.limits = limits or _Limits(None, None)
        self.earlier = earlier  # chunks of earlier sections, for the chunk-count limit
        self.budget = budget
        self.max_tokens = max_tokens
        self.overlap = overlap
        self.drafts: list[list[_Piece]] = []
        self.current: list[_Piece] = []
        self.queue: deque[_Piece] = deque()
        self.alias: dict[int | None, int | None] = {}  # table element -> the table it continues

    @property
    def used(self) -> int:
        return sum(p.tokens for p in self.current)

    @property
    def room(self) -> int:
        return self.budget - self.used

    def pack(self, pieces: Iterable[_Piece]) -> list[list[_Piece]]:
        self.queue = deque(pieces)
        while self.queue:
            self.limits.check(self.earlier + len(self.drafts))
            piece = self.queue.popleft()
            if piece.role == "header":
                self._table_start(piece)
            elif piece.role == "row":
                self._row(piece)
            else:
                self._text(piece)
        self._close(carry=False)
        return self.drafts

    def _text(self, piece: _Piece) -> None:
        self._ensure_room(piece.tokens, carry=True)
        self.current.append(piece)

    def _table_start(self, header: _Piece) -> None:
        """Whole table (with the caption below it) here if it fits, else whole in a fresh
        chunk if it fits there, else start it here when the header and the first row fit
        (rows then flow on)."""
        if self._continues(header):
            return
        first_row = self.queue[0] if self.queue and self.queue[0].table == header.table else None
        captioned = header.table_tokens + header.caption_tokens
        if header.caption_tokens and captioned <= self.budget:
            self._ensure_room(captioned, carry=True)
        elif header.table_tokens <= self.budget:
            self._ensure_room(header.table_tokens, carry=True)
        else:
            self._ensure_room(header.tokens + (first_row.tokens if first_row else 0), carry=True)
        self.current.append(header)

    def _continues(self, header: _Piece) -> bool:
        """An extractor split a big table into elements that each repeat the header; when
        the chunk ends inside the previous part, the rows simply flow on."""
        last = self.current[-1] if self.current else None
        if last is None or last.role not in ("row", "header") or last.header is None and last.role == "row":
            return False
        previous = last if last.role == "header" else last.header
        if previous is None or previous.text != header.text:
            return False
        self.alias[header.table] = self.alias.get(last.table, last.table)
        return True

    def _row(self, row: _Piece) -> None:
        header = row.header
        table = self.alias.get(row.table, row.table)
        with_header = row.tokens + (header.tokens if header is not None else 0)
        if header is None or self._has_header(table):
            if row.tokens > self.room:
                self._ensure_room(with_header, carry=False)
        else:
            self._ensure_room(with_header, carry=False)
        if header is not None and not self._has_header(table):
            self.current.append(replace(header, sep="\n\n", overlap=False, table=table))
        self.current.append(replace(row, table=table) if table != row.table else row)

    def _has_header(self, table: int | None) -> bool:
        return any(p.role == "header" and p.table == table for p in self.current)

    def _ensure_room(self, tokens: int, *, carry: bool) -> None:
        """Close the chunk unless ``tokens`` more fit; in the next chunk drop carried
        overlap as needed, and if titles moved along still leave too little room, let
        them go out as their own chunk rather than exceed the budget."""
        if tokens <= self.room:
            return
        self._close(carry=carry)
        self._make_room(tokens)
        if tokens > self.room:
            self._close(carry=False, move_titles=False)

    def _make_room(self, tokens: int) -> None:
        """Drop carried-over overlap (oldest first) until ``tokens`` fit."""
        while self.current and self.current[0].overlap and self.room < tokens:
            self.current.pop(0)

    def _close(self, *, carry: bool, move_titles: bool = True) -> None:
        """Emit the current chunk (if it has anything new) and start the next one with
        the overlap, or with the trailing titles (and any pieces the real count pushed
        out), which belong with what follows."""
        if not any(not p.overlap for p in self.current):
            self.current = [p for p in self.current if p.overlap] if carry else []
            return
        pushed = self._fit_real_count()
        moved: list[_Piece] = []
        while (
            move_titles
            and self.current[-1].role == "title"
            and any(p.role != "title" and not p.overlap for p in self.current[:-1])
        ):
            moved.insert(0, self.current.pop())
        self.drafts.append(self.current)
        carried = moved + pushed
        if not carried and carry and self.overlap:
            carried = _overlap_tail(self.current, self.overlap, self.count)
        self.current = carried

    def _fit_real_count(self) -> list[_Piece]:
        """Piece counts add up exactly for WordPiece (pieces are joined by whitespace); for
        a tokenizer where they do not, drop overlap and then move trailing pieces out
        until the joined text really fits. Returns the moved pieces, in order."""
        pushed: list[_Piece] = []
        while self.count.with_specials(_join(self.current)) > self.max_tokens:
            if self.current[0].overlap:
                self.current.pop(0)
            elif len(self.current) > 1:
                pushed.insert(0, self.current.pop())
            else:
                break
        return pushed


def _overlap_tail(pieces: list[_Piece], limit: int, count: TokenCounter) -> list[_Piece]:
    """The last sentences of the chunk's running text, at most ``limit`` tokens; the last
    words of the last sentence when no whole sentence fits. Nothing after a table row."""
    carried: list[_Piece] = []
    total = 0
    for piece in reversed(pieces):
        if piece.role not in ("text", "title"):
            break
        sentences = _split_sentences(piece.text) if piece.role == "text" else [(piece.text, "")]
        for index in range(len(sentences) - 1, -1, -1):
            sentence, sep = sentences[index]
            tokens = count(sentence)
            if total + tokens > limit:
                if not carried:
                    carried.append(_word_tail(sentence, limit, count, piece))
                return _mark(carried)
            joint = sep if index else piece.sep
            carried.insert(0, _Piece(sentence, tokens, joint, piece.role, piece.element, overlap=True))
            total += tokens
    return _mark(carried)


def _word_tail(sentence: str, limit: int, count: TokenCounter, source: _Piece) -> _Piece:
    words = sentence.split()
    take = _longest_prefix(len(words), lambda n: n == 0 or count(" ".join(words[-n:])) <= limit)
    text = " ".join(words[-take:]) if take else ""
    return _Piece(text, count(text), "", source.role, source.element, overlap=True)


def _mark(pieces: list[_Piece]) -> list[_Piece]:
    pieces = [p for p in pieces if p.text]
    for p in pieces:
        p.overlap = True
    return pieces


def _join(pieces: Sequence[_Piece]) -> str:
    return "".join((p.sep if i else "") + p.text for i, p in enumerate(pieces))


# ---------------------------------------------------------------- chunk metadata


def _finish(pieces: list[_Piece], index: int, document_id: str, content_hash: str, count: TokenCounter) -> Chunk:
    text = _join(pieces)
    elements = _unique(p.element for p in pieces)
    pages = [e.page for e in elements if e.page is not None]
    locations = _unique_values(e.location for e in elements if e.location)
    if not locations:
        location = None
    elif len(locations) == 1:
        location = locations[0]
    else:
        location = f"{locations[0]} – {locations[-1]}"
    return Chunk(
        id=chunk_id(document_id, content_hash, index),
        document_id=document_id,
        index=index,
        text=text,
        token_count=count.with_specials(text),
        page_start=min(pages) if pages else None,
        page_end=max(pages) if pages else None,
        location=location,
        heading_path=_common_prefix([_effective_path(e) for e in elements]),
        kinds=sorted({e.kind for e in elements}),
    )


def _effective_path(element: Element) -> tuple[str, ...]:
    """A title's own text belongs to its section's path even when the extractor lists
    only the enclosing headings."""
    path = tuple(element.heading_path)
    if element.kind == "title" and (not path or path[-1] != element.text.strip()):
        return (*path, element.text.strip())
    return path


def _common_prefix(paths: list[tuple[str, ...]]) -> tuple[str, ...]:
    if not paths:
        return ()
    prefix = paths[0]
    for path in paths[1:]:
        n = 0
        while n < min(len(prefix), len(path)) and prefix[n] == path[n]:
            n += 1
        prefix = prefix[:n]
    return prefix


def _unique(elements: Iterable[Element]) -> list[Element]:
    seen: set[int] = set()
    out = []
    for element in elements:
        if id(element) not in seen:
            seen.add(id(element))
            out.append(element)
    return out


def _unique_values(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))
