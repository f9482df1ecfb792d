"""Health, metadata, version and metrics: what orchestrators and operators poll."""

from __future__ import annotations

import platform

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ingot import __version__
from ingot.server.state import ServerState, get_state

router = APIRouter(tags=["operations"])


@router.get("/v1/health/live")
async def live() -> dict:
    """The process is up (Kubernetes livenessProbe)."""
    return {"object": "health.response", "message": "live", "status": "live"}


@router.get("/v1/health/ready")
async def ready(state: ServerState = Depends(get_state)) -> Response:
    """503 until the model is loaded and its worker is healthy (readinessProbe)."""
    if state.generation is None:
        message = f"model failed to load: {state.load_error}" if state.load_error else "model is loading"
        return JSONResponse({"object": "health.response", "message": message, "status": "not_ready"}, status_code=503)
    try:
        state.generation.engine.check_health()
    except RuntimeError as exc:
        return JSONResponse({"object": "health.response", "message": str(exc), "status": "unhealthy"}, status_code=503)
    return JSONResponse({"object": "health.response", "message": "ready", "status": "ready"})


@router.get("/v1/version")
async def version() -> dict:
    return {"release": __version__, "api": "v1"}


@router.get("/v1/metadata")
async def metadata(state: ServerState = Depends(get_state)) -> dict:
    s = state.settings
    engine = state.generation.engine.info if state.generation else None
    return {
        "version": __version__,
        "python": platform.python_version(),
        "modelInfo": [
            {
                "shortName": state.spec.id,
                "modelUrl": f"pypi:{state.spec.source.install_hint().split()[-1]}",
                "license": state.spec.license,
                "engine": engine.engine if engine else None,
                "precision": engine.precision if engine else None,
                "sha256": engine.sha256 if engine else None,
                "path": engine.path if engine else None,
                "maxModelLen": engine.context_length if engine else None,
            }
        ],
        "runtime": {"threads": s.threads, "parallel": s.parallel, "maxQueue": s.max_queue},
    }


def _metrics_response(state: ServerState) -> Response:
    return Response(generate_latest(state.registry), media_type=CONTENT_TYPE_LATEST)


@router.get("/v1/metrics")
async def metrics_v1(state: ServerState = Depends(get_state)) -> Response:
    return _metrics_response(state)


@router.get("/metrics", include_in_schema=False)
async def metrics_root(state: ServerState = Depends(get_state)) -> Response:
    """Same as /v1/metrics, where Prometheus scrapers and aiperf look by default."""
    return _metrics_response(state)
