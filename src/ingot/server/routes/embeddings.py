"""/v1/embeddings, /v1/ranking (NIM) and /v1/rerank (Cohere/Jina/vLLM)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from ingot.embeddings.service import EmbeddingRequest, EmbeddingService
from ingot.ranking.service import RankingRequest, RankingService, RerankRequest
from ingot.server.middleware import OffloadedJSONRoute
from ingot.server.state import get_embeddings, get_ranking, get_state

router = APIRouter(tags=["retrieval models"], route_class=OffloadedJSONRoute)


# Responses go out as JSONResponse: FastAPI's default path would re-validate and walk
# every float of every vector through jsonable_encoder, which dominated small requests.


@router.post("/v1/embeddings")
async def create_embeddings(body: EmbeddingRequest, service: EmbeddingService = Depends(get_embeddings)) -> JSONResponse:
    return JSONResponse(await service.embed(body))


@router.post("/v1/ranking")
async def ranking(body: RankingRequest, request: Request,
                  service: RankingService = Depends(get_ranking)) -> JSONResponse:
    with get_state(request).encoder_metrics.track(service.model_id, "ranking"):
        return JSONResponse(await service.ranking(body))


@router.post("/v1/rerank")
async def rerank(body: RerankRequest, request: Request, service: RankingService = Depends(get_ranking)) -> JSONResponse:
    with get_state(request).encoder_metrics.track(service.model_id, "ranking"):
        return JSONResponse(await service.rerank(body))
