"""Rank by cosine similarity of query and passage embeddings (asymmetric input types).

Cheap and always available: it reuses the embedding service's model and batcher."""

from __future__ import annotations

import numpy as np

from ingot.embeddings.service import EmbeddingService
from ingot.ranking.protocol import Ranker, RankerInfo


class EmbeddingSimilarityRanker(Ranker):
    def __init__(self, embeddings: EmbeddingService) -> None:
        self._embeddings = embeddings
        info = embeddings.encoder.info
        self._info = RankerInfo(id=f"{info.id}-similarity", method="embedding-similarity", max_tokens=info.max_tokens)

    @property
    def info(self) -> RankerInfo:
        return self._info

    async def logits(self, query: str, passages: list[str], truncate: str) -> np.ndarray:
        q_ids = await self._embeddings.prepare([query], "query", truncate)
        p_ids = await self._embeddings.prepare(passages, "passage", truncate)
        vectors = await self._embeddings.vectors(q_ids + p_ids)
        return vectors[1:] @ vectors[0]

    def relevance(self, logits: np.ndarray) -> np.ndarray:
        return np.clip((logits + 1.0) / 2.0, 0.0, 1.0)
