"""What the routes need, built once per app (no globals, no import-time side effects)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from fastapi import Request
from prometheus_client import CollectorRegistry

from ingot.config import Settings
from ingot.embeddings.service import EmbeddingService
from ingot.engines.protocol import NotReadyError
from ingot.generation.service import GenerationService
from ingot.kb.metrics import KnowledgeBaseMetrics
from ingot.kb.service import KnowledgeBase
from ingot.metrics import EncoderMetrics, GenerationMetrics
from ingot.models.registry import ModelSpec
from ingot.ranking.service import RankingService
from ingot.server.errors import APIError


@dataclass
class ServerState:
    settings: Settings
    chat_spec: ModelSpec | None
    embedding_spec: ModelSpec | None
    ranking_spec: ModelSpec | None  # a cross-encoder, or None
    ranking_by_embeddings: bool
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    started_at: float = field(default_factory=time.time)
    generation: GenerationService | None = None
    embeddings: EmbeddingService | None = None
    ranking: RankingService | None = None
    kb: KnowledgeBase | None = None
    load_errors: dict[str, str] = field(default_factory=dict)
    loading_done: bool = False
    metrics: GenerationMetrics = field(init=False)
    encoder_metrics: EncoderMetrics = field(init=False)
    kb_metrics: KnowledgeBaseMetrics = field(init=False)

    def __post_init__(self) -> None:
        self.metrics = GenerationMetrics(self.registry)
        self.encoder_metrics = EncoderMetrics(self.registry)
        self.kb_metrics = KnowledgeBaseMetrics(self.registry)

    def wants(self) -> dict[str, bool]:
        return {
            "chat": self.chat_spec is not None,
            "embedding": self.embedding_spec is not None,
            "ranking": self.ranking_spec is not None or self.ranking_by_embeddings,
            "knowledge base": self.embedding_spec is not None,
        }


def get_state(request: Request) -> ServerState:
    return request.app.state.ingot


def _service(request: Request, kind: str, attribute: str, setting: str):  # noqa: ANN202
    state = get_state(request)
    service = getattr(state, attribute)
    if service is not None:
        return service
    if not state.wants()[kind]:
        message = (f"this server has no knowledge base: it needs an embedding model (set {setting})"
                   if kind == "knowledge base" else f"this server has no {kind} model (set {setting})")
        raise APIError(404, message, type="not_found_error", code="model_not_found")
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
