"""Open the configured vector store: LanceDB under data_dir (default) or Milvus by URI."""

from __future__ import annotations

from ingot.config import Settings
from ingot.store.protocol import VectorStore


def open_store(settings: Settings) -> VectorStore:
    """The store the server and the CLI share. Its writes only commit: index training and
    compaction are left to ``maintain``, which the knowledge base runs in the background
    (and benchmarks call ``optimize``), so an ingest never waits for an index build."""
    if settings.vector_store == "milvus":
        from ingot.store.milvus_store import MilvusStore

        uri = settings.milvus_uri or str(settings.data_dir / "milvus" / "ingot.db")
        return MilvusStore(uri, token=settings.milvus_token)
    from ingot.store.lancedb_store import LanceDBStore

    path = settings.lancedb_uri or settings.data_dir / "lancedb"
    return LanceDBStore(path, read_consistency_interval=settings.lancedb_consistency_s, auto_maintain=False)
