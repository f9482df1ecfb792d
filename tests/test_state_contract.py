"""One contract for the shared state, run on both backends: SQLite (the embedded default)
and a real PostgreSQL server started for this module (``stateservers.py``).

Covers what replicas rely on: the catalog (collections, documents, readable counts by
group, jobs and their status), the job queue (small files first, one holder per item
even when claimers race, a dead holder's lease expiring to another worker, the CLI's own
scope), API keys and usage totals, stored responses, migrations of an older file and of
two openers at once; and the Redis quota buckets shared by two limiters (two replicas).
"""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import text

from ingot.kb.catalog import Catalog, CollectionRow, DocumentRow, Job, JobItem, open_catalog
from ingot.kb.queue import LARGE_BYTES, JobQueue
from ingot.security.keys import KeyExistsError, KeyStore
from ingot.security.quotas import RedisQuotaLimiter
from ingot.server.openai.response_store import SqlResponseStore, StoredResponse
from ingot.state.database import DatabaseConfigError, open_database
from stateservers import postgres_url, redis_url  # noqa: F401  (fixtures)


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, str | None]:
    """(data_dir, database URL): SQLite files in tmp_path, or a fresh schema on PostgreSQL."""
    if request.param == "sqlite":
        return tmp_path, None
    base = request.getfixturevalue("postgres_url")
    name = "t_" + uuid.uuid4().hex[:12]  # one database per test: nothing leaks between them
    admin = open_database("responses", data_dir=tmp_path, url=base)
    with admin.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    admin.close()
    return tmp_path, base.rsplit("/", 1)[0] + "/" + name


@pytest.fixture
def catalog(backend: tuple[Path, str | None]) -> Catalog:
    data_dir, url = backend
    opened = open_catalog(data_dir, url)
    yield opened
    opened.close()


def _job(job_id: str, sizes: list[int], *, origin: str = "upload", created: float | None = None,
         collection: str = "c") -> Job:
    job = Job(id=job_id, collection=collection, origin=origin, status="queued",
              created_at=created if created is not None else time.time())
    job.items = [JobItem(job_id=job_id, idx=i, filename=f"f{i}.txt", document_id=f"{job_id}-d{i}",
                         data_path=f"/spool/{job_id}/{i}", size_bytes=size) for i, size in enumerate(sizes)]
    return job


# ---------------------------------------------------------------------------- catalog


def test_collections_and_documents(catalog: Catalog) -> None:
    catalog.put_collection(CollectionRow("c", "first", ["g1"], 1.0, "minilm", 384))
    catalog.put_collection(CollectionRow("c", "second", [], 1.0, "minilm", 384))  # an upsert, not a duplicate
    assert catalog.collection("c").description == "second" and catalog.collection("nope") is None

    catalog.put_document(DocumentRow("c", "d1", "a.txt", "h1", 3, origin="/data/x_y/a.txt", acl=["g1"],
                                     created_at=10.0, updated_at=10.0, writers=["g1"]))
    catalog.put_document(DocumentRow("c", "d1", "a.txt", "h2", 4, origin="/data/x_y/a.txt", acl=["g1"],
                                     created_at=20.0, updated_at=20.0, writers=["g1"]))
    catalog.put_document(DocumentRow("c", "d2", "b.txt", "h3", 5, origin="/data/xzy/b.txt", acl=[],
                                     created_at=30.0, updated_at=30.0))
    replaced = catalog.document("c", "d1")
    assert (replaced.content_hash, replaced.chunks, replaced.created_at, replaced.updated_at) == ("h2", 4, 10.0, 20.0)
    assert [d.id for d in catalog.documents("c")] == ["d1", "d2"]
    assert catalog.document_count("c") == 2
    # readable counts expand the JSON ACL on either dialect: public + shared groups only
    assert catalog.document_counts() == {"c": (2, 9)}
    assert catalog.document_counts(["g1"]) == {"c": (2, 9)}
    assert catalog.document_counts(["other"]) == {"c": (1, 5)}
    assert catalog.document_counts([]) == {"c": (1, 5)}
    # '_' in a path is a character, not a LIKE wildcard
    assert [d.id for d in catalog.documents_under("c", "/data/x_y")] == ["d1"]
    assert [d.id for d in catalog.documents_under("c", "/data/x_y", writers=["other"])] == []
    catalog.delete_document("c", "d1")
    assert catalog.document("c", "d1") is None
    catalog.drop_collection("c")
    assert catalog.collection("c") is None and catalog.documents("c") == []


def test_job_status_follows_its_items(catalog: Catalog) -> None:
    catalog.add_job(_job("job_a", [10, 20], created=1.0))
    catalog.add_job(_job("job_b", [10], origin="cli", created=2.0))
    assert [j.id for j in catalog.jobs()] == ["job_b", "job_a"]
    assert [i.size_bytes for i in catalog.job("job_a").items] == [10, 20]
    assert [i.idx for i in catalog.unfinished_items("upload")] == [0, 1]
    assert catalog.update_item("job_a", 0, status="running", stage="extract") == "running"
    assert catalog.update_item("job_a", 0, status="done", chunks=3) is None
    assert catalog.update_item("job_a", 1, status="failed", error_reason="corrupt") == "done"
    job = catalog.job("job_a")
    assert job.status == "done" and job.finished_at is not None and job.items[0].chunks == 3
    assert catalog.unfinished_items("upload") == [] and catalog.job_status("job_b") == "queued"


# ---------------------------------------------------------------------------- queue


def test_claims_small_first_then_oldest(catalog: Catalog) -> None:
    queue = JobQueue(catalog.db, lease_s=30)
    catalog.add_job(_job("job_big", [LARGE_BYTES * 2, 100], created=1.0))
    catalog.add_job(_job("job_new", [50], created=2.0))
    order = []
    while (claimed := queue.claim("upload", "w1")) is not None:
        order.append((claimed[1].job_id, claimed[1].idx))
    assert order == [("job_big", 1), ("job_new", 0), ("job_big", 0)]
    assert queue.claim("upload", "w2") is None  # every item is held
    assert queue.depth() == 3


def test_small_only_worker_never_takes_a_big_file(catalog: Catalog) -> None:
    queue = JobQueue(catalog.db, lease_s=30)
    catalog.add_job(_job("job_big", [LARGE_BYTES]))
    assert queue.claim("upload", "w-small", small_only=True) is None
    assert queue.claim("upload", "w-any")[1].job_id == "job_big"


def test_racing_claimers_never_share_an_item(catalog: Catalog) -> None:
    queue = JobQueue(catalog.db, lease_s=30)
    catalog.add_job(_job("job_race", [10] * 40))
    taken: list[tuple[str, int]] = []
    lock = threading.Lock()

    def claimer(worker: str) -> None:
        while (claimed := queue.claim("upload", worker)) is not None:
            with lock:
                taken.append((claimed[1].job_id, claimed[1].idx))

    threads = [threading.Thread(target=claimer, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(taken) == [("job_race", i) for i in range(40)]  # each once, none lost


def test_a_dead_holders_item_goes_to_another_worker(catalog: Catalog) -> None:
    queue = JobQueue(catalog.db, lease_s=1.0)
    catalog.add_job(_job("job_k", [10]))
    assert queue.claim("upload", "dead")[1].idx == 0
    catalog.update_item("job_k", 0, status="running", stage="embed")
    assert queue.claim("upload", "alive") is None  # the lease still holds
    time.sleep(1.2)
    claimed = queue.claim("upload", "alive")
    assert claimed is not None and claimed[1].status == "running"  # redone from the start
    assert queue.renew("dead") == 0 and queue.renew("alive") == 1
    queue.release("job_k", 0, "alive")
    assert queue.claim("upload", "third") is not None


def test_release_all_frees_a_restarted_nodes_items_and_cli_scope(catalog: Catalog) -> None:
    queue = JobQueue(catalog.db, lease_s=300)
    catalog.add_job(_job("job_u", [10]))
    catalog.add_job(_job("job_cli", [10], origin="cli"))
    assert queue.claim("upload", "before-restart") is not None
    assert queue.release_all("upload") == 1
    assert queue.claim("upload", "after-restart") is not None
    assert queue.claim("cli", "cli-run", job_ids=set()) is None  # a CLI run takes only its own jobs
    assert queue.claim("cli", "cli-run", job_ids={"job_other"}) is None
    assert queue.claim("cli", "cli-run", job_ids={"job_cli"})[1].job_id == "job_cli"


# ---------------------------------------------------------------------------- keys, usage, responses


def test_keys_and_usage(backend: tuple[Path, str | None]) -> None:
    data_dir, url = backend
    store, other = KeyStore(data_dir, url), KeyStore(data_dir, url)  # two processes' views
    try:
        assert not store.has_keys() or url is not None
        key, secret = store.create("alice", groups=["eng"], rpm=5)
        with pytest.raises(KeyExistsError):
            other.create("alice")
        assert other.authenticate(secret).id == key.id and other.has_keys()
        assert other.authenticate(secret[:-1] + ("A" if secret[-1] != "A" else "B")) is None
        store.revoke("alice")
        assert other.authenticate(secret) is None  # revocation seen by the other at once
        assert other.create("alice")[0].id != key.id  # the name is free again
        store.add_usage({"k1": (1, 10, 5, 0, 100.0, 100.0)})
        other.add_usage({"k1": (2, 1, 1, 7, 50.0, 200.0), "k2": (1, 0, 0, 3, 7.0, 7.0)})
        totals = store.usage()
        assert {k: totals["k1"][k] for k in ("requests", "prompt_tokens", "completion_tokens", "embedding_tokens",
                                             "first_at", "last_at")} == {
            "requests": 3, "prompt_tokens": 11, "completion_tokens": 6, "embedding_tokens": 7,
            "first_at": 50.0, "last_at": 200.0}
        assert totals["k2"]["embedding_tokens"] == 3
    finally:
        store.close()
        other.close()


def test_stored_responses(backend: tuple[Path, str | None]) -> None:
    data_dir, url = backend
    store = SqlResponseStore(data_dir, url)
    try:
        record = StoredResponse("resp_1", "k1", 123, {"output": [{"type": "message", "text": "héllo"}]},
                                [{"role": "user", "content": "hi"}], [])
        store.put(record)
        store.put(StoredResponse("resp_1", "k1", 124, record.response, record.input_items, [{"role": "system"}]))
        again = SqlResponseStore(data_dir, url).get("resp_1")
        assert again.created_at == 124 and again.context == [{"role": "system"}]
        assert again.response["output"][0]["text"] == "héllo"
        assert store.delete("resp_1") and not store.delete("resp_1") and store.get("resp_1") is None
    finally:
        store.close()


# ---------------------------------------------------------------------------- migrations


def test_two_openers_at_once_both_get_a_migrated_database(backend: tuple[Path, str | None]) -> None:
    data_dir, url = backend
    errors: list[BaseException] = []

    def opener() -> None:
        try:
            open_database("kb", data_dir=data_dir, url=url).close()
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=opener) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    with open_database("kb", data_dir=data_dir, url=url).read() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version_kb")).scalar_one() == "kb_0003"


LEGACY_KB = """
CREATE TABLE jobs (id TEXT PRIMARY KEY, collection TEXT NOT NULL, origin TEXT NOT NULL, status TEXT NOT NULL,
    created_at REAL NOT NULL, started_at REAL, finished_at REAL, owner_key TEXT, owner_groups TEXT);
CREATE TABLE job_items (job_id TEXT NOT NULL, idx INTEGER NOT NULL, filename TEXT NOT NULL,
    document_id TEXT NOT NULL, data_path TEXT NOT NULL, origin TEXT, acl TEXT NOT NULL DEFAULT '[]',
    status TEXT NOT NULL, stage TEXT, action TEXT, format TEXT, pages INTEGER, chunks INTEGER,
    error_reason TEXT, error_message TEXT, started_at REAL, finished_at REAL,
    writers TEXT NOT NULL DEFAULT '[]', PRIMARY KEY (job_id, idx));
INSERT INTO jobs VALUES ('job_old', 'c', 'upload', 'queued', 1.0, NULL, NULL, NULL, NULL);
INSERT INTO job_items (job_id, idx, filename, document_id, data_path, status)
    VALUES ('job_old', 0, 'old.txt', 'doc_old', '/x', 'queued');
"""


def test_a_pre_alembic_sqlite_catalog_is_upgraded_in_place(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "kb.sqlite") as db:
        db.executescript(LEGACY_KB)
    catalog = open_catalog(tmp_path)
    try:
        assert catalog.collection("c") is None  # the tables it lacked were created
        claimed = JobQueue(catalog.db, lease_s=30).claim("upload", "w")
        assert claimed is not None and claimed[1].filename == "old.txt" and claimed[1].size_bytes == 0
    finally:
        catalog.close()


def test_a_database_url_that_is_not_postgresql_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DatabaseConfigError, match="postgresql"):
        open_database("kb", data_dir=tmp_path, url="mysql://u@h/db")
    with pytest.raises(DatabaseConfigError):
        open_database("kb", data_dir=tmp_path, url="::not a url::")


# ---------------------------------------------------------------------------- Redis quotas


def test_two_replicas_share_one_request_quota(redis_url: str) -> None:  # noqa: F811
    replica_a, replica_b = RedisQuotaLimiter(redis_url), RedisQuotaLimiter(redis_url)
    try:
        admitted = [(replica_a if i % 2 else replica_b).admit("key-rpm", 5, None) is None for i in range(8)]
        assert admitted == [True] * 5 + [False] * 3
        rejection = replica_a.admit("key-rpm", 5, None)
        assert rejection.limit == "rpm" and rejection.per_minute == 5 and 1 <= rejection.retry_after <= 12
        assert replica_b.admit("another-key", 5, None) is None  # buckets are per key
    finally:
        replica_a.close()
        replica_b.close()


def test_tokens_charged_on_one_replica_hold_back_the_other(redis_url: str) -> None:  # noqa: F811
    replica_a, replica_b = RedisQuotaLimiter(redis_url), RedisQuotaLimiter(redis_url)
    try:
        assert replica_a.admit("key-tpm", None, 600) is None
        replica_a.charge_tokens("key-tpm", 1000, 600)  # overdraws: 400 tokens of debt
        rejection = replica_b.admit("key-tpm", None, 600)
        assert rejection is not None and rejection.limit == "tpm"
        assert 35 <= rejection.retry_after <= 42  # ~400 tokens at 10/s, repaid before it may start
    finally:
        replica_a.close()
        replica_b.close()


def test_an_unreachable_database_is_a_503_not_a_500(tmp_path: Path) -> None:
    from sqlalchemy import create_engine
    from sqlalchemy.exc import OperationalError

    from ingot.server.errors import to_api_error
    from stateservers import free_port

    engine = create_engine(f"postgresql+psycopg://ingot@127.0.0.1:{free_port()}/ingot",
                           connect_args={"connect_timeout": 2})
    with pytest.raises(OperationalError) as caught:  # nothing listens there: a real driver error
        engine.connect()
    error = to_api_error(caught.value)
    assert error.status == 503 and error.code == "state_unavailable"
    full = to_api_error(OperationalError("INSERT", {}, sqlite3.OperationalError("database or disk is full")))
    assert full.status == 507
