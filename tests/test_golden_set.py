"""The golden set (benchmarks/golden/docs.jsonl) is right about its documents: every
expected answer string occurs, as ingot's own extraction reads the file, on one of the
pages the question accepts (anywhere in the document for formats without pages), and the
set covers what the RAG evaluation must measure.

Why ingot's extraction and not a reader of our own: the evaluation scores what the
pipeline can know; a fact that ingot does not extract is an extraction bug to fix, not a
question to drop silently, and this test names it. Strings are compared with the same
normalization the scorer uses (``ingot.eval.rag.normalize``).
"""

from __future__ import annotations

from collections import Counter
from functools import lru_cache
from pathlib import Path

import pytest

from conftest import SHARED_DATA
from ingot.eval.rag import GoldenItem, load_golden, normalize

GOLDEN_DIR = Path(__file__).resolve().parent.parent / "benchmarks" / "golden"
GOLDEN = GOLDEN_DIR / "docs.jsonl"
DOCS_ROOT = SHARED_DATA / "docs"
DOC_PATHS = [line.strip() for line in (GOLDEN_DIR / "docs.txt").read_text().splitlines() if line.strip()]
BY_NAME = {Path(p).name: DOCS_ROOT / p for p in DOC_PATHS}
ITEMS = load_golden(GOLDEN)
SLOW_DOCS = {"DA-619p.pdf"}  # 619 pages: ~40 s to extract on a busy core
KINDS = {"table", "multi-column", "late-page", "text", "slide", "spreadsheet", "html", "docx", "unanswerable"}


def test_the_set_has_the_size_and_mix_the_evaluation_needs() -> None:
    kinds = Counter(item.kind for item in ITEMS)
    assert len(ITEMS) >= 60
    assert kinds["unanswerable"] >= 10
    assert set(kinds) == KINDS, kinds
    assert all(kinds[k] >= 1 for k in KINDS)
    assert all((item.doc is None) == (item.kind == "unanswerable") for item in ITEMS)
    assert len({item.question for item in ITEMS}) == len(ITEMS), "a question is repeated"


def test_every_named_document_is_listed_once() -> None:
    assert len(BY_NAME) == len(DOC_PATHS), "two listed documents share a file name (citations name the file)"
    named = {item.doc for item in ITEMS if item.doc is not None}
    assert named <= set(BY_NAME), named - set(BY_NAME)
    assert set(BY_NAME) <= named, f"listed but never asked about: {set(BY_NAME) - named}"


@lru_cache(maxsize=None)
def page_texts(name: str) -> dict[int | None, str]:
    """Normalized text per page (None: a format without pages) of one listed document."""
    from ingot.ingest.runner import extract_path

    path = BY_NAME[name]
    if not path.is_file():
        pytest.skip(f"shared test documents are absent: {path}")
    result = extract_path(path, timeout_s=600)
    assert result.error is None, f"{name}: {result.error_reason}: {result.error}"
    pages: dict[int | None, list[str]] = {}
    for element in result.elements:
        pages.setdefault(element.page, []).append(element.text)
    return {page: normalize("\n".join(texts)) for page, texts in pages.items()}


def _params() -> list:
    out = []
    for item in ITEMS:
        if item.doc is None:
            continue
        marks = [pytest.mark.slow] if item.doc in SLOW_DOCS else []
        out.append(pytest.param(item, id=f"line{item.line}-{item.doc}", marks=marks))
    return out


@pytest.mark.parametrize("item", _params())
def test_answers_occur_on_the_listed_pages(item: GoldenItem) -> None:
    assert item.doc is not None
    pages = page_texts(item.doc)
    if item.pages is None:
        where = {"the document": " ".join(pages.values())}
    else:
        where = {f"page {p}": pages.get(p, "") for p in item.pages}
    for expected in item.answer_any:
        found = [label for label, text in where.items() if normalize(expected) in text]
        assert found, f"line {item.line}: {expected!r} is not on {', '.join(where)} of {item.doc} (ingot's extraction)"


def test_answers_are_not_given_away_by_the_question() -> None:
    """A question that contains its own answer would score any echo as right."""
    for item in ITEMS:
        leaked = [a for a in item.answer_any if normalize(a) in normalize(item.question)]
        assert not leaked, f"line {item.line}: the question contains {leaked}"
