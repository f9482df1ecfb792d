"""ingot <-> vLLM, as plain data: engine arguments from a profile, sampling parameters
from ingot's request, ingot outputs from vLLM's ``RequestOutput``.

Kept free of any vLLM import so it is unit-tested on machines without a GPU (vLLM needs
CUDA to import usefully); ``engine.py`` turns these dicts into vLLM's own classes. Field
names follow vLLM's ``AsyncEngineArgs``, ``SamplingParams`` (with ``output_kind=DELTA``,
so each output carries only new tokens and text), ``CompletionOutput`` and ``Logprob``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Protocol, Sequence

from ingot.engines.protocol import (
    FinishReason,
    GenerationOutput,
    SamplingParams,
    TokenLogprob,
)
from ingot.models.profiles import Profile

DTYPES = {"bf16": "bfloat16", "fp16": "float16"}
LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)  # ranks vLLM accepts for max_lora_rank


def engine_args(
    profile: Profile,
    weights: Path,
    served_name: str,
    max_model_len: int,
    adapters: Mapping[str, Path] | None = None,
    gpu_memory_utilization: float = 0.9,
) -> dict[str, Any]:
    """Keyword arguments for ``vllm.AsyncEngineArgs``. Pre-quantized checkpoints (fp8,
    nvfp4) carry their quantization in config.json, so vLLM detects it ("auto"); only
    online quantization (a bf16 checkpoint served as fp8) names one."""
    args: dict[str, Any] = {
        "model": str(weights),
        "tokenizer": str(weights),
        "served_model_name": served_name,
        "tensor_parallel_size": profile.tensor_parallel,
        "dtype": DTYPES.get(profile.precision, "auto"),
        "max_model_len": max_model_len,
        "gpu_memory_utilization": gpu_memory_utilization,
        "enable_prefix_caching": True,
    }
    if profile.quantization:
        args["quantization"] = profile.quantization
    if adapters:
        args["enable_lora"] = True
        args["max_loras"] = min(len(adapters), 8)
        args["max_lora_rank"] = max_lora_rank(adapters.values())
    return args


def max_lora_rank(folders: Sequence[Path] | Any) -> int:
    """The smallest rank vLLM accepts that fits every adapter (PEFT's adapter_config.json
    ``r``); vLLM refuses adapters above ``max_lora_rank`` and over-sizing wastes memory."""
    ranks = [16]
    for folder in folders:
        try:
            ranks.append(int(json.loads((Path(folder) / "adapter_config.json").read_text()).get("r", 16)))
        except (OSError, ValueError):
            continue
    need = max(ranks)
    return next((r for r in LORA_RANKS if r >= need), need)


def lora_ids(adapters: Mapping[str, Path]) -> dict[str, int]:
    """Stable positive integer ids per adapter name (vLLM's ``lora_int_id`` must be > 0
    and unique per adapter for the life of the engine)."""
    return {name: i for i, name in enumerate(sorted(adapters), start=1)}


def sampling_kwargs(params: SamplingParams, max_tokens: int) -> dict[str, Any]:
    """Keyword arguments for ``vllm.SamplingParams`` (``output_kind`` and the structured
    output object are added by the engine, which has vLLM's classes). ``grammar`` is the
    GBNF ingot builds for response_format; vLLM's xgrammar backend reads GBNF."""
    kwargs: dict[str, Any] = {
        "n": 1,
        # echo-only scoring (max_tokens 0) still decodes one token in vLLM; it is dropped
        # by OutputMapper, so the client sees no completion, as with llama.cpp.
        "max_tokens": max(1, max_tokens),
        "temperature": params.temperature,
        "top_p": params.top_p,
        "top_k": params.top_k if params.top_k > 0 else -1,  # -1: off, in every vLLM version
        "min_p": params.min_p,
        "seed": params.seed,
        "presence_penalty": params.presence_penalty,
        "frequency_penalty": params.frequency_penalty,
        "repetition_penalty": params.repetition_penalty,
        "stop": list(params.stop) or None,
        "stop_token_ids": list(params.stop_token_ids) or None,
        "ignore_eos": params.ignore_eos,
        "include_stop_str_in_output": params.include_stop_str_in_output,
        "logprobs": params.logprobs,
        "prompt_logprobs": params.prompt_logprobs,
        "logit_bias": {int(k): float(v) for k, v in params.logit_bias.items()} or None,
        "skip_special_tokens": True,
        "detokenize": True,
    }
    if params.grammar:
        kwargs["structured_outputs"] = {"grammar": params.grammar}
    return kwargs


# ---- outputs -------------------------------------------------------------------------------


class LogprobLike(Protocol):
    logprob: float
    rank: int | None
    decoded_token: str | None


class CompletionLike(Protocol):
    text: str
    token_ids: Sequence[int]
    logprobs: Sequence[Mapping[int, LogprobLike]] | None
    finish_reason: str | None
    stop_reason: int | str | None


def token_logprob(token_id: int, entry: LogprobLike | None, token_text: str) -> TokenLogprob:
    text = token_text if entry is None or entry.decoded_token is None else entry.decoded_token
    value = float("-inf") if entry is None else float(entry.logprob)
    return TokenLogprob(token_id=token_id, token=text, logprob=value, bytes=list(text.encode("utf-8")))


def position_logprobs(token_id: int, row: Mapping[int, LogprobLike], k: int,
                      token_text: Any = lambda _t: "") -> TokenLogprob:
    """One position: the chosen token plus the ``k`` most likely (by vLLM's rank, 1 = most
    likely). vLLM returns the chosen token too, even when it is outside the top k."""
    chosen = token_logprob(token_id, row.get(token_id), token_text(token_id))
    ranked = sorted(row.items(), key=lambda kv: (kv[1].rank if kv[1].rank is not None else 1 << 30, -kv[1].logprob))
    chosen.top = [token_logprob(t, lp, token_text(t)) for t, lp in ranked[:k]
                  if lp.rank is None or lp.rank <= k]
    return chosen


FINISH: dict[str, FinishReason] = {"stop": "stop", "length": "length", "abort": "abort"}


@dataclass
class OutputMapper:
    """Turns one request's stream of vLLM delta outputs into ingot ``GenerationOutput``s,
    keeping the running counts ingot reports (completion tokens so far)."""

    request_id: str
    prompt_token_ids: list[int]
    logprobs_k: int | None
    prompt_logprobs_k: int | None
    echo_only: bool = False  # max_tokens 0 with echo: report no completion tokens
    token_text: Any = field(default=lambda _t: "")
    completion_tokens: int = 0
    _first: bool = True

    def map(self, prompt_logprobs: Sequence[Mapping[int, LogprobLike] | None] | None,
            completion: CompletionLike, cached_tokens: int | None) -> GenerationOutput:
        token_ids = list(completion.token_ids)
        text = completion.text
        finish = completion.finish_reason
        if self.echo_only:
            token_ids, text, finish = [], "", ("length" if finish else None)
        self.completion_tokens += len(token_ids)
        logprobs = None
        if self.logprobs_k is not None and completion.logprobs is not None and not self.echo_only:
            logprobs = [position_logprobs(t, row, self.logprobs_k, self.token_text)
                        for t, row in zip(token_ids, completion.logprobs)]
        prompt_lp = None
        if self._first and self.prompt_logprobs_k is not None and prompt_logprobs is not None:
            prompt_lp = [None] + [
                position_logprobs(t, row, self.prompt_logprobs_k, self.token_text) if row is not None else None
                for t, row in zip(self.prompt_token_ids[1:], list(prompt_logprobs)[1:])
            ]
        self._first = False
        return GenerationOutput(
            request_id=self.request_id,
            text=text,
            token_ids=token_ids,
            logprobs=logprobs,
            finish_reason=FINISH.get(finish, "abort") if finish is not None else None,
            prompt_tokens=len(self.prompt_token_ids),
            completion_tokens=self.completion_tokens,
            prompt_logprobs=prompt_lp,
            stop_reason=completion.stop_reason if finish == "stop" else None,
            cached_tokens=int(cached_tokens or 0),
        )
