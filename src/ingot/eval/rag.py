"""RAG answer evaluation: a golden set of questions over documents, each answer scored for
the fact, the citation and the refusal. The library under ``ingot eval rag``.

Golden-set format: one JSON object per line,
``{"question": str, "doc": str | null, "pages": [int] | null, "answer_any": [str], "kind": str}``.
``doc`` null: the documents do not hold the answer, and the right reply is a refusal.
``pages``: the acceptable 1-based page (or slide) numbers of the fact, null for formats
without pages (spreadsheets, HTML, Word), where naming the document is enough.

Why these three scores rather than one: a right fact with a wrong page cannot be checked by
the reader, and a confident answer to an unanswerable question is the worst failure of a
copilot, so each is counted on its own. A fact is found when any ``answer_any`` string occurs
in the answer, compared casefolded, with whitespace collapsed and thousands separators
dropped from numbers ("1,234" and "1234" match), so the wording of a sentence around the
fact does not matter. A citation is right when any citation of the response names the
document (its file name) and covers one of the pages. The RAG service lists as citations
only the passages its ``[n]`` markers point at (post-hoc attribution, rag/attribution.py),
so ``citation_precision`` (right citations / citations) says how often a marker can be
trusted; ``marked_citation`` checks the markers in the text themselves. ``finish_reason``
"length" and a repeated sentence are counted too: the loops a small model falls into.

Everything here is a pure function of the golden items and the responses, except
:func:`run`, which asks the questions through a caller-given ``ask`` (in-process RAG
service or HTTP, chosen by the CLI).
"""

from __future__ import annotations

import json
import math
import re
import time
import unicodedata
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Protocol, TypeVar

REQUIRED = ("question", "doc", "pages", "answer_any", "kind")

# What a refusal says: the retrieval gate's fixed answer ("The documents do not say...") and
# the ways a model phrases it when the prompt tells it to say so.
REFUSAL_PATTERNS = (
    r"\b(?:documents?|sources?|context|passages?|text)\s+(?:do|does)\s*(?:not|n't)\s+(?:say|mention|contain|"
    r"provide|specify|include|state)",
    r"\b(?:do|does)\s*(?:not|n't)\s+(?:contain|mention|provide|specify)\s+(?:any\s+)?(?:information|details?)",
    r"\bno (?:information|mention|details?) (?:about|on|of|regarding)\b",
    r"\bnot (?:mentioned|specified|stated|provided) in the (?:documents?|sources?|context|passages?)",
    r"\b(?:i )?cannot answer\b",
    r"\bunable to (?:answer|find)\b",
)
_REFUSAL = re.compile("|".join(f"(?:{p})" for p in REFUSAL_PATTERNS))
_THOUSANDS = re.compile(r"(?<=\d)[,\u00a0\u202f\u2009'](?=\d{3}(?!\d))")
_SPACE = re.compile(r"\s+")
_MARKER = re.compile(r"\[(\d{1,2})\]")


class GoldenError(ValueError):
    """The golden file cannot be used (missing, not JSON, a field missing or mistyped); the
    message names the file and the line, since the CLI shows it as is."""


@dataclass(frozen=True)
class GoldenItem:
    line: int  # 1-based line in the file: the question's id in reports
    question: str
    doc: str | None
    pages: tuple[int, ...] | None
    answer_any: tuple[str, ...]
    kind: str

    @property
    def answerable(self) -> bool:
        return self.doc is not None


# ---------------------------------------------------------------- loading


def _item(obj: Any, where: str, line: int) -> GoldenItem:
    """One line's object -> an item, or GoldenError naming what is wrong."""
    if not isinstance(obj, dict):
        raise GoldenError(f"{where}: expected a JSON object")
    missing = [k for k in REQUIRED if k not in obj]
    if missing:
        raise GoldenError(f"{where}: missing field(s) {', '.join(missing)}")
    question, doc, pages, answers, kind = (obj[k] for k in REQUIRED)
    if not isinstance(question, str) or not question.strip():
        raise GoldenError(f"{where}: 'question' must be a non-empty string")
    if doc is not None and (not isinstance(doc, str) or not doc.strip()):
        raise GoldenError(f"{where}: 'doc' must be a file name or null")
    if pages is not None and (not isinstance(pages, list) or not pages
                              or not all(isinstance(p, int) and not isinstance(p, bool) and p >= 1 for p in pages)):
        raise GoldenError(f"{where}: 'pages' must be a non-empty list of page numbers (from 1) or null")
    if not isinstance(answers, list) or not all(isinstance(a, str) and a.strip() for a in answers):
        raise GoldenError(f"{where}: 'answer_any' must be a list of non-empty strings")
    if doc is not None and not answers:
        raise GoldenError(f"{where}: an answerable question needs at least one 'answer_any' string")
    if not isinstance(kind, str) or not kind.strip():
        raise GoldenError(f"{where}: 'kind' must be a non-empty string")
    return GoldenItem(line, question.strip(), doc, tuple(pages) if pages is not None else None,
                      tuple(answers), kind.strip())


def parse_golden(lines: Iterable[str], name: str = "<golden>") -> list[GoldenItem]:
    """Items of a golden set's lines (blank lines skipped); GoldenError names the line."""
    items = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{name}:{number}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise GoldenError(f"{where}: not JSON ({exc.msg})") from exc
        items.append(_item(obj, where, number))
    if not items:
        raise GoldenError(f"{name}: no questions")
    return items


def load_golden(path: str | Path) -> list[GoldenItem]:
    path = Path(path)
    if not path.is_file():
        raise GoldenError(f"{path}: no such file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise GoldenError(f"{path}: cannot read ({exc})") from exc
    return parse_golden(text.splitlines(), str(path))


def spread(items: Sequence[GoldenItem], n: int) -> list[GoldenItem]:
    """``n`` items evenly spaced through the set (first included), for a quick run of a slow
    model that still samples every kind (the set is grouped by kind; ``--limit`` would
    take the first kind only)."""
    if n >= len(items):
        return list(items)
    return [items[i * len(items) // n] for i in range(n)]


# ---------------------------------------------------------------- scoring one answer


def normalize(text: str) -> str:
    """Casefolded, NFKC, whitespace collapsed, thousands separators removed from numbers."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = _THOUSANDS.sub("", text)
    return _SPACE.sub(" ", text).strip()


def answer_found(answer: str, answer_any: Sequence[str]) -> bool:
    """Does any expected string occur in the answer (normalized both sides)?"""
    said = normalize(answer)
    return any(normalize(expected) in said for expected in answer_any)


def is_refusal(answer: str, citations: Sequence[dict[str, Any]]) -> bool:
    """Refused = nothing cited (the retrieval gate answered, or the RAG service withheld an
    answer no passage supports, or the answer makes no claim a passage supports) or the
    answer says the documents do not hold it."""
    return not citations or bool(_REFUSAL.search(normalize(answer)))


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")


def repeats_sentence(answer: str) -> bool:
    """Does some sentence (8+ characters) occur twice? The loop a small model falls into."""
    seen = set()
    for sentence in _SENTENCE_END.split(normalize(answer)):
        key = re.sub(r"\W+", " ", sentence).strip()
        if len(key) >= 8:
            if key in seen:
                return True
            seen.add(key)
    return False


def names_doc(source: str | None, doc: str) -> bool:
    """A citation's ``source`` (``file.pdf`` from an upload, ``folder/sub/file.pdf`` from
    ``ingot ingest DIR``) names ``doc`` when the paths agree from the end."""
    if not source:
        return False
    have, want = PurePosixPath(source).parts, PurePosixPath(doc).parts
    return len(have) >= len(want) and have[len(have) - len(want):] == want


def covers_pages(citation: dict[str, Any], pages: Sequence[int] | None) -> bool:
    """The citation's page span (page_start..page_end) holds one of ``pages``; None: any."""
    if pages is None:
        return True
    start = citation.get("page_start")
    if start is None:
        return False
    end = citation.get("page_end") or start
    return any(start <= p <= end for p in pages)


def citation_right(citations: Sequence[dict[str, Any]], doc: str, pages: Sequence[int] | None) -> bool:
    return any(names_doc(c.get("source"), doc) and covers_pages(c, pages) for c in citations)


def marked_citations(answer: str, citations: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The citations the answer points at with ``[n]`` markers (n = the citation's index)."""
    wanted = {int(n) for n in _MARKER.findall(answer)}
    return [c for c in citations if c.get("index") in wanted]


@dataclass
class QuestionRecord:
    """One question's outcome: what was asked and expected, what came back, the verdicts.
    ``answer_ok``/``citation_ok``/``marked_citation`` are None for unanswerable questions."""

    line: int
    kind: str
    question: str
    doc: str | None
    pages: list[int] | None
    answer_any: list[str]
    answer: str
    citations: list[dict[str, Any]]
    seconds: float
    refused: bool
    refusal_ok: bool
    answer_ok: bool | None
    citation_ok: bool | None
    marked_citation: bool | None
    error: str | None = None
    finish_reason: str | None = None  # "length": cut by max_tokens
    repeats: bool = False  # some sentence occurs twice (repeats_sentence)
    cited: int = 0  # citations in the response
    cited_right: int = 0  # of them, naming the right document and page (answerable only)

    @property
    def correct(self) -> bool:
        """The headline verdict: answerable -> the fact and a right citation, not refused;
        unanswerable -> refused."""
        if self.doc is None:
            return self.refusal_ok
        return bool(self.answer_ok and self.citation_ok and not self.refused)


CITATION_FIELDS = ("index", "source", "page_start", "page_end", "location")


def score(item: GoldenItem, response: dict[str, Any], seconds: float) -> QuestionRecord:
    """Verdicts for one RAG response (the OpenAI chat completion with ``citations``)."""
    choice = (response.get("choices") or [{}])[0]
    answer = choice.get("message", {}).get("content") or ""
    citations = [{k: c.get(k) for k in CITATION_FIELDS} for c in response.get("citations") or []]
    refused = is_refusal(answer, citations)
    if item.doc is None:
        answer_ok = citation_ok = marked = None
    else:
        answer_ok = answer_found(answer, item.answer_any)
        citation_ok = citation_right(citations, item.doc, item.pages)
        marked = citation_right(marked_citations(answer, citations), item.doc, item.pages)
    return QuestionRecord(
        line=item.line, kind=item.kind, question=item.question, doc=item.doc,
        pages=list(item.pages) if item.pages is not None else None, answer_any=list(item.answer_any),
        answer=answer, citations=citations, seconds=round(seconds, 3), refused=refused,
        refusal_ok=refused == (item.doc is None), answer_ok=answer_ok, citation_ok=citation_ok,
        marked_citation=marked, finish_reason=choice.get("finish_reason"), repeats=repeats_sentence(answer),
        cited=len(citations),
        cited_right=0 if item.doc is None else sum(citation_right([c], item.doc, item.pages) for c in citations),
    )


def failed(item: GoldenItem, message: str, seconds: float) -> QuestionRecord:
    """A question whose request failed: every verdict false (it counts against the model)."""
    record = score(item, {}, seconds)
    record.refused, record.refusal_ok, record.error = False, False, message
    return record


# ---------------------------------------------------------------- aggregates


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0-100) with linear interpolation between closest ranks
    (numpy's default): p50 of [1, 2, 3, 4] is 2.5."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def rate(hits: int, total: int) -> float | None:
    """hits / total to 4 places; None when there is nothing to count."""
    return round(hits / total, 4) if total else None


class _HasKind(Protocol):
    kind: str


K = TypeVar("K", bound=_HasKind)


def group_by_kind(records: Sequence[K]) -> dict[str, list[K]]:
    """Records per ``kind``, kinds in order of first appearance."""
    kinds: dict[str, list[K]] = {}
    for r in records:
        kinds.setdefault(r.kind, []).append(r)
    return kinds


@dataclass
class Summary:
    """Counts and rates over a set of records. Rates are hits / total (None when total is 0):
    answer, citation and correct over the answerable questions; refusal over all (an
    unanswerable one refused, an answerable one not refused)."""

    questions: int
    answerable: int
    unanswerable: int
    answer_hits: int
    citation_hits: int
    marked_citation_hits: int
    correct_answerable: int  # fact + right citation + not refused
    refusal_hits: int  # over all questions
    refused_unanswerable: int
    refused_answerable: int  # false refusals
    errors: int
    answer_accuracy: float | None = None
    citation_accuracy: float | None = None
    marked_citation_accuracy: float | None = None
    answer_and_citation_accuracy: float | None = None
    refusal_accuracy: float | None = None
    latency_p50_s: float | None = None
    latency_p95_s: float | None = None
    length_finishes: int = 0  # answers cut by max_tokens
    repeating_answers: int = 0  # answers with a sentence twice
    cited_passages: int = 0  # citations over all answers
    cited_passages_right: int = 0  # of those on answerable questions, naming the right doc+page
    cited_passages_answerable: int = 0
    citation_precision: float | None = None  # right / cited, answerable questions


def summarize(records: Sequence[QuestionRecord]) -> Summary:
    answerable = [r for r in records if r.doc is not None]
    unanswerable = [r for r in records if r.doc is None]
    s = Summary(
        questions=len(records), answerable=len(answerable), unanswerable=len(unanswerable),
        answer_hits=sum(bool(r.answer_ok) for r in answerable),
        citation_hits=sum(bool(r.citation_ok) for r in answerable),
        marked_citation_hits=sum(bool(r.marked_citation) for r in answerable),
        correct_answerable=sum(r.correct for r in answerable),
        refusal_hits=sum(r.refusal_ok for r in records),
        refused_unanswerable=sum(r.refused for r in unanswerable),
        refused_answerable=sum(r.refused for r in answerable),
        errors=sum(r.error is not None for r in records),
    )
    s.length_finishes = sum(r.finish_reason == "length" for r in records)
    s.repeating_answers = sum(r.repeats for r in records)
    s.cited_passages = sum(r.cited for r in records)
    s.cited_passages_answerable = sum(r.cited for r in answerable)
    s.cited_passages_right = sum(r.cited_right for r in answerable)
    s.citation_precision = rate(s.cited_passages_right, s.cited_passages_answerable)
    s.answer_accuracy = rate(s.answer_hits, s.answerable)
    s.citation_accuracy = rate(s.citation_hits, s.answerable)
    s.marked_citation_accuracy = rate(s.marked_citation_hits, s.answerable)
    s.answer_and_citation_accuracy = rate(s.correct_answerable, s.answerable)
    s.refusal_accuracy = rate(s.refusal_hits, s.questions)
    seconds = [r.seconds for r in records]
    p50, p95 = percentile(seconds, 50), percentile(seconds, 95)
    s.latency_p50_s = round(p50, 3) if p50 is not None else None
    s.latency_p95_s = round(p95, 3) if p95 is not None else None
    return s


def by_kind(records: Sequence[QuestionRecord]) -> dict[str, Summary]:
    """One summary per ``kind``, in order of first appearance."""
    return {kind: summarize(rs) for kind, rs in group_by_kind(records).items()}


def summary_dict(summary: Summary) -> dict[str, Any]:
    return asdict(summary)


def report(records: Sequence[QuestionRecord], meta: dict[str, Any]) -> dict[str, Any]:
    """The ``--json`` report: run metadata, the summary, per kind, and every record."""
    return {
        **meta,
        "summary": summary_dict(summarize(records)),
        "by_kind": {k: summary_dict(s) for k, s in by_kind(records).items()},
        "records": [{**asdict(r), "correct": r.correct} for r in records],
    }


# ---------------------------------------------------------------- running

Ask = Callable[[GoldenItem], Awaitable[dict[str, Any]]]


class AskError(Exception):
    """A question's request failed in a way that concerns that question only (the CLI's
    ``ask`` raises it); the run records it and goes on."""


R = TypeVar("R")
T = TypeVar("T")


async def each_timed(items: Sequence[GoldenItem], work: Callable[[GoldenItem], Awaitable[T]],
                     record: Callable[[GoldenItem, T | AskError, float], R],
                     on_done: Callable[[R], None] | None = None) -> list[R]:
    """``work`` on every question in order, one at a time (latencies are then per question,
    not shared with a queue); ``record`` turns each result (or its AskError) and its
    seconds into a record, handed to ``on_done`` as soon as it exists."""
    records = []
    for item in items:
        started = time.perf_counter()
        result: T | AskError
        try:
            result = await work(item)
        except AskError as exc:
            result = exc
        records.append(record(item, result, time.perf_counter() - started))
        if on_done is not None:
            on_done(records[-1])
    return records


async def run(items: Sequence[GoldenItem], ask: Ask,
              on_done: Callable[[QuestionRecord], None] | None = None) -> list[QuestionRecord]:
    """Ask every question and score each response (a failed request scores as an error)."""
    def record(item: GoldenItem, response: dict[str, Any] | AskError, seconds: float) -> QuestionRecord:
        if isinstance(response, AskError):
            return failed(item, str(response), seconds)
        return score(item, response, seconds)

    return await each_timed(items, ask, record, on_done)
