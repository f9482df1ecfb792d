"""The vector-store contract every backend implements and the shared contract tests
(``tests/store_contract.py``) check.

Filters are structured values, never free-form expressions: each backend renders them
itself with its own quoting, so user input can never inject into a filter expression.
"""

from __future__ import annotations

import abc
import re
from dataclasses import dataclass, field

import numpy as np

from ingot.errors import ConflictError, InvalidRequestError, NotFoundError, StoreFailure

COLLECTION_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,62}$")


class StoreError(StoreFailure):
    """A store operation failed. Part of the error hierarchy (ingot/errors.py): the kinds
    below keep their own status (their client-error base comes first), a bare StoreError is
    a 503 with its message, never an unmapped 500."""


class CollectionNotFound(NotFoundError, StoreError):
    pass


class CollectionExists(ConflictError, StoreError):
    param = "name"


class InvalidCollectionName(InvalidRequestError, StoreError, ValueError):
    code = "invalid_name"
    param = "name"


def check_collection_name(name: str) -> str:
    if not COLLECTION_NAME.match(name):
        raise InvalidCollectionName(f"invalid collection name {name!r}: letters, digits and _, starting with a letter, <= 63 chars")
    return name


@dataclass
class ChunkRecord:
    id: str
    document_id: str
    content_hash: str
    text: str
    vector: np.ndarray  # float32, unit length
    source: str
    page_start: int | None = None
    page_end: int | None = None
    location: str | None = None
    heading_path: list[str] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    acl: list[str] = field(default_factory=list)  # groups allowed to read; empty = everyone
    created_at: float = 0.0  # unix seconds


@dataclass(frozen=True)
class Filter:
    """All set fields must hold (AND); list fields match when any value matches (OR)."""

    sources: tuple[str, ...] = ()
    document_ids: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()  # chunk contains any of these element kinds
    acl_any: tuple[str, ...] | None = None  # caller's groups: chunk has no ACL or shares one; None = no ACL check
    created_after: float | None = None
    created_before: float | None = None


@dataclass
class Hit:
    record: ChunkRecord  # vector may be empty in hits
    score: float  # higher is better (cosine similarity for dense, BM25 for text)


class VectorStore(abc.ABC):
    """One backend; collections hold ChunkRecords of one vector dimension."""

    @abc.abstractmethod
    def create_collection(self, name: str, dimensions: int) -> None:
        """Raise CollectionExists if present."""

    @abc.abstractmethod
    def drop_collection(self, name: str) -> None:
        """Raise CollectionNotFound if absent."""

    @abc.abstractmethod
    def list_collections(self) -> list[str]: ...

    @abc.abstractmethod
    def count(self, name: str) -> int: ...

    @abc.abstractmethod
    def replace_document(self, name: str, document_id: str, records: list[ChunkRecord]) -> None:
        """Make ``records`` the document's only chunks (insert, or replace an older version)."""

    @abc.abstractmethod
    def delete_documents(self, name: str, document_ids: list[str]) -> int:
        """Remove every chunk of these documents; return how many chunks were removed."""

    @abc.abstractmethod
    def document_hashes(self, name: str) -> dict[str, str]:
        """document_id -> content_hash of every stored document (drives skip/replace)."""

    @abc.abstractmethod
    def dense_search(self, name: str, vector: np.ndarray, k: int, flt: Filter | None = None) -> list[Hit]: ...

    @abc.abstractmethod
    def text_search(self, name: str, query: str, k: int, flt: Filter | None = None) -> list[Hit]:
        """BM25 full-text search."""

    # Light searches + fetch: hybrid retrieval fuses two candidate lists of ids and then
    # reads only the winners' columns (on LanceDB at 100k chunks, reading every column of
    # 50 candidates per search cost more than the searches themselves). Backends override
    # these; the defaults keep any backend correct.

    def dense_search_ids(self, name: str, vector: np.ndarray, k: int, flt: Filter | None = None) -> list[tuple[str, float]]:
        """(chunk id, cosine similarity), best first."""
        return [(h.record.id, h.score) for h in self.dense_search(name, vector, k, flt)]

    def text_search_ids(self, name: str, query: str, k: int, flt: Filter | None = None) -> list[tuple[str, float]]:
        """(chunk id, BM25 score), best first."""
        return [(h.record.id, h.score) for h in self.text_search(name, query, k, flt)]

    @abc.abstractmethod
    def fetch(self, name: str, ids: list[str]) -> list[ChunkRecord]:
        """The records of these chunk ids (without vectors), in the order given; ids that
        no longer exist are left out."""

    # Upkeep off the write path: a write only commits; index training and compaction,
    # which can take minutes on a large collection, run when the caller chooses (the
    # knowledge base: one background thread after its writes). Backends whose server
    # does this itself keep the no-op defaults.

    def maintain(self, name: str) -> None:
        """Do the upkeep that is due (cheap when nothing is); readers keep working."""

    def optimize(self, name: str) -> None:
        """All the upkeep now, due or not (benchmarks call it before measuring)."""

    def close(self) -> None:
        """Release connections."""
