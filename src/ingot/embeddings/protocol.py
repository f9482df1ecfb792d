"""The contract every embedding runtime implements.

Encoders work on token ids, not text: the service tokenizes once (it needs the counts
for usage, limits and truncation anyway), and token-id inputs from clients take the
same path.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass

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
