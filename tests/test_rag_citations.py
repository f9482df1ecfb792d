"""RAG citations end to end with the bundled chat model (SmolLM2-135M, named as such for
speed) over documents the test writes (tests/docgen.py): the ``[n]`` markers ingot places
after generation agree with ``citations``, a marked sentence's numbers are in the passage
it cites, and the streamed answer is the non-streamed one (same text, same final
citations), with the given passages first and the cited ones on the finish chunk."""

from __future__ import annotations

import json
import re
import uuid

import httpx
import pytest

import docgen
from kbutil import upload, wait_job

pytestmark = pytest.mark.slow  # the session server, an upload and ~a dozen answers

MODEL = "smollm2-135m-instruct"
MARKER = re.compile(r"\[(\d{1,2})\]")
NUMBER = re.compile(r"\d+(?:[.:]\d+)*")


@pytest.fixture(scope="module")
def collection(server, tmp_path_factory: pytest.TempPathFactory):
    files = docgen.write_all(tmp_path_factory.mktemp("rag-citations"))
    base = server.base_url
    name = f"cite_{uuid.uuid4().hex[:8]}"
    assert httpx.post(f"{base}/collections", json={"name": name}, timeout=30).status_code == 201
    job = wait_job(base, upload(base, name, [(p.name, p.read_bytes()) for p in files.values()])["id"])
    assert job["progress"]["failed"] == 0, job
    yield name
    httpx.delete(f"{base}/collections/{name}", timeout=30)


def body(collection: str, question: str, **extra: object) -> dict:
    return {"model": MODEL, "messages": [{"role": "user", "content": question}], "collection": collection,
            "max_tokens": 48, "temperature": 0, **extra}


def ask(server, collection: str, question: str) -> dict:
    r = httpx.post(f"{server.base_url}/rag/chat/completions", json=body(collection, question), timeout=180)
    assert r.status_code == 200, r.text
    return r.json()


def stream(server, collection: str, question: str) -> list[dict]:
    chunks = []
    with httpx.stream("POST", f"{server.base_url}/rag/chat/completions",
                      json=body(collection, question, stream=True), timeout=180) as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            if line.startswith("data: ") and line != "data: [DONE]":
                chunks.append(json.loads(line[6:]))
    return chunks


@pytest.mark.parametrize("key", list(docgen.FACTS))
def test_markers_and_citations_agree(server, collection: str, key: str) -> None:
    fact = docgen.FACTS[key]
    answer = ask(server, collection, fact.question)
    text = answer["choices"][0]["message"]["content"]
    cited = {c["index"]: c for c in answer["citations"]}
    assert {int(n) for n in MARKER.findall(text)} == set(cited), (text, answer["citations"])
    retrieval = answer["retrieval"]
    assert retrieval.get("passages_cited", 0) == len(cited) <= retrieval["passages_used"]
    if retrieval.get("answer_withheld"):
        assert cited == {} and "documents do not say" in text
    # Each marked sentence: its numbers are in the passage it cites (the snippet is the
    # passage's first 500 characters; docgen's pages are shorter).
    for sentence in re.split(r"(?<=[.!?])\s+|\n+", text):
        for n in MARKER.findall(sentence):
            snippet = cited[int(n)]["snippet"]
            for number in NUMBER.findall(MARKER.sub("", sentence)):
                assert number in snippet, (sentence, snippet)
    if fact.needle in text:  # when the model found the fact, it is cited where it is
        assert any(c["source"] == fact.source and (fact.page is None or c["page_start"] == fact.page)
                   for c in cited.values()), (text, answer["citations"])


def test_stream_matches_the_full_answer(server, collection: str) -> None:
    question = docgen.FACTS["lighthouse"].question
    full = ask(server, collection, question)
    chunks = stream(server, collection, question)
    first, finish = chunks[0], next(c for c in chunks if c["choices"] and c["choices"][0]["finish_reason"])
    assert len(first["citations"]) == first["retrieval"]["passages_used"] >= 1  # the sources, before the text
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == full["choices"][0]["message"]["content"]
    assert finish["citations"] == full["citations"]  # the cited passages, as the full answer lists them
    assert finish["choices"][0]["finish_reason"] == full["choices"][0]["finish_reason"]
    middle = [c for c in chunks if c is not first and c is not finish]
    assert all("citations" not in c for c in middle)
    # Whole sentences per chunk: no content chunk ends inside a word followed by more text.
    contents = [c["choices"][0]["delta"]["content"] for c in middle if c["choices"] and c["choices"][0]["delta"].get("content")]
    assert all(re.search(r"([.!?\]]\W*|\n)$", piece) for piece in contents[:-1]), contents


def test_unknown_question_still_refused_without_the_model(server, collection: str) -> None:
    answer = ask(server, collection, "What is the capital of Peru?")
    assert answer["citations"] == [] and answer["usage"]["completion_tokens"] == 0
    assert "documents do not say" in answer["choices"][0]["message"]["content"]
