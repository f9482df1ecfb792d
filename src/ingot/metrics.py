"""Prometheus metrics with the names NIM and vLLM operators already chart.

Each server owns its own ``CollectorRegistry`` so tests can run several apps in one
process without colliding in the global registry.
"""

from __future__ import annotations

import contextlib
import time
from typing import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
TOKEN_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 1.0)


class _EngineGauges:
    """Reads running/waiting from the engine at scrape time, so the gauges are never stale."""

    def __init__(self, model_name: str, stats: Callable[[], dict[str, int]]) -> None:
        self._model = model_name
        self._stats = stats

    def collect(self):  # noqa: ANN201 - prometheus collector protocol
        stats = self._stats()
        for name, key, doc in (
            ("num_requests_running", "running", "Requests currently decoding or prefilling."),
            ("num_requests_waiting", "waiting", "Requests waiting for a decode slot."),
            ("num_requests_max", "slots", "Decode slots (max concurrent sequences)."),
        ):
            family = GaugeMetricFamily(name, doc, labels=["model_name"])
            family.add_metric([self._model], float(stats.get(key, 0)))
            yield family
        yield from self._decode_passes(stats)

    def _decode_passes(self, stats: dict[str, int]):  # noqa: ANN202 - metric families
        """llama.cpp's internal passes per decode step (engines that report them): with one
        KV stream per slot, a batch whose slots are out of order or have gaps runs as
        several passes, each a full forward over the weights. passes/steps should stay ~1
        per contiguous block of running slots; a rise is a batching regression."""
        if "decode_passes" not in stats:
            return
        for name, key, doc in (
            ("ingot_decode_steps", "decode_steps", "llama_decode calls (scheduler steps)."),
            ("ingot_decode_passes", "decode_passes", "Internal llama.cpp passes (ubatches) over all decode steps."),
            ("ingot_decode_slot_moves", "slot_moves", "Sequences moved to another KV slot to close a gap."),
            ("ingot_prefix_shared_tokens", "prefix_shared_tokens",
             "Prompt tokens copied from another slot's KV cells instead of prefilled (shared prefixes)."),
            ("ingot_spec_draft_tokens", "spec_draft_tokens",
             "Prompt-lookup draft tokens sent to llama_decode (speculative decoding)."),
            ("ingot_spec_accepted_tokens", "spec_accepted_tokens",
             "Draft tokens kept because the sampler picked them (accepted / draft = acceptance rate)."),
            ("ingot_spec_steps", "spec_steps", "Sequence-steps that carried a draft."),
            ("ingot_llama_thread_changes", "thread_changes",
             "Thread-count changes between steps (fewer threads while encoders or extraction compute)."),
        ):
            counter = CounterMetricFamily(name, doc, labels=["model_name"])
            counter.add_metric([self._model], float(stats.get(key, 0)))
            yield counter
        for name, key, doc in (
            ("ingot_decode_passes_last", "decode_passes_last", "Internal passes of the latest decode step."),
            ("ingot_llama_threads", "threads", "llama.cpp threads the latest decode step ran with."),
        ):
            gauge = GaugeMetricFamily(name, doc, labels=["model_name"])
            gauge.add_metric([self._model], float(stats.get(key, 0)))
            yield gauge


class GenerationMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        labels = ["model_name"]
        self.ttft = Histogram(
            "time_to_first_token_seconds", "Time to first token.", labels, registry=registry, buckets=LATENCY_BUCKETS
        )
        self.tpot = Histogram(
            "time_per_output_token_seconds", "Time per output token after the first.", labels,
            registry=registry, buckets=TOKEN_LATENCY_BUCKETS,
        )
        self.e2e = Histogram(
            "e2e_request_latency_seconds", "End-to-end request latency.", labels, registry=registry,
            buckets=LATENCY_BUCKETS,
        )
        self.prompt_tokens = Counter("prompt_tokens", "Prompt tokens processed.", labels, registry=registry)
        self.generation_tokens = Counter("generation_tokens", "Tokens generated.", labels, registry=registry)
        self.finished = Counter(
            "request_finish", "Finished requests by reason.", [*labels, "finished_reason"], registry=registry
        )
        self.model_loaded = Gauge("ingot_model_loaded", "1 when the model is loaded.", labels, registry=registry)
        self._registry = registry

    def watch_engine(self, model_name: str, stats: Callable[[], dict[str, int]]) -> None:
        self._registry.register(_EngineGauges(model_name, stats))
        self.model_loaded.labels(model_name).set(1)


class EncoderMetrics:
    """Embedding and ranking: requests, inputs, tokens, batch sizes, latency."""

    def __init__(self, registry: CollectorRegistry) -> None:
        labels = ["model_name", "service"]
        self.requests = Counter("encoder_requests", "Embedding/ranking requests served.", labels, registry=registry)
        self.inputs = Counter("encoder_inputs", "Texts encoded (embeddings) or pairs scored (ranking).", labels,
                              registry=registry)
        self.tokens = Counter("embedding_prompt_tokens", "Tokens embedded.", ["model_name"], registry=registry)
        self.batch_size = Histogram(
            "encoder_batch_size", "Inputs per forward pass (dynamic batching).", labels, registry=registry,
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
        )
        self.batch_seconds = Histogram(
            "encoder_batch_seconds", "Seconds per forward pass.", labels, registry=registry, buckets=LATENCY_BUCKETS
        )
        self.latency = Histogram(
            "encoder_request_latency_seconds", "End-to-end embedding/ranking request latency.", labels,
            registry=registry, buckets=LATENCY_BUCKETS,
        )

    @contextlib.contextmanager
    def track(self, model: str, service: str) -> Iterator[None]:
        """Count a request and its latency when it succeeds (for services that do not
        observe themselves, e.g. ranking)."""
        started = time.monotonic()
        yield
        self.requests.labels(model, service).inc()
        self.latency.labels(model, service).observe(time.monotonic() - started)

    def batch_observer(self, model: str, service: str):  # noqa: ANN201 - callback
        def observe(size: int, seconds: float) -> None:
            self.batch_size.labels(model, service).observe(size)
            self.batch_seconds.labels(model, service).observe(seconds)

        return observe


class HttpMetrics:
    """Every HTTP request by route template (bounded label set), plus auth and quota refusals."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "ingot_http_requests", "HTTP requests by route template, method and status.",
            ["method", "route", "status"], registry=registry,
        )
        self.latency = Histogram(
            "ingot_http_request_duration_seconds", "HTTP request duration, to the last body byte.",
            ["method", "route"], registry=registry, buckets=LATENCY_BUCKETS,
        )
        self.auth_failures = Counter(
            "ingot_auth_failures", "Requests refused for a missing/invalid key (401) or a missing role (403).",
            ["reason"], registry=registry,
        )
        self.rate_limited = Counter(
            "ingot_rate_limited", "Requests refused by a per-key quota (429).", ["limit"], registry=registry
        )


# ---- knowledge base: ingestion and search -------------------------------------------

INGEST_STAGE_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
SEARCH_LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5)


class KnowledgeBaseMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.stage_seconds = Histogram(
            "ingest_stage_seconds", "Seconds per document in each ingestion stage.", ["stage"],
            registry=registry, buckets=INGEST_STAGE_BUCKETS,
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
            ["mode"], registry=registry, buckets=SEARCH_LATENCY_BUCKETS,
        )
        self.searches = Counter("search_requests_total", "Searches by mode.", ["mode"], registry=registry)
        self.data_free_bytes = Gauge(
            "ingot_data_free_bytes", "Free bytes on the data volume (uploads get 507 below INGOT_INGEST_MIN_FREE_BYTES).",
            registry=registry,
        )
        self.ingest_queue_depth = Gauge(
            "ingot_ingest_queue_depth", "Upload items not yet ingested (queued or being worked on), in the shared "
            "job table: every replica and worker reports the same number.", registry=registry,
        )

    def watch_free_space(self, free_bytes: Callable[[], float]) -> None:
        """Read the data volume's free space at scrape time, so the gauge is never stale."""
        self.data_free_bytes.set_function(free_bytes)

    def watch_queue(self, depth: Callable[[], float]) -> None:
        """Unfinished upload items at scrape time: what a worker autoscaler scales on. A
        database that cannot answer reads as NaN rather than failing the whole scrape."""

        def read() -> float:
            try:
                return float(depth())
            except Exception:  # noqa: BLE001
                return float("nan")

        self.ingest_queue_depth.set_function(read)
