"""/v1/embeddings, /v1/ranking (NIM) and /v1/rerank (Cohere/Jina/vLLM)."""

from __future__ import annotations

import functools
import json
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from ingot.embeddings.service import EmbeddingRequest, EmbeddingService
from ingot.offload import REQUEST_POOL
from ingot.ranking.service import RankingRequest, RankingService, RerankRequest
from ingot.server.middleware import OffloadedJSONRoute
from ingot.server.state import get_embeddings, get_ranking, get_state

router = APIRouter(tags=["retrieval models"], route_class=OffloadedJSONRoute)


# Responses are written here rather than by FastAPI, whose default path would re-validate
# and walk every float of every vector through jsonable_encoder (it dominated small requests).


@router.post("/v1/embeddings")
async def create_embeddings(body: EmbeddingRequest, service: EmbeddingService = Depends(get_embeddings)) -> Response:
    result = await service.embed(body)
    content = await REQUEST_POOL.run(render_list, result, size=len(result["data"]) * 512)
    return Response(content, media_type="application/json")


def render_list(result: dict[str, Any]) -> bytes:
    """The JSON of a list answer, one ``data`` item at a time, as JSONResponse would write it.

    Why not ``json.dumps`` in a worker: it is one C call that holds the GIL throughout
    (2.5 s for 2,048 float vectors), so the event loop would stall just the same. Item by
    item, the loop gets the GIL back between items."""
    dump = functools.partial(json.dumps, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    fields = []
    for key, value in result.items():
        rendered = "[" + ",".join(dump(item) for item in value) + "]" if key == "data" else dump(value)
        fields.append(f"{dump(key)}:{rendered}")
    return ("{" + ",".join(fields) + "}").encode()


@router.post("/v1/ranking")
async def ranking(body: RankingRequest, request: Request,
                  service: RankingService = Depends(get_ranking)) -> JSONResponse:
    with get_state(request).encoder_metrics.track(service.model_id, "ranking"):
        return JSONResponse(await service.ranking(body))


@router.post("/v1/rerank")
async def rerank(body: RerankRequest, request: Request, service: RankingService = Depends(get_ranking)) -> JSONResponse:
    with get_state(request).encoder_metrics.track(service.model_id, "ranking"):
        return JSONResponse(await service.rerank(body))
