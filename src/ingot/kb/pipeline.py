"""One file -> one document in a collection: hash, extract, chunk, embed, store, record.

Each stage is written to the job item as it starts, so ``GET /v1/jobs/{id}`` shows where
a long file is. The decision insert / skip / replace is made from the content hash:

* same document id and same bytes as stored -> ``unchanged`` (nothing is extracted);
* new id -> ``added``; same id, other bytes -> ``replaced``: the store swaps the
  document's chunks in one commit, so a search sees the old version or the new one.

The id comes from the owner scope and the name (``security/acl.py``), so an item can
only replace a document of its own scope: another tenant's file of the same name is
another document, and the answer (``added``) is the one a fresh name gets.

Failures (bad file, timeout, extraction crash, a chunking limit) end the item as
``failed`` with a stable reason and never raise: the rest of the job continues. Messages
are plain words (details, with any internal path, go to the log). A data volume that is
full or read-only is not the file's fault: the item goes back to ``queued`` with reason
``storage_full`` / ``storage_read_only`` and the runner retries it once space returns
(the store swap is atomic, so nothing stored was touched).

Chunks are sized for the embedding model in use: its tokenizer counts, and its own limit
caps ``chunk_max_tokens`` (``kb/embedder.py``). After a write, the store's upkeep (index
training, compaction) is asked of :class:`BackgroundMaintenance`, never done in the write.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from ingot.ingest.chunk import Chunk, ChunkingError, TokenCounter, chunk_document
from ingot.ingest.elements import Element, ExtractOptions
from ingot.ingest.runner import FileResult, extract_data
from ingot.kb.catalog import Catalog, DocumentRow, JobItem
from ingot.kb.errors import STORAGE_MESSAGES, storage_problem
from ingot.metrics import KnowledgeBaseMetrics
from ingot.security.acl import scoped_document_id
from ingot.store.maintenance import BackgroundMaintenance
from ingot.store.protocol import ChunkRecord, VectorStore

log = logging.getLogger("ingot.ingest")

EMBED_SLICE = 256  # chunks per embedding call of one document (progress and interleaving step)

class PassageEmbedder(Protocol):
    """An embedder that can say how its model counts tokens (``KBEmbedder``)."""

    max_tokens: int  # the model's limit, special tokens included

    async def passages(self, texts: list[str]) -> np.ndarray: ...

    def token_counter(self) -> TokenCounter: ...


def document_id_for(source: str, writers: Sequence[str] = ()) -> str:
    """Stable id from the owner scope and source name: the same name in the same scope
    always maps to the same document (the operator's scope, ``()``, hashes the name alone,
    as older versions did)."""
    return scoped_document_id(source, writers)


class KeyedLocks:
    """One asyncio lock per key, dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[object, tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, key: object) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)


@dataclass
class PipelineOptions:
    chunk_max_tokens: int = 256
    chunk_overlap_tokens: int = 32
    extract_timeout_s: float = 120.0
    chunk_timeout_s: float = 120.0
    max_chunks: int = 1_000_000  # beyond: a document ~0.5 GB of text; fails as too_large
    ocr: bool = True


class DocumentPipeline:
    """Runs the stages for one job item; safe to run for different documents concurrently."""

    def __init__(
        self,
        catalog: Catalog,
        store: VectorStore,
        embedder: PassageEmbedder,
        options: PipelineOptions,
        metrics: KnowledgeBaseMetrics,
    ) -> None:
        self.catalog = catalog
        self.store = store
        self.embedder = embedder
        self.options = options
        self.metrics = metrics
        self.maintenance = BackgroundMaintenance(store)
        self._doc_locks = KeyedLocks()

    async def run(self, collection: str, item: JobItem) -> JobItem:
        """Process ``item``; its final state is in the catalog and returned."""
        async with self._doc_locks.hold((collection, item.document_id)):
            # two uploads of one name: processed one after the other, never interleaved
            try:
                return await self._run(collection, item)
            except ChunkingError as exc:
                return await self._fail(item, exc.reason, exc.message)
            except Exception as exc:  # noqa: BLE001 - one file's failure is reported, never raised
                problem = storage_problem(exc)
                if problem is not None:
                    log.warning("%s: waiting for storage: %s", item.filename, exc)
                    return await self._wait_for_storage(item, problem)
                log.exception("ingesting %s failed", item.filename)
                return await self._fail(item, "failed", f"ingesting the file failed unexpectedly ({type(exc).__name__}); "
                                        "the server log has the details")

    async def _run(self, collection: str, item: JobItem) -> JobItem:
        await self._update(item, status="running", stage="extract", started_at=time.time(), error_reason=None,
                           error_message=None)
        data = await asyncio.to_thread(_read, item.data_path)
        if data is None:
            return await self._fail(item, "missing", "the file's bytes are no longer available")
        content_hash = hashlib.sha256(data).hexdigest()
        previous = await asyncio.to_thread(self.catalog.document, collection, item.document_id)
        if previous is not None and sorted(previous.writers) != sorted(item.writers):
            # ids include the owner scope, so this is a catalog edited by hand: never take it over
            return await self._fail(item, "forbidden", "a document of another owner has this id")
        if previous is not None and previous.content_hash == content_hash and previous.acl == item.acl:
            self.metrics.documents.labels("unchanged").inc()
            return await self._finish(item, action="unchanged", format=previous.format, pages=previous.pages,
                                chunks=previous.chunks)
        action = "replaced" if previous is not None else "added"
        await self._update(item, action=action)

        started = time.monotonic()
        options = ExtractOptions(filename=item.filename, ocr=self.options.ocr)
        result: FileResult = await asyncio.to_thread(
            extract_data, data, options, timeout_s=self.options.extract_timeout_s
        )
        self.metrics.stage_seconds.labels("extract").observe(time.monotonic() - started)
        if not result.ok:
            return await self._fail(item, result.error_reason or "failed", result.error or "extraction failed")
        self.metrics.pages.inc(result.pages or 0)

        await self._update(item, stage="chunk", format=result.format, pages=result.pages)
        document = DocumentRow(
            collection=collection, id=item.document_id, source=item.filename, content_hash=content_hash, chunks=0,
            origin=item.origin, format=result.format, pages=result.pages, acl=list(item.acl),
            writers=list(item.writers),
        )
        chunks = await self.index(document, result.elements,
                                  on_stage=lambda stage: self._update(item, stage=stage),
                                  progress_key=(item.job_id, item.idx))
        if not chunks:
            return await self._fail(item, "empty", "the file has no text to index")
        self.metrics.documents.labels(action).inc()
        return await self._finish(item, action=action, format=result.format, pages=result.pages, chunks=chunks)

    async def index(
        self, document: DocumentRow, elements: list[Element],
        on_stage: Callable[[str], Awaitable[None]] | None = None,
        progress_key: tuple[str, int] | None = None,
    ) -> int:
        """Chunk, embed and store one document's elements, then record it in the catalog.
        Returns the number of chunks (0: nothing indexable; nothing is written).
        ``progress_key`` (job id, item index): embedded / total chunks are written to the
        item's row while it runs, so a big file's job shows it moving on every replica."""
        async def stage(name: str) -> None:
            if on_stage is not None:
                await on_stage(name)

        started = time.monotonic()
        max_tokens, counter = self.chunk_budget()
        chunks: list[Chunk] = await asyncio.to_thread(
            chunk_document, elements, document_id=document.id, content_hash=document.content_hash,
            max_tokens=max_tokens, overlap_tokens=self.options.chunk_overlap_tokens, tokenizer=counter,
            timeout_s=self.options.chunk_timeout_s, max_chunks=self.options.max_chunks,
        )
        self.metrics.stage_seconds.labels("chunk").observe(time.monotonic() - started)
        if not chunks:
            return 0

        await stage("embed")
        started = time.monotonic()
        vectors = await self._embed(chunks, progress_key)
        self.metrics.stage_seconds.labels("embed").observe(time.monotonic() - started)

        await stage("store")
        started = time.monotonic()
        now = time.time()
        records = [_record(c, v, document, now) for c, v in zip(chunks, vectors)]
        await asyncio.to_thread(self.store.replace_document, document.collection, document.id, records)
        self.maintenance.request(document.collection)  # index training / compaction, off this path
        document.chunks, document.created_at, document.updated_at = len(records), now, now
        await asyncio.to_thread(self.catalog.put_document, document)  # after the store: see catalog.py
        self.metrics.stage_seconds.labels("store").observe(time.monotonic() - started)
        self.metrics.chunks.inc(len(records))
        return len(records)

    async def _embed(self, chunks: list[Chunk], key: tuple[str, int] | None) -> np.ndarray:
        """Vectors of the chunks, ``EMBED_SLICE`` at a time: between slices other
        documents' chunks get the batcher, and the item's row counts what is done."""
        parts = []
        for start in range(0, len(chunks), EMBED_SLICE):
            if key is not None:
                await asyncio.to_thread(self.catalog.set_progress, *key, start, len(chunks))
            parts.append(await self.embedder.passages([c.text for c in chunks[start : start + EMBED_SLICE]]))
        return np.concatenate(parts)

    def chunk_budget(self) -> tuple[int, TokenCounter | None]:
        """Tokens per chunk and the counter of the embedding model in use: the
        ``chunk_max_tokens`` setting, capped at the model's own limit so the embedder never
        cuts a chunk."""
        return min(self.options.chunk_max_tokens, self.embedder.max_tokens), self.embedder.token_counter()

    # ------------------------------------------------------------------ item state

    async def _update(self, item: JobItem, **fields: object) -> None:
        for name, value in fields.items():
            setattr(item, name, value)
        # SQLite with synchronous=FULL fsyncs: never on the event loop
        await asyncio.to_thread(self.catalog.update_item, item.job_id, item.idx, **fields)

    async def _finish(self, item: JobItem, **fields: object) -> JobItem:
        await self._update(item, status="done", stage=None, finished_at=time.time(), **fields)
        return item

    async def _wait_for_storage(self, item: JobItem, problem: str) -> JobItem:
        """Back to ``queued`` with the storage reason: the runner retries the item when the
        volume has room again. Recording it may fail on the same full volume; the item is
        retried all the same (the catalog then still says ``running``)."""
        self.metrics.failures.labels(problem).inc()
        try:
            await self._update(item, status="queued", stage=None, error_reason=problem,
                               error_message=STORAGE_MESSAGES[problem])
        except Exception:  # noqa: BLE001 - the catalog is on the same volume
            log.warning("%s: could not record the wait for storage", item.filename, exc_info=True)
            item.status, item.error_reason = "queued", problem
        return item

    async def _fail(self, item: JobItem, reason: str, message: str) -> JobItem:
        self.metrics.documents.labels("failed").inc()
        self.metrics.failures.labels(reason).inc()
        log.warning("%s: %s: %s", item.filename, reason, message)
        await self._update(item, status="failed", stage=None, action=None, error_reason=reason, error_message=message,
                     finished_at=time.time())
        return item


def _read(path: str) -> bytes | None:
    try:
        return Path(path).read_bytes()
    except OSError:
        return None


def _record(chunk: Chunk, vector: np.ndarray, document: DocumentRow, now: float) -> ChunkRecord:
    return ChunkRecord(
        id=chunk.id, document_id=document.id, content_hash=document.content_hash, text=chunk.text,
        vector=np.asarray(vector, dtype=np.float32), source=document.source, page_start=chunk.page_start,
        page_end=chunk.page_end, location=chunk.location, heading_path=list(chunk.heading_path),
        kinds=list(chunk.kinds), acl=list(document.acl), created_at=now,
    )


def remove_spool(item: JobItem, spool_dir: Path) -> None:
    """Delete an upload's spooled bytes once its item has finished (CLI items point at
    the user's own files, which are never touched)."""
    path = Path(item.data_path)
    if path.parent.parent == spool_dir:
        try:
            os.unlink(path)
            if not any(path.parent.iterdir()):
                path.parent.rmdir()
        except OSError:
            pass
