"""/v1/models: what this server serves (OpenAI shape plus ingot's details)."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from ingot.models.registry import UnknownModelError
from ingot.server.state import ServerState, get_state

router = APIRouter(tags=["models"])


def _card(state: ServerState) -> dict:
    spec = state.spec
    card = {
        "id": spec.id,
        "object": "model",
        "created": int(state.started_at),
        "owned_by": "ingot",
        "kind": spec.kind,
        "aliases": list(spec.aliases),
        "ready": state.generation is not None,
    }
    if state.generation is not None:
        info = state.generation.engine.info
        card.update(max_model_len=info.context_length, engine=info.engine, precision=info.precision)
    return card


@router.get("/v1/models")
async def list_models(state: ServerState = Depends(get_state)) -> dict:
    return {"object": "list", "data": [_card(state)]}


@router.get("/v1/models/{model_id:path}")
async def get_model(model_id: str, state: ServerState = Depends(get_state)) -> dict:
    if model_id.lower() not in {n.lower() for n in state.spec.names()}:
        raise UnknownModelError(f"The model '{model_id}' does not exist")
    return _card(state)
