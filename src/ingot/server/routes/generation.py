"""/v1/chat/completions and /v1/completions: validate, call the service, map to HTTP."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from ingot.generation.protocol import ChatCompletionRequest, CompletionRequest
from ingot.generation.service import GenerationService
from ingot.server.state import get_generation
from ingot.server.streaming import cancel_on_disconnect, sse_response

router = APIRouter(tags=["generation"])

CLIENT_CLOSED = 499  # nginx's code for "client closed request"; nobody is listening anyway
# With ``stream: true`` the 200 is Server-Sent Events; say so in /openapi.json next to the JSON body.
STREAMED: dict = {200: {"content": {"text/event-stream": {}}}}


def respond(result: object) -> Response:
    if result is None:
        return Response(status_code=CLIENT_CLOSED)
    if isinstance(result, dict):
        return JSONResponse(result)
    return sse_response(result)  # type: ignore[arg-type]


@router.post("/v1/chat/completions", responses=STREAMED)
async def create_chat_completion(
    body: ChatCompletionRequest, request: Request, service: GenerationService = Depends(get_generation)
) -> Response:
    return respond(await cancel_on_disconnect(request, service.chat(body)))


@router.post("/v1/completions", responses=STREAMED)
async def create_completion(
    body: CompletionRequest, request: Request, service: GenerationService = Depends(get_generation)
) -> Response:
    return respond(await cancel_on_disconnect(request, service.complete(body)))
