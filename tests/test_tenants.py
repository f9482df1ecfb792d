"""Two tenants with documents in one collection: each key sees only its groups' chunks
(and public ones) in /v1/search, in document listings and in RAG citations, whatever the
question asks and whatever the filter field carries."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from authutil import create_key, isolated_data_dir
from kbutil import given_passages, search, upload, wait_job
from serverutil import RunningServer

pytestmark = pytest.mark.slow  # its own keyed server and ingestion, ~20 s

FINANCE = b"Project Falcon budget: the finance team approved 4.2 million dollars for Falcon in 2027."
LEGAL = b"Project Falcon legal: the merger lawsuit about Falcon settles on March 3 in Delaware court."
PUBLIC = b"Project Falcon cafeteria: the Falcon office cafeteria opens at 8 am for everyone."


@pytest.fixture(scope="module")
def tenants(data_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    home = isolated_data_dir(data_dir, tmp_path_factory.mktemp("tenants"))
    keys = {
        "admin": create_key(home, "ops", "--admin")["key"],
        "alice": create_key(home, "alice", "--groups", "finance")["key"],
        "bob": create_key(home, "bob", "--groups", "legal")["key"],
    }
    srv = RunningServer(home)
    headers = {name: {"Authorization": f"Bearer {key}"} for name, key in keys.items()}
    base = srv.base_url
    assert httpx.post(f"{base}/collections", json={"name": "falcon"}, headers=headers["admin"]).status_code == 201
    for name, content, acl in (("finance.txt", FINANCE, "finance"), ("legal.txt", LEGAL, "legal"),
                               ("public.txt", PUBLIC, None)):
        job = upload(base, "falcon", [(name, content)], acl=acl, headers=headers["admin"])
        assert wait_job(base, job["id"], headers=headers["admin"])["progress"]["failed"] == 0
    yield srv, headers
    srv.stop()


def sources(result: dict) -> set[str]:
    return {p["source"] for p in result["data"]}


@pytest.mark.parametrize("mode", ["hybrid", "dense", "bm25"])
def test_each_key_searches_only_its_groups(tenants, mode: str) -> None:
    srv, h = tenants
    assert sources(search(srv.base_url, "falcon", "Project Falcon", headers=h["admin"], mode=mode)) == {
        "finance.txt", "legal.txt", "public.txt"}
    assert sources(search(srv.base_url, "falcon", "Project Falcon", headers=h["alice"], mode=mode)) == {
        "finance.txt", "public.txt"}
    assert sources(search(srv.base_url, "falcon", "Project Falcon", headers=h["bob"], mode=mode)) == {
        "legal.txt", "public.txt"}


def test_asking_for_the_other_tenants_content_returns_none_of_it(tenants) -> None:
    srv, h = tenants
    result = search(srv.base_url, "falcon", "When does the Falcon merger lawsuit settle in Delaware court?",
                    headers=h["alice"], top_k=10)
    assert "legal.txt" not in sources(result)
    assert all("lawsuit" not in p["text"] for p in result["data"])


@pytest.mark.parametrize("flt", [
    {"sources": ["legal.txt"]},
    {"sources": ["x' OR 1=1 OR source = 'legal.txt"]},
    {"sources": ["legal.txt') OR (acl IS NOT NULL"]},
    {"document_ids": ["doc_x' OR '1'='1"]},
    {"kinds": ["text"], "sources": ["finance.txt", "legal.txt"]},
])
def test_filter_injection_cannot_widen_access(tenants, flt: dict) -> None:
    srv, h = tenants
    result = search(srv.base_url, "falcon", "Falcon lawsuit merger", headers=h["alice"], filter=flt, top_k=10)
    assert "legal.txt" not in sources(result)


def test_document_listing_and_lookup_respect_groups(tenants) -> None:
    srv, h = tenants
    base = srv.base_url
    listed = httpx.get(f"{base}/collections/falcon/documents", headers=h["alice"]).json()["data"]
    assert {d["source"] for d in listed} == {"finance.txt", "public.txt"}
    all_docs = httpx.get(f"{base}/collections/falcon/documents", headers=h["admin"]).json()["data"]
    legal_id = next(d["id"] for d in all_docs if d["source"] == "legal.txt")
    assert httpx.get(f"{base}/collections/falcon/documents/{legal_id}", headers=h["alice"]).status_code == 404
    assert httpx.delete(f"{base}/collections/falcon/documents/{legal_id}", headers=h["alice"]).status_code == 404
    assert httpx.get(f"{base}/collections/falcon/documents/{legal_id}", headers=h["bob"]).status_code == 200


def test_upload_acl_limited_to_own_groups_and_delete_needs_admin(tenants) -> None:
    srv, h = tenants
    base = srv.base_url
    r = httpx.post(f"{base}/collections/falcon/documents", files=[("files", ("x.txt", b"x"))],
                   data={"acl": "legal"}, headers=h["alice"])
    assert r.status_code == 403 and "legal" in r.json()["error"]["message"]
    r = httpx.delete(f"{base}/collections/falcon", headers=h["alice"])
    assert r.status_code == 403
    assert httpx.get(f"{base}/collections/falcon", headers=h["admin"]).json()["documents"] == 3


def test_rag_citations_and_prompt_hold_only_allowed_chunks(tenants) -> None:
    srv, h = tenants
    body = {"messages": [{"role": "user", "content": "When does the Falcon merger lawsuit settle?"}],
            "collection": "falcon", "max_tokens": 24, "temperature": 0, "top_k": 10}
    alice = httpx.post(f"{srv.base_url}/rag/chat/completions", json=body, headers=h["alice"], timeout=120).json()
    assert {c["source"] for c in alice["citations"]} <= {"finance.txt", "public.txt"}
    assert "March 3" not in alice["choices"][0]["message"]["content"]
    assert {c["source"] for c in given_passages(srv.base_url, body, h["alice"])} <= {"finance.txt", "public.txt"}
    bob = httpx.post(f"{srv.base_url}/rag/chat/completions", json=body, headers=h["bob"], timeout=120).json()
    assert "finance.txt" not in {c["source"] for c in bob["citations"]}
    bob_given = {c["source"] for c in given_passages(srv.base_url, body, h["bob"])}
    assert "legal.txt" in bob_given and "finance.txt" not in bob_given
