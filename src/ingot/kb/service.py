"""The knowledge base facade the HTTP routes and the CLI share: collections (vector store +
catalog metadata), documents, ingestion jobs and search.

Layout under ``data_dir``: ``kb.sqlite`` (catalog and jobs), ``spool/<job id>/<n>``
(uploaded bytes until their document is ingested), and the store's own files
(``lancedb/`` or a Milvus Lite ``.db``).

Tenancy: methods that read or write on someone's behalf take a ``Caller``
(``security/acl.py``; default: the operator, as the CLI is). A document the caller may not
read is absent for it (404, never 403: that would confirm the name); one it may read but
not write is a 403; a job is visible to the key that submitted it (and the operator); a
collection's counts are those of the documents the caller may read.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from ingot.config import Settings
from ingot.kb.catalog import CollectionRow, DocumentRow, Job, JobItem, new_job_id
from ingot.kb.catalog import open_catalog
from ingot.kb.embedder import KBEmbedder
from ingot.kb.errors import DocumentNotFound, DocumentWriteDenied, JobNotFound, storage_error, storage_problem
from ingot.kb.jobs import DataVolume, JobRunner, SourceFile
from ingot.metrics import KnowledgeBaseMetrics
from ingot.ingest.elements import Element
from ingot.ingest.runner import start_forkserver
from ingot.kb.pipeline import DocumentPipeline, PipelineOptions, document_id_for
from ingot.ranking.protocol import Ranker
from ingot.retrieval.service import FusionSettings, RetrievalService
from ingot.security.acl import OPERATOR, Caller, may_read, may_write, write_scope
from ingot.store.protocol import CollectionExists, CollectionNotFound, VectorStore, check_collection_name

SPOOL_CHUNK = 1 << 20

log = logging.getLogger("ingot.kb")


@dataclass(frozen=True)
class TextDocument:
    """A document whose text is already known: ``source`` names it (and gives its id)."""

    source: str
    text: str
    title: str = ""
    acl: tuple[str, ...] = ()


@dataclass
class CollectionInfo:
    row: CollectionRow
    documents: int
    chunks: int

    def to_dict(self) -> dict[str, Any]:
        r = self.row
        return {
            "object": "collection", "name": r.name, "description": r.description, "acl": r.acl,
            "documents": self.documents, "chunks": self.chunks, "created_at": int(r.created_at),
            "embedding_model": r.embedding_model, "dimensions": r.dimensions,
        }


def document_dict(row: DocumentRow) -> dict[str, Any]:
    return {
        "object": "document", "id": row.id, "collection": row.collection, "source": row.source,
        "content_hash": row.content_hash, "format": row.format, "pages": row.pages, "chunks": row.chunks,
        "acl": row.acl, "created_at": int(row.created_at), "updated_at": int(row.updated_at),
    }


def job_dict(job: Job) -> dict[str, Any]:
    """The job as the API shows it; a document being embedded shows embedded / total
    chunks, so a big file never looks hung."""
    items = job.items
    return {
        "object": "ingest.job", "id": job.id, "collection": job.collection, "status": job.status,
        "created_at": int(job.created_at), "started_at": _int(job.started_at), "finished_at": _int(job.finished_at),
        "progress": {
            "total": len(items),
            "finished": sum(1 for i in items if i.finished),
            "failed": sum(1 for i in items if i.status == "failed"),
        },
        "documents": [
            {
                "filename": i.filename, "document_id": i.document_id, "status": i.status, "stage": i.stage,
                "action": i.action, "format": i.format, "pages": i.pages, "chunks": i.chunks,
                "error": {"reason": i.error_reason, "message": i.error_message} if i.error_reason else None,
                **_chunk_progress(i),
            }
            for i in items
        ],
    }


def _chunk_progress(item: JobItem) -> dict[str, Any]:
    if item.status != "running" or item.stage != "embed" or item.chunks_total is None:
        return {}
    return {"chunks_embedded": item.chunks_embedded, "chunks_total": item.chunks_total}


def _int(value: float | None) -> int | None:
    return None if value is None else int(value)


class KnowledgeBase:
    def __init__(
        self,
        settings: Settings,
        store: VectorStore,
        embedder: KBEmbedder,
        ranker: Ranker | None,
        metrics: KnowledgeBaseMetrics,
        *,
        origin: str = "upload",
    ) -> None:
        self.settings = settings
        self.store = store
        self.embedder = embedder
        self.metrics = metrics
        self.catalog = open_catalog(settings.data_dir, settings.database_url)
        self.spool_dir = settings.spool_path()
        options = PipelineOptions(
            chunk_max_tokens=settings.chunk_max_tokens, chunk_overlap_tokens=settings.chunk_overlap_tokens,
            extract_timeout_s=settings.ingest_timeout_s, chunk_timeout_s=settings.ingest_timeout_s,
        )
        self.pipeline = DocumentPipeline(self.catalog, store, embedder, options, metrics)
        self.volume = DataVolume(settings.data_dir, settings.ingest_min_free_bytes)
        metrics.watch_free_space(self.volume.free_bytes)
        self.jobs = JobRunner(self.catalog, self.pipeline, workers=settings.ingest_workers,
                              spool_dir=self.spool_dir, origin=origin, volume=self.volume,
                              lease_s=settings.ingest_lease_s)
        metrics.watch_queue(self.jobs.queue.depth)
        self.retrieval = RetrievalService(
            store, embedder.query, ranker,
            FusionSettings(candidates=settings.search_candidates, rrf_k=settings.rrf_k,
                           dense_weight=settings.rrf_dense_weight, bm25_weight=settings.rrf_bm25_weight,
                           rerank=settings.search_rerank),
            metrics,
        )

    async def start(self) -> None:
        """Start ingestion workers. A server resumes its unfinished upload jobs; the CLI's
        interrupted runs are marked failed (re-running the command redoes only what changed).
        The extraction forkserver starts here, on the loop's (main) thread, so it dies with
        the process rather than with a worker thread (``ingest/lifeline.py``)."""
        start_forkserver()
        await self.jobs.start(resume=self.jobs.origin == "upload")

    async def close(self) -> None:
        await self.jobs.stop()
        self.catalog.close()
        await asyncio.to_thread(self.store.close)

    # ------------------------------------------------------------------ collections

    def create_collection(self, name: str, description: str = "", acl: list[str] | None = None) -> CollectionInfo:
        check_collection_name(name)
        self.store.create_collection(name, self.embedder.dimensions)  # raises CollectionExists
        row = CollectionRow(name=name, description=description, acl=list(acl or []), created_at=time.time(),
                            embedding_model=self.embedder.model_id, dimensions=self.embedder.dimensions)
        self.catalog.put_collection(row)
        return CollectionInfo(row, 0, 0)

    def ensure_collection(self, name: str, acl: list[str] | None = None) -> CollectionInfo:
        try:
            return self.create_collection(name, acl=acl)
        except CollectionExists:
            return self.collection(name)

    def collection(self, name: str, caller: Caller = OPERATOR) -> CollectionInfo:
        """The collection with the caller's counts (the operator's chunk count is the store's)."""
        if name not in self.store.list_collections():
            raise CollectionNotFound(f"collection {name!r} does not exist")
        row = self.catalog.collection(name) or CollectionRow(name=name)
        if caller.is_operator:
            return CollectionInfo(row, self.catalog.document_count(name), self.store.count(name))
        documents, chunks = self.catalog.document_counts(list(caller.groups or ())).get(name, (0, 0))
        return CollectionInfo(row, documents, chunks)

    def collections(self, caller: Caller = OPERATOR) -> list[CollectionInfo]:
        """Every collection (names are shared), each with the caller's counts."""
        readers = None if caller.is_operator else list(caller.groups or ())
        counts = self.catalog.document_counts(readers)
        out = []
        for name in sorted(self.store.list_collections()):
            row = self.catalog.collection(name) or CollectionRow(name=name)
            documents, chunks = counts.get(name, (0, 0))
            out.append(CollectionInfo(row, documents, self.store.count(name) if caller.is_operator else chunks))
        return out

    def drop_collection(self, name: str) -> None:
        self.store.drop_collection(name)  # raises CollectionNotFound; chunks go first
        self.catalog.drop_collection(name)

    # ------------------------------------------------------------------ documents

    def documents(self, collection: str, caller: Caller = OPERATOR) -> list[DocumentRow]:
        """The collection's documents the caller may read."""
        self.collection(collection)
        return [r for r in self.catalog.documents(collection) if may_read(caller, r.acl)]

    def document(self, collection: str, document_id: str, caller: Caller = OPERATOR) -> DocumentRow:
        """The document, or 404 when it is absent *or* the caller may not read it (a 403
        would confirm that it exists)."""
        self.collection(collection)
        row = self.catalog.document(collection, document_id)
        if row is None or not may_read(caller, row.acl):
            raise DocumentNotFound(f"document {document_id!r} is not in collection {collection!r}")
        return row

    def delete_document(self, collection: str, document_id: str, caller: Caller = OPERATOR) -> None:
        """Delete a document the caller owns (404 if it may not read it, 403 if it may read
        but not write it)."""
        row = self.document(collection, document_id, caller)
        if not may_write(caller, row.writers):
            raise DocumentWriteDenied(f"this key may not delete document {document_id!r}: it belongs to "
                                      "other groups (only its owners and admin keys may replace or delete it)")
        self.store.delete_documents(collection, [document_id])  # chunks first (see catalog.py)
        self.catalog.delete_document(collection, document_id)

    # ------------------------------------------------------------------ ingestion

    def default_acl(self, collection: str) -> list[str]:
        row = self.catalog.collection(collection)
        return list(row.acl) if row else []

    def check_storage(self, incoming: int = 0) -> None:
        """507 when ``incoming`` more bytes would leave the data volume under
        ``ingest_min_free_bytes``, 503 when it is read-only (blocking: statvfs)."""
        self.volume.check(incoming)

    async def submit_upload(self, collection: str, files: list[tuple[str, BinaryIO]], acl: list[str] | None,
                            owner: Caller = OPERATOR) -> Job:
        """Spool every upload to disk (fsynced) and record the job, in a worker thread, then
        queue it on the loop: an acknowledged job survives a crash. The job and its
        documents belong to ``owner`` (its documents are keyed by its scope and name)."""
        return self.jobs.enqueue(await asyncio.to_thread(self._spool_and_record, collection, files, acl, owner))

    def _spool_and_record(self, collection: str, files: list[tuple[str, BinaryIO]], acl: list[str] | None,
                          owner: Caller = OPERATOR) -> Job:
        """Spool and record, or, when the volume refuses the write (full, read-only), drop
        the partial spool and raise the storage error (507 / 503), details to the log."""
        self.collection(collection)
        job_id = new_job_id()
        try:
            return self._spool_job(job_id, collection, files, acl, owner)
        except Exception as exc:
            problem = storage_problem(exc)
            if problem is None:
                raise
            log.warning("upload to %s refused: %s", collection, exc)
            shutil.rmtree(self.spool_dir / job_id, ignore_errors=True)
            raise storage_error(problem) from exc

    def _spool_job(self, job_id: str, collection: str, files: list[tuple[str, BinaryIO]], acl: list[str] | None,
                   owner: Caller) -> Job:
        folder = self.jobs.spool_folder(job_id)
        sources = []
        for i, (name, stream) in enumerate(files):
            path = folder / str(i)
            with path.open("wb") as out:
                while block := stream.read(SPOOL_CHUNK):
                    out.write(block)
                out.flush()
                os.fsync(out.fileno())
            sources.append(SourceFile(source=name, data_path=path))
        return self.jobs.record(collection, sources, self.default_acl(collection) if acl is None else acl,
                                job_id=job_id, owner=owner)

    async def submit_paths(self, collection: str, files: list[SourceFile], acl: list[str] | None) -> Job:
        """Queue files already on disk (the CLI): record in a thread, queue on the loop."""
        return self.jobs.enqueue(await asyncio.to_thread(self._record_paths, collection, files, acl))

    def _record_paths(self, collection: str, files: list[SourceFile], acl: list[str] | None) -> Job:
        self.collection(collection)
        return self.jobs.record(collection, files, self.default_acl(collection) if acl is None else acl)

    async def ingest_texts(
        self,
        collection: str,
        texts: Iterable[TextDocument],
        *,
        concurrency: int = 16,
        on_done: Callable[[TextDocument, int], None] | None = None,
    ) -> int:
        """Index already-extracted texts (e.g. a BEIR corpus) without the job table: same
        chunker, embedder and store. Unchanged documents are skipped. Returns the number
        of documents written. ``concurrency`` documents are in flight so their chunks
        share the embedder's batches."""
        gate = asyncio.Semaphore(concurrency)
        written = 0

        async def one(doc: TextDocument) -> None:
            nonlocal written
            async with gate:
                content_hash = hashlib.sha256(f"{doc.title}\n{doc.text}".encode()).hexdigest()
                document_id = document_id_for(doc.source)
                previous = self.catalog.document(collection, document_id)
                chunks = previous.chunks if previous is not None else 0
                if previous is None or previous.content_hash != content_hash:
                    elements = ([Element(kind="title", text=doc.title)] if doc.title.strip() else [])
                    elements.append(Element(kind="text", text=doc.text))
                    row = DocumentRow(collection=collection, id=document_id, source=doc.source,
                                      content_hash=content_hash, chunks=0, format="text", acl=list(doc.acl))
                    chunks = await self.pipeline.index(row, elements)
                    written += 1
                if on_done is not None:
                    on_done(doc, chunks)

        pending: set[asyncio.Task] = set()
        for doc in texts:
            if len(pending) >= concurrency * 2:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    task.result()
            pending.add(asyncio.ensure_future(one(doc)))
        for task in asyncio.as_completed(pending):
            await task
        return written

    def job_json(self, job: Job) -> dict[str, Any]:
        """The job as the API shows it (``job_dict``)."""
        return job_dict(job)

    def job(self, job_id: str, caller: Caller = OPERATOR) -> Job:
        """The job, or 404 when it is absent or another key's (the operator sees all)."""
        job = self.catalog.job(job_id)
        if job is None or not _owns_job(caller, job):
            raise JobNotFound(f"job {job_id!r} does not exist")
        return job

    def list_jobs(self, collection: str | None = None, limit: int = 50, caller: Caller = OPERATOR) -> list[Job]:
        """Recent jobs, newest first: every job for the operator, else the caller's own."""
        if caller.is_operator:
            return self.catalog.jobs(collection, limit)
        if caller.key_id is None:
            return []
        return self.catalog.jobs(collection, limit, owner_key=caller.key_id)

    def sync(
        self, collection: str, roots: list[Path], present: set[str], caller: Caller = OPERATOR
    ) -> list[DocumentRow]:
        """Remove documents ingested from files under ``roots`` whose file is gone
        (``present``: absolute paths seen now), only those of the caller's own scope (the
        CLI's: the operator's). Returns the removed documents."""
        removed = []
        for root in roots:
            for row in self.catalog.documents_under(collection, str(root), write_scope(caller)):
                if row.origin not in present:
                    self.store.delete_documents(collection, [row.id])
                    self.catalog.delete_document(collection, row.id)
                    removed.append(row)
        return removed



def _owns_job(caller: Caller, job: Job) -> bool:
    """The operator sees every job; a key its own (jobs of older versions have no owner:
    the operator's)."""
    return caller.is_operator or (caller.key_id is not None and job.owner_key == caller.key_id)
