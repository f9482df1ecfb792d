"""Where a new request's prompt prefix can come from instead of being prefilled (issue 20).

A slot's own cache already serves a follow-up that lands in the same slot. This module
finds a *different* slot that holds, or is about to hold, a longer prefix of the prompt:
- a slot whose KV cells already hold it (a finished request's cache, or a running
  sequence's prompt and output so far): copy those cells now (``seq_cp``);
- a running sequence still prefilling a prompt that starts the same way (a burst of chats
  with one long system prompt, questions over the same passages, ``n`` > 1): wait for it
  to prefill the shared part, then copy, so the burst prefills that part once, not once per
  request.

With one KV stream per slot, llama.cpp copies a whole stream buffer (tens of MB for the
catalog's models: milliseconds), then the copy is cut back to the shared prefix; prefilling
``SHARE_WORTH_TOKENS`` prompt tokens costs far more (SmolLM2-135M prefills ~130 tok/s on one
core, the 1.5B ~30), so the threshold only keeps one-or-two-token template overlaps from
triggering copies. Pure functions of token lists: the scheduler owns the state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

# Prompt tokens a copy must save over what the request's own slot already holds.
SHARE_WORTH_TOKENS = 16


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """How many leading tokens ``a`` and ``b`` share."""
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


@dataclass(frozen=True)
class Donor:
    """A slot to copy the first ``tokens`` prompt tokens from; ``ready`` when its cells
    hold them now, else a running sequence there will once it has prefilled them."""

    slot: int
    tokens: int
    ready: bool


def best_donor(
    prompt: Sequence[int],
    own_slot: int,
    own_tokens: int,
    limit: int,
    slot_tokens: Sequence[Sequence[int]],
    prefilling_prompts: Mapping[int, Sequence[int]],
) -> Donor | None:
    """The donor that saves the most prefill for ``prompt``, or None if none saves
    ``SHARE_WORTH_TOKENS`` over the ``own_tokens`` its own slot reuses.

    ``slot_tokens[s]`` are the tokens whose KV cells slot ``s`` holds; ``prefilling_prompts``
    maps the slots of running sequences still prefilling to their prompts; ``limit`` caps
    what may be reused (at least one prompt token must be decoded for the first logits).
    A pending donor is chosen over a ready one only if it saves ``SHARE_WORTH_TOKENS`` more:
    waiting for it delays the request by the rest of that prefill.
    """
    ready = _longest(enumerate(slot_tokens), prompt, own_slot, limit, ready=True)
    pending = _longest(prefilling_prompts.items(), prompt, own_slot, limit, ready=False)
    floor = max(own_tokens, ready.tokens if ready else 0)
    if pending is not None and pending.tokens - floor >= SHARE_WORTH_TOKENS:
        return pending
    if ready is not None and ready.tokens - own_tokens >= SHARE_WORTH_TOKENS:
        return ready
    return None


def _longest(held: Iterable[tuple[int, Sequence[int]]], prompt: Sequence[int], own_slot: int, limit: int,
             ready: bool) -> Donor | None:
    """The slot among ``held`` (slot, tokens) other than ``own_slot`` sharing the most of
    ``prompt``, capped at ``limit``; the first such slot on ties."""
    best: Donor | None = None
    for slot, tokens in held:
        if slot == own_slot:
            continue
        shared = min(common_prefix(tokens, prompt), limit)
        if best is None or shared > best.tokens:
            best = Donor(slot, shared, ready)
    return best
