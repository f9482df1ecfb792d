"""The contract every generation engine implements (llama.cpp on CPU today, vLLM on GPU
next). The HTTP layer speaks only these types, so an engine can be swapped without
touching a route.

An engine takes token ids in and streams token ids, text deltas and log-probabilities
out. Chat templates, stop strings and grammars are resolved before the request reaches
the engine, except where the engine must enforce them per token (grammar, stop).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import AsyncIterator, Literal

from ingot.errors import ContextLengthError, InvalidRequestError

FinishReason = Literal["stop", "length", "abort"]


@dataclass(frozen=True)
class LazyGrammar:
    """A grammar that starts only when the output writes ``trigger`` and stops when it
    writes ``end`` (auto-mode tool calls: free text until ``<tool_call>``, then a valid
    call through ``</tool_call>``, then free again). ``grammar``'s root matches what
    follows the trigger, up to and including ``end``."""

    trigger: str
    grammar: str
    end: str


@dataclass
class SamplingParams:
    max_tokens: int | None = None  # None: up to the end of the context
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    min_p: float = 0.0
    seed: int | None = None
    stop: list[str] = field(default_factory=list)
    stop_token_ids: list[int] = field(default_factory=list)
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    repetition_penalty: float = 1.0
    logit_bias: dict[int, float] = field(default_factory=dict)
    logprobs: int | None = None  # None: off; k >= 0: chosen token plus k alternatives
    prompt_logprobs: int | None = None  # for echo: log-probs of each prompt token
    grammar: str | None = None  # GBNF, enforced per token
    lazy_grammar: LazyGrammar | None = None  # GBNF enforced between a trigger and an end marker
    ignore_eos: bool = False
    include_stop_str_in_output: bool = False


@dataclass
class GenerationRequest:
    request_id: str
    prompt_token_ids: list[int]
    params: SamplingParams
    model: str | None = None  # the name the client asked for; selects a LoRA adapter where the engine has it


@dataclass
class TokenLogprob:
    token_id: int
    token: str
    logprob: float
    bytes: list[int]
    top: list["TokenLogprob"] = field(default_factory=list)


@dataclass
class GenerationOutput:
    """One step of a request: new text and tokens since the previous output."""

    request_id: str
    text: str
    token_ids: list[int]
    logprobs: list[TokenLogprob] | None
    finish_reason: FinishReason | None
    prompt_tokens: int
    completion_tokens: int
    # Only on the first output, when prompt log-probs were asked for; index 0 is None
    # (the first token has no context to be predicted from).
    prompt_logprobs: list[TokenLogprob | None] | None = None
    stop_reason: str | int | None = None  # the stop string or token id that ended it
    cached_tokens: int = 0  # prompt tokens whose KV was reused from an earlier request


@dataclass(frozen=True)
class ModelInfo:
    id: str
    context_length: int  # per sequence
    vocab_size: int
    bos_token: str | None
    eos_token: str | None
    chat_template: str | None
    engine: str
    precision: str
    path: str
    sha256: str


class Engine(abc.ABC):
    """A running model. ``generate`` is an async generator; everything else is cheap."""

    @property
    @abc.abstractmethod
    def info(self) -> ModelInfo: ...

    @abc.abstractmethod
    def generate(self, request: GenerationRequest) -> AsyncIterator[GenerationOutput]:
        """Stream outputs until a finish reason. Raises QueueFullError/ContextLengthError/
        InvalidRequestError before the first output when the request cannot run."""

    @abc.abstractmethod
    def abort(self, request_id: str) -> None:
        """Stop a request and free its slot now (client went away)."""

    @abc.abstractmethod
    def tokenize(self, text: str, add_special: bool = True) -> list[int]: ...

    @abc.abstractmethod
    def detokenize(self, token_ids: list[int]) -> str: ...

    @abc.abstractmethod
    def document_start_token(self) -> int:
        """The token a prompt-less completion starts from (BOS, else end-of-text)."""

    @abc.abstractmethod
    def token_text(self, token_id: int) -> str:
        """One token's text, control tokens included (for logprobs and tokenizer info)."""

    @abc.abstractmethod
    def stats(self) -> dict[str, int]:
        """Live counters: running, waiting, slots, queue capacity."""

    @abc.abstractmethod
    def check_health(self) -> None:
        """Raise if the engine cannot serve (its worker died)."""

    @abc.abstractmethod
    async def shutdown(self) -> None: ...

    def adapter_names(self) -> tuple[str, ...]:
        """LoRA adapters served beside the base model, selected by the request's model name."""
        return ()


def check_budget(prompt_token_ids: list[int], max_tokens: int | None, limit: int, vocab_size: int) -> int:
    """Check a request fits the context; return its completion budget. Every engine uses
    this, so clients see the same limits and messages (OpenAI's wording) on any engine."""
    n_prompt = len(prompt_token_ids)
    if n_prompt == 0:
        raise InvalidRequestError("the prompt is empty", "prompt")
    bad = [t for t in prompt_token_ids if not 0 <= t < vocab_size]
    if bad:
        raise InvalidRequestError(f"token id {bad[0]} is outside the vocabulary (size {vocab_size})", "prompt")
    if n_prompt >= limit:
        raise ContextLengthError(
            f"This model's maximum context length is {limit} tokens. However, your prompt has "
            f"{n_prompt} tokens. Please reduce the length of the prompt."
        )
    if max_tokens is None:
        return limit - n_prompt
    if n_prompt + max_tokens > limit:
        raise ContextLengthError(
            f"This model's maximum context length is {limit} tokens. However, you requested "
            f"{n_prompt + max_tokens} tokens ({n_prompt} in the messages, {max_tokens} in the "
            "completion). Please reduce the length of the messages or completion.",
            param="max_tokens",
        )
    return max_tokens
