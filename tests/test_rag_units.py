"""Pure logic of retrieval and RAG: reciprocal rank fusion, the prompt budget, and the
follow-up rewrite's acceptance rules (the rewriting model is replaced by scripted replies,
named as such, so each rule is exercised deterministically; the real model runs in
tests/test_rag.py)."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from ingot.errors import ContextLengthError
from ingot.rag.prompt import SYSTEM_PROMPT, build_prompt
from ingot.rag.rewrite import refers_back, standalone_query
from ingot.retrieval.fusion import rrf
from ingot.retrieval.service import Passage
from ingot.store.protocol import ChunkRecord


def test_rrf_matches_the_formula() -> None:
    fused = dict(rrf([(["a", "b", "c"], 1.0), (["c", "a"], 1.0)], k=60))
    assert fused["a"] == pytest.approx(1 / 61 + 1 / 62)
    assert fused["c"] == pytest.approx(1 / 63 + 1 / 61)
    assert fused["b"] == pytest.approx(1 / 62)
    assert [key for key, _ in rrf([(["a", "b", "c"], 1.0), (["c", "a"], 1.0)])] == ["a", "c", "b"]
    assert [key for key, _ in rrf([(["a", "b"], 1.0), (["b", "a"], 3.0)])] == ["b", "a"]  # weights count
    assert rrf([(["a"], 0.0)]) == []  # a zero-weight ranking contributes nothing


def passage(i: int, words: int, page: int | None = 1) -> Passage:
    record = ChunkRecord(id=f"c{i}", document_id="d", content_hash="h", text=" ".join([f"w{i}"] * words),
                         vector=np.zeros(0, dtype=np.float32), source="a.pdf", page_start=page, page_end=page)
    return Passage("docs", record, score=1.0 / (i + 1))


def words(text: str) -> int:
    return len(text.split())


def test_prompt_drops_the_lowest_ranked_passages_to_fit() -> None:
    passages = [passage(0, 100), passage(1, 100), passage(2, 100)]
    roomy = build_prompt("q?", [], passages, count_tokens=words, context_tokens=2000, answer_tokens=100)
    assert [p.record.id for p in roomy.passages] == ["c0", "c1", "c2"] and roomy.dropped == 0
    tight = build_prompt("q?", [], passages, count_tokens=words, context_tokens=450, answer_tokens=100)
    assert [p.record.id for p in tight.passages] == ["c0", "c1"] and tight.dropped == 1
    assert tight.messages[0] == {"role": "system", "content": SYSTEM_PROMPT}
    user = tight.messages[-1]["content"]
    assert user.startswith("Sources:") and user.endswith("Question: q?")
    assert "[1] page 1" in user and "[2] page 1" in user and "w2" not in user
    assert sum(words(m["content"]) for m in tight.messages) + 100 <= 450


def test_prompt_keeps_history_and_refuses_when_it_cannot_fit() -> None:
    history = [{"role": "user", "content": "first"}, {"role": "assistant", "content": "answer [1]"}]
    prompt = build_prompt("then?", history, [passage(0, 5)], count_tokens=words, context_tokens=500, answer_tokens=50)
    assert prompt.messages[1:3] == history
    with pytest.raises(ContextLengthError):
        build_prompt("q " * 300, [], [passage(0, 5)], count_tokens=words, context_tokens=200, answer_tokens=50)


def scripted(reply: str):  # noqa: ANN201 - stands in for the chat model: returns a fixed reply
    async def generate(messages: list[dict], max_tokens: int) -> str:
        assert "Follow-up question" in messages[-1]["content"]
        return reply
    return generate


HISTORY = [{"role": "user", "content": "When did Microsoft launch Word?"},
           {"role": "assistant", "content": "In 1983 [1]."}]


@pytest.mark.parametrize(("reply", "how", "query"), [
    ("Which operating system did Microsoft Word run on?", "rewritten",
     "Which operating system did Microsoft Word run on?"),
    ("Microsoft Word was great.", "combined",  # lost the question's own words
     "When did Microsoft launch Word? Which operating system did it run on?"),
    ("Which operating system did it run on?", "combined",  # lost the topic
     "When did Microsoft launch Word? Which operating system did it run on?"),
    ("", "combined", "When did Microsoft launch Word? Which operating system did it run on?"),
])
def test_rewrite_is_kept_only_when_it_carries_topic_and_question(reply: str, how: str, query: str) -> None:
    got = asyncio.run(standalone_query(HISTORY, "Which operating system did it run on?", scripted(reply)))
    assert got == (query, how)


async def never(messages: list[dict], max_tokens: int) -> str:
    raise AssertionError("the model must not be called for a question that stands alone")


def test_first_question_is_used_as_is_without_calling_the_model() -> None:
    assert asyncio.run(standalone_query([], "What is RAG?", never)) == ("What is RAG?", "as-is")


def test_a_follow_up_that_stands_alone_is_searched_as_asked() -> None:
    question = "And when was Google Docs introduced?"
    assert asyncio.run(standalone_query(HISTORY, question, never)) == (question, "as-is")


@pytest.mark.parametrize("question", ["Which operating system did it run on?", "Why?", "Who made those?"])
def test_follow_ups_that_refer_back_go_to_the_model(question: str) -> None:
    assert refers_back(question)
    query, how = asyncio.run(standalone_query(HISTORY, question, scripted("")))
    assert how == "combined" and query.startswith("When did Microsoft launch Word?")
