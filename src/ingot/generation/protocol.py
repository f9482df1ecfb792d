"""OpenAI wire models for requests. Validation lives here (cross-field checks name the bad
parameter) and ``to_sampling_params`` converts wire -> engine, once, for both endpoints.

Unknown fields are ignored rather than rejected: clients add new OpenAI fields faster
than servers learn them, and a 400 for ``store`` or ``metadata`` helps nobody.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from ingot.engines.protocol import SamplingParams
from ingot.errors import InvalidRequestError
from ingot.wire import WireModel

MAX_N = 16
MAX_STOP = 16
MAX_TOP_LOGPROBS = 20


class StreamOptions(WireModel):
    include_usage: bool = False
    continuous_usage_stats: bool = False


class JsonSchemaFormat(WireModel):
    name: str = "response"
    description: str | None = None
    schema_: dict[str, Any] = Field(default_factory=dict, alias="schema")
    strict: bool | None = None


class ResponseFormat(WireModel):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaFormat | None = None

    @model_validator(mode="after")
    def _schema_present(self) -> "ResponseFormat":
        if self.type == "json_schema" and self.json_schema is None:
            raise ValueError("response_format.json_schema is required when type is 'json_schema'")
        return self


GUIDED_KINDS = ("json", "regex", "choice", "grammar")


class StructuredOutputs(WireModel):
    """vLLM's ``structured_outputs`` (one of them)."""

    json_: dict[str, Any] | str | None = Field(None, alias="json")
    regex: str | None = None
    choice: list[str] | None = None
    grammar: str | None = None


class NvExt(WireModel):
    """NVIDIA NIM's ``nvext`` guided-decoding fields."""

    guided_json: dict[str, Any] | str | None = None
    guided_regex: str | None = None
    guided_choice: list[str] | None = None
    guided_grammar: str | None = None


class SamplingFields(WireModel):
    """Fields shared by /v1/chat/completions and /v1/completions."""

    model: str | None = None
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(None, ge=0)
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, ge=0.0, le=1.0)
    n: int | None = Field(1, ge=1, le=MAX_N)
    seed: int | None = None
    stop: str | list[str] | None = None
    presence_penalty: float | None = Field(0.0, ge=-2.0, le=2.0)
    frequency_penalty: float | None = Field(0.0, ge=-2.0, le=2.0)
    logit_bias: dict[str, float] | None = None
    user: str | None = None
    # Extensions that vLLM and llama.cpp users rely on.
    top_k: int | None = Field(None, ge=0)
    min_p: float | None = Field(None, ge=0.0, le=1.0)
    repetition_penalty: float | None = Field(None, gt=0.0, le=10.0)
    ignore_eos: bool = False
    stop_token_ids: list[int] | None = None
    include_stop_str_in_output: bool = False
    # Guided decoding, as vLLM (structured_outputs, or its older guided_*) and NIM (nvext) take it.
    structured_outputs: StructuredOutputs | None = None
    guided_json: dict[str, Any] | str | None = None
    guided_regex: str | None = None
    guided_choice: list[str] | None = None
    guided_grammar: str | None = None
    nvext: NvExt | None = None

    def guided(self) -> tuple[str, str, Any] | None:
        """The one guided-decoding constraint asked for, as (param, kind, value), kind one
        of json / regex / choice / grammar; None when there is none. Several: a 400."""
        found = []
        so = self.structured_outputs
        for kind in GUIDED_KINDS:
            if so is not None and getattr(so, "json_" if kind == "json" else kind) is not None:
                found.append((f"structured_outputs.{kind}", kind, getattr(so, "json_" if kind == "json" else kind)))
            if getattr(self, f"guided_{kind}") is not None:
                found.append((f"guided_{kind}", kind, getattr(self, f"guided_{kind}")))
            if self.nvext is not None and getattr(self.nvext, f"guided_{kind}") is not None:
                found.append((f"nvext.guided_{kind}", kind, getattr(self.nvext, f"guided_{kind}")))
        if len(found) > 1:
            raise InvalidRequestError("give one guided-decoding constraint, not several: "
                                      + ", ".join(f[0] for f in found), found[0][0])
        return found[0] if found else None

    @field_validator("stop")
    @classmethod
    def _stops(cls, v: str | list[str] | None) -> str | list[str] | None:
        if isinstance(v, list) and len(v) > MAX_STOP:
            raise ValueError(f"at most {MAX_STOP} stop sequences are allowed")
        return v

    @field_validator("logit_bias")
    @classmethod
    def _bias(cls, v: dict[str, float] | None) -> dict[str, float] | None:
        for key, bias in (v or {}).items():
            if not key.lstrip("-").isdigit():
                raise ValueError(f"logit_bias keys must be token ids, got {key!r}")
            if not -100 <= bias <= 100:
                raise ValueError(f"logit_bias values must be between -100 and 100, got {bias}")
        return v

    def stop_list(self) -> list[str]:
        if self.stop is None:
            return []
        return [self.stop] if isinstance(self.stop, str) else list(self.stop)

    def to_sampling_params(
        self, max_tokens: int | None, logprobs: int | None, prompt_logprobs: int | None, grammar: str | None,
        defaults: dict[str, float] | None = None,
    ) -> SamplingParams:
        """``defaults``: the model's recommended sampling for the fields this request left
        out (temperature, top_p, top_k, repetition_penalty); OpenAI's defaults otherwise."""
        d = defaults or {}

        def pick(name: str, fallback: float) -> float:
            value = getattr(self, name)
            return value if value is not None else d.get(name, fallback)

        return SamplingParams(
            max_tokens=max_tokens,
            temperature=pick("temperature", 1.0),
            top_p=pick("top_p", 1.0),
            top_k=int(pick("top_k", 0)),
            min_p=self.min_p or 0.0,
            seed=self.seed,
            stop=self.stop_list(),
            stop_token_ids=list(self.stop_token_ids or []),
            presence_penalty=self.presence_penalty or 0.0,
            frequency_penalty=self.frequency_penalty or 0.0,
            repetition_penalty=pick("repetition_penalty", 1.0),
            logit_bias={int(k): v for k, v in (self.logit_bias or {}).items()},
            logprobs=logprobs,
            prompt_logprobs=prompt_logprobs,
            grammar=grammar,
            ignore_eos=self.ignore_eos,
            include_stop_str_in_output=self.include_stop_str_in_output,
        )


class ChatMessage(WireModel):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[dict[str, Any]] | None = None
    name: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None

    def text(self) -> str:
        """The message's text; content parts other than text are rejected."""
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        pieces = []
        for part in self.content:
            kind = part.get("type")
            if kind not in ("text", "input_text"):
                raise ValueError(f"content part type {kind!r} is not supported by this model (text only)")
            pieces.append(str(part.get("text", "")))
        return "".join(pieces)


class ChatCompletionRequest(SamplingFields):
    messages: list[ChatMessage] = Field(..., min_length=1)
    max_completion_tokens: int | None = Field(None, ge=0)
    logprobs: bool | None = False
    top_logprobs: int | None = Field(None, ge=0, le=MAX_TOP_LOGPROBS)
    response_format: ResponseFormat | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    add_generation_prompt: bool = True

    @model_validator(mode="after")
    def _cross_checks(self) -> "ChatCompletionRequest":
        if self.top_logprobs is not None and self.top_logprobs > 0 and not self.logprobs:
            raise ValueError("top_logprobs requires logprobs to be true")
        return self

    def completion_budget(self) -> int | None:
        # OpenAI deprecated max_tokens for max_completion_tokens; honour whichever is set.
        return self.max_completion_tokens if self.max_completion_tokens is not None else self.max_tokens


class CompletionRequest(SamplingFields):
    # Required but nullable in OpenAI's spec; null means "start of a document" (the spec's
    # default is the end-of-text separator), so the model writes freely.
    prompt: str | list[str] | list[int] | list[list[int]] | None
    max_tokens: int | None = Field(16, ge=0)  # OpenAI's default for legacy completions
    echo: bool | None = False
    logprobs: int | None = Field(None, ge=0, le=MAX_TOP_LOGPROBS)
    best_of: int | None = Field(None, ge=0, le=MAX_N)
    suffix: str | None = None

    @field_validator("prompt")
    @classmethod
    def _nonempty(cls, v: Any) -> Any:
        if isinstance(v, list) and len(v) == 0:
            raise ValueError("prompt must not be an empty list")
        if isinstance(v, list) and v and isinstance(v[0], list) and any(len(p) == 0 for p in v):
            raise ValueError("token-id prompts must not be empty")
        return v

    @model_validator(mode="after")
    def _cross_checks(self) -> "CompletionRequest":
        if self.best_of is not None and self.best_of > (self.n or 1):
            raise ValueError("best_of greater than n is not supported")
        if self.suffix:
            raise ValueError("suffix (fill-in-the-middle) is not supported by this model")
        return self


class TokenizeRequest(WireModel):
    model: str | None = None
    prompt: str | None = None
    messages: list[ChatMessage] | None = None
    add_special_tokens: bool = True
    add_generation_prompt: bool = True
    return_token_strs: bool = False

    @model_validator(mode="after")
    def _one_input(self) -> "TokenizeRequest":
        if (self.prompt is None) == (self.messages is None):
            raise ValueError("give exactly one of prompt or messages")
        return self


class DetokenizeRequest(WireModel):
    model: str | None = None
    tokens: list[int]
