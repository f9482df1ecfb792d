"""Where a lazy grammar may start: only at a token boundary right after its trigger.

llama.cpp's own lazy grammar (``llama_sampler_init_grammar_lazy_patterns``) starts inside a
token when the trigger ends mid-token and feeds the token's remaining bytes to the grammar;
when those bytes are ones the grammar rejects (SmolLM2 writes ``></`` after ``<tool_call``)
it throws through ctypes and the whole process aborts. Here the trigger can only be
completed by a token that ends exactly where the trigger ends: while the output ends with a
proper prefix of the trigger, the tokens that would complete it and run past it are masked,
so the grammar always starts on a clean boundary, with nothing half-consumed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class TriggerMasks:
    """For each proper prefix of ``trigger`` (by length ``k``, 0 = none written yet): the
    tokens whose bytes, written after that prefix, would complete the trigger and go on."""

    trigger: bytes
    by_prefix: dict[int, np.ndarray] = field(default_factory=dict)

    @classmethod
    def build(cls, trigger: bytes, pieces: list[bytes]) -> "TriggerMasks":
        by_prefix: dict[int, list[int]] = {}
        last = trigger[-1:]
        for token, piece in enumerate(pieces):
            if last not in piece:  # the trigger's last byte must be in the completing piece
                continue
            for k in range(len(trigger)):
                if _overruns(trigger, k, piece):
                    by_prefix.setdefault(k, []).append(token)
        return cls(trigger, {k: np.asarray(ids, dtype=np.int64) for k, ids in by_prefix.items()})

    def banned(self, tail: bytes) -> np.ndarray | None:
        """The tokens to mask after output ending in ``tail`` (None: nothing to mask)."""
        found = [ids for k, ids in self.by_prefix.items() if k == 0 or tail.endswith(self.trigger[:k])]
        if not found:
            return None
        return found[0] if len(found) == 1 else np.unique(np.concatenate(found))


def _overruns(trigger: bytes, k: int, piece: bytes) -> bool:
    """Whether ``piece`` written after ``trigger[:k]`` contains the trigger ending before the
    piece does (the trigger would complete mid-token)."""
    text = trigger[:k] + piece
    start = text.find(trigger)
    while start >= 0:
        end = start + len(trigger)
        if end > k and end < len(text):  # completed by this piece, with bytes after it
            return True
        start = text.find(trigger, start + 1)
    return False


def masks_for(cache: dict[bytes, TriggerMasks], trigger: bytes, pieces: list[bytes]) -> TriggerMasks:
    """Built once per model (``cache`` lives on it) and trigger: one pass over the vocabulary."""
    if trigger not in cache:
        cache[trigger] = TriggerMasks.build(trigger, pieces)
    return cache[trigger]
