"""App factory: ``build_app(settings)`` wires state, routers and error handlers; models
load in the lifespan, in a worker thread, so liveness answers while a big model loads and
readiness turns green only when every configured model can serve."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import AsyncIterator

from fastapi import FastAPI

from ingot import __version__
from ingot.config import Settings
from ingot.embeddings.service import EmbeddingService
from ingot.engines import factory
from ingot.generation.service import GenerationService
from ingot.kb.embedder import KBEmbedder
from ingot.kb.service import KnowledgeBase
from ingot.models.registry import find_model
from ingot.ranking.embedding_ranker import EmbeddingSimilarityRanker
from ingot.ranking.service import RankingService
from ingot.server.errors import install_error_handlers
from ingot.server.middleware import install_middleware
from ingot.server.routes import keys as keys_routes, usage as usage_routes
from ingot.server.routes import collections, embeddings, generation, models, ops, rag, search, tokenizer, ui
from ingot.server.state import ServerState
from ingot.store.factory import open_store

log = logging.getLogger("ingot.server")


def _enabled(name: str) -> bool:
    return name.strip().lower() not in factory.DISABLED


def _state_for(settings: Settings) -> ServerState:
    """Resolve every configured model name now, so a typo fails at start, not at load."""
    chat = find_model(settings.model, "chat") if _enabled(settings.model) else None
    embedding = find_model(settings.embedding_model, "embedding") if _enabled(settings.embedding_model) else None
    ranking_name = settings.ranking_model.strip()
    by_embeddings = ranking_name.lower() == "embedding" and embedding is not None
    ranking = find_model(ranking_name, "ranking") if _enabled(ranking_name) and ranking_name.lower() != "embedding" else None
    return ServerState(settings=settings, chat_spec=chat, embedding_spec=embedding, ranking_spec=ranking,
                       ranking_by_embeddings=by_embeddings)


async def _load(state: ServerState) -> None:
    s = state.settings
    if state.chat_spec is not None:
        try:
            engine = await asyncio.to_thread(factory.create_engine, state.chat_spec, s)
            state.metrics.watch_engine(engine.info.id, engine.stats)
            state.generation = GenerationService(engine, state.chat_spec.names(), state.metrics)
            info = engine.info
            log.info("chat model %s ready: engine=%s precision=%s context=%d slots=%d threads=%d",
                     info.id, info.engine, info.precision, info.context_length, s.parallel, s.threads)
        except Exception as exc:  # noqa: BLE001 - reported on /v1/health/ready and in the log
            state.load_errors["chat"] = str(exc)
            log.error("chat model %s failed to load: %s", state.chat_spec.id, exc)
    if state.embedding_spec is not None:
        try:
            encoder = await asyncio.to_thread(factory.create_encoder, state.embedding_spec, s)
            state.embeddings = EmbeddingService(
                encoder, state.embedding_spec.names(), state.encoder_metrics, max_batch=s.embed_max_batch
            )
            log.info("embedding model %s ready: %s", encoder.info.id, encoder.info.runtime)
        except Exception as exc:  # noqa: BLE001
            state.load_errors["embedding"] = str(exc)
            log.error("embedding model %s failed to load: %s", state.embedding_spec.id, exc)
    try:
        if state.ranking_spec is not None:
            ranker = await asyncio.to_thread(factory.create_cross_encoder, state.ranking_spec, s,
                                             state.encoder_metrics)
            state.ranking = RankingService(ranker, state.ranking_spec.names())
        elif state.ranking_by_embeddings and state.embeddings is not None:
            ranker = EmbeddingSimilarityRanker(state.embeddings)
            state.ranking = RankingService(ranker, (ranker.info.id, *state.embedding_spec.names()))  # type: ignore[union-attr]
        if state.ranking is not None:
            log.info("ranking ready: %s (%s)", state.ranking.model_id, state.ranking.ranker.info.method)
    except Exception as exc:  # noqa: BLE001
        state.load_errors["ranking"] = str(exc)
        log.error("ranking model failed to load: %s", exc)
    if state.embeddings is not None:
        try:
            state.kb = await asyncio.to_thread(_open_kb, state)
            await state.kb.start()
            log.info("knowledge base ready: %s store, %d ingestion worker(s)", s.vector_store, s.ingest_workers)
        except Exception as exc:  # noqa: BLE001
            state.kb = None
            state.load_errors["knowledge base"] = str(exc)
            log.error("knowledge base failed to open: %s", exc)
    state.loading_done = True


def _open_kb(state: ServerState) -> KnowledgeBase:
    assert state.embeddings is not None
    ranker = state.ranking.ranker if state.ranking is not None else None
    return KnowledgeBase(state.settings, open_store(state.settings), KBEmbedder(state.embeddings), ranker,
                         state.kb_metrics)


async def _unload(state: ServerState) -> None:
    if state.kb is not None:
        kb, state.kb = state.kb, None
        await kb.close()
    if state.generation is not None:
        engine, state.generation = state.generation.engine, None
        await engine.shutdown()
    if state.ranking is not None:
        await state.ranking.ranker.close()
        state.ranking = None
    if state.embeddings is not None:
        await state.embeddings.batcher.stop()
        state.embeddings = None


def build_app(settings: Settings) -> FastAPI:
    state = _state_for(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loading = asyncio.create_task(_load(state))
        try:
            yield
        finally:
            if not loading.done():
                loading.cancel()
            with contextlib.suppress(BaseException):
                await loading
            await _unload(state)

    app = FastAPI(
        title="ingot",
        version=__version__,
        description="OpenAI-compatible model serving (chat, completions, embeddings, ranking) from one process.",
        lifespan=lifespan,
    )
    app.state.ingot = state
    install_error_handlers(app)
    install_middleware(app, settings, state.registry)  # request id, body limit, API keys and quotas
    for router in (generation.router, embeddings.router, models.router, ops.router, tokenizer.router,
                   collections.router, search.router, rag.router, ui.router):
        app.include_router(router)
    app.include_router(keys_routes.router)
    app.include_router(usage_routes.router)
    return app
