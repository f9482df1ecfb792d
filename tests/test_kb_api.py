"""Knowledge base through the real HTTP API: collections, uploads of real documents,
jobs, idempotent re-ingest, replace, delete, search modes and filters."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from authutil import isolated_data_dir
from kbutil import LOREM_DOCX, MULTI_PAGE_PDF, SAMPLE_PPTX, need_docs, page_containing, search, upload, wait_job
from serverutil import RunningServer

pytestmark = pytest.mark.slow  # its own server plus real-document ingestion, ~35 s (test_kb_generated_docs covers upload+search fast)


@pytest.fixture(scope="module")
def kb_server(data_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    srv = RunningServer(isolated_data_dir(data_dir, tmp_path_factory.mktemp("kb")), "--model", "none")
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def docs_collection(kb_server: RunningServer) -> dict:
    """A collection holding three real documents and one broken file, ingested once."""
    need_docs(MULTI_PAGE_PDF, SAMPLE_PPTX, LOREM_DOCX)
    base = kb_server.base_url
    r = httpx.post(f"{base}/collections", json={"name": "docs", "description": "real documents"})
    assert r.status_code == 201, r.text
    files = [(p.name, p.read_bytes()) for p in (MULTI_PAGE_PDF, SAMPLE_PPTX, LOREM_DOCX)]
    files.append(("broken.pdf", b"%PDF-1.7\nthis is not really a pdf"))
    job = upload(base, "docs", files)
    assert job["object"] == "ingest.job" and job["progress"]["total"] == 4
    return wait_job(base, job["id"])


def _chunks(base: str, name: str) -> int:
    return httpx.get(f"{base}/collections/{name}").json()["chunks"]


def test_job_reports_every_document_and_a_failed_file_does_not_fail_it(kb_server, docs_collection) -> None:
    job = docs_collection
    by_name = {d["filename"]: d for d in job["documents"]}
    assert job["status"] == "done"
    assert job["progress"] == {"total": 4, "finished": 4, "failed": 1}
    for name in (MULTI_PAGE_PDF.name, SAMPLE_PPTX.name, LOREM_DOCX.name):
        assert by_name[name]["status"] == "done" and by_name[name]["action"] == "added"
        assert by_name[name]["chunks"] > 0
    assert by_name["multi_page.pdf"]["pages"] == 5 and by_name["multi_page.pdf"]["format"] == "pdf"
    broken = by_name["broken.pdf"]
    assert broken["status"] == "failed" and broken["error"]["reason"] in ("corrupt", "unsupported", "failed")
    docs = httpx.get(f"{kb_server.base_url}/collections/docs/documents").json()["data"]
    assert sorted(d["source"] for d in docs) == sorted([MULTI_PAGE_PDF.name, SAMPLE_PPTX.name, LOREM_DOCX.name])
    info = httpx.get(f"{kb_server.base_url}/collections/docs").json()
    assert info["documents"] == 3 and info["chunks"] == sum(d["chunks"] for d in docs)


def test_duplicate_upload_adds_nothing(kb_server, docs_collection) -> None:
    base = kb_server.base_url
    before = _chunks(base, "docs")
    job = wait_job(base, upload(base, "docs", [(p.name, p.read_bytes()) for p in (MULTI_PAGE_PDF, LOREM_DOCX)])["id"])
    assert [d["action"] for d in job["documents"]] == ["unchanged", "unchanged"]
    assert _chunks(base, "docs") == before


def test_search_modes_find_the_page_that_holds_the_fact(kb_server, docs_collection) -> None:
    page = page_containing(MULTI_PAGE_PDF, "Sholes")
    for mode in ("dense", "bm25", "hybrid"):
        result = search(kb_server.base_url, "docs", "Who patented the typewriter in 1868?", mode=mode, top_k=3)
        assert result["mode"] == mode
        top = result["data"][0]
        assert top["source"] == MULTI_PAGE_PDF.name, (mode, result["data"])
        assert top["page_start"] <= page <= top["page_end"], (mode, top)
        assert "Sholes" in top["text"]
    slide = search(kb_server.base_url, "docs", "rectangle shape with text inside", top_k=1)["data"][0]
    assert slide["source"] == SAMPLE_PPTX.name and slide["page_start"] == 2


def test_filters_restrict_results(kb_server, docs_collection) -> None:
    base = kb_server.base_url
    only_docx = search(base, "docs", "typewriter", filter={"sources": [LOREM_DOCX.name]}, top_k=5)["data"]
    assert only_docx and {p["source"] for p in only_docx} == {LOREM_DOCX.name}
    tables = search(base, "docs", "R1 True False", filter={"kinds": ["table"]}, top_k=5)["data"]
    assert tables and all("table" in p["kinds"] for p in tables)
    future = search(base, "docs", "typewriter", filter={"created_after": 4_000_000_000})["data"]
    assert future == []
    doc_id = only_docx[0]["document_id"]
    by_id = search(base, "docs", "typewriter", filter={"document_ids": [doc_id]})["data"]
    assert by_id and {p["document_id"] for p in by_id} == {doc_id}


@pytest.mark.parametrize("value", ["x' OR 1=1 --", "multi_page.pdf' OR source != '", '") or true or ("'])
def test_filter_values_are_data_not_expressions(kb_server, docs_collection, value: str) -> None:
    result = search(kb_server.base_url, "docs", "typewriter", filter={"sources": [value]})
    assert result["data"] == []


@pytest.mark.parametrize("field", ["sources", "document_ids"])
def test_a_control_character_in_a_filter_value_is_the_callers_400(kb_server, docs_collection, field: str) -> None:
    # No stored name or id holds one (uploads drop them); PostgreSQL refuses a NUL outright.
    response = httpx.post(f"{kb_server.base_url}/search",
                          json={"collection": "docs", "query": "typewriter", "filter": {field: ["a\x00b"]}}, timeout=60)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_changed_file_replaces_the_document(kb_server) -> None:
    base = kb_server.base_url
    assert httpx.post(f"{base}/collections", json={"name": "replace_me"}).status_code == 201
    first = wait_job(base, upload(base, "replace_me", [("notes.txt", b"The launch code word is aardvark.")])["id"])
    assert first["documents"][0]["action"] == "added"
    hit = search(base, "replace_me", "launch code word", mode="bm25")["data"][0]
    assert "aardvark" in hit["text"]
    second = wait_job(base, upload(base, "replace_me", [("notes.txt", b"The launch code word is zebra.")])["id"])
    assert second["documents"][0]["action"] == "replaced"
    assert second["documents"][0]["document_id"] == first["documents"][0]["document_id"]
    texts = [p["text"] for p in search(base, "replace_me", "launch code word aardvark zebra", mode="bm25")["data"]]
    assert texts == ["The launch code word is zebra."]
    docs = httpx.get(f"{base}/collections/replace_me/documents").json()["data"]
    assert len(docs) == 1 and docs[0]["chunks"] == 1


def test_delete_document_and_collection(kb_server) -> None:
    base = kb_server.base_url
    assert httpx.post(f"{base}/collections", json={"name": "scratch", "acl": ["team"]}).status_code == 201
    job = wait_job(base, upload(base, "scratch", [("a.md", b"# Alpha\n\nalpha text"), ("b.md", b"# Beta\n\nbeta text")])["id"])
    ids = {d["filename"]: d["document_id"] for d in job["documents"]}
    doc = httpx.get(f"{base}/collections/scratch/documents/{ids['a.md']}").json()
    assert doc["acl"] == ["team"] and doc["source"] == "a.md"  # inherited from the collection
    r = httpx.delete(f"{base}/collections/scratch/documents/{ids['a.md']}")
    assert r.status_code == 200 and r.json()["deleted"] is True
    assert httpx.get(f"{base}/collections/scratch/documents/{ids['a.md']}").status_code == 404
    assert {p["source"] for p in search(base, "scratch", "alpha beta text")["data"]} == {"b.md"}
    assert httpx.delete(f"{base}/collections/scratch").json() == {
        "object": "collection.deleted", "name": "scratch", "deleted": True}
    assert httpx.get(f"{base}/collections/scratch").status_code == 404
    assert "scratch" not in [c["name"] for c in httpx.get(f"{base}/collections").json()["data"]]


def test_bad_requests_get_clear_errors(kb_server, docs_collection) -> None:
    base = kb_server.base_url
    cases = [
        (httpx.post(f"{base}/collections", json={"name": "docs"}), 409, "already exists"),
        (httpx.post(f"{base}/collections", json={"name": "no spaces"}), 400, "invalid collection name"),
        (httpx.get(f"{base}/collections/missing"), 404, "does not exist"),
        (httpx.post(f"{base}/search", json={"query": "x"}), 400, "collection"),
        (httpx.post(f"{base}/search", json={"collection": "missing", "query": "x"}), 404, "does not exist"),
        (httpx.post(f"{base}/search", json={"collection": "docs", "query": "x", "mode": "fuzzy"}), 400, "mode"),
        (httpx.post(f"{base}/search", json={"collection": "docs", "query": "x", "top_k": 0}), 400, "top_k"),
        (httpx.post(f"{base}/collections/docs/documents", data={"acl": "a"}), 400, "files"),
        (httpx.post(f"{base}/collections/missing/documents", files=[("files", ("a.txt", b"x"))]), 404, "does not exist"),
        (httpx.post(f"{base}/collections/docs/documents", files=[("files", ("a.txt", b"x"))], data={"acl": "bad group!"}),
         400, "ACL group"),
        (httpx.get(f"{base}/jobs/job_missing"), 404, "does not exist"),
        (httpx.delete(f"{base}/collections/docs/documents/doc_missing"), 404, "not in collection"),
    ]
    for response, status, words in cases:
        assert response.status_code == status, (response.request.url, response.text)
        error = response.json()["error"]
        assert words in error["message"], error
    assert httpx.get(f"{base}/collections/docs").json()["documents"] == 3  # nothing lost


def test_search_across_collections(kb_server, docs_collection) -> None:
    base = kb_server.base_url
    httpx.post(f"{base}/collections", json={"name": "other"})
    wait_job(base, upload(base, "other", [("typewriters.txt", b"Typewriters were patented in the nineteenth century.")])["id"])
    r = httpx.post(f"{base}/search", json={"collections": ["docs", "other"], "query": "typewriter patent", "top_k": 10})
    assert r.status_code == 200
    assert {p["collection"] for p in r.json()["data"]} == {"docs", "other"}


def test_jobs_list_and_metrics_move(kb_server, docs_collection) -> None:
    base = kb_server.base_url
    jobs = httpx.get(f"{base}/jobs", params={"collection": "docs"}).json()["data"]
    assert jobs and all(j["collection"] == "docs" for j in jobs)
    metrics = httpx.get(f"{base}/metrics").text
    added = [line for line in metrics.splitlines() if line.startswith('ingest_documents_total{outcome="added"}')]
    assert added and float(added[0].split()[-1]) >= 3
    assert 'ingest_stage_seconds_count{stage="embed"}' in metrics
    assert "search_latency_seconds_count" in metrics


def test_knowledge_base_off_without_embedding_model(data_dir: Path, tmp_path: Path) -> None:
    srv = RunningServer(tmp_path, "--model", "none", "--embedding-model", "none", "--ranking-model", "none")
    try:
        r = httpx.get(f"{srv.base_url}/collections")
        assert r.status_code == 404 and "INGOT_EMBEDDING_MODEL" in r.json()["error"]["message"]
    finally:
        srv.stop()
