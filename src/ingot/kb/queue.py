"""The ingestion queue is the job table itself: items are claimed under a lease.

Any process may work on the queue (``ingot serve``, ``ingot worker``, ``ingot ingest``),
on one node (SQLite) or many (PostgreSQL). A worker claims one unfinished item whose
lease is free or expired, in one transaction: on PostgreSQL ``SELECT ... FOR UPDATE
SKIP LOCKED`` so concurrent claimers skip each other's rows instead of waiting; on SQLite
``BEGIN IMMEDIATE`` serialises claimers. The holder renews its leases by a heartbeat
(``renew``) while it works. If it dies, its leases run out and another worker takes the
item over and redoes it from the start, which is safe because a document's store write
is an idempotent replace (``kb/catalog.py``): the item ends up in the store exactly once.

Order: small files first (``LARGE_BYTES``), then oldest job, then file order, so a small
upload behind a big one starts at once; a worker marked ``small_only`` takes only small
ones, so big files can never occupy every worker.

Scope: uploads (origin ``upload``) are everybody's work; the CLI claims only the jobs
it recorded itself (``job_ids``), so two ``ingot ingest`` runs never take each other's
files.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Collection

from sqlalchemy import and_, case, func, or_, select, update

from ingot.kb.catalog import FINISHED, ITEM_COLUMNS, JobItem, job_item_from_row
from ingot.state.database import Database
from ingot.state.schema import job_items, jobs

LARGE_BYTES = 1 << 20  # items at least this big wait behind every smaller one


def new_worker_id() -> str:
    """Unique per process and worker: the host and pid say who held a lease, in logs."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class JobQueue:
    """Claims, renews and releases items of the ``kb`` area's job table."""

    def __init__(self, database: Database, *, lease_s: float) -> None:
        self.db = database
        self.lease_s = lease_s

    def claim(self, origin: str, worker_id: str, *, small_only: bool = False,
              job_ids: Collection[str] | None = None) -> tuple[str, JobItem] | None:
        """(collection, item) of the next item this worker now holds, or None."""
        now = time.time()
        claimable = and_(
            jobs.c.origin == origin,
            job_items.c.status.not_in(FINISHED),
            or_(job_items.c.lease_expires.is_(None), job_items.c.lease_expires < now),
        )
        if small_only:
            claimable = and_(claimable, job_items.c.size_bytes < LARGE_BYTES)
        if job_ids is not None:
            if not job_ids:
                return None
            claimable = and_(claimable, job_items.c.job_id.in_(list(job_ids)))
        query = (
            select(jobs.c.collection, *ITEM_COLUMNS)
            .join(jobs, jobs.c.id == job_items.c.job_id)
            .where(claimable)
            .order_by(case((job_items.c.size_bytes >= LARGE_BYTES, 1), else_=0), jobs.c.created_at, job_items.c.idx)
            .limit(1)
            .with_for_update(of=job_items, skip_locked=True)
        )
        with self.db.write() as conn:
            row = conn.execute(query).mappings().first()
            if row is None:
                return None
            conn.execute(update(job_items).where(job_items.c.job_id == row["job_id"], job_items.c.idx == row["idx"])
                         .values(lease_owner=worker_id, lease_expires=now + self.lease_s))
        data = dict(row)
        collection = data.pop("collection")
        return collection, job_item_from_row(data)

    def renew(self, worker_id: str) -> int:
        """Extend every unfinished lease ``worker_id`` holds; returns how many it still holds
        (fewer than it thinks means one ran out and another worker took that item over)."""
        with self.db.write() as conn:
            result = conn.execute(
                update(job_items)
                .where(job_items.c.lease_owner == worker_id, job_items.c.status.not_in(FINISHED))
                .values(lease_expires=time.time() + self.lease_s))
        return result.rowcount

    def release(self, job_id: str, idx: int, worker_id: str) -> None:
        """Give an item back (finished, or stopped by shutdown: then anyone may redo it)."""
        with self.db.write() as conn:
            conn.execute(
                update(job_items)
                .where(job_items.c.job_id == job_id, job_items.c.idx == idx, job_items.c.lease_owner == worker_id)
                .values(lease_owner=None, lease_expires=None))

    def release_all(self, origin: str) -> int:
        """Free every lease on unfinished items of ``origin``: only for a process that knows
        it is the queue's one worker (a single node starting up), where waiting for a dead
        predecessor's leases to expire would only delay the resume."""
        owned = select(jobs.c.id).where(jobs.c.origin == origin)
        with self.db.write() as conn:
            result = conn.execute(
                update(job_items)
                .where(job_items.c.job_id.in_(owned), job_items.c.status.not_in(FINISHED),
                       job_items.c.lease_owner.is_not(None))
                .values(lease_owner=None, lease_expires=None))
        return result.rowcount

    def depth(self, origin: str = "upload") -> int:
        """Unfinished items of ``origin`` (queued or held): the worker autoscaler's signal."""
        query = (select(func.count()).select_from(job_items.join(jobs, jobs.c.id == job_items.c.job_id))
                 .where(jobs.c.origin == origin, job_items.c.status.not_in(FINISHED)))
        with self.db.read() as conn:
            return int(conn.execute(query).scalar_one())
