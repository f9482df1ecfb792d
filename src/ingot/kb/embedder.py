"""Text -> vectors for the knowledge base, on top of the embedding service's batcher, so
ingestion and queries share forward passes with ``/v1/embeddings`` traffic."""

from __future__ import annotations

import numpy as np

from ingot.embeddings.service import EmbeddingService

PASSAGE_GROUP = 128  # chunks per batcher call: big documents never flood the batcher's queue


class KBEmbedder:
    def __init__(self, service: EmbeddingService) -> None:
        self.service = service
        self.model_id = service.model_id
        self.dimensions = service.encoder.info.dimensions

    async def passages(self, texts: list[str]) -> np.ndarray:
        """Unit vectors of chunk texts (input_type=passage; chunks fit the model, END cut is a safety net)."""
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        parts = []
        for start in range(0, len(texts), PASSAGE_GROUP):
            ids = self.service.token_inputs(texts[start : start + PASSAGE_GROUP], "passage", "END")
            parts.append(await self.service.vectors(ids))
        return np.concatenate(parts)

    async def query(self, text: str) -> np.ndarray:
        ids = self.service.token_inputs([text], "query", "END")
        return (await self.service.vectors(ids))[0]
