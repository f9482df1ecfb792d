"""``ingot worker``'s HTTP side: health and metrics only, no API.

A worker is a process that only ingests: it claims upload items from the shared job
table (``kb/queue.py``) next to any number of ``ingot serve`` replicas, so ingestion
scales apart from serving. Orchestrators still need to know it is alive and how deep
the queue is, hence these three routes (the same paths as the server's, so one probe
configuration fits both):

* ``/v1/health/live`` - the process is up;
* ``/v1/health/ready`` - the embedding model is loaded and the workers run (503 before,
  or with the reason it failed);
* ``/metrics`` (and ``/v1/metrics``) - Prometheus text, including
  ``ingot_ingest_queue_depth`` for a queue-depth autoscaler.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ingot.bootstrap import Services, load, plan_services
from ingot.config import Settings, SettingsError

log = logging.getLogger("ingot.worker")


def build_worker_app(settings: Settings) -> FastAPI:
    """The worker: its services load in the lifespan (the embedding model, the store, the
    catalog and ``settings.ingest_workers`` ingestion workers over the shared queue)."""
    if settings.ingest_workers < 1:
        raise SettingsError("ingot worker needs INGOT_INGEST_WORKERS >= 1: a worker that ingests nothing")
    services = plan_services(settings, chat=False, embeddings=True, origin="upload")
    if services.embedding_spec is None:
        raise SettingsError("ingot worker embeds documents, but INGOT_EMBEDDING_MODEL is 'none'")
    services.ranking_spec, services.ranking_by_embeddings = None, False  # a worker never ranks

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await load(services, tolerate=True)
        if services.kb is not None:
            log.info("worker ready: %d ingestion worker(s) on the %s queue", settings.ingest_workers,
                     "shared" if services.kb.catalog.db.shared else "local")
        try:
            yield
        finally:
            await services.close()

    app = FastAPI(title="ingot worker", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.services = services

    @app.get("/v1/health/live")
    async def live() -> dict:
        return {"object": "health.response", "message": "live", "status": "live"}

    @app.get("/v1/health/ready")
    async def ready() -> Response:
        return _readiness(services)

    @app.get("/metrics")
    @app.get("/v1/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(services.registry), media_type=CONTENT_TYPE_LATEST)

    return app


def _readiness(services: Services) -> Response:
    if not services.loading_done:
        return JSONResponse({"object": "health.response", "message": "loading", "status": "not_ready"}, 503)
    if services.load_errors or services.kb is None:
        message = "; ".join(f"{kind} failed to load: {err}" for kind, err in services.load_errors.items())
        return JSONResponse({"object": "health.response", "message": message or "no knowledge base",
                             "status": "not_ready"}, 503)
    return JSONResponse({"object": "health.response", "message": "ready", "status": "ready"})
