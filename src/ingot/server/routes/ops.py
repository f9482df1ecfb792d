"""Health, metadata, version and metrics: what orchestrators and operators poll."""

from __future__ import annotations

import platform

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ingot import __version__
from ingot.server.routes.models import model_cards
from ingot.server.state import ServerState, get_state

router = APIRouter(tags=["operations"])


@router.get("/v1/health/live")
async def live() -> dict:
    """The process is up (Kubernetes livenessProbe)."""
    return {"object": "health.response", "message": "live", "status": "live"}


@router.get("/v1/health/ready")
async def ready(state: ServerState = Depends(get_state)) -> Response:
    """503 until every configured model is loaded and healthy (readinessProbe)."""
    if not state.loading_done:
        return JSONResponse({"object": "health.response", "message": "models are loading", "status": "not_ready"},
                            status_code=503)
    if state.load_errors:
        message = "; ".join(f"{kind} model failed to load: {err}" for kind, err in state.load_errors.items())
        return JSONResponse({"object": "health.response", "message": message, "status": "not_ready"}, status_code=503)
    if state.generation is not None:
        try:
            state.generation.engine.check_health()
        except RuntimeError as exc:
            return JSONResponse({"object": "health.response", "message": str(exc), "status": "unhealthy"},
                                status_code=503)
    return JSONResponse({"object": "health.response", "message": "ready", "status": "ready"})


@router.get("/v1/version")
async def version() -> dict:
    return {"release": __version__, "api": "v1"}


@router.get("/v1/metadata")
async def metadata(state: ServerState = Depends(get_state)) -> dict:
    s = state.settings
    info = []
    for card in model_cards(state):
        entry = {"shortName": card["id"], "kind": card["kind"], "engine": card.get("engine"),
                 "maxModelLen": card.get("max_model_len")}
        if card["kind"] == "chat" and state.generation is not None:
            engine = state.generation.engine.info
            entry.update(precision=engine.precision, sha256=engine.sha256, path=engine.path,
                         license=state.chat_spec.license if state.chat_spec else None)
        info.append(entry)
    return {
        "version": __version__,
        "python": platform.python_version(),
        "modelInfo": info,
        "runtime": {"threads": s.threads, "threadsWhenBusy": min(s.threads_when_busy, s.threads),
                    "parallel": s.parallel, "maxQueue": s.max_queue,
                    "embedThreads": s.embed_threads},
    }


def _metrics_response(state: ServerState) -> Response:
    return Response(generate_latest(state.registry), media_type=CONTENT_TYPE_LATEST)


@router.get("/v1/metrics", response_class=PlainTextResponse)
async def metrics_v1(state: ServerState = Depends(get_state)) -> Response:
    return _metrics_response(state)


@router.get("/metrics", include_in_schema=False)
async def metrics_root(state: ServerState = Depends(get_state)) -> Response:
    """Same as /v1/metrics, where Prometheus scrapers and aiperf look by default."""
    return _metrics_response(state)
