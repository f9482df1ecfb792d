"""The knowledge base's own bookkeeping on disk: collections' metadata, documents, and
ingestion jobs with one row per file.

Why SQLite next to the vector store: the store holds chunks (the searchable truth), but
jobs must survive ``kill -9`` and documents need fields a chunk table answers slowly
(pages, format, upload time). SQLite in WAL mode commits each state change durably and
lets the HTTP threads read while a worker writes. One process owns the file; access from
many threads is serialised by one lock (every statement here is tiny).

Ordering rule that makes crash recovery exact: a document's chunks are written to the
store *before* its catalog row, and deleted from the store *before* the row goes. A crash
in between leaves the catalog behind the store, and re-running the item is idempotent
(same bytes, same chunk ids, ``replace_document`` makes them the document's only chunks).

Tenancy (``security/acl.py``): a document records its ``writers`` (owner scope) and a job
its owner (key id and groups). A ``kb.sqlite`` from an older version gains these columns
at open (``_migrate``), defaulting to the operator: older documents are admin-writable only,
older jobs are listed to admins only.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS collections (
    name TEXT PRIMARY KEY,
    description TEXT NOT NULL DEFAULT '',
    acl TEXT NOT NULL DEFAULT '[]',
    created_at REAL NOT NULL,
    embedding_model TEXT,
    dimensions INTEGER
);
CREATE TABLE IF NOT EXISTS documents (
    collection TEXT NOT NULL,
    id TEXT NOT NULL,
    source TEXT NOT NULL,
    origin TEXT,
    content_hash TEXT NOT NULL,
    format TEXT,
    pages INTEGER,
    chunks INTEGER NOT NULL,
    acl TEXT NOT NULL DEFAULT '[]',
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    writers TEXT NOT NULL DEFAULT '[]', -- owner scope: who may replace/delete; [] = admins only
    PRIMARY KEY (collection, id)
);
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    collection TEXT NOT NULL,
    origin TEXT NOT NULL,            -- 'upload' (resumed by the server) or 'cli'
    status TEXT NOT NULL,            -- queued | running | done
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    owner_key TEXT,                  -- the uploading key's id; NULL: the operator (admin, CLI, auth off)
    owner_groups TEXT                -- JSON list of that key's groups; NULL: the operator
);
CREATE INDEX IF NOT EXISTS jobs_by_collection ON jobs (collection, created_at);
CREATE TABLE IF NOT EXISTS job_items (
    job_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    filename TEXT NOT NULL,
    document_id TEXT NOT NULL,
    data_path TEXT NOT NULL,         -- the bytes: a spool file of an upload, or the CLI's source path
    origin TEXT,                     -- absolute source path (CLI) for --sync; NULL for uploads
    acl TEXT NOT NULL DEFAULT '[]',
    status TEXT NOT NULL,            -- queued | running | done | failed
    stage TEXT,                      -- extract | chunk | embed | store while running
    action TEXT,                     -- added | replaced | unchanged
    format TEXT,
    pages INTEGER,
    chunks INTEGER,
    error_reason TEXT,
    error_message TEXT,
    started_at REAL,
    finished_at REAL,
    writers TEXT NOT NULL DEFAULT '[]', -- the document's owner scope (see documents.writers)
    PRIMARY KEY (job_id, idx)
);
"""

# Columns added after the first release: (table, column, declaration). ``ALTER TABLE ADD
# COLUMN`` with these defaults reads old rows as the operator's, as before the change.
MIGRATIONS = (
    ("documents", "writers", "TEXT NOT NULL DEFAULT '[]'"),
    ("jobs", "owner_key", "TEXT"),
    ("jobs", "owner_groups", "TEXT"),
    ("job_items", "writers", "TEXT NOT NULL DEFAULT '[]'"),
)

FINISHED = ("done", "failed")


@dataclass
class CollectionRow:
    name: str
    description: str = ""
    acl: list[str] = field(default_factory=list)
    created_at: float = 0.0
    embedding_model: str | None = None
    dimensions: int | None = None


@dataclass
class DocumentRow:
    collection: str
    id: str
    source: str
    content_hash: str
    chunks: int
    origin: str | None = None
    format: str | None = None
    pages: int | None = None
    acl: list[str] = field(default_factory=list)
    created_at: float = 0.0
    updated_at: float = 0.0
    writers: list[str] = field(default_factory=list)


@dataclass
class JobItem:
    job_id: str
    idx: int
    filename: str
    document_id: str
    data_path: str
    origin: str | None = None
    acl: list[str] = field(default_factory=list)
    status: str = "queued"
    stage: str | None = None
    action: str | None = None
    format: str | None = None
    pages: int | None = None
    chunks: int | None = None
    error_reason: str | None = None
    error_message: str | None = None
    started_at: float | None = None
    finished_at: float | None = None
    writers: list[str] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        return self.status in FINISHED


@dataclass
class Job:
    id: str
    collection: str
    origin: str
    status: str
    created_at: float
    started_at: float | None = None
    finished_at: float | None = None
    items: list[JobItem] = field(default_factory=list)
    owner_key: str | None = None  # None: the operator's job
    owner_groups: list[str] | None = None


def new_job_id() -> str:
    return "job_" + uuid.uuid4().hex[:24]


class Catalog:
    """Thread-safe access to ``kb.sqlite`` (see the module docstring)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.RLock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # a job acknowledged is a job on disk
        self._db.executescript(SCHEMA)
        self._migrate()

    def _migrate(self) -> None:
        """Add the columns a catalog written by an older version lacks (idempotent)."""
        with self._lock:
            for table, column, declaration in MIGRATIONS:
                present = {r[1] for r in self._db.execute(f"PRAGMA table_info({table})")}
                if column not in present:
                    self._db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _all(self, sql: str, *args: Any) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    # ------------------------------------------------------------------ collections

    def put_collection(self, row: CollectionRow) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO collections VALUES (?, ?, ?, ?, ?, ?)",
                (row.name, row.description, json.dumps(row.acl), row.created_at, row.embedding_model, row.dimensions),
            )

    def collection(self, name: str) -> CollectionRow | None:
        rows = self._all("SELECT * FROM collections WHERE name = ?", name)
        return _collection(rows[0]) if rows else None

    def drop_collection(self, name: str) -> None:
        """Forget a collection's metadata and documents (its jobs stay as history)."""
        with self._tx() as db:
            db.execute("DELETE FROM collections WHERE name = ?", (name,))
            db.execute("DELETE FROM documents WHERE collection = ?", (name,))

    def document_counts(self, readers: list[str] | None = None) -> dict[str, tuple[int, int]]:
        """Per collection: (documents, chunks) readable by ``readers`` (None: all of them)."""
        where, args = _readable(readers)
        rows = self._all(f"SELECT collection, COUNT(*), COALESCE(SUM(chunks), 0) FROM documents WHERE {where} "
                         "GROUP BY collection", *args)
        return {r[0]: (r[1], r[2]) for r in rows}

    def document_count(self, collection: str) -> int:
        return self._all("SELECT COUNT(*) FROM documents WHERE collection = ?", collection)[0][0]

    # ------------------------------------------------------------------ documents

    def put_document(self, row: DocumentRow) -> None:
        with self._tx() as db:
            old = db.execute(
                "SELECT created_at FROM documents WHERE collection = ? AND id = ?", (row.collection, row.id)
            ).fetchone()
            created = old[0] if old else row.created_at
            db.execute(
                "INSERT OR REPLACE INTO documents (collection, id, source, origin, content_hash, format, pages, "
                "chunks, acl, created_at, updated_at, writers) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (row.collection, row.id, row.source, row.origin, row.content_hash, row.format, row.pages,
                 row.chunks, json.dumps(row.acl), created, row.updated_at, json.dumps(sorted(row.writers))),
            )

    def document(self, collection: str, document_id: str) -> DocumentRow | None:
        rows = self._all("SELECT * FROM documents WHERE collection = ? AND id = ?", collection, document_id)
        return _document(rows[0]) if rows else None

    def documents(self, collection: str, *, limit: int = 10_000, offset: int = 0) -> list[DocumentRow]:
        rows = self._all(
            "SELECT * FROM documents WHERE collection = ? ORDER BY source LIMIT ? OFFSET ?", collection, limit, offset
        )
        return [_document(r) for r in rows]

    def documents_under(self, collection: str, root: str, writers: list[str] | None = None) -> list[DocumentRow]:
        """Documents ingested from files below ``root`` (an absolute directory path), only
        those owned by ``writers`` when given (a sync removes only its own scope's files)."""
        prefix = root.rstrip("/") + "/"
        rows = self._all(
            "SELECT * FROM documents WHERE collection = ? AND substr(origin, 1, ?) = ?", collection, len(prefix), prefix
        )
        found = [_document(r) for r in rows]
        return found if writers is None else [d for d in found if sorted(d.writers) == sorted(writers)]

    def delete_document(self, collection: str, document_id: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM documents WHERE collection = ? AND id = ?", (collection, document_id))

    # ------------------------------------------------------------------ jobs

    def add_job(self, job: Job) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO jobs (id, collection, origin, status, created_at, started_at, finished_at, owner_key, "
                "owner_groups) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (job.id, job.collection, job.origin, job.status, job.created_at, job.started_at, job.finished_at,
                 job.owner_key, None if job.owner_groups is None else json.dumps(job.owner_groups)),
            )
            for it in job.items:
                db.execute(
                    "INSERT INTO job_items (job_id, idx, filename, document_id, data_path, origin, acl, status, "
                    "writers) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (job.id, it.idx, it.filename, it.document_id, it.data_path, it.origin, json.dumps(it.acl),
                     it.status, json.dumps(it.writers)),
                )

    def job(self, job_id: str) -> Job | None:
        rows = self._all("SELECT * FROM jobs WHERE id = ?", job_id)
        if not rows:
            return None
        job = _job(rows[0])
        job.items = [_item(r) for r in self._all("SELECT * FROM job_items WHERE job_id = ? ORDER BY idx", job_id)]
        return job

    def job_status(self, job_id: str) -> str | None:
        """The job's status alone (``job`` also reads every item)."""
        rows = self._all("SELECT status FROM jobs WHERE id = ?", job_id)
        return rows[0][0] if rows else None

    def jobs(self, collection: str | None = None, limit: int = 50, *, owner_key: str | None = None) -> list[Job]:
        """Newest first; only the jobs of key ``owner_key`` when given (None: everyone's)."""
        where, args = [], []
        if collection is not None:
            where.append("collection = ?")
            args.append(collection)
        if owner_key is not None:
            where.append("owner_key = ?")
            args.append(owner_key)
        clause = f"WHERE {' AND '.join(where)} " if where else ""
        rows = self._all(f"SELECT id FROM jobs {clause}ORDER BY created_at DESC LIMIT ?", *args, limit)
        return [j for j in (self.job(r[0]) for r in rows) if j is not None]

    def unfinished_items(self, origin: str) -> list[JobItem]:
        """Items of jobs started by ``origin`` that never finished (oldest job first)."""
        rows = self._all(
            "SELECT i.* FROM job_items i JOIN jobs j ON j.id = i.job_id "
            "WHERE j.origin = ? AND i.status NOT IN ('done', 'failed') ORDER BY j.created_at, i.idx",
            origin,
        )
        return [_item(r) for r in rows]

    def update_item(self, job_id: str, idx: int, **fields: Any) -> str | None:
        """Update one item; keep the job's status in step. Returns the job's new status
        when it changed (queued -> running -> done), else None."""
        for name in ("acl", "writers"):
            if name in fields:
                fields[name] = json.dumps(fields[name])
        columns = ", ".join(f"{k} = ?" for k in fields)
        now = time.time()
        with self._tx() as db:
            db.execute(f"UPDATE job_items SET {columns} WHERE job_id = ? AND idx = ?", (*fields.values(), job_id, idx))
            status, started = db.execute("SELECT status, started_at FROM jobs WHERE id = ?", (job_id,)).fetchone()
            left = db.execute(
                "SELECT COUNT(*) FROM job_items WHERE job_id = ? AND status NOT IN ('done', 'failed')", (job_id,)
            ).fetchone()[0]
            new = "done" if left == 0 else "running"
            if new == status:
                return None
            db.execute(
                "UPDATE jobs SET status = ?, started_at = ?, finished_at = ? WHERE id = ?",
                (new, started or now, now if new == "done" else None, job_id),
            )
            return new


def _loads(value: str | None) -> list[str]:
    return list(json.loads(value)) if value else []


def _readable(readers: list[str] | None) -> tuple[str, list[str]]:
    """SQL condition (and its arguments) for documents ``readers`` may read: public ones
    and those sharing a group; every document for None (the store filter's rule)."""
    if readers is None:
        return "1", []
    marks = ", ".join("?" for _ in readers) or "NULL"
    return f"(acl = '[]' OR EXISTS (SELECT 1 FROM json_each(documents.acl) WHERE value IN ({marks})))", list(readers)


def _collection(r: sqlite3.Row) -> CollectionRow:
    return CollectionRow(r["name"], r["description"], _loads(r["acl"]), r["created_at"], r["embedding_model"],
                         r["dimensions"])


def _document(r: sqlite3.Row) -> DocumentRow:
    return DocumentRow(
        collection=r["collection"], id=r["id"], source=r["source"], content_hash=r["content_hash"], chunks=r["chunks"],
        origin=r["origin"], format=r["format"], pages=r["pages"], acl=_loads(r["acl"]), created_at=r["created_at"],
        updated_at=r["updated_at"], writers=_loads(r["writers"]),
    )


def _job(r: sqlite3.Row) -> Job:
    groups = r["owner_groups"]
    return Job(r["id"], r["collection"], r["origin"], r["status"], r["created_at"], r["started_at"], r["finished_at"],
               owner_key=r["owner_key"], owner_groups=None if groups is None else _loads(groups))


def _item(r: sqlite3.Row) -> JobItem:
    data = dict(r)
    data["acl"] = _loads(data["acl"])
    data["writers"] = _loads(data["writers"])
    return JobItem(**data)
