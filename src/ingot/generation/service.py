"""The generation service: chat/completions requests in, typed events out.

Engine-independent and wire-independent: ``chat`` / ``complete`` admit the request and
return an async stream of ``generation.events``; the server's adapters (server/openai/)
turn those into OpenAI JSON or SSE, RAG adds citations to them, the CLI prints their text.
Metrics and token accounting are observed here, per engine step.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from ingot.engines.protocol import Engine, GenerationOutput, GenerationRequest, SamplingParams
from ingot.errors import ContextLengthError, InvalidRequestError
from ingot.generation.chat_template import render_chat
from ingot.generation.events import (
    AdmittedStream,
    Event,
    EventStream,
    Finish,
    PromptEcho,
    PromptToken,
    Started,
    TextDelta,
    ToolCallDelta,
    Usage,
)
from ingot.generation.fanout import Fanout
from ingot.generation.grammar import grammar_for_guided, grammar_for_json_object, grammar_for_json_schema
from ingot.generation.protocol import ChatCompletionRequest, CompletionRequest
from ingot.generation.tools import ToolCallStream, ToolPlan, plan_tools, template_knows_tools, template_messages
from ingot.metrics import GenerationMetrics
from ingot.models.registry import ServedNames
from ingot.offload import REQUEST_POOL
from ingot.security import usage


@dataclass
class _Timing:
    """Per-choice timing for the latency histograms."""

    start: float = field(default_factory=time.monotonic)
    first: float | None = None
    tokens: int = 0


class GenerationService:
    def __init__(
        self, engine: Engine, served_names: tuple[str, ...], metrics: GenerationMetrics,
        sampling_defaults: dict[str, float] | None = None, max_tokens_default: int | None = None,
    ) -> None:
        self.engine = engine
        self.sampling_defaults = dict(sampling_defaults or {})  # the model's, for fields a request omits
        # A chat request without a budget writes to the end of the context (OpenAI's and
        # vLLM's behaviour) unless the operator sets this cap (INGOT_MAX_TOKENS_DEFAULT).
        self.max_tokens_default = max_tokens_default
        self.model_id = engine.info.id
        self._served = ServedNames(self.model_id, (*served_names, *engine.adapter_names()), "chat")
        self._metrics = metrics
        info = engine.info
        digest = hashlib.sha256(f"{info.sha256}|{info.precision}|{info.engine}".encode()).hexdigest()
        self.fingerprint = f"fp_{digest[:12]}"
        self.max_piece_bytes = longest_piece_bytes(engine)

    # ---- helpers shared by both endpoints ------------------------------------------

    def check_model(self, name: str | None) -> None:
        self._served.check(name)

    async def chat_prompt_ids(
        self, request_messages: list, add_generation_prompt: bool = True, plan: ToolPlan | None = None,
        *, bounded: bool = True,
    ) -> list[int]:
        """The prompt's token ids: messages (tool calls and results included) and the
        request's tools, rendered with the model's template (see generation/tools.py).

        Rendering and tokenizing run in the request pool (ingot/offload.py), never on the
        event loop. ``bounded``: refuse a prompt too long for the context before tokenizing
        it (``check_prompt_chars``); off for /tokenize and count_tokens, which report any size."""
        size = sum(len(m.content) if isinstance(m.content, str) else 256 for m in request_messages)
        return await REQUEST_POOL.run(self._chat_prompt_sync, request_messages, add_generation_prompt, plan,
                                      bounded, size=size + 64 * len(request_messages))

    def _chat_prompt_sync(
        self, request_messages: list, add_generation_prompt: bool, plan: ToolPlan | None, bounded: bool
    ) -> list[int]:
        try:
            messages = [{"role": m.role, "content": m.text(), **({"name": m.name} if m.name else {}),
                         **({"tool_calls": m.tool_calls} if m.tool_calls else {}),
                         **({"tool_call_id": m.tool_call_id} if m.tool_call_id else {})}
                        for m in request_messages]
        except ValueError as exc:
            raise InvalidRequestError(str(exc), "messages") from exc
        info = self.engine.info
        knows_tools = template_knows_tools(info.chat_template)
        text = render_chat(
            info.chat_template, template_messages(messages, plan, knows_tools), bos_token=info.bos_token,
            eos_token=info.eos_token, add_generation_prompt=add_generation_prompt,
            tools=[t.openai() for t in plan.tools] if plan is not None and knows_tools else None,
        )
        if bounded:
            self.check_prompt_chars(text, "messages")
        # The template already wrote any BOS it wants; parse special tokens like <|im_start|>.
        return self.engine.tokenize(text, add_special=False)

    async def tokenize(self, text: str, add_special: bool, *, bounded: bool, param: str = "prompt") -> list[int]:
        """``engine.tokenize`` in the request pool; ``bounded`` as in ``chat_prompt_ids``."""
        return await REQUEST_POOL.run(self._tokenize_sync, text, add_special, bounded, param, size=len(text))

    def _tokenize_sync(self, text: str, add_special: bool, bounded: bool, param: str) -> list[int]:
        if bounded:
            self.check_prompt_chars(text, param)
        return self.engine.tokenize(text, add_special=add_special)

    def check_prompt_chars(self, text: str, param: str) -> None:
        """Refuse, before tokenizing, a prompt that cannot fit the context whatever its tokens.

        The rule can never refuse a prompt that fits: every byte of the text is part of
        exactly one token's piece (llama.cpp's BPE, SPM and RWKV vocabularies drop nothing),
        and no piece is longer than ``max_piece_bytes`` (the longest in the vocabulary,
        control tokens such as ``<|im_start|>`` included), so a prompt of T tokens has at
        most T * max_piece_bytes bytes, hence at most that many characters. A text with more
        characters than ``context_length * max_piece_bytes`` therefore has more tokens than
        the context holds. Unknown for other engines' tokenizers (normalizers may drop
        characters), so there the bound is off and the engine's own check decides."""
        if self.max_piece_bytes is None:
            return
        context = self.engine.info.context_length
        if len(text) > context * self.max_piece_bytes:
            raise ContextLengthError(
                f"This model's maximum context length is {context} tokens. However, your prompt is "
                f"{len(text)} characters long, more than {context} tokens can hold (no token of this "
                f"model is longer than {self.max_piece_bytes} bytes). Please reduce the length of the prompt.",
                param,
            )

    def _observe(self, timing: _Timing, out: GenerationOutput) -> None:
        now = time.monotonic()
        if timing.first is None and (out.token_ids or out.finish_reason):
            timing.first = now
            self._metrics.ttft.labels(self.model_id).observe(now - timing.start)
        usage.charge(completion=out.completion_tokens - timing.tokens)  # per step: aborted streams count too
        timing.tokens = out.completion_tokens
        if out.finish_reason is not None:
            m = self._metrics
            m.e2e.labels(self.model_id).observe(now - timing.start)
            m.generation_tokens.labels(self.model_id).inc(out.completion_tokens)
            m.finished.labels(self.model_id, out.finish_reason).inc()
            if out.completion_tokens > 1 and timing.first is not None:
                m.tpot.labels(self.model_id).observe((now - timing.first) / (out.completion_tokens - 1))

    async def _start(self, requests: list[GenerationRequest], prompt_tokens: int) -> Fanout:
        fanout = Fanout(self.engine, requests)
        await fanout.start()
        self._metrics.prompt_tokens.labels(self.model_id).inc(prompt_tokens)
        usage.charge(prompt=prompt_tokens)
        return fanout

    def _started(self, request_id: str, model: str | None, choices: int) -> Started:
        return Started(request_id, int(time.time()), model or self.model_id, self.fingerprint, choices)

    # ---- /v1/chat/completions ------------------------------------------------------

    async def chat(self, req: ChatCompletionRequest) -> EventStream:
        """Admit the request (errors raise here, before any event) and return its events."""
        self.check_model(req.model)
        plan = plan_tools(req.tools, req.tool_choice, req.parallel_tool_calls)
        formatted = req.response_format is not None and req.response_format.type != "text"
        guided = req.guided()
        if plan is not None and plan.forced and formatted:
            raise InvalidRequestError("a forced tool call and response_format cannot be combined", "tool_choice")
        if guided is not None and (formatted or plan is not None):
            raise InvalidRequestError(f"{guided[0]} cannot be combined with response_format or tools", guided[0])
        prompt = await self.chat_prompt_ids(req.messages, req.add_generation_prompt, plan)
        grammar = None
        if guided is not None:
            grammar = grammar_for_guided(*guided)
        elif plan is not None and plan.forced:
            grammar = plan.grammar()
        elif req.response_format is not None and req.response_format.type == "json_object":
            grammar = grammar_for_json_object()
        elif req.response_format is not None and req.response_format.type == "json_schema":
            grammar = grammar_for_json_schema(req.response_format.json_schema.schema_)  # type: ignore[union-attr]
        logprobs = (req.top_logprobs or 0) if req.logprobs else None
        budget = req.completion_budget()
        params = req.to_sampling_params(budget if budget is not None else self.max_tokens_default, logprobs, None,
                                        grammar, self.sampling_defaults)
        if plan is not None and not plan.forced and grammar is None:
            params.lazy_grammar = plan.lazy_grammar()
        request_id = f"chatcmpl-{uuid.uuid4().hex}"
        n = req.n or 1
        requests = [GenerationRequest(f"{request_id}-{i}", prompt, with_seed(params, i), req.model) for i in range(n)]
        fanout = await self._start(requests, len(prompt))
        events = self._chat_events(fanout, self._started(request_id, req.model, n), len(prompt))
        return AdmittedStream(events if plan is None else with_tool_calls(events, plan.names()), fanout.close)

    async def _chat_events(self, fanout: Fanout, started: Started, n_prompt: int) -> EventStream:
        timings = [_Timing() for _ in range(started.choices)]
        completion = [0] * started.choices
        cached = 0
        yield started
        async for index, out in fanout:
            self._observe(timings[index], out)
            completion[index] = out.completion_tokens
            if index == 0:
                cached = out.cached_tokens
            if out.text or out.logprobs is not None:
                yield TextDelta(index, out.text, out.logprobs)
            if out.finish_reason is not None:
                yield Finish(index, out.finish_reason, _stop_string(out))
        yield Usage(n_prompt, sum(completion), cached)

    # ---- /v1/completions -----------------------------------------------------------

    async def _completion_prompts(self, req: CompletionRequest) -> list[list[int]]:
        prompt = req.prompt
        if prompt is None:
            return [[self.engine.document_start_token()]]
        if isinstance(prompt, str):
            return [await self.tokenize(prompt, True, bounded=True)]
        if prompt and isinstance(prompt[0], int):
            return [list(prompt)]  # type: ignore[arg-type]
        if prompt and isinstance(prompt[0], list):
            return [list(p) for p in prompt]  # type: ignore[union-attr]
        return [await self.tokenize(p, True, bounded=True) for p in prompt]  # type: ignore[union-attr]

    async def complete(self, req: CompletionRequest) -> EventStream:
        """Admit every prompt x choice (errors raise here) and return their events; choice
        ``p * n + i`` is prompt ``p``'s ``i``-th."""
        self.check_model(req.model)
        prompts = await self._completion_prompts(req)
        echo = bool(req.echo)
        if req.max_tokens == 0 and not echo:
            raise InvalidRequestError("max_tokens must be at least 1 unless echo is true", "max_tokens")
        prompt_logprobs = req.logprobs if echo and req.logprobs is not None else None
        guided = req.guided()
        grammar = grammar_for_guided(*guided) if guided is not None else None
        params = req.to_sampling_params(req.max_tokens, req.logprobs, prompt_logprobs, grammar, self.sampling_defaults)
        request_id = f"cmpl-{uuid.uuid4().hex}"
        n = req.n or 1
        requests = [
            GenerationRequest(f"{request_id}-{p}-{i}", ids, with_seed(params, i), req.model)
            for p, ids in enumerate(prompts)
            for i in range(n)
        ]
        n_prompt = sum(len(ids) for ids in prompts)
        fanout = await self._start(requests, n_prompt)
        echoes = [self.engine.detokenize(ids) if echo else None for ids in prompts for _ in range(n)]
        prompt_ids = [ids for ids in prompts for _ in range(n)]
        started = self._started(request_id, req.model, len(requests))
        return AdmittedStream(self._completion_events(fanout, started, echoes, prompt_ids, n_prompt, n), fanout.close)

    async def _completion_events(
        self, fanout: Fanout, started: Started, echoes: list[str | None], prompt_ids: list[list[int]],
        n_prompt: int, n: int,
    ) -> EventStream:
        timings = [_Timing() for _ in echoes]
        completion = [0] * len(echoes)
        cached = [0] * len(echoes)
        yield started
        async for index, out in fanout:
            self._observe(timings[index], out)
            completion[index] = out.completion_tokens
            cached[index] = out.cached_tokens
            if echoes[index] is not None:
                yield PromptEcho(index, echoes[index], self._prompt_tokens(out, prompt_ids[index]))  # type: ignore[arg-type]
                echoes[index] = None
            if out.text or out.logprobs is not None:
                yield TextDelta(index, out.text, out.logprobs)
            if out.finish_reason is not None:
                yield Finish(index, out.finish_reason, _stop_string(out))
        # Each prompt is counted once, like prompt_tokens: its first choice's reuse.
        yield Usage(n_prompt, sum(completion), sum(cached[::n]))

    def _prompt_tokens(self, out: GenerationOutput, prompt_ids: list[int]) -> list[PromptToken] | None:
        """The echoed prompt's tokens with their log-probabilities, texts resolved here (the
        first token has no log-probability, only its text)."""
        if out.prompt_logprobs is None:
            return None
        return [
            PromptToken(self.engine.token_text(token_id), None, None) if entry is None
            else PromptToken(entry.token, entry.logprob, {t.token: t.logprob for t in entry.top})
            for token_id, entry in zip(prompt_ids, out.prompt_logprobs)
        ]


async def with_tool_calls(events: EventStream, names: set[str]) -> EventStream:
    """Each choice's text through a ``ToolCallStream``: calls become ``ToolCallDelta``s (a
    call's first names it, the rest carry its arguments as they arrive), and a choice that
    called ends with ``tool_calls``."""
    streams: dict[int, ToolCallStream] = {}
    sent: dict[int, int] = {}  # calls sent per choice: the next call's position

    def pieces(index: int, found: list[tuple[str, Any]], logprobs: list | None) -> list[Event]:
        out: list[Event] = []
        for kind, value in found:
            if kind == "text":
                out.append(TextDelta(index, value, logprobs))
                logprobs = None
            elif kind == "arguments":  # more of the call opened last
                out.append(ToolCallDelta(index, sent[index] - 1, value))
            else:
                out.append(ToolCallDelta(index, sent.get(index, 0), value.arguments, id=value.id, name=value.name))
                sent[index] = sent.get(index, 0) + 1
        if logprobs is not None:  # held-back text still carries its tokens' log-probabilities
            out.append(TextDelta(index, "", logprobs))
        return out

    async for event in events:
        if isinstance(event, TextDelta):
            stream = streams.setdefault(event.index, ToolCallStream(names))
            for piece in pieces(event.index, stream.feed(event.text), event.logprobs):
                yield piece
        elif isinstance(event, Finish):
            stream = streams.setdefault(event.index, ToolCallStream(names))
            for piece in pieces(event.index, stream.finish(), None):
                yield piece
            reason = "tool_calls" if stream.calls and event.reason == "stop" else event.reason
            yield Finish(event.index, reason, event.stop_sequence)
        else:
            yield event


def _stop_string(out: GenerationOutput) -> str | None:
    """The stop string that ended the output (a stop token id is not a sequence)."""
    return out.stop_reason if isinstance(out.stop_reason, str) else None


def longest_piece_bytes(engine: Engine) -> int | None:
    """Bytes of the vocabulary's longest token piece (control tokens included), the
    constant of ``GenerationService.check_prompt_chars``; None where that rule is not known
    to hold (tokenizers other than llama.cpp's) or the vocabulary cannot be read."""
    if engine.info.engine != "llama.cpp":
        return None
    try:
        longest = max(len(engine.token_text(t).encode("utf-8")) for t in range(engine.info.vocab_size))
    except Exception:  # noqa: BLE001 - a stand-in engine without a vocabulary: no early refusal
        return None
    return max(longest, 1)


def with_seed(params: SamplingParams, index: int) -> SamplingParams:
    """Choice ``index`` of ``n`` gets its own seed so the choices differ but stay reproducible."""
    if params.seed is None or index == 0:
        return params
    return dataclasses.replace(params, seed=params.seed + index)
