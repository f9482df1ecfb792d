"""Milvus backend for ingot's vector-store protocol.

One code path serves both deployments:

* a ``uri`` ending in ``.db`` is a Milvus Lite file (pymilvus starts an in-process Milvus
  Lite server for it; the parent directory is created if needed), and
* anything else is a Milvus server URI such as ``http://host:19530`` (``token`` is
  ``"user:password"`` or an API key).

Each collection holds :class:`~ingot.store.protocol.ChunkRecord` rows with a dense
``FLOAT_VECTOR`` (COSINE) and a sparse vector that Milvus's built-in BM25 ``Function``
fills from ``text``, so :meth:`MilvusStore.text_search` is server-side BM25 over the raw
query text.

Filters are rendered here into Milvus boolean expressions with every string value written
as an escaped double-quoted literal (see :func:`_str_literal`).  pymilvus 3 can send
templated ``filter_params`` instead, but Milvus Lite ignores expression templates (its
filter parser rejects ``{placeholder}``), and one rendering that is tested on Lite is safer
than a second, untested path for clusters.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import math
import os
import sys
import threading
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ingot.store.protocol import (
    ChunkRecord,
    CollectionExists,
    CollectionNotFound,
    Filter,
    Hit,
    StoreError,
    VectorStore,
    check_collection_name,
)

# Field names.
F_ID = "id"
F_DOC = "document_id"
F_HASH = "content_hash"
F_TEXT = "text"
F_SPARSE = "sparse"
F_DENSE = "dense"
F_SOURCE = "source"
F_PAGE_START = "page_start"
F_PAGE_END = "page_end"
F_LOCATION = "location"
F_HEADINGS = "heading_path"
F_KINDS = "kinds"
F_ACL = "acl"
F_CREATED = "created_at"
F_ACL_KEY = "acl_key"  # the ACL as "|tag|tag|" ("|" = public): a VARCHAR Milvus filters fast

# VARCHAR limits (Milvus counts UTF-8 bytes).
MAX_ID = 128
MAX_DOC_ID = 512
MAX_HASH = 128
MAX_SOURCE = 2048
MAX_LOCATION = 1024
MAX_TEXT = 65535
MAX_ACL_KEY = 65535
# ARRAY<VARCHAR> limits: (max elements, max bytes per element).
ARRAY_LIMITS = {F_HEADINGS: (64, 1024), F_KINDS: (64, 128), F_ACL: (1024, 256)}

# Fields returned with hits (vectors are left out: Hit.record.vector is empty).
OUTPUT_FIELDS = [F_ID, F_DOC, F_HASH, F_TEXT, F_SOURCE, F_PAGE_START, F_PAGE_END, F_LOCATION,
                 F_HEADINGS, F_KINDS, F_ACL, F_CREATED]

MAX_TOPK = 16384  # Milvus's search limit
WRITE_BATCH = 256  # rows per upsert request (keeps gRPC messages well under 64 MiB)
IN_BATCH = 1000  # values per `in [...]` list when looking up ids by document
NO_PAGE = -1

_lite_lock = threading.Lock()
_lite_refs: dict[str, int] = {}  # absolute .db path -> open MilvusStores in this process


def _import_pymilvus():
    try:
        import pymilvus
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise StoreError("the Milvus store needs pymilvus (pip install pymilvus milvus-lite)") from e
    return pymilvus


def _str_literal(value: str) -> str:
    """A Milvus expression string literal holding exactly ``value``.

    Milvus (and Milvus Lite) read C-style escapes inside double quotes; a raw newline or
    carriage return is not allowed, so those are escaped too.
    """
    if not isinstance(value, str):
        raise StoreError(f"filter values must be strings, got {type(value).__name__}")
    out = (value.replace("\\", "\\\\").replace('"', '\\"')
           .replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t"))
    return f'"{out}"'


def _str_list(values: Iterable[str]) -> str:
    return "[" + ", ".join(_str_literal(v) for v in values) + "]"


def _float_literal(value: float) -> str:
    value = float(value)
    if math.isnan(value):
        raise StoreError("filter times must be numbers, got NaN")
    if math.isinf(value):  # clamp: +/-inf bounds behave like the largest finite double
        value = math.copysign(sys.float_info.max, value)
    return repr(value)  # e.g. '1700000000.0', '1e+20', '-1.7976931348623157e+308'


def group_tag(group: str) -> str:
    """A group's fixed-width tag in ``acl_key``: 80 bits of its sha256 in hex, so the key's
    alphabet is [0-9a-f|] and a LIKE pattern built from it has no wildcard or quote."""
    return hashlib.sha256(group.encode("utf-8")).hexdigest()[:20]


def acl_key(groups: Iterable[str]) -> str:
    tags = sorted({group_tag(g) for g in groups})
    return "|" + "".join(f"{t}|" for t in tags)


def render_filter(flt: Filter | None, *, acl_key_field: bool = False) -> str:
    """Render a structured :class:`Filter` as a Milvus boolean expression ("" = no filter).

    ACL: with ``acl_key_field`` (collections created since the field exists) the check is
    scalar string matching on ``acl_key``; array expressions on ``acl`` cost ~300 ms per
    search at 10k chunks on Milvus Lite, which cannot index ARRAY fields. Older collections
    keep the array expression (slow, still correct)."""
    if flt is None:
        return ""
    parts: list[str] = []
    if flt.sources:
        parts.append(f"{F_SOURCE} in {_str_list(flt.sources)}")
    if flt.document_ids:
        parts.append(f"{F_DOC} in {_str_list(flt.document_ids)}")
    if flt.kinds:
        parts.append(f"array_contains_any({F_KINDS}, {_str_list(flt.kinds)})")
    if flt.acl_any is not None and acl_key_field:
        tests = [f'{F_ACL_KEY} == "|"'] + [f'{F_ACL_KEY} like "%|{group_tag(g)}|%"' for g in dict.fromkeys(flt.acl_any)]
        parts.append(" or ".join(tests))
    elif flt.acl_any is not None:
        if flt.acl_any:
            parts.append(f"(array_length({F_ACL}) == 0 or array_contains_any({F_ACL}, {_str_list(flt.acl_any)}))")
        else:
            parts.append(f"array_length({F_ACL}) == 0")
    if flt.created_after is not None:
        parts.append(f"{F_CREATED} > {_float_literal(flt.created_after)}")
    if flt.created_before is not None:
        parts.append(f"{F_CREATED} < {_float_literal(flt.created_before)}")
    return " and ".join(f"({p})" for p in parts)


def _chunks(seq: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for i in range(0, len(seq), size):
        yield seq[i:i + size]


class MilvusStore(VectorStore):
    """Milvus (Lite file or server) behind the :class:`VectorStore` protocol.

    Searches and queries run at ``consistency_level`` (default ``"Strong"``), so they see
    every write that returned before them; ``"Bounded"`` is cheaper on a busy cluster.  Opening a Lite file takes well under
    a second; only one process may hold a given ``.db`` file open at a time (Milvus Lite
    locks its data directory), while any number of ``MilvusStore`` objects in one process
    share its in-process server.
    """

    def __init__(self, uri: str, token: str | None = None, *, consistency_level: str = "Strong",
                 timeout: float | None = None) -> None:
        pymilvus = _import_pymilvus()
        self._uri = uri
        self._consistency = consistency_level
        self._lite_path: str | None = None
        self._loaded: set[str] = set()
        self._dims: dict[str, int] = {}
        self._acl_keyed: dict[str, bool] = {}  # collection has the acl_key field
        self._closed = False
        self._lite = uri.endswith(".db")
        if self._lite:
            if importlib.util.find_spec("milvus_lite") is None:  # pragma: no cover - environment
                raise StoreError("a .db Milvus URI needs milvus-lite (pip install milvus-lite)")
            path = os.path.abspath(uri)
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            self._lite_path = path
            uri = path
        # Opening and closing Lite stores hold one lock, so a close that stops the shared
        # in-process server can never race an open that is about to reuse it.
        with _lite_lock if self._lite else contextlib.nullcontext():
            if self._lite_path is not None:
                _lite_refs[self._lite_path] = _lite_refs.get(self._lite_path, 0) + 1
            try:
                # dedicated: close() really closes this client's channel instead of leaving a
                # shared handler behind (matters for Lite, whose server is stopped on close).
                self._client = pymilvus.MilvusClient(uri=uri, token=token or "", timeout=timeout,
                                                     dedicated=True)
            except Exception as e:
                self._release_lite_locked()
                hint = " (is the file open in another process? Milvus Lite locks it)" if self._lite else ""
                raise StoreError(f"cannot open Milvus at {self._uri}{hint}: {e}") from e

    # -- collections -------------------------------------------------------------------

    def create_collection(self, name: str, dimensions: int) -> None:
        check_collection_name(name)
        if not isinstance(dimensions, int) or isinstance(dimensions, bool) or dimensions <= 0:
            raise StoreError(f"dimensions must be a positive int, got {dimensions!r}")
        from pymilvus import DataType, Function, FunctionType

        c = self._client
        if self._call(c.has_collection, name):
            raise CollectionExists(f"collection {name!r} already exists")
        schema = c.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field(F_ID, DataType.VARCHAR, is_primary=True, max_length=MAX_ID)
        schema.add_field(F_DOC, DataType.VARCHAR, max_length=MAX_DOC_ID)
        schema.add_field(F_HASH, DataType.VARCHAR, max_length=MAX_HASH)
        schema.add_field(F_TEXT, DataType.VARCHAR, max_length=MAX_TEXT, enable_analyzer=True)
        schema.add_field(F_SPARSE, DataType.SPARSE_FLOAT_VECTOR)
        schema.add_field(F_DENSE, DataType.FLOAT_VECTOR, dim=dimensions)
        schema.add_field(F_SOURCE, DataType.VARCHAR, max_length=MAX_SOURCE)
        schema.add_field(F_PAGE_START, DataType.INT64)
        schema.add_field(F_PAGE_END, DataType.INT64)
        schema.add_field(F_LOCATION, DataType.VARCHAR, max_length=MAX_LOCATION, nullable=True)
        for fname, (cap, length) in ARRAY_LIMITS.items():
            schema.add_field(fname, DataType.ARRAY, element_type=DataType.VARCHAR, max_capacity=cap,
                             max_length=length)
        schema.add_field(F_CREATED, DataType.DOUBLE)
        schema.add_field(F_ACL_KEY, DataType.VARCHAR, max_length=MAX_ACL_KEY)
        schema.add_function(Function(name="text_bm25", function_type=FunctionType.BM25,
                                     input_field_names=[F_TEXT], output_field_names=[F_SPARSE]))
        index = c.prepare_index_params()
        index.add_index(field_name=F_DENSE, index_type="AUTOINDEX", metric_type="COSINE")
        index.add_index(field_name=F_SPARSE, index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
        self._call(c.create_collection, name, schema=schema, consistency_level=self._consistency)
        # A server builds indexes asynchronously: wait for them before loading.  Milvus Lite
        # builds them at once, and pymilvus's wait asks it for an RPC it lacks
        # (AllocTimestamp: an error logged, then a fixed 0.5 s sleep per index).
        self._call(c.create_index, name, index, sync=not self._lite)
        self._call(c.load_collection, name)
        self._loaded.add(name)
        self._dims[name] = dimensions

    def drop_collection(self, name: str) -> None:
        check_collection_name(name)
        if not self._call(self._client.has_collection, name):
            raise CollectionNotFound(f"collection {name!r} does not exist")
        self._call(self._client.drop_collection, name)
        self._loaded.discard(name)
        self._dims.pop(name, None)
        self._acl_keyed.pop(name, None)

    def list_collections(self) -> list[str]:
        return sorted(self._call(self._client.list_collections))

    def count(self, name: str) -> int:
        self._ensure(name)
        rows = self._call(self._client.query, name, filter="", output_fields=["count(*)"],
                          consistency_level=self._consistency)
        return int(rows[0]["count(*)"]) if rows else 0

    # -- writes ------------------------------------------------------------------------

    def replace_document(self, name: str, document_id: str, records: list[ChunkRecord]) -> None:
        """Make ``records`` the document's only chunks.

        Milvus has no multi-statement transactions, so this upserts the new records first
        and then deletes the document's chunks whose ids are not among the new ids.  A
        concurrent reader can therefore briefly see the new chunks together with old ones
        that are not yet deleted, but never neither.  If the process dies between the two
        steps, the next ``replace_document`` for the document removes the leftovers.
        An empty ``records`` deletes the document.
        """
        self._ensure(name)
        dim = self._dim(name)
        ids: set[str] = set()
        rows = []
        for r in records:
            if r.document_id != document_id:
                raise StoreError(f"record {r.id!r} belongs to {r.document_id!r}, not {document_id!r}")
            if r.id in ids:
                raise StoreError(f"duplicate chunk id {r.id!r}")
            ids.add(r.id)
            rows.append(self._row(r, dim, self._has_acl_key(name)))
        for batch in _chunks(rows, WRITE_BATCH):
            self._call(self._client.upsert, name, data=list(batch))
        stale = [i for i in self._ids_of(name, [document_id]) if i not in ids]
        self._delete_ids(name, stale)

    def delete_documents(self, name: str, document_ids: list[str]) -> int:
        self._ensure(name)
        ids = self._ids_of(name, list(dict.fromkeys(document_ids)))
        self._delete_ids(name, ids)
        return len(ids)

    # -- reads -------------------------------------------------------------------------

    def document_hashes(self, name: str) -> dict[str, str]:
        self._ensure(name)
        return {row[F_DOC]: row[F_HASH] for row in self._query_all(name, "", [F_DOC, F_HASH])}

    def dense_search(self, name: str, vector: np.ndarray, k: int, flt: Filter | None = None) -> list[Hit]:
        self._ensure(name)
        q = np.asarray(vector, dtype=np.float32).reshape(-1)
        if q.shape[0] != self._dim(name):
            raise StoreError(f"query vector has {q.shape[0]} dimensions, collection {name!r} has {self._dim(name)}")
        expr = render_filter(flt, acl_key_field=self._has_acl_key(name))
        if k <= 0:
            return []
        res = self._call(self._client.search, name, data=[q.tolist()], anns_field=F_DENSE,
                         search_params={"metric_type": "COSINE"}, filter=expr, limit=min(k, MAX_TOPK),
                         output_fields=OUTPUT_FIELDS, consistency_level=self._consistency)
        return self._hits(res)

    def text_search(self, name: str, query: str, k: int, flt: Filter | None = None) -> list[Hit]:
        """BM25 full-text search (Milvus's built-in BM25 over the analyzed ``text`` field)."""
        self._ensure(name)
        expr = render_filter(flt, acl_key_field=self._has_acl_key(name))
        if k <= 0 or not query.strip():
            return []
        res = self._call(self._client.search, name, data=[query], anns_field=F_SPARSE,
                         search_params={"metric_type": "BM25"}, filter=expr, limit=min(k, MAX_TOPK),
                         output_fields=OUTPUT_FIELDS, consistency_level=self._consistency)
        hits = self._hits(res, bm25=True)
        # Chunks sharing no term with the query score 0: not a match.
        return [h for h in hits if h.score > 0]

    def fetch(self, name: str, ids: list[str]) -> list[ChunkRecord]:
        self._ensure(name)
        if not ids:
            return []
        by_id: dict[str, ChunkRecord] = {}
        for part in _chunks(ids, 1000):
            rows = self._call(self._client.query, name, filter=f"{F_ID} in {_str_list(part)}",
                              output_fields=OUTPUT_FIELDS, consistency_level=self._consistency)
            for row in rows:
                record = self._record(row)
                by_id[record.id] = record
        return [by_id[i] for i in ids if i in by_id]

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with _lite_lock if self._lite else contextlib.nullcontext():
            try:
                self._client.close()
            finally:
                self._release_lite_locked()

    def __enter__(self) -> MilvusStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals ---------------------------------------------------------------------

    def _release_lite_locked(self) -> None:
        """Drop this store's hold on its Lite file (caller holds ``_lite_lock``); the last one
        stops the in-process server and releases the data-directory lock, so the file can be
        reopened (here or by another process)."""
        if self._lite_path is None:
            return
        left = _lite_refs.get(self._lite_path, 1) - 1
        if left > 0:
            _lite_refs[self._lite_path] = left
            return
        _lite_refs.pop(self._lite_path, None)
        from milvus_lite.server_manager import server_manager_instance

        server_manager_instance.release_server(self._lite_path)

    def _call(self, fn, *args, **kwargs):
        """Run one client call; map Milvus errors onto the protocol's errors."""
        if self._closed:
            raise StoreError("the Milvus store is closed")
        from pymilvus.exceptions import MilvusException

        try:
            return fn(*args, **kwargs)
        except MilvusException as e:
            name = args[0] if args and isinstance(args[0], str) else None
            if name is not None and fn is not self._client.has_collection and self._missing(name):
                self._loaded.discard(name)
                self._dims.pop(name, None)
                self._acl_keyed.pop(name, None)
                raise CollectionNotFound(f"collection {name!r} does not exist") from e
            raise StoreError(f"Milvus error: {e}") from e

    def _missing(self, name: str) -> bool:
        try:
            return not self._client.has_collection(name)
        except Exception:
            return False

    def _ensure(self, name: str) -> None:
        """Raise CollectionNotFound for an unknown collection; load it on first use."""
        if name in self._loaded:
            return
        check_collection_name(name)
        if not self._call(self._client.has_collection, name):
            raise CollectionNotFound(f"collection {name!r} does not exist")
        self._call(self._client.load_collection, name)  # no-op when already loaded
        self._loaded.add(name)

    def _has_acl_key(self, name: str) -> bool:
        known = self._acl_keyed.get(name)
        if known is None:
            desc = self._call(self._client.describe_collection, name)
            known = self._acl_keyed[name] = any(f.get("name") == F_ACL_KEY for f in desc.get("fields", []))
        return known

    def _dim(self, name: str) -> int:
        dim = self._dims.get(name)
        if dim is None:
            desc = self._call(self._client.describe_collection, name)
            for f in desc.get("fields", []):
                if f.get("name") == F_DENSE:
                    dim = int(f.get("params", {}).get("dim"))
                    break
            if dim is None:
                raise StoreError(f"collection {name!r} has no {F_DENSE!r} field: not an ingot collection")
            self._dims[name] = dim
        return dim

    def _ids_of(self, name: str, document_ids: list[str]) -> list[str]:
        out: list[str] = []
        for batch in _chunks(document_ids, IN_BATCH):
            out.extend(row[F_ID] for row in self._query_all(name, f"{F_DOC} in {_str_list(batch)}", [F_ID]))
        return out

    def _query_all(self, name: str, expr: str, fields: list[str]) -> Iterator[dict[str, Any]]:
        """Every row matching ``expr``.

        A server is read with a query iterator (pages of 1000, no result-size limit).  Milvus
        Lite answers a plain query from local memory, and its server lacks the timestamp RPC
        that pymilvus's iterator asks for first (it would log an error on every call).
        """
        if self._lite:
            yield from self._call(self._client.query, name, filter=expr, output_fields=fields,
                                  consistency_level=self._consistency)
            return
        it = self._call(self._client.query_iterator, name, batch_size=1000, filter=expr,
                        output_fields=fields, consistency_level=self._consistency)
        try:
            while True:
                rows = self._call(it.next)
                if not rows:
                    break
                yield from rows
        finally:
            it.close()

    def _delete_ids(self, name: str, ids: list[str]) -> None:
        for batch in _chunks(ids, IN_BATCH):
            self._call(self._client.delete, name, ids=list(batch))

    @staticmethod
    def _row(r: ChunkRecord, dim: int, with_acl_key: bool = True) -> dict[str, Any]:
        vec = np.asarray(r.vector, dtype=np.float32).reshape(-1)
        if vec.shape[0] != dim:
            raise StoreError(f"chunk {r.id!r} has a {vec.shape[0]}-dimensional vector, the collection holds {dim}")

        def text(field: str, value: str, limit: int) -> str:
            if not isinstance(value, str):
                raise StoreError(f"chunk {r.id!r}: {field} must be a string")
            if len(value.encode("utf-8")) > limit:
                raise StoreError(f"chunk {r.id!r}: {field} is longer than {limit} bytes")
            return value

        def array(field: str, values: list[str]) -> list[str]:
            cap, limit = ARRAY_LIMITS[field]
            values = list(values)
            if len(values) > cap:
                raise StoreError(f"chunk {r.id!r}: {field} has more than {cap} entries")
            return [text(field, v, limit) for v in values]

        return {
            F_ID: text(F_ID, r.id, MAX_ID),
            F_DOC: text(F_DOC, r.document_id, MAX_DOC_ID),
            F_HASH: text(F_HASH, r.content_hash, MAX_HASH),
            F_TEXT: text(F_TEXT, r.text, MAX_TEXT),
            F_DENSE: vec.tolist(),
            F_SOURCE: text(F_SOURCE, r.source, MAX_SOURCE),
            F_PAGE_START: NO_PAGE if r.page_start is None else int(r.page_start),
            F_PAGE_END: NO_PAGE if r.page_end is None else int(r.page_end),
            F_LOCATION: None if r.location is None else text(F_LOCATION, r.location, MAX_LOCATION),
            F_HEADINGS: array(F_HEADINGS, r.heading_path),
            F_KINDS: array(F_KINDS, r.kinds),
            F_ACL: array(F_ACL, r.acl),
            F_CREATED: float(r.created_at),
            **({F_ACL_KEY: acl_key(r.acl)} if with_acl_key else {}),
        }

    @staticmethod
    def _record(e: dict[str, Any]) -> ChunkRecord:
        def page(v: Any) -> int | None:
            return None if v is None or int(v) == NO_PAGE else int(v)

        return ChunkRecord(
            id=e[F_ID], document_id=e[F_DOC], content_hash=e[F_HASH], text=e[F_TEXT],
            vector=np.empty(0, dtype=np.float32), source=e[F_SOURCE],
            page_start=page(e.get(F_PAGE_START)), page_end=page(e.get(F_PAGE_END)),
            location=e.get(F_LOCATION), heading_path=list(e.get(F_HEADINGS) or []),
            kinds=list(e.get(F_KINDS) or []), acl=list(e.get(F_ACL) or []),
            created_at=float(e.get(F_CREATED) or 0.0),
        )

    def _hits(self, res: Any, bm25: bool = False) -> list[Hit]:
        if not res:
            return []
        hits = []
        for h in res[0]:
            entity = h.get("entity") or {}
            entity = {**entity, F_ID: entity.get(F_ID, h.get("id"))}
            score = float(h.get("distance"))
            if bm25:
                # A BM25 score is never negative.  Milvus returns it as is; Milvus Lite 3.2
                # returns its internal distance, the negated score.
                score = abs(score)
            hits.append(Hit(record=self._record(entity), score=score))
        hits.sort(key=lambda h: h.score, reverse=True)
        return hits
