"""Any sentence-transformers CrossEncoder folder given by a local path, batched across
requests. Logits are the model's raw outputs; relevance is their sigmoid."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from ingot.batching import DynamicBatcher
from ingot.errors import InvalidRequestError
from ingot.offload import REQUEST_POOL
from ingot.ranking.protocol import Ranker, RankerInfo


class CrossEncoderRanker(Ranker):
    def __init__(
        self, model_id: str, path: Path, *, threads: int, max_batch: int = 32,
        on_batch: Callable[[int, float], None] | None = None,
    ) -> None:
        import torch
        from sentence_transformers import CrossEncoder

        torch.set_num_threads(threads)
        self._model = CrossEncoder(str(path), device="cpu", local_files_only=True)
        self._tokenizer = self._model.tokenizer
        max_tokens = int(self._model.max_length or self._tokenizer.model_max_length or 512)
        self._info = RankerInfo(id=model_id, method="cross-encoder", max_tokens=min(max_tokens, 4096))
        self._batcher: DynamicBatcher[tuple[str, str], float] = DynamicBatcher(
            self._predict, name="ranking", max_batch_items=max_batch, on_batch=on_batch
        )

    @property
    def info(self) -> RankerInfo:
        return self._info

    def _predict(self, pairs: list[tuple[str, str]]) -> list[float]:
        import torch

        scores = self._model.predict(pairs, batch_size=len(pairs), activation_fn=torch.nn.Identity(),
                                     convert_to_numpy=True, show_progress_bar=False)
        scores = np.asarray(scores, dtype=np.float32)
        return list(scores.reshape(len(pairs), -1)[:, 0])

    def _check_lengths(self, query: str, passages: list[str]) -> None:
        for i, passage in enumerate(passages):
            n = self._pair_length(query, passage)
            if n > self._info.max_tokens:
                raise InvalidRequestError(
                    f"query + passages[{i}] is {n} tokens, more than the ranker's {self._info.max_tokens}; "
                    "pass truncate=END", "passages",
                )

    def _pair_length(self, query: str, passage: str) -> int:
        return len(self._tokenizer(query, passage, truncation=False)["input_ids"])

    async def logits(self, query: str, passages: list[str], truncate: str) -> np.ndarray:
        if truncate == "NONE":  # tokenized in the request pool, off the event loop
            size = len(query) * len(passages) + sum(len(p) for p in passages)
            await REQUEST_POOL.run(self._check_lengths, query, passages, size=size)
        return np.asarray(await self._batcher.run([(query, p) for p in passages]), dtype=np.float32)

    def relevance(self, logits: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-logits))

    async def close(self) -> None:
        await self._batcher.stop()
