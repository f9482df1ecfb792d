"""App factory: ``build_app(settings)`` wires state, routers and error handlers; the engine
loads in the lifespan, in a worker thread, so liveness answers while a big model loads and
readiness turns green only when it can serve."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import AsyncIterator

from fastapi import FastAPI

from ingot import __version__
from ingot.config import Settings
from ingot.engines.factory import create_engine
from ingot.engines.protocol import Engine
from ingot.generation.service import GenerationService
from ingot.models.registry import find_model
from ingot.server.errors import install_error_handlers
from ingot.server.routes import generation, models, ops, tokenizer
from ingot.server.state import ServerState

log = logging.getLogger("ingot.server")


async def _load(state: ServerState) -> Engine | None:
    try:
        engine = await asyncio.to_thread(create_engine, state.spec, state.settings)
    except Exception as exc:  # noqa: BLE001 - reported on /v1/health/ready and in the log
        state.load_error = str(exc)
        log.error("model %s failed to load: %s", state.spec.id, exc)
        return None
    state.metrics.watch_engine(engine.info.id, engine.stats)
    state.generation = GenerationService(engine, state.spec.names(), state.metrics)
    info = engine.info
    log.info(
        "model %s ready: engine=%s precision=%s context=%d slots=%d threads=%d",
        info.id, info.engine, info.precision, info.context_length, state.settings.parallel, state.settings.threads,
    )
    return engine


def build_app(settings: Settings) -> FastAPI:
    spec = find_model(settings.model)
    state = ServerState(settings=settings, spec=spec)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loading = asyncio.create_task(_load(state))
        try:
            yield
        finally:
            engine = await loading if loading.done() else None
            if not loading.done():
                loading.cancel()
            state.generation = None
            if engine is not None:
                await engine.shutdown()

    app = FastAPI(
        title="ingot",
        version=__version__,
        description="OpenAI-compatible model serving (and, soon, retrieval) from one process.",
        lifespan=lifespan,
    )
    app.state.ingot = state
    install_error_handlers(app)
    for router in (generation.router, models.router, ops.router, tokenizer.router):
        app.include_router(router)
    return app
