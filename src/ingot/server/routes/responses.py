"""The OpenAI Responses API: ``POST /v1/responses`` and the stored responses
(``GET``/``DELETE /v1/responses/{id}``, ``cancel``, ``input_items``). Thin: the wire
adapter (server/openai/responses.py) prepares the turn and renders the events; a stored
response is visible to the key that made it and to admins, and is a 404 to everyone else."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from ingot.errors import InvalidRequestError
from ingot.generation.service import GenerationService
from ingot.server.auth import get_principal
from ingot.server.middleware import OffloadedJSONRoute
from ingot.server.openai import responses
from ingot.server.openai.response_store import ResponseStore
from ingot.server.openai.responses_protocol import CreateResponseRequest
from ingot.server.routes.generation import STREAMED, respond
from ingot.server.state import get_generation, get_response_store

router = APIRouter(tags=["responses"], route_class=OffloadedJSONRoute)


@router.post("/v1/responses", responses=STREAMED)
async def create_response(
    body: CreateResponseRequest, request: Request, service: GenerationService = Depends(get_generation),
    store: ResponseStore = Depends(get_response_store),
) -> Response:
    principal = get_principal(request)
    turn = await responses.Turn.prepare(body, store, principal.key_id, principal.admin)
    return await respond(request, service.chat(turn.chat_request), full=turn.complete,
                         stream=turn.stream if body.stream else None)


@router.get("/v1/responses/{response_id}")
async def get_response(
    response_id: str, request: Request, stream: bool = False, store: ResponseStore = Depends(get_response_store)
) -> JSONResponse:
    if stream:
        raise InvalidRequestError("streaming a stored response again is not supported; omit 'stream'", "stream")
    principal = get_principal(request)
    record = await responses.load_visible(store, response_id, principal.key_id, principal.admin)
    return JSONResponse(record.response)


@router.delete("/v1/responses/{response_id}")
async def delete_response(
    response_id: str, request: Request, store: ResponseStore = Depends(get_response_store)
) -> JSONResponse:
    principal = get_principal(request)
    await responses.load_visible(store, response_id, principal.key_id, principal.admin)
    if not await asyncio.to_thread(store.delete, response_id):
        raise responses.not_found(response_id)
    return JSONResponse(responses.deleted(response_id))


@router.post("/v1/responses/{response_id}/cancel")
async def cancel_response(
    response_id: str, request: Request, store: ResponseStore = Depends(get_response_store)
) -> JSONResponse:
    principal = get_principal(request)
    record = await responses.load_visible(store, response_id, principal.key_id, principal.admin)
    raise responses.cannot_cancel(record)


@router.get("/v1/responses/{response_id}/input_items")
async def list_input_items(
    response_id: str, request: Request, limit: int = 20, order: str = "desc", after: str | None = None,
    store: ResponseStore = Depends(get_response_store),
) -> JSONResponse:
    principal = get_principal(request)
    record = await responses.load_visible(store, response_id, principal.key_id, principal.admin)
    return JSONResponse(responses.input_items_page(record, limit, order, after))
