"""What the routes need, built once per app (no globals, no import-time side effects)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from fastapi import Request
from prometheus_client import CollectorRegistry

from ingot.config import Settings
from ingot.engines.protocol import NotReadyError
from ingot.generation.service import GenerationService
from ingot.metrics import GenerationMetrics
from ingot.models.registry import ModelSpec


@dataclass
class ServerState:
    settings: Settings
    spec: ModelSpec
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    started_at: float = field(default_factory=time.time)
    generation: GenerationService | None = None
    load_error: str | None = None
    metrics: GenerationMetrics = field(init=False)

    def __post_init__(self) -> None:
        self.metrics = GenerationMetrics(self.registry)


def get_state(request: Request) -> ServerState:
    return request.app.state.ingot


def get_generation(request: Request) -> GenerationService:
    state = get_state(request)
    if state.generation is None:
        if state.load_error:
            raise NotReadyError(f"the model failed to load: {state.load_error}")
        raise NotReadyError("the model is still loading; retry shortly")
    return state.generation
