"""Text -> vectors for the knowledge base, on top of the embedding service's batcher, so
ingestion and queries share forward passes with ``/v1/embeddings`` traffic.

It also tells the chunker how the model in use counts tokens and how many it takes, so
chunk budgets follow ``INGOT_EMBEDDING_MODEL`` instead of one hard-wired tokenizer.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np

from ingot.embeddings.service import EmbeddingService
from ingot.ingest.chunk import TokenCounter
from ingot.ingest.links import link_text

PASSAGE_GROUP = 128  # chunks per batcher call: big documents never flood the batcher's queue


class KBEmbedder:
    def __init__(self, service: EmbeddingService) -> None:
        self.service = service
        self.model_id = service.model_id
        self.dimensions = service.encoder.info.dimensions
        self.max_tokens = service.encoder.info.max_tokens  # special tokens included

    async def passages(self, texts: list[str]) -> np.ndarray:
        """Unit vectors of chunk texts (input_type=passage; chunks fit the model, END cut is a safety net).
        The model reads each chunk with Markdown link targets dropped (``ingest/links.py``)."""
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        parts = []
        for start in range(0, len(texts), PASSAGE_GROUP):
            group = [link_text(text) for text in texts[start : start + PASSAGE_GROUP]]
            ids = self.service.token_inputs(group, "passage", "END")
            parts.append(await self.service.vectors(ids))
        return np.concatenate(parts)

    async def query(self, text: str) -> np.ndarray:
        ids = self.service.token_inputs([text], "query", "END")
        return (await self.service.vectors(ids))[0]

    def token_counter(self) -> TokenCounter:
        """A counter of the tokens the model sees for a passage, for one document's
        chunking (a fresh one each time: its cache should not outlive the document).
        Every passage costs the model's special tokens plus its passage prefix, which
        :meth:`passages` prepends."""
        return TokenCounter(self._content_tokens, self._overhead)

    def _content_tokens(self, text: str) -> int:
        return len(self.service.encoder.tokenize([link_text(text)])[0]) - self._specials

    @cached_property
    def _specials(self) -> int:
        return len(self.service.encoder.tokenize([""])[0])

    @cached_property
    def _overhead(self) -> int:
        return len(self.service.encoder.tokenize([self.service.encoder.info.passage_prefix])[0])
