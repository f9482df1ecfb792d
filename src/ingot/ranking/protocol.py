"""The ranker contract: score passages against a query (higher = more relevant)."""

from __future__ import annotations

import abc
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class RankerInfo:
    id: str
    method: str  # "cross-encoder" | "embedding-similarity"
    max_tokens: int


class Ranker(abc.ABC):
    @property
    @abc.abstractmethod
    def info(self) -> RankerInfo: ...

    @abc.abstractmethod
    async def logits(self, query: str, passages: list[str], truncate: str) -> np.ndarray:
        """One raw score per passage; raise InvalidRequestError when truncate="NONE" and
        a query-passage pair is longer than the model accepts."""

    @abc.abstractmethod
    def relevance(self, logits: np.ndarray) -> np.ndarray:
        """Scores mapped to [0, 1] for /v1/rerank's ``relevance_score``."""

    async def close(self) -> None:
        """Release worker threads."""
