"""The knowledge base's own bookkeeping: collections' metadata, documents, and ingestion
jobs with one row per file, in the ``kb`` state area (``state/``: ``kb.sqlite`` on one
node, PostgreSQL when replicas share it).

Why a database next to the vector store: the store holds chunks (the searchable truth), but
jobs must survive ``kill -9`` and documents need fields a chunk table answers slowly
(pages, format, upload time). Every state change is one committed transaction (SQLite in
WAL mode with ``synchronous=FULL``; PostgreSQL), and HTTP threads read while workers write.

Ordering rule that makes crash recovery exact: a document's chunks are written to the
store *before* its catalog row, and deleted from the store *before* the row goes. A crash
in between leaves the catalog behind the store, and re-running the item is idempotent
(same bytes, same chunk ids, ``replace_document`` makes them the document's only chunks).

Tenancy (``security/acl.py``): a document records its ``writers`` (owner scope) and a job
its owner (key id and groups). A catalog written by an older version gains these columns
through the area's Alembic baseline, defaulting to the operator: older documents are
admin-writable only, older jobs are listed to admins only.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, Connection, cast, delete, exists, func, literal, select, true, update
from sqlalchemy.dialects.postgresql import JSON

from ingot.state.database import Database, open_database
from ingot.state.schema import collections, documents, job_items, jobs

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
    size_bytes: int = 0  # the bytes' size, for the queue's small-files-first order
    lease_expires: float | None = None  # while a worker holds the item (kb/queue.py)
    chunks_embedded: int | None = None  # embedding progress of a running item
    chunks_total: int | None = None

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


def open_catalog(data_dir: Path, database_url: str | None = None) -> Catalog:
    """The catalog of ``data_dir`` (its ``kb.sqlite``), or of the shared database."""
    return Catalog(open_database("kb", data_dir=data_dir, url=database_url))


class Catalog:
    """Thread-safe access to the ``kb`` area (see the module docstring): each call is one
    transaction on a pooled connection, so threads and processes interleave safely."""

    def __init__(self, database: Database) -> None:
        self.db = database

    def close(self) -> None:
        self.db.close()

    # ------------------------------------------------------------------ collections

    def put_collection(self, row: CollectionRow) -> None:
        values = {"name": row.name, "description": row.description, "acl": json.dumps(row.acl),
                  "created_at": row.created_at, "embedding_model": row.embedding_model, "dimensions": row.dimensions}
        statement = self.db.insert(collections).values(values)
        with self.db.write() as conn:
            conn.execute(statement.on_conflict_do_update(index_elements=["name"], set_=_but(values, "name")))

    def collection(self, name: str) -> CollectionRow | None:
        with self.db.read() as conn:
            row = conn.execute(select(collections).where(collections.c.name == name)).mappings().first()
        return _collection(row) if row else None

    def drop_collection(self, name: str) -> None:
        """Forget a collection's metadata and documents (its jobs stay as history)."""
        with self.db.write() as conn:
            conn.execute(delete(collections).where(collections.c.name == name))
            conn.execute(delete(documents).where(documents.c.collection == name))

    def document_counts(self, readers: list[str] | None = None) -> dict[str, tuple[int, int]]:
        """Per collection: (documents, chunks) readable by ``readers`` (None: all of them)."""
        query = (select(documents.c.collection, func.count(), func.coalesce(func.sum(documents.c.chunks), 0))
                 .where(self._readable(readers)).group_by(documents.c.collection))
        with self.db.read() as conn:
            return {r[0]: (int(r[1]), int(r[2])) for r in conn.execute(query)}

    def document_count(self, collection: str) -> int:
        query = select(func.count()).select_from(documents).where(documents.c.collection == collection)
        with self.db.read() as conn:
            return int(conn.execute(query).scalar_one())

    def _readable(self, readers: list[str] | None) -> ColumnElement[bool]:
        """Documents ``readers`` may read: public ones and those sharing a group; every
        document for None (the store filter's rule). The ACL is a JSON list in TEXT, and
        expanding it is the one thing the two dialects spell differently."""
        if readers is None:
            return true()
        if self.db.dialect == "postgresql":
            members = func.json_array_elements_text(cast(documents.c.acl, JSON)).table_valued("value")
        else:
            members = func.json_each(documents.c.acl).table_valued("value")
        shared = exists(select(literal(1)).select_from(members).where(members.c.value.in_(list(readers))))
        return (documents.c.acl == "[]") | shared

    # ------------------------------------------------------------------ documents

    def put_document(self, row: DocumentRow) -> None:
        values = {"collection": row.collection, "id": row.id, "source": row.source, "origin": row.origin,
                  "content_hash": row.content_hash, "format": row.format, "pages": row.pages, "chunks": row.chunks,
                  "acl": json.dumps(row.acl), "created_at": row.created_at, "updated_at": row.updated_at,
                  "writers": json.dumps(sorted(row.writers))}
        statement = self.db.insert(documents).values(values)
        # a replaced document keeps the time it was first added
        with self.db.write() as conn:
            conn.execute(statement.on_conflict_do_update(
                index_elements=["collection", "id"], set_=_but(values, "collection", "id", "created_at")))

    def document(self, collection: str, document_id: str) -> DocumentRow | None:
        query = select(documents).where(documents.c.collection == collection, documents.c.id == document_id)
        with self.db.read() as conn:
            row = conn.execute(query).mappings().first()
        return _document(row) if row else None

    def documents(self, collection: str, *, limit: int = 10_000, offset: int = 0) -> list[DocumentRow]:
        query = (select(documents).where(documents.c.collection == collection)
                 .order_by(documents.c.source, documents.c.id).limit(limit).offset(offset))
        with self.db.read() as conn:
            return [_document(r) for r in conn.execute(query).mappings()]

    def documents_under(self, collection: str, root: str, writers: list[str] | None = None) -> list[DocumentRow]:
        """Documents ingested from files below ``root`` (an absolute directory path), only
        those owned by ``writers`` when given (a sync removes only its own scope's files)."""
        prefix = root.rstrip("/") + "/"
        query = select(documents).where(documents.c.collection == collection,
                                        documents.c.origin.startswith(prefix, autoescape=True))
        with self.db.read() as conn:
            found = [_document(r) for r in conn.execute(query).mappings()]
        return found if writers is None else [d for d in found if sorted(d.writers) == sorted(writers)]

    def delete_document(self, collection: str, document_id: str) -> None:
        with self.db.write() as conn:
            conn.execute(delete(documents).where(documents.c.collection == collection, documents.c.id == document_id))

    # ------------------------------------------------------------------ jobs

    def add_job(self, job: Job) -> None:
        with self.db.write() as conn:
            conn.execute(jobs.insert().values(
                id=job.id, collection=job.collection, origin=job.origin, status=job.status,
                created_at=job.created_at, started_at=job.started_at, finished_at=job.finished_at,
                owner_key=job.owner_key, owner_groups=None if job.owner_groups is None else json.dumps(job.owner_groups),
            ))
            if job.items:
                conn.execute(job_items.insert(), [
                    {"job_id": job.id, "idx": it.idx, "filename": it.filename, "document_id": it.document_id,
                     "data_path": it.data_path, "origin": it.origin, "acl": json.dumps(it.acl), "status": it.status,
                     "writers": json.dumps(it.writers), "size_bytes": it.size_bytes}
                    for it in job.items
                ])

    def job(self, job_id: str) -> Job | None:
        with self.db.read() as conn:
            row = conn.execute(select(jobs).where(jobs.c.id == job_id)).mappings().first()
            if row is None:
                return None
            job = _job(row)
            _attach_items(conn, [job])
        return job

    def job_status(self, job_id: str) -> str | None:
        """The job's status alone (``job`` also reads every item)."""
        with self.db.read() as conn:
            return conn.execute(select(jobs.c.status).where(jobs.c.id == job_id)).scalar_one_or_none()

    def jobs(self, collection: str | None = None, limit: int = 50, *, owner_key: str | None = None) -> list[Job]:
        """Newest first; only the jobs of key ``owner_key`` when given (None: everyone's).
        Two queries whatever ``limit`` is (jobs, then all their items), in one snapshot."""
        query = select(jobs).order_by(jobs.c.created_at.desc()).limit(limit)
        if collection is not None:
            query = query.where(jobs.c.collection == collection)
        if owner_key is not None:
            query = query.where(jobs.c.owner_key == owner_key)
        with self.db.read() as conn:
            found = [_job(row) for row in conn.execute(query).mappings()]
            _attach_items(conn, found)
        return found

    def unfinished_items(self, origin: str) -> list[JobItem]:
        """Items of jobs started by ``origin`` that never finished (oldest job first)."""
        query = (select(*ITEM_COLUMNS).join(jobs, jobs.c.id == job_items.c.job_id)
                 .where(jobs.c.origin == origin, job_items.c.status.not_in(FINISHED))
                 .order_by(jobs.c.created_at, job_items.c.idx))
        with self.db.read() as conn:
            return [job_item_from_row(r) for r in conn.execute(query).mappings()]

    def set_progress(self, job_id: str, idx: int, embedded: int, total: int) -> None:
        """Record how far a running item's embedding is (no status change)."""
        with self.db.write() as conn:
            conn.execute(update(job_items).where(job_items.c.job_id == job_id, job_items.c.idx == idx)
                         .values(chunks_embedded=embedded, chunks_total=total))

    def update_item(self, job_id: str, idx: int, **fields: Any) -> str | None:
        """Update one item; keep the job's status in step. Returns the job's new status
        when it changed (queued -> running -> done), else None."""
        with self.db.write() as conn:
            return update_item(conn, job_id, idx, **fields)


def update_item(conn: Connection, job_id: str, idx: int, **fields: Any) -> str | None:
    """``Catalog.update_item`` inside the caller's transaction (the queue's too)."""
    for name in ("acl", "writers"):
        if name in fields:
            fields[name] = json.dumps(fields[name])
    now = time.time()
    conn.execute(update(job_items).where(job_items.c.job_id == job_id, job_items.c.idx == idx).values(**fields))
    status, started = conn.execute(
        select(jobs.c.status, jobs.c.started_at).where(jobs.c.id == job_id).with_for_update()).one()
    left = conn.execute(select(func.count()).select_from(job_items).where(
        job_items.c.job_id == job_id, job_items.c.status.not_in(FINISHED))).scalar_one()
    new = "done" if left == 0 else "running"
    if new == status:
        return None
    conn.execute(update(jobs).where(jobs.c.id == job_id).values(
        status=new, started_at=started or now, finished_at=now if new == "done" else None))
    return new


# The columns a JobItem is made of (who holds the lease is the queue's own business).
ITEM_COLUMNS = [c for c in job_items.c if c.name != "lease_owner"]


def _but(values: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in values.items() if k not in keys}


def _loads(value: str | None) -> list[str]:
    return list(json.loads(value)) if value else []


def _collection(r: Any) -> CollectionRow:
    return CollectionRow(r["name"], r["description"], _loads(r["acl"]), r["created_at"], r["embedding_model"],
                         r["dimensions"])


def _document(r: Any) -> DocumentRow:
    return DocumentRow(
        collection=r["collection"], id=r["id"], source=r["source"], content_hash=r["content_hash"], chunks=r["chunks"],
        origin=r["origin"], format=r["format"], pages=r["pages"], acl=_loads(r["acl"]), created_at=r["created_at"],
        updated_at=r["updated_at"], writers=_loads(r["writers"]),
    )


def _attach_items(conn: Connection, found: list[Job]) -> None:
    """Fill each job's ``items`` (in item order) with one read, however many jobs."""
    by_id = {job.id: job for job in found}
    for job in found:
        job.items = []
    if not by_id:
        return
    items = conn.execute(select(*ITEM_COLUMNS).where(job_items.c.job_id.in_(list(by_id)))
                         .order_by(job_items.c.job_id, job_items.c.idx))
    for row in items.mappings():
        by_id[row["job_id"]].items.append(job_item_from_row(row))


def _job(r: Any) -> Job:
    groups = r["owner_groups"]
    return Job(r["id"], r["collection"], r["origin"], r["status"], r["created_at"], r["started_at"], r["finished_at"],
               owner_key=r["owner_key"], owner_groups=None if groups is None else _loads(groups))


def job_item_from_row(r: Any) -> JobItem:
    data = dict(r)
    data["acl"] = _loads(data["acl"])
    data["writers"] = _loads(data["writers"])
    return JobItem(**data)
