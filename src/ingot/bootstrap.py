"""The one builder of the service graph: engines, encoders, rankers, knowledge base, RAG.

The server, every CLI command and the benchmarks get their services here, so a model
choice or a wiring rule (the ranker follows INGOT_RANKING_MODEL, the knowledge base needs
the embedding model, RAG needs both) is written once.

Two ways in:

* the server: ``plan_services(settings)`` at start (a typo in a model name fails at once),
  then ``await load(services, tolerate=True)`` in its lifespan: a model that fails to load
  is recorded in ``load_errors`` (readiness reports it) and the rest still serve;
* a command or benchmark: ``async with running(settings, chat=False) as services:`` builds
  what it asks for, raises on the first failure, and closes everything on exit.

Usage::

    async with running(settings, chat=False) as services:
        result = await services.kb.retrieval.search(["docs"], "parking for visitors")
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import AsyncIterator

from prometheus_client import CollectorRegistry

from ingot.config import Settings, SettingsError, is_disabled
from ingot.embeddings.factory import create_encoder
from ingot.embeddings.service import EmbeddingService
from ingot.engines.factory import create_engine
from ingot.generation.service import GenerationService
from ingot.kb.embedder import KBEmbedder
from ingot.kb.service import KnowledgeBase
from ingot.metrics import EncoderMetrics, GenerationMetrics, KnowledgeBaseMetrics
from ingot.models.registry import ModelSpec, find_model
from ingot.rag.service import RagService, RagSettings
from ingot.ranking.embedding_ranker import EmbeddingSimilarityRanker
from ingot.ranking.factory import create_cross_encoder
from ingot.ranking.service import RankingService
from ingot.store.factory import open_store

log = logging.getLogger("ingot.bootstrap")


@dataclass
class Services:
    """Everything a process serves from, built once (no globals). ``None`` = switched off,
    still loading, or failed (then ``load_errors`` says why)."""

    settings: Settings
    chat_spec: ModelSpec | None
    embedding_spec: ModelSpec | None
    ranking_spec: ModelSpec | None  # a cross-encoder, or None
    ranking_by_embeddings: bool
    origin: str = "upload"  # who submits ingestion jobs: the server ("upload") or a CLI run ("cli")
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    started_at: float = field(default_factory=time.time)
    generation: GenerationService | None = None
    embeddings: EmbeddingService | None = None
    ranking: RankingService | None = None
    kb: KnowledgeBase | None = None
    rag: RagService | None = None
    load_errors: dict[str, str] = field(default_factory=dict)
    loading_done: bool = False
    metrics: GenerationMetrics = field(init=False)
    encoder_metrics: EncoderMetrics = field(init=False)
    kb_metrics: KnowledgeBaseMetrics = field(init=False)

    def __post_init__(self) -> None:
        self.metrics = GenerationMetrics(self.registry)
        self.encoder_metrics = EncoderMetrics(self.registry)
        self.kb_metrics = KnowledgeBaseMetrics(self.registry)

    def wants(self) -> dict[str, bool]:
        return {
            "chat": self.chat_spec is not None,
            "embedding": self.embedding_spec is not None,
            "ranking": self.ranking_spec is not None or self.ranking_by_embeddings,
            "knowledge base": self.embedding_spec is not None,
        }

    async def close(self) -> None:
        """Stop in reverse order of building: RAG and the knowledge base first (their jobs
        use the encoder), then the engines."""
        self.rag = None
        if self.kb is not None:
            kb, self.kb = self.kb, None
            await kb.close()
        if self.generation is not None:
            engine, self.generation = self.generation.engine, None
            await engine.shutdown()
        if self.ranking is not None:
            await self.ranking.ranker.close()
            self.ranking = None
        if self.embeddings is not None:
            await self.embeddings.batcher.stop()
            self.embeddings = None


def plan_services(
    settings: Settings, *, chat: bool = True, embeddings: bool = True, origin: str = "upload"
) -> Services:
    """Resolve every configured model name now (UnknownModelError for a typo); load nothing.
    ``chat`` / ``embeddings`` False: this process does not need that model (a CLI search
    needs no chat model); the ranker and knowledge base follow the embedding model."""
    chat_spec = find_model(settings.model, "chat", settings.models_dir()) if chat and not is_disabled(settings.model) else None
    embedding_spec = (find_model(settings.embedding_model, "embedding")
                      if embeddings and not is_disabled(settings.embedding_model) else None)
    ranking_name = settings.ranking_model.strip()
    by_embeddings = ranking_name.lower() == "embedding" and embedding_spec is not None
    cross = embeddings and not is_disabled(ranking_name) and ranking_name.lower() != "embedding"
    ranking_spec = find_model(ranking_name, "ranking") if cross else None
    return Services(settings, chat_spec, embedding_spec, ranking_spec, by_embeddings, origin=origin)


def _build_generation(services: Services) -> GenerationService:
    spec, s = services.chat_spec, services.settings
    assert spec is not None
    engine = create_engine(spec, s)
    services.metrics.watch_engine(engine.info.id, engine.stats)
    info = engine.info
    log.info("chat model %s ready: engine=%s precision=%s context=%d slots=%d threads=%d (%d while busy)",
             info.id, info.engine, info.precision, info.context_length, s.parallel, s.threads,
             min(s.threads_when_busy, s.threads))
    defaults = spec.sampling.to_dict() if s.sampling_defaults == "model" else {}
    return GenerationService(engine, spec.names(), services.metrics, defaults, s.max_tokens_default)


def _build_embeddings(services: Services) -> EmbeddingService:
    spec, s = services.embedding_spec, services.settings
    assert spec is not None
    encoder = create_encoder(spec, s)
    log.info("embedding model %s ready: %s", encoder.info.id, encoder.info.runtime)
    chat_names = services.chat_spec.names() if services.chat_spec is not None else ()
    return EmbeddingService(encoder, spec.names(), services.encoder_metrics, max_batch=s.embed_max_batch,
                            default_truncate=s.embed_truncate, answers_for=chat_names)


def _build_ranking(services: Services) -> RankingService | None:
    if services.ranking_spec is not None:
        ranker = create_cross_encoder(services.ranking_spec, services.settings, services.encoder_metrics)
        return RankingService(ranker, services.ranking_spec.names())
    if services.ranking_by_embeddings and services.embeddings is not None:
        similarity = EmbeddingSimilarityRanker(services.embeddings)
        return RankingService(similarity, (similarity.info.id, *services.embedding_spec.names()))  # type: ignore[union-attr]
    return None


def _open_kb(services: Services) -> KnowledgeBase:
    assert services.embeddings is not None
    ranker = services.ranking.ranker if services.ranking is not None else None
    return KnowledgeBase(services.settings, open_store(services.settings), KBEmbedder(services.embeddings), ranker,
                         services.kb_metrics, origin=services.origin)


def _build_rag(services: Services) -> RagService:
    assert services.generation is not None and services.kb is not None
    s = services.settings
    return RagService(services.generation, services.kb.retrieval,
                      RagSettings(min_score=s.rag_min_score, answer_tokens=s.rag_answer_tokens, top_k=s.rag_top_k,
                                  require_names=s.rag_require_names, table_records=s.rag_table_records,
                                  follow_table_references=s.rag_follow_table_references))


async def load(services: Services, *, tolerate: bool) -> None:
    """Build every planned service, each blocking load in a worker thread. ``tolerate``:
    record a failure in ``load_errors`` and go on (the server); else raise it (commands)."""

    async def step(kind: str, build) -> None:  # noqa: ANN001 - a callable building one part
        try:
            await build()
        except Exception as exc:  # noqa: BLE001 - reported on /v1/health/ready and in the log
            if not tolerate:
                raise
            services.load_errors[kind] = str(exc)
            log.error("%s failed to load: %s", kind, exc)

    async def generation() -> None:
        services.generation = await asyncio.to_thread(_build_generation, services)

    async def embeddings() -> None:
        services.embeddings = await asyncio.to_thread(_build_embeddings, services)

    async def ranking() -> None:
        services.ranking = await asyncio.to_thread(_build_ranking, services)
        if services.ranking is not None:
            log.info("ranking ready: %s (%s)", services.ranking.model_id, services.ranking.ranker.info.method)

    async def knowledge_base() -> None:
        kb = await asyncio.to_thread(_open_kb, services)
        try:
            await kb.start()
        except BaseException:
            await kb.close()
            raise
        services.kb = kb
        s = services.settings
        log.info("knowledge base ready: %s store, %d ingestion worker(s)", s.vector_store, s.ingest_workers)

    if services.chat_spec is not None:
        await step("chat", generation)
    if services.embedding_spec is not None:
        await step("embedding", embeddings)
    await step("ranking", ranking)
    if services.embeddings is not None:
        await step("knowledge base", knowledge_base)
    if services.generation is not None and services.kb is not None:
        services.rag = _build_rag(services)
    services.loading_done = True


@contextlib.asynccontextmanager
async def running(
    settings: Settings, *, chat: bool = True, embeddings: bool = True, origin: str = "cli"
) -> AsyncIterator[Services]:
    """Plan, load (failing on the first error) and, on exit, close the services a command
    needs. A part it asks for but the settings switch off is a clear SettingsError."""
    services = plan_services(settings, chat=chat, embeddings=embeddings, origin=origin)
    if chat and services.chat_spec is None:
        raise SettingsError("this command needs a chat model, but INGOT_MODEL is 'none'")
    if embeddings and services.embedding_spec is None:
        raise SettingsError("this command needs the knowledge base, which needs an embedding model, "
                            "but INGOT_EMBEDDING_MODEL is 'none'")
    try:
        await load(services, tolerate=False)
        yield services
    finally:
        await services.close()
