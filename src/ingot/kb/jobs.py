"""Durable ingestion jobs: workers over the shared queue (``kb/queue.py``).

A job is written to the catalog (with its uploaded bytes spooled to disk) before the
client gets its id, so an acknowledged job always finishes: its items wait in the job
table until some worker claims them, in this process or in any other sharing the
database (``ingot worker``, another replica). A ``kill -9`` mid-document leaves a lease
that runs out; another worker (or this one, restarted) redoes that document, and the
store replace is idempotent. A single node restarting frees its own old leases at once
instead of waiting for them to expire. Items started by the CLI are only ever worked on
by the CLI run that recorded them (a re-run skips what is already done).

Fair scheduling is the queue's claim order: small files first, and with more than one
worker one of them takes only small ones, so however many big files arrive first, a
small file behind them starts at once (big documents also embed in slices,
``pipeline.EMBED_SLICE``, sharing the batcher with whatever else runs).

A data volume that is full or read-only stops nothing for good: an item is not started
while the volume is under ``min_free_bytes`` (``DataVolume``), and one that hit the limit
mid-way waits, still holding its lease, until space has grown before it is redone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path

from ingot.kb.catalog import Catalog, Job, JobItem, new_job_id
from ingot.kb.errors import STORAGE_MESSAGES, storage_error
from ingot.kb.pipeline import DocumentPipeline, remove_spool
from ingot.kb.queue import JobQueue, new_worker_id
from ingot.security.acl import OPERATOR, Caller, scoped_document_id, write_scope

# Threading rule: the wake-up event and the done-events belong to the event loop and are
# touched only from it; catalog and spool (disk) work runs in worker threads. So a route
# records a job in a thread (``record``) and then wakes the workers on the loop (``enqueue``).

log = logging.getLogger("ingot.jobs")


STORAGE_POLL_S = 1.0  # how often a waiting item looks at the volume again
STORAGE_RETRY_S = 300.0  # an item that hit the limit is retried after this even without more space
RESUME_MARGIN_BYTES = 1 << 20  # "space returned": this much more free than when the item failed


class DataVolume:
    """The filesystem under ``data_dir``: how much is free, whether it takes writes, and
    whether that is enough to accept ``incoming`` more bytes while keeping
    ``min_free_bytes`` (uploads are checked before a byte is spooled)."""

    def __init__(self, path: Path, min_free_bytes: int) -> None:
        self.path = path
        self.min_free_bytes = min_free_bytes

    def free_bytes(self) -> int:
        try:
            return shutil.disk_usage(self._existing()).free
        except OSError:
            return 0

    def read_only(self) -> bool:
        try:
            return bool(os.statvfs(self._existing()).f_flag & os.ST_RDONLY)
        except OSError:
            return False

    def problem(self, incoming: int = 0) -> str | None:
        """``storage_read_only`` / ``storage_full`` when a write of ``incoming`` bytes
        should not start, else None."""
        if self.read_only():
            return "storage_read_only"
        if self.free_bytes() - incoming < self.min_free_bytes:
            return "storage_full"
        return None

    def check(self, incoming: int = 0) -> None:
        """Raise the API error (507 full / 503 read-only) when ``incoming`` bytes do not fit."""
        problem = self.problem(incoming)
        if problem is not None:
            raise storage_error(problem)

    def _existing(self) -> Path:
        path = self.path
        while not path.exists() and path != path.parent:
            path = path.parent
        return path


ORPHAN_SPOOL_AGE_S = 600.0  # a spool folder without a job, this old, was never committed


async def _wait_event(event: asyncio.Event, timeout: float) -> None:
    """Until ``event`` is set or ``timeout`` passes. Not ``asyncio.wait_for``: on Python
    3.11 it can swallow a cancellation that arrives just as the event is set (gh-86296),
    and a worker that lost its cancellation kept ``stop()`` waiting forever."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            await event.wait()


def _size(path: Path | str) -> int:
    """A file's byte count (0 when it cannot be read: the pipeline reports that)."""
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


@dataclass
class SourceFile:
    """One file to ingest: its display/source name and where its bytes are."""

    source: str
    data_path: Path
    origin: str | None = None  # absolute path of the user's file (CLI), for --sync


class JobRunner:
    """This process's ingestion workers. ``workers`` may be 0 (an API-only replica: jobs
    are recorded here and ingested by ``ingot worker`` processes)."""

    def __init__(
        self, catalog: Catalog, pipeline: DocumentPipeline, *, workers: int, spool_dir: Path, origin: str,
        volume: DataVolume | None = None, lease_s: float = 30.0, poll_s: float = 1.0,
    ) -> None:
        self.catalog = catalog
        self.pipeline = pipeline
        self.queue = JobQueue(catalog.db, lease_s=lease_s)
        self.volume = volume or DataVolume(spool_dir, 0)
        self.workers = workers
        self.spool_dir = spool_dir
        self.origin = origin
        self.poll_s = poll_s
        self.worker_ids = [new_worker_id() for _ in range(workers)]
        # the CLI works only on the jobs it recorded; uploads are everybody's
        self._own_jobs: set[str] | None = set() if origin == "cli" else None
        self._wake: asyncio.Event | None = None
        self._stopping = False
        self._tasks: list[asyncio.Task] = []
        self._done_events: dict[str, asyncio.Event] = {}

    # ------------------------------------------------------------------ lifecycle

    async def start(self, *, resume: bool = True) -> int:
        """Start the workers and their lease heartbeat. ``resume``: unfinished items of this
        origin are picked up again (on a single node their old leases are freed first);
        without it (the CLI) items nobody holds are marked failed as interrupted. Returns
        how many unfinished items were found."""
        self._wake = asyncio.Event()
        self._stopping = False
        found = await asyncio.to_thread(self._unfinished, resume)
        if found and resume:
            log.info("resuming %d unfinished ingestion item(s)", found)
        if self.workers:
            await asyncio.to_thread(self._clean_spool)
        # with several workers the last one is reserved for small items (fair scheduling)
        self._tasks = [
            asyncio.create_task(self._worker(worker_id, small_only=self.workers > 1 and i == self.workers - 1),
                                name=f"ingest-{i}")
            for i, worker_id in enumerate(self.worker_ids)
        ]
        if self.workers:
            self._tasks.append(asyncio.create_task(self._heartbeat(), name="ingest-leases"))
        return found

    def _unfinished(self, resume: bool) -> int:
        """Count (and prepare) this origin's unfinished items; see ``start``."""
        items = self.catalog.unfinished_items(self.origin)
        if not resume:
            now = time.time()
            for item in items:
                if item.lease_expires is None or item.lease_expires < now:  # a live lease is another run's
                    self.catalog.update_item(item.job_id, item.idx, status="failed", stage=None,
                                             error_reason="interrupted", error_message="the ingesting process stopped",
                                             finished_at=now)
            return len(items)
        if self.workers and not self.catalog.db.shared:
            self.queue.release_all(self.origin)  # one node: nobody else can be holding them
        return len(items)

    async def stop(self) -> None:
        self._stopping = True  # a worker that missed its cancellation still ends at its next turn
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    def _clean_spool(self) -> None:
        """Spool folders of jobs that no longer need their bytes (finished), or that were
        never committed (no job, and old enough that no replica is still recording it)."""
        if not self.spool_dir.is_dir():
            return
        for folder in self.spool_dir.iterdir():
            job = self.catalog.job(folder.name)
            if job is None:
                with contextlib.suppress(OSError):
                    if time.time() - folder.stat().st_mtime < ORPHAN_SPOOL_AGE_S:
                        continue
                shutil.rmtree(folder, ignore_errors=True)
            elif all(i.finished for i in job.items):
                shutil.rmtree(folder, ignore_errors=True)

    # ------------------------------------------------------------------ submit

    def spool_folder(self, job_id: str) -> Path:
        folder = self.spool_dir / job_id
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def record(self, collection: str, files: list[SourceFile], acl: list[str], *, job_id: str | None = None,
               owner: Caller = OPERATOR) -> Job:
        """Write a job for ``files`` to the catalog (blocking: call it in a thread). The bytes
        must already be at each ``data_path`` (spooled uploads are written before this).

        The job belongs to ``owner``; each document id is derived from (owner scope, name),
        so an upload can only ever replace a document of its own scope (security/acl.py)."""
        writers = write_scope(owner)
        job = Job(id=job_id or new_job_id(), collection=collection, origin=self.origin, status="queued",
                  created_at=time.time(), owner_key=owner.key_id,
                  owner_groups=None if owner.groups is None else sorted(owner.groups))
        job.items = [
            JobItem(job_id=job.id, idx=i, filename=f.source, document_id=scoped_document_id(f.source, writers),
                    data_path=str(f.data_path), origin=f.origin, acl=list(acl), writers=list(writers),
                    size_bytes=_size(f.data_path))
            for i, f in enumerate(files)
        ]
        self.catalog.add_job(job)
        return job

    def enqueue(self, job: Job) -> Job:
        """Wake the workers for a recorded job (on the event loop); returns a copy for the caller."""
        self._done_events.setdefault(job.id, asyncio.Event())
        if self._own_jobs is not None:
            self._own_jobs.add(job.id)
        if self._wake is not None:
            self._wake.set()
        return replace(job, items=[replace(i) for i in job.items])

    async def wait(self, job_id: str) -> Job:
        """Until every item of the job has finished (for the CLI). The done-event is set by
        this process's workers; the poll covers a job finished by another process."""
        status = await asyncio.to_thread(self.catalog.job_status, job_id)
        if status is None:
            raise KeyError(job_id)
        event = self._done_events.setdefault(job_id, asyncio.Event())
        while status != "done":
            await _wait_event(event, self.poll_s)
            status = await asyncio.to_thread(self.catalog.job_status, job_id)
        self._done_events.pop(job_id, None)
        return await asyncio.to_thread(self.catalog.job, job_id)  # type: ignore[return-value]

    # ------------------------------------------------------------------ workers

    async def _worker(self, worker_id: str, *, small_only: bool = False) -> None:
        assert self._wake is not None
        while not self._stopping:
            self._wake.clear()
            claimed = await asyncio.to_thread(self.queue.claim, self.origin, worker_id, small_only=small_only,
                                              job_ids=self._own_jobs)
            if claimed is None:
                await _wait_event(self._wake, self.poll_s)
                continue
            collection, item = claimed
            try:
                await self._process(collection, item)
            finally:
                with contextlib.suppress(Exception):  # a lost database frees the lease by expiry
                    await asyncio.to_thread(self.queue.release, item.job_id, item.idx, worker_id)
            self._wake.set()  # a job's other items may be ours to take next

    async def _heartbeat(self) -> None:
        """Renew this process's leases well before they run out."""
        while True:
            await asyncio.sleep(self.queue.lease_s / 3)
            for worker_id in self.worker_ids:
                try:
                    await asyncio.to_thread(self.queue.renew, worker_id)
                except Exception:  # noqa: BLE001 - the database may be back at the next beat
                    log.warning("could not renew the ingestion leases of %s", worker_id, exc_info=True)

    async def _process(self, collection: str, item: JobItem) -> None:
        await self._room_for(item)
        if not await asyncio.to_thread(self._collection_exists, collection):
            await asyncio.to_thread(
                self.catalog.update_item, item.job_id, item.idx, status="failed", error_reason="collection_deleted",
                error_message=f"collection {collection!r} was deleted", finished_at=time.time())
            item.status = "failed"
        else:
            item = await self.pipeline.run(collection, item)
            while item.status == "queued" and item.error_reason in STORAGE_MESSAGES:
                await self._space_returned(item)
                item = await self.pipeline.run(collection, item)
        await asyncio.to_thread(remove_spool, item, self.spool_dir)
        if await asyncio.to_thread(self.catalog.job_status, item.job_id) == "done":
            event = self._done_events.pop(item.job_id, None)
            if event is not None:
                event.set()

    async def _room_for(self, item: JobItem) -> None:
        """Hold the item while the volume is under its minimum free space (or read-only),
        saying so on the item; nothing is started that the volume cannot take."""
        problem = await asyncio.to_thread(self.volume.problem)
        if problem is None:
            return
        log.warning("%s waits: %s", item.filename, STORAGE_MESSAGES[problem])
        with contextlib.suppress(Exception):  # the catalog lives on the same volume
            await asyncio.to_thread(self.catalog.update_item, item.job_id, item.idx, status="queued",
                                    error_reason=problem, error_message=STORAGE_MESSAGES[problem])
        while await asyncio.to_thread(self.volume.problem) is not None:
            await asyncio.sleep(STORAGE_POLL_S)

    async def _space_returned(self, item: JobItem) -> None:
        """After an item hit the volume's limit mid-way: wait until the volume has room and
        more free space than when it failed (else the same write fails again), or, as a
        last resort, ``STORAGE_RETRY_S``."""
        failed_at = await asyncio.to_thread(self.volume.free_bytes)
        deadline = time.monotonic() + STORAGE_RETRY_S
        while time.monotonic() < deadline:
            await asyncio.sleep(STORAGE_POLL_S)
            if (await asyncio.to_thread(self.volume.problem) is None
                    and await asyncio.to_thread(self.volume.free_bytes) >= failed_at + RESUME_MARGIN_BYTES):
                break
        log.info("%s: retrying after the storage problem", item.filename)

    def _collection_exists(self, collection: str) -> bool:
        try:
            return collection in self.pipeline.store.list_collections()
        except Exception:  # noqa: BLE001 - let the pipeline report the store's error
            return True
