"""The knowledge base in this process, for the CLI (``ingot ingest``, ``search``, ``eval``):
the same embedder, store, pipeline and retrieval the server uses, without HTTP."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from prometheus_client import CollectorRegistry

from ingot.config import Settings
from ingot.embeddings.service import EmbeddingService
from ingot.engines import factory
from ingot.kb.embedder import KBEmbedder
from ingot.kb.metrics import KnowledgeBaseMetrics
from ingot.kb.service import KnowledgeBase
from ingot.metrics import EncoderMetrics
from ingot.models.registry import find_model
from ingot.ranking.embedding_ranker import EmbeddingSimilarityRanker
from ingot.ranking.protocol import Ranker
from ingot.store.factory import open_store


@contextlib.asynccontextmanager
async def local_knowledge_base(settings: Settings) -> AsyncIterator[KnowledgeBase]:
    """Load the embedding model and open the store; close both on exit."""
    import asyncio

    spec = find_model(settings.embedding_model, "embedding")
    encoder = await asyncio.to_thread(factory.create_encoder, spec, settings)
    registry = CollectorRegistry()
    metrics = EncoderMetrics(registry)
    service = EmbeddingService(encoder, spec.names(), metrics, max_batch=settings.embed_max_batch)
    ranker = await asyncio.to_thread(_ranker, settings, service, metrics)
    store = await asyncio.to_thread(open_store, settings)
    kb = KnowledgeBase(settings, store, KBEmbedder(service), ranker, KnowledgeBaseMetrics(registry), origin="cli")
    await kb.start()
    try:
        yield kb
    finally:
        await kb.close()
        if ranker is not None:
            await ranker.close()
        await service.batcher.stop()


def _ranker(settings: Settings, service: EmbeddingService, metrics: EncoderMetrics) -> Ranker | None:
    """The same ranker the server would use (INGOT_RANKING_MODEL)."""
    name = settings.ranking_model.strip()
    if name.lower() in factory.DISABLED:
        return None
    if name.lower() == "embedding":
        return EmbeddingSimilarityRanker(service)
    return factory.create_cross_encoder(find_model(name, "ranking"), settings, metrics)
