"""Prometheus metrics of ingestion and search (registered in the app's registry)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

STAGE_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
SEARCH_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5)


class KnowledgeBaseMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.stage_seconds = Histogram(
            "ingest_stage_seconds", "Seconds per document in each ingestion stage.", ["stage"],
            registry=registry, buckets=STAGE_BUCKETS,
        )
        self.documents = Counter(
            "ingest_documents_total", "Documents ingested, by outcome (added, replaced, unchanged, failed).",
            ["outcome"], registry=registry,
        )
        self.failures = Counter(
            "ingest_failures_total", "Documents that failed, by reason.", ["reason"], registry=registry
        )
        self.pages = Counter("ingest_pages_total", "Pages / slides / sheets extracted.", registry=registry)
        self.chunks = Counter("ingest_chunks_total", "Chunks written to the vector store.", registry=registry)
        self.search_seconds = Histogram(
            "search_latency_seconds", "Search latency by mode (query embedding, searches, fusion, rerank).",
            ["mode"], registry=registry, buckets=SEARCH_BUCKETS,
        )
        self.searches = Counter("search_requests_total", "Searches by mode.", ["mode"], registry=registry)
