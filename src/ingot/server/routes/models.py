"""/v1/models: every model this server serves, with its kind (chat, embedding, ranking)."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from ingot.models.registry import UnknownModelError
from ingot.server.state import ServerState, get_state

router = APIRouter(tags=["models"])


def model_cards(state: ServerState) -> list[dict]:
    cards = []
    base = {"object": "model", "created": int(state.started_at), "owned_by": "ingot"}
    if state.chat_spec is not None:
        card = {**base, "id": state.chat_spec.id, "kind": "chat", "aliases": list(state.chat_spec.aliases),
                "ready": state.generation is not None}
        if state.generation is not None:
            info = state.generation.engine.info
            card.update(max_model_len=info.context_length, engine=info.engine, precision=info.precision,
                        sampling_defaults=state.generation.sampling_defaults)
        cards.append(card)
    if state.embedding_spec is not None:
        card = {**base, "id": state.embedding_spec.id, "kind": "embedding",
                "aliases": list(state.embedding_spec.aliases), "ready": state.embeddings is not None}
        if state.embeddings is not None:
            info = state.embeddings.encoder.info
            card.update(max_model_len=info.max_tokens, dimensions=info.dimensions, engine=info.runtime)
        cards.append(card)
    if state.ranking is not None:
        info = state.ranking.ranker.info
        cards.append({**base, "id": info.id, "kind": "ranking", "aliases": [], "ready": True,
                      "method": info.method, "max_model_len": info.max_tokens})
    return cards


@router.get("/v1/models")
async def list_models(state: ServerState = Depends(get_state)) -> dict:
    return {"object": "list", "data": model_cards(state)}


@router.get("/v1/models/{model_id:path}")
async def get_model(model_id: str, state: ServerState = Depends(get_state)) -> dict:
    wanted = model_id.lower()
    for card in model_cards(state):
        if wanted == card["id"].lower() or wanted in (a.lower() for a in card["aliases"]):
            return card
    raise UnknownModelError(f"The model '{model_id}' does not exist")
