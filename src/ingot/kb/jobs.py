"""Durable ingestion jobs: a worker pool over the catalog's job table.

A job is written to SQLite (with its uploaded bytes spooled to disk) before the client
gets its id, so an acknowledged job always finishes: at start the runner puts every item
of an ``upload`` job that never finished back in the queue (a ``kill -9`` mid-document
simply redoes that document; the store replace is idempotent). Items started by the CLI
are not resumed by a server (the CLI re-run skips what is already done).

Fair scheduling: items go into two lanes by the size of their bytes (``LARGE_BYTES``).
Every worker takes a small item first; with more than one worker, one of them takes
only small ones, so however many big files arrive first, a small file behind them starts
at once and is not starved (big documents also embed in slices, ``pipeline.EMBED_SLICE``,
sharing the batcher with whatever else runs).

A data volume that is full or read-only stops nothing for good: an item is not started
while the volume is under ``min_free_bytes`` (``DataVolume``), and one that hit the limit
mid-way waits until space has grown before it is redone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import time
from collections import deque
from dataclasses import dataclass, replace
from pathlib import Path

from ingot.kb.catalog import Catalog, Job, JobItem, new_job_id
from ingot.kb.errors import STORAGE_MESSAGES, storage_error
from ingot.kb.pipeline import DocumentPipeline, remove_spool
from ingot.security.acl import OPERATOR, Caller, scoped_document_id, write_scope

# Threading rule: the queue and the done-events belong to the event loop and are touched
# only from it; catalog (SQLite) and spool (disk) work runs in worker threads. So a route
# records a job in a thread (``record``) and then queues it on the loop (``enqueue``).

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


LARGE_BYTES = 1 << 20  # an item this big goes to the large lane


class SizeLanes:
    """Two FIFO lanes of queued items, small and large, on the event loop. ``get`` prefers
    small items; ``get(small_only=True)`` is the reserved worker's, which never waits
    behind a big file."""

    def __init__(self) -> None:
        self._small: deque[tuple[str, JobItem]] = deque()
        self._large: deque[tuple[str, JobItem]] = deque()
        self._waiters: list[asyncio.Future[None]] = []

    def put_nowait(self, entry: tuple[str, JobItem]) -> None:
        (self._large if _size(entry[1]) >= LARGE_BYTES else self._small).append(entry)
        for waiter in self._waiters:  # each looks again; one that finds nothing waits again
            if not waiter.done():
                waiter.set_result(None)
        self._waiters.clear()

    async def get(self, *, small_only: bool = False) -> tuple[str, JobItem]:
        while not (self._small or (self._large and not small_only)):
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            await waiter
        return self._small.popleft() if self._small else self._large.popleft()

    def __len__(self) -> int:
        return len(self._small) + len(self._large)


def _size(item: JobItem) -> int:
    """The item's byte count (a stat of a local file: cheap enough for the loop)."""
    try:
        return os.stat(item.data_path).st_size
    except OSError:
        return 0


@dataclass
class SourceFile:
    """One file to ingest: its display/source name and where its bytes are."""

    source: str
    data_path: Path
    origin: str | None = None  # absolute path of the user's file (CLI), for --sync


class JobRunner:
    def __init__(
        self, catalog: Catalog, pipeline: DocumentPipeline, *, workers: int, spool_dir: Path, origin: str,
        volume: DataVolume | None = None,
    ) -> None:
        self.catalog = catalog
        self.pipeline = pipeline
        self.volume = volume or DataVolume(spool_dir, 0)
        self.workers = workers
        self.spool_dir = spool_dir
        self.origin = origin
        self._queue = SizeLanes()
        self._tasks: list[asyncio.Task] = []
        self._done_events: dict[str, asyncio.Event] = {}

    # ------------------------------------------------------------------ lifecycle

    async def start(self, *, resume: bool = True) -> int:
        """Start the workers; resume unfinished items of this runner's origin (or, with
        ``resume=False``, mark them failed as interrupted). Returns how many were found."""
        resumed = await asyncio.to_thread(self._unfinished, resume)
        for collection, item in resumed:
            self._queue.put_nowait((collection, item))
        if resumed:
            log.info("resuming %d unfinished ingestion item(s)", len(resumed))
        await asyncio.to_thread(self._clean_spool)
        # with several workers the last one is reserved for small items (fair scheduling)
        self._tasks = [
            asyncio.create_task(self._worker(small_only=self.workers > 1 and i == self.workers - 1), name=f"ingest-{i}")
            for i in range(self.workers)
        ]
        return len(resumed)

    def _unfinished(self, resume: bool) -> list[tuple[str, JobItem]]:
        """(collection, item) of every unfinished item to redo; without ``resume`` they are
        marked failed as interrupted instead."""
        items = self.catalog.unfinished_items(self.origin)
        if not resume:
            for item in items:
                self.catalog.update_item(item.job_id, item.idx, status="failed", stage=None,
                                         error_reason="interrupted", error_message="the ingesting process stopped",
                                         finished_at=time.time())
            return []
        out = []
        for item in items:
            item.status, item.stage = "queued", None
            job = self.catalog.job(item.job_id)
            if job is not None:
                out.append((job.collection, item))
        return out

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    def _clean_spool(self) -> None:
        """Spool folders of jobs that no longer need their bytes (finished, or never committed)."""
        if not self.spool_dir.is_dir():
            return
        for folder in self.spool_dir.iterdir():
            job = self.catalog.job(folder.name)
            if job is None or all(i.finished for i in job.items):
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
                    data_path=str(f.data_path), origin=f.origin, acl=list(acl), writers=list(writers))
            for i, f in enumerate(files)
        ]
        self.catalog.add_job(job)
        return job

    def enqueue(self, job: Job) -> Job:
        """Queue a recorded job's items (on the event loop); returns a copy for the caller."""
        self._done_events[job.id] = asyncio.Event()
        for item in job.items:
            self._queue.put_nowait((job.collection, replace(item)))  # workers own their copies
        return replace(job, items=[replace(i) for i in job.items])

    async def wait(self, job_id: str) -> Job:
        """Until every item of the job has finished (for the CLI)."""
        status = await asyncio.to_thread(self.catalog.job_status, job_id)
        if status is None:
            raise KeyError(job_id)
        if status != "done":
            await self._done_events.setdefault(job_id, asyncio.Event()).wait()
        return await asyncio.to_thread(self.catalog.job, job_id)  # type: ignore[return-value]

    # ------------------------------------------------------------------ workers

    async def _worker(self, *, small_only: bool = False) -> None:
        while True:
            collection, item = await self._queue.get(small_only=small_only)
            await self._process(collection, item)

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
