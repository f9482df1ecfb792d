"""App factory: ``build_app(settings)`` wires state, routers and error handlers; models
load in the lifespan (ingot/bootstrap.py, blocking loads in worker threads), so liveness
answers while a big model loads and readiness turns green only when every configured
model can serve."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import AsyncIterator

from fastapi import FastAPI

from ingot import __version__
from ingot.bootstrap import Services, load, plan_services
from ingot.config import Settings
from ingot.server.errors import install_error_handlers
from ingot.server.middleware import install_middleware
from ingot.server.openai.response_store import SqlResponseStore
from ingot.server.routes import keys as keys_routes, usage as usage_routes
from ingot.server.routes import collections, embeddings, generation, models, ops, rag, search, tokenizer, ui
from ingot.server.routes import messages as anthropic_messages
from ingot.server.routes import responses as responses_routes

log = logging.getLogger("ingot.server")


async def _load_and_report(services: Services) -> None:
    started = time.monotonic()
    await load(services, tolerate=True)
    parts = [f"{kind}: {'failed' if kind in services.load_errors else 'ready'}"
             for kind, wanted in services.wants().items() if wanted]
    log.info("loading done in %.1f s (%s)", time.monotonic() - started, ", ".join(parts) or "no models")


def build_app(settings: Settings) -> FastAPI:
    services = plan_services(settings)  # a model name typo fails here, before the port opens

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loading = asyncio.create_task(_load_and_report(services))
        try:
            yield
        finally:
            if not loading.done():
                loading.cancel()
            with contextlib.suppress(BaseException):
                await loading
            await services.close()
            app.state.responses.close()

    app = FastAPI(
        title="ingot",
        version=__version__,
        description="OpenAI-compatible model serving (chat, completions, embeddings, ranking) from one process.",
        lifespan=lifespan,
    )
    app.state.ingot = services
    app.state.responses = SqlResponseStore(settings.data_dir, settings.database_url)  # Responses API, store: true (opens on first use)
    install_error_handlers(app)
    install_middleware(app, settings, services.registry)  # request id, body limit, API keys and quotas
    for router in (generation.router, embeddings.router, models.router, ops.router, tokenizer.router,
                   collections.router, search.router, rag.router, ui.router):
        app.include_router(router)
    app.include_router(keys_routes.router)
    app.include_router(usage_routes.router)
    app.include_router(anthropic_messages.router)
    app.include_router(responses_routes.router)
    return app
