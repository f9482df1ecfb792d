"""What the routes need: the app's ``Services`` (ingot/bootstrap.py, built once per app, no
globals) and one dependency per service that answers 404 when it is switched off and 503
while it loads or after it failed."""

from __future__ import annotations

from fastapi import Request

from ingot.bootstrap import Services
from ingot.embeddings.service import EmbeddingService
from ingot.errors import NotFoundError, NotReadyError
from ingot.generation.service import GenerationService
from ingot.kb.service import KnowledgeBase
from ingot.rag.service import RagService
from ingot.ranking.service import RankingService
from ingot.server.openai.response_store import ResponseStore

ServerState = Services  # the name the routes' type hints use


def get_state(request: Request) -> Services:
    return request.app.state.ingot


def _service(request: Request, kind: str, attribute: str, setting: str):  # noqa: ANN202
    state = get_state(request)
    service = getattr(state, attribute)
    if service is not None:
        return service
    if not state.wants()[kind]:
        message = (f"this server has no knowledge base: it needs an embedding model (set {setting})"
                   if kind == "knowledge base" else f"this server has no {kind} model (set {setting})")
        raise NotFoundError(message, code="model_not_found")
    if kind in state.load_errors:
        raise NotReadyError(f"the {kind} model failed to load: {state.load_errors[kind]}")
    raise NotReadyError(f"the {kind} model is still loading; retry shortly")


def get_generation(request: Request) -> GenerationService:
    return _service(request, "chat", "generation", "INGOT_MODEL")


def get_embeddings(request: Request) -> EmbeddingService:
    return _service(request, "embedding", "embeddings", "INGOT_EMBEDDING_MODEL")


def get_ranking(request: Request) -> RankingService:
    return _service(request, "ranking", "ranking", "INGOT_RANKING_MODEL")


def get_kb(request: Request) -> KnowledgeBase:
    """The knowledge base needs the embedding model: 404 when it is switched off, 503 while loading."""
    return _service(request, "knowledge base", "kb", "INGOT_EMBEDDING_MODEL")


def get_rag(request: Request) -> RagService:
    """RAG needs the chat model and the knowledge base; each missing one answers as its own route would."""
    get_generation(request)
    get_kb(request)
    rag = get_state(request).rag
    if rag is None:
        raise NotReadyError("RAG is still loading; retry shortly")
    return rag


def get_response_store(request: Request) -> ResponseStore:
    """Stored Responses API responses (``app.state.responses``, opened by ``build_app``)."""
    return request.app.state.responses
