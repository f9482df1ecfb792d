"""Ingestion, search and RAG over documents the test writes itself (tests/docgen.py): a
3-page PDF, a DOCX, a 3-slide PPTX and a 2-sheet XLSX, each with known facts in known
places. Runs without ../shared/data, so a fresh clone covers the knowledge base end to end
against the real server; where each fact lives is read back with the writers' own
libraries (pypdfium2, python-pptx, openpyxl), not through ingot."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest

import docgen
from kbutil import search, upload, wait_job

MODEL = "smollm2-135m-instruct"


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return docgen.write_all(tmp_path_factory.mktemp("generated-docs"))


@pytest.fixture(scope="module")
def gen_collection(server, generated: dict[str, Path]):
    """The four generated files uploaded in one job to a fresh collection on the session server."""
    base = server.base_url
    name = f"gen_{uuid.uuid4().hex[:8]}"
    r = httpx.post(f"{base}/collections", json={"name": name}, timeout=30)
    assert r.status_code == 201, r.text
    job = wait_job(base, upload(base, name, [(p.name, p.read_bytes()) for p in generated.values()])["id"])
    yield name, job
    httpx.delete(f"{base}/collections/{name}", timeout=30)


def test_generated_files_hold_the_facts_where_stated(generated: dict[str, Path]) -> None:
    """The generator itself: real files, each fact found on its page by an independent reader."""
    pages = docgen.pdf_pages_text(generated["field_guide.pdf"])
    assert len(pages) == 3 and "Brennholm" in pages[0] and "Brennholm" not in pages[1] + pages[2]
    for fact in docgen.FACTS.values():
        assert docgen.page_of(generated[fact.source], fact.needle) == fact.page, fact


def test_upload_job_ingests_every_generated_format(server, gen_collection) -> None:
    name, job = gen_collection
    assert job["status"] == "done" and job["progress"] == {"total": 4, "finished": 4, "failed": 0}, job
    by_name = {d["filename"]: d for d in job["documents"]}
    expected = {"field_guide.pdf": "pdf", "policy.docx": "docx", "roadmap.pptx": "pptx", "inventory.xlsx": "xlsx"}
    assert set(by_name) == set(expected)
    for filename, fmt in expected.items():
        doc = by_name[filename]
        assert doc["status"] == "done" and doc["action"] == "added" and doc["chunks"] > 0, doc
        assert doc["format"] == fmt, doc
    assert by_name["field_guide.pdf"]["pages"] == 3
    info = httpx.get(f"{server.base_url}/collections/{name}", timeout=30).json()
    assert info["documents"] == 4


@pytest.mark.parametrize("key", list(docgen.FACTS))
def test_search_finds_the_place_that_holds_the_fact(server, gen_collection, key: str) -> None:
    fact = docgen.FACTS[key]
    name, _ = gen_collection
    for mode in ("hybrid", "dense", "bm25"):
        top = search(server.base_url, name, fact.question, mode=mode, top_k=3)["data"][0]
        assert top["source"] == fact.source, (mode, top)
        assert fact.needle in top["text"], (mode, top)
        if fact.page is not None:
            assert top["page_start"] <= fact.page <= top["page_end"], (mode, top)
        if fact.heading is not None:
            assert fact.heading in top["heading_path"], (mode, top)


def test_source_filter_keeps_other_documents_out(server, gen_collection) -> None:
    name, _ = gen_collection
    hits = search(server.base_url, name, "Brennholm lighthouse", filter={"sources": ["roadmap.pptx"]}, top_k=5)["data"]
    assert hits and {h["source"] for h in hits} == {"roadmap.pptx"}


def rag(server, collection: str, question: str, **extra: object) -> dict:
    body = {"model": MODEL, "messages": [{"role": "user", "content": question}], "collection": collection,
            "max_tokens": 32, "temperature": 0, **extra}
    r = httpx.post(f"{server.base_url}/rag/chat/completions", json=body, timeout=120)
    assert r.status_code == 200, r.text
    return r.json()


@pytest.mark.parametrize("key", ["lighthouse", "launch"])
def test_rag_answer_cites_the_document_and_page(server, gen_collection, key: str) -> None:
    fact = docgen.FACTS[key]
    name, _ = gen_collection
    answer = rag(server, name, fact.question)
    assert answer["choices"][0]["message"]["content"].strip()
    first = answer["citations"][0]
    assert first["index"] == 1 and first["source"] == fact.source, answer["citations"]
    assert first["page_start"] == fact.page, first
    assert fact.needle in first["snippet"], first
    assert answer["usage"]["completion_tokens"] > 0


def test_rag_refuses_what_the_documents_do_not_say(server, gen_collection) -> None:
    name, _ = gen_collection
    answer = rag(server, name, "What is the capital of Peru?")
    assert answer["citations"] == []
    assert "documents do not say" in answer["choices"][0]["message"]["content"]
    assert answer["usage"]["completion_tokens"] == 0
