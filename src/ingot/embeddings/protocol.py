"""The contract every embedding runtime implements.

Encoders work on token ids, not text: the service tokenizes once (it needs the counts
for usage, limits and truncation anyway), and token-id inputs from clients take the
same path.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class EncoderInfo:
    id: str
    dimensions: int
    max_tokens: int  # including special tokens
    query_prefix: str  # prepended for input_type=query (NIM); "" when the model has none
    passage_prefix: str
    runtime: str
    vocab_size: int


class Encoder(abc.ABC):
    @property
    @abc.abstractmethod
    def info(self) -> EncoderInfo: ...

    @abc.abstractmethod
    def tokenize(self, texts: list[str]) -> list[list[int]]:
        """Token ids with the model's special tokens, untruncated."""

    @abc.abstractmethod
    def truncate(self, ids: list[int], side: str) -> list[int]:
        """Cut ``ids`` to ``max_tokens`` from the "START" or "END", keeping special tokens."""

    @abc.abstractmethod
    def encode(self, batch: list[list[int]]) -> np.ndarray:
        """Unit-length float32 embeddings, one row per input (blocking, compute-bound)."""


def truncate_ids(ids: list[int], limit: int, side: str) -> list[int]:
    """Cut to ``limit`` tokens from the END or START of the content, keeping the leading
    and trailing special tokens ([CLS] ... [SEP]) as sentence-transformers does."""
    if len(ids) <= limit:
        return ids
    head, body, tail = ids[:1], ids[1:-1], ids[-1:]
    keep = limit - 2
    body = body[:keep] if side == "END" else body[len(body) - keep :]
    return head + body + tail


def pad_batch(batch: list[list[int]], pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Right-padded int64 token ids and attention mask for one forward pass."""
    width = max(len(ids) for ids in batch)
    input_ids = np.full((len(batch), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(batch), width), dtype=np.int64)
    for row, ids in enumerate(batch):
        input_ids[row, : len(ids)] = ids
        mask[row, : len(ids)] = 1
    return input_ids, mask


class HFTokenizerEncoder(Encoder):
    """Base for encoders that tokenize with a Hugging Face tokenizer (set ``_tokenizer``
    and ``_info`` in ``__init__``)."""

    _tokenizer: Any
    _info: EncoderInfo

    @property
    def info(self) -> EncoderInfo:
        return self._info

    def tokenize(self, texts: list[str]) -> list[list[int]]:
        return self._tokenizer(texts, add_special_tokens=True, truncation=False)["input_ids"]

    def truncate(self, ids: list[int], side: str) -> list[int]:
        return truncate_ids(ids, self._info.max_tokens, side)
