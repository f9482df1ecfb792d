"""Tenants attacking each other's writes and job metadata (issue 18, items 1, 2 and 5).

Two tenants' keys (groups ``a`` and ``b``), a key in no group, and an admin share one
collection on a real keyed server. A must not replace, delete or sync away B's documents
or a public document it does not own, must not learn whether B's filename exists, and
must see none of B's jobs. The rules themselves (security/acl.py) and the migration of
an older ``kb.sqlite`` are checked without a server first.
"""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest

from authutil import create_key, isolated_data_dir
from kbutil import search, upload, wait_job
from serverutil import RunningServer

from ingot.kb.catalog import DocumentRow, open_catalog
from ingot.kb.service import KnowledgeBase
from ingot.security.acl import OPERATOR, Caller, may_read, may_write, scoped_document_id, write_scope
from ingot.security.uploads import safe_filename

B_PLAN = b"Bob's plan: the b team ships the Heron release on May 9 with twelve engineers."
A_PLAN = b"Alice's overwrite attempt: the Heron release is cancelled, everyone go home."
PUBLIC = b"Office notice: the Heron building lobby opens at seven for everyone."

# --------------------------------------------------------------------------- rules (fast)

ALICE = Caller("alice-id", ("a",))
BOB = Caller("bob-id", ("b",))
LONER = Caller("loner-id", ())


def test_owner_scopes_and_write_rule() -> None:
    assert write_scope(OPERATOR) == [] and write_scope(ALICE) == ["a"] and write_scope(LONER) == ["key/loner-id"]
    assert may_write(OPERATOR, ["b"]) and may_write(OPERATOR, [])
    assert may_write(BOB, ["b"]) and not may_write(ALICE, ["b"])
    assert not may_write(ALICE, []), "operator-owned (and pre-upgrade) documents are the admins'"
    assert may_write(Caller("ab", ("a", "b")), ["a"]) and not may_write(ALICE, ["a", "b"])
    assert not may_write(Caller("other", ()), ["key/loner-id"]) and may_write(LONER, ["key/loner-id"])
    assert may_read(ALICE, []) and may_read(ALICE, ["a", "x"]) and not may_read(ALICE, ["b"])


def test_document_ids_are_scoped_and_the_operators_are_unchanged() -> None:
    legacy = "doc_" + hashlib.sha256(b"plan.txt").hexdigest()[:24]  # every older version's id
    assert scoped_document_id("plan.txt") == legacy
    ids = {scoped_document_id("plan.txt", write_scope(c)) for c in (OPERATOR, ALICE, BOB, LONER)}
    assert len(ids) == 4
    assert scoped_document_id("plan.txt", ["b", "a"]) == scoped_document_id("plan.txt", ["a", "b"])


@pytest.mark.parametrize("name, shown", [
    ("invoice\u202egpj.exe", "invoicegpj.exe"),
    ("\u2067report\u2069.pdf", "report.pdf"),
    ("\u200fa\u200e.txt\ufeff", "a.txt"),
    ("\u202e", "upload"),
    ("ملف.txt", "ملف.txt"),  # right-to-left letters stay: only the invisible controls go
])
def test_filenames_lose_bidi_controls(name: str, shown: str) -> None:
    assert safe_filename(name) == shown


OLD_SCHEMA = """
CREATE TABLE collections (name TEXT PRIMARY KEY, description TEXT NOT NULL DEFAULT '',
    acl TEXT NOT NULL DEFAULT '[]', created_at REAL NOT NULL, embedding_model TEXT, dimensions INTEGER);
CREATE TABLE documents (collection TEXT NOT NULL, id TEXT NOT NULL, source TEXT NOT NULL, origin TEXT,
    content_hash TEXT NOT NULL, format TEXT, pages INTEGER, chunks INTEGER NOT NULL,
    acl TEXT NOT NULL DEFAULT '[]', created_at REAL NOT NULL, updated_at REAL NOT NULL,
    PRIMARY KEY (collection, id));
CREATE TABLE jobs (id TEXT PRIMARY KEY, collection TEXT NOT NULL, origin TEXT NOT NULL, status TEXT NOT NULL,
    created_at REAL NOT NULL, started_at REAL, finished_at REAL);
CREATE TABLE job_items (job_id TEXT NOT NULL, idx INTEGER NOT NULL, filename TEXT NOT NULL,
    document_id TEXT NOT NULL, data_path TEXT NOT NULL, origin TEXT, acl TEXT NOT NULL DEFAULT '[]',
    status TEXT NOT NULL, stage TEXT, action TEXT, format TEXT, pages INTEGER, chunks INTEGER,
    error_reason TEXT, error_message TEXT, started_at REAL, finished_at REAL, PRIMARY KEY (job_id, idx));
INSERT INTO documents VALUES ('c', 'doc_old', 'old.txt', NULL, 'h', 'text', 1, 3, '["b"]', 1.0, 1.0);
INSERT INTO jobs VALUES ('job_old', 'c', 'upload', 'done', 1.0, 1.0, 2.0);
INSERT INTO job_items (job_id, idx, filename, document_id, data_path, status)
    VALUES ('job_old', 0, 'old.txt', 'doc_old', '/x', 'done');
"""


def test_an_older_catalog_gains_owner_columns_and_stays_readable(tmp_path: Path) -> None:
    path = tmp_path / "kb.sqlite"
    with sqlite3.connect(path) as db:
        db.executescript(OLD_SCHEMA)
    catalog = open_catalog(tmp_path)
    try:
        old = catalog.document("c", "doc_old")
        assert old is not None and old.acl == ["b"] and old.writers == [] and old.chunks == 3
        job = catalog.job("job_old")
        assert job is not None and job.owner_key is None and job.items[0].writers == []
        assert [j.id for j in catalog.jobs()] == ["job_old"] and catalog.jobs(owner_key="bob-id") == []
        assert catalog.document_counts(["a"]) == {} and catalog.document_counts(["b"]) == {"c": (1, 3)}
        catalog.put_document(DocumentRow("c", "doc_new", "new.txt", "h2", 2, acl=[], writers=["a"]))
        assert catalog.document("c", "doc_new").writers == ["a"]
        assert catalog.document_counts(["a"]) == {"c": (1, 2)} and catalog.document_counts() == {"c": (2, 5)}
    finally:
        catalog.close()
    open_catalog(tmp_path).close()  # opening again is a no-op migration


def test_sync_removes_only_the_callers_own_scope(tmp_path: Path) -> None:
    catalog = open_catalog(tmp_path)
    removed_from_store: list[str] = []
    kb = SimpleNamespace(catalog=catalog, store=SimpleNamespace(
        delete_documents=lambda collection, ids: removed_from_store.extend(ids)))
    try:
        for doc_id, writers in (("doc_ops", []), ("doc_b", ["b"])):
            catalog.put_document(DocumentRow("c", doc_id, f"{doc_id}.txt", "h", 1, origin=f"/data/{doc_id}.txt",
                                             writers=writers))
        gone = KnowledgeBase.sync(kb, "c", [Path("/data")], present=set(), caller=ALICE)  # type: ignore[arg-type]
        assert gone == [] and removed_from_store == []
        gone = KnowledgeBase.sync(kb, "c", [Path("/data")], present=set())  # type: ignore[arg-type]
        assert [d.id for d in gone] == ["doc_ops"] and catalog.document("c", "doc_b") is not None
    finally:
        catalog.close()


# --------------------------------------------------------------------------- real server (slow)


@pytest.fixture(scope="module")
def tenants(data_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    home = isolated_data_dir(data_dir, tmp_path_factory.mktemp("tenant-writes"))
    keys = {
        "admin": create_key(home, "ops", "--admin")["key"],
        "alice": create_key(home, "alice", "--groups", "a")["key"],
        "bob": create_key(home, "bob", "--groups", "b")["key"],
        "loner": create_key(home, "loner")["key"],
    }
    srv = RunningServer(home, env={"INGOT_MODEL": "none", "INGOT_RANKING_MODEL": "none"})
    h = {name: {"Authorization": f"Bearer {key}"} for name, key in keys.items()}
    base = srv.base_url
    assert httpx.post(f"{base}/collections", json={"name": "shared"}, headers=h["admin"]).status_code == 201
    public = wait_job(base, upload(base, "shared", [("public.txt", PUBLIC)], headers=h["admin"])["id"],
                      headers=h["admin"])
    bob = wait_job(base, upload(base, "shared", [("b_plan.txt", B_PLAN)], acl="b", headers=h["bob"])["id"],
                   headers=h["bob"])
    assert public["documents"][0]["action"] == "added" and bob["documents"][0]["action"] == "added"
    yield SimpleNamespace(srv=srv, base=base, h=h, public=public, bob=bob)
    srv.stop()


def _only(job: dict) -> dict:
    (doc,) = job["documents"]
    return doc


def _doc(t, who: str, document_id: str) -> httpx.Response:
    return httpx.get(f"{t.base}/collections/shared/documents/{document_id}", headers=t.h[who], timeout=30)


@pytest.mark.slow
def test_a_cannot_replace_bs_document_nor_tell_that_its_name_exists(tenants) -> None:
    t = tenants
    b_id = _only(t.bob)["document_id"]
    taken = upload(t.base, "shared", [("b_plan.txt", A_PLAN)], acl="a", headers=t.h["alice"])
    fresh = upload(t.base, "shared", [("a_fresh_name.txt", A_PLAN + b" fresh")], acl="a", headers=t.h["alice"])
    taken, fresh = (wait_job(t.base, j["id"], headers=t.h["alice"]) for j in (taken, fresh))
    # The same answer as for a name nobody used: added, a document id of A's own.
    assert _only(taken)["action"] == _only(fresh)["action"] == "added"
    assert _only(taken)["status"] == "done" and _only(taken)["document_id"] != b_id
    assert set(taken) == set(fresh) and set(_only(taken)) == set(_only(fresh))

    # B's document is untouched, for B and in B's search; A sees only its own copy.
    mine = _doc(t, "bob", b_id)
    assert mine.status_code == 200 and mine.json()["content_hash"] == hashlib.sha256(B_PLAN).hexdigest()
    assert _doc(t, "alice", b_id).status_code == 404
    bob_hits = search(t.base, "shared", "Heron release", headers=t.h["bob"], top_k=10)["data"]
    assert any("twelve engineers" in p["text"] for p in bob_hits)
    assert not any("cancelled" in p["text"] for p in bob_hits)
    alice_hits = search(t.base, "shared", "Heron release", headers=t.h["alice"], top_k=10)["data"]
    assert not any("twelve engineers" in p["text"] for p in alice_hits)
    assert any(p["document_id"] == _only(taken)["document_id"] for p in alice_hits)

    # Within its own scope an upload still replaces (B re-uploads its plan).
    again = upload(t.base, "shared", [("b_plan.txt", B_PLAN + b" Updated.")], acl="b", headers=t.h["bob"])
    again = wait_job(t.base, again["id"], headers=t.h["bob"])
    assert _only(again)["action"] == "replaced" and _only(again)["document_id"] == b_id
    back = upload(t.base, "shared", [("b_plan.txt", B_PLAN)], acl="b", headers=t.h["bob"])  # as it was
    wait_job(t.base, back["id"], headers=t.h["bob"])


@pytest.mark.slow
def test_a_cannot_take_or_delete_a_public_document_or_bs(tenants) -> None:
    t = tenants
    public_id = _only(t.public)["document_id"]
    copy = wait_job(t.base, upload(t.base, "shared", [("public.txt", A_PLAN)], headers=t.h["alice"])["id"],
                    headers=t.h["alice"])
    assert _only(copy)["action"] == "added" and _only(copy)["document_id"] != public_id
    assert _doc(t, "admin", public_id).json()["content_hash"] == hashlib.sha256(PUBLIC).hexdigest()

    url = f"{t.base}/collections/shared/documents"
    refused = httpx.delete(f"{url}/{public_id}", headers=t.h["alice"], timeout=30)
    assert refused.status_code == 403 and refused.json()["error"]["type"] == "permission_error"
    assert httpx.delete(f"{url}/{_only(t.bob)['document_id']}", headers=t.h["alice"], timeout=30).status_code == 404
    assert httpx.delete(f"{url}/{public_id}", headers=t.h["loner"], timeout=30).status_code == 403
    assert _doc(t, "alice", public_id).status_code == 200
    assert _doc(t, "bob", _only(t.bob)["document_id"]).status_code == 200

    # Its own copy A may delete; a key in no group owns its uploads alone.
    assert httpx.delete(f"{url}/{_only(copy)['document_id']}", headers=t.h["alice"], timeout=30).status_code == 200
    loner = wait_job(t.base, upload(t.base, "shared", [("public.txt", A_PLAN)], headers=t.h["loner"])["id"],
                     headers=t.h["loner"])
    loner_id = _only(loner)["document_id"]
    assert loner_id not in (public_id, _only(copy)["document_id"])
    assert httpx.delete(f"{url}/{loner_id}", headers=t.h["alice"], timeout=30).status_code == 403  # public: readable
    assert httpx.delete(f"{url}/{loner_id}", headers=t.h["loner"], timeout=30).status_code == 200
    # An admin may delete anything (B's document stays for the other tests: delete a fresh one).
    extra = wait_job(t.base, upload(t.base, "shared", [("b_extra.txt", B_PLAN)], acl="b", headers=t.h["bob"])["id"],
                     headers=t.h["bob"])
    assert httpx.delete(f"{url}/{_only(extra)['document_id']}", headers=t.h["admin"], timeout=30).status_code == 200


@pytest.mark.slow
def test_a_sees_none_of_bs_jobs(tenants) -> None:
    t = tenants
    bob_job = t.bob["id"]
    r = httpx.get(f"{t.base}/jobs/{bob_job}", headers=t.h["alice"], timeout=30)
    missing = httpx.get(f"{t.base}/jobs/job_000000000000000000000000", headers=t.h["alice"], timeout=30)
    assert r.status_code == missing.status_code == 404
    assert r.json()["error"]["type"] == missing.json()["error"]["type"] == "not_found_error"
    assert "b_plan" not in r.text and _only(t.bob)["document_id"] not in r.text
    assert httpx.get(f"{t.base}/jobs/{bob_job}", headers=t.h["bob"], timeout=30).status_code == 200

    mine = upload(t.base, "shared", [("a_jobs.txt", b"Alice's own job listing check.")], acl="a",
                  headers=t.h["alice"])
    for query in ("", "?collection=shared", "?limit=200"):
        listed = httpx.get(f"{t.base}/jobs{query}", headers=t.h["alice"], timeout=30).json()["data"]
        ids = {j["id"] for j in listed}
        assert mine["id"] in ids and bob_job not in ids and t.public["id"] not in ids, query
        bobs = {j["id"] for j in httpx.get(f"{t.base}/jobs{query}", headers=t.h["bob"], timeout=30).json()["data"]}
        assert bob_job in bobs and mine["id"] not in bobs, query
    everyone = {j["id"] for j in httpx.get(f"{t.base}/jobs?limit=200", headers=t.h["admin"], timeout=30).json()["data"]}
    assert {bob_job, mine["id"], t.public["id"]} <= everyone
    wait_job(t.base, mine["id"], headers=t.h["alice"])


@pytest.mark.slow
def test_collection_counts_are_the_callers_visible_documents(tenants) -> None:
    t = tenants
    for who in ("alice", "bob", "loner", "admin"):
        docs = httpx.get(f"{t.base}/collections/shared/documents", headers=t.h[who], timeout=30).json()["data"]
        one = httpx.get(f"{t.base}/collections/shared", headers=t.h[who], timeout=30).json()
        listed = next(c for c in httpx.get(f"{t.base}/collections", headers=t.h[who], timeout=30).json()["data"]
                      if c["name"] == "shared")
        assert one["documents"] == listed["documents"] == len(docs), who
        assert one["chunks"] == listed["chunks"] == sum(d["chunks"] for d in docs), who
    alice = httpx.get(f"{t.base}/collections/shared", headers=t.h["alice"], timeout=30).json()
    admin = httpx.get(f"{t.base}/collections/shared", headers=t.h["admin"], timeout=30).json()
    assert alice["documents"] < admin["documents"]


@pytest.mark.slow
def test_only_admins_create_collections_and_names_lose_bidi_controls(tenants) -> None:
    t = tenants
    r = httpx.post(f"{t.base}/collections", json={"name": "squat"}, headers=t.h["alice"], timeout=30)
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    assert "squat" not in {c["name"] for c in httpx.get(f"{t.base}/collections", headers=t.h["admin"]).json()["data"]}
    job = upload(t.base, "shared", [("invoice\u202etxt.exe.txt", b"Invoice 42 for the Heron lobby.")], acl="a",
                 headers=t.h["alice"])
    assert _only(job)["filename"] == "invoicetxt.exe.txt"
    wait_job(t.base, job["id"], headers=t.h["alice"])


@pytest.mark.slow
def test_one_refused_file_refuses_the_whole_upload(tenants) -> None:
    """Policy (docs/api.md, Tenancy): a multipart upload is validated whole; nothing of it
    is stored or queued when one file is refused."""
    t = tenants
    before = {j["id"] for j in httpx.get(f"{t.base}/jobs?limit=200", headers=t.h["alice"]).json()["data"]}
    r = httpx.post(f"{t.base}/collections/shared/documents", headers=t.h["alice"], timeout=30,
                   files=[("files", ("fine.txt", b"fine")), ("files", ("tool.exe", b"MZ"))])
    assert r.status_code == 415 and "tool.exe" in r.json()["error"]["message"]
    after = {j["id"] for j in httpx.get(f"{t.base}/jobs?limit=200", headers=t.h["alice"]).json()["data"]}
    assert after == before
