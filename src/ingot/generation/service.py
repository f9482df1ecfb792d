"""The generation service: OpenAI chat/completions requests in, OpenAI responses out.

Engine-independent. The routes call ``chat`` / ``complete`` and get either a response dict
or an async iterator of SSE lines; all OpenAI formatting lives in ``responses``.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from dataclasses import dataclass, field
from typing import AsyncIterator

from ingot.engines.protocol import Engine, GenerationOutput, GenerationRequest, InvalidRequestError
from ingot.generation import responses as fmt
from ingot.generation.chat_template import render_chat
from ingot.generation.fanout import Fanout
from ingot.generation.grammar import grammar_for_json_object, grammar_for_json_schema
from ingot.generation.protocol import ChatCompletionRequest, CompletionRequest
from ingot.metrics import GenerationMetrics
from ingot.models.registry import ServedNames
from ingot.security import usage


@dataclass
class _Timing:
    """Per-choice timing for the latency histograms."""

    start: float = field(default_factory=time.monotonic)
    first: float | None = None
    tokens: int = 0


class GenerationService:
    def __init__(self, engine: Engine, served_names: tuple[str, ...], metrics: GenerationMetrics) -> None:
        self.engine = engine
        self.model_id = engine.info.id
        self._served = ServedNames(self.model_id, (*served_names, *engine.adapter_names()), "chat")
        self._metrics = metrics
        info = engine.info
        digest = hashlib.sha256(f"{info.sha256}|{info.precision}|{info.engine}".encode()).hexdigest()
        self.fingerprint = f"fp_{digest[:12]}"

    # ---- helpers shared by both endpoints ------------------------------------------

    def check_model(self, name: str | None) -> None:
        self._served.check(name)

    def chat_prompt_ids(self, request_messages: list, add_generation_prompt: bool = True) -> list[int]:
        try:
            messages = [{"role": m.role, "content": m.text(), **({"name": m.name} if m.name else {})}
                        for m in request_messages]
        except ValueError as exc:
            raise InvalidRequestError(str(exc), "messages") from exc
        info = self.engine.info
        text = render_chat(
            info.chat_template, messages, bos_token=info.bos_token, eos_token=info.eos_token,
            add_generation_prompt=add_generation_prompt,
        )
        # The template already wrote any BOS it wants; parse special tokens like <|im_start|>.
        return self.engine.tokenize(text, add_special=False)

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

    # ---- /v1/chat/completions ------------------------------------------------------

    async def chat(self, req: ChatCompletionRequest) -> dict | AsyncIterator[str]:
        self.check_model(req.model)
        if req.tools and req.tool_choice != "none":
            raise InvalidRequestError("tool calling is not supported by this server yet", "tools")
        prompt = self.chat_prompt_ids(req.messages, req.add_generation_prompt)
        grammar = None
        if req.response_format is not None and req.response_format.type == "json_object":
            grammar = grammar_for_json_object()
        elif req.response_format is not None and req.response_format.type == "json_schema":
            grammar = grammar_for_json_schema(req.response_format.json_schema.schema_)  # type: ignore[union-attr]
        logprobs = (req.top_logprobs or 0) if req.logprobs else None
        params = req.to_sampling_params(req.completion_budget(), logprobs, None, grammar)
        request_id = f"chatcmpl-{uuid.uuid4().hex}"
        n = req.n or 1
        requests = [
            GenerationRequest(f"{request_id}-{i}", prompt, fmt.with_seed(params, i), req.model) for i in range(n)
        ]
        fanout = await self._start(requests, len(prompt))
        head = fmt.Head(request_id, int(time.time()), req.model or self.model_id, self.fingerprint)
        if req.stream:
            options = req.stream_options
            return self._chat_stream(fanout, head, n, len(prompt), bool(options and options.include_usage))
        return await self._chat_full(fanout, head, n, len(prompt))

    async def _chat_full(self, fanout: Fanout, head: fmt.Head, n: int, n_prompt: int) -> dict:
        choices = [fmt.ChoiceAccumulator() for _ in range(n)]
        timings = [_Timing() for _ in range(n)]
        async for index, out in fanout:
            self._observe(timings[index], out)
            choices[index].add(out)
        return fmt.chat_response(head, choices, n_prompt)

    async def _chat_stream(
        self, fanout: Fanout, head: fmt.Head, n: int, n_prompt: int, include_usage: bool
    ) -> AsyncIterator[str]:
        timings = [_Timing() for _ in range(n)]
        completion = [0] * n
        cached = 0
        usage_field = include_usage
        try:
            for index in range(n):
                yield fmt.sse(fmt.chat_chunk(head, index, {"role": "assistant", "content": ""}, None, None, usage_field))
            async for index, out in fanout:
                self._observe(timings[index], out)
                completion[index] = out.completion_tokens
                if index == 0:
                    cached = out.cached_tokens
                if out.text or out.finish_reason or out.logprobs:
                    delta = {"content": out.text} if out.text or not out.finish_reason else {}
                    yield fmt.sse(
                        fmt.chat_chunk(head, index, delta, fmt.chat_logprobs(out.logprobs), out.finish_reason, usage_field)
                    )
            if include_usage:
                yield fmt.sse(fmt.usage_chunk(head, "chat.completion.chunk", n_prompt, sum(completion), cached))
        except Exception as exc:  # after the 200 went out, errors travel as an SSE frame
            yield fmt.sse(fmt.stream_error(exc))
        yield fmt.SSE_DONE

    # ---- /v1/completions -----------------------------------------------------------

    def _completion_prompts(self, req: CompletionRequest) -> list[list[int]]:
        prompt = req.prompt
        if prompt is None:
            return [[self.engine.document_start_token()]]
        if isinstance(prompt, str):
            return [self.engine.tokenize(prompt, add_special=True)]
        if prompt and isinstance(prompt[0], int):
            return [list(prompt)]  # type: ignore[arg-type]
        if prompt and isinstance(prompt[0], list):
            return [list(p) for p in prompt]  # type: ignore[union-attr]
        return [self.engine.tokenize(p, add_special=True) for p in prompt]  # type: ignore[union-attr]

    async def complete(self, req: CompletionRequest) -> dict | AsyncIterator[str]:
        self.check_model(req.model)
        prompts = self._completion_prompts(req)
        echo = bool(req.echo)
        if req.max_tokens == 0 and not echo:
            raise InvalidRequestError("max_tokens must be at least 1 unless echo is true", "max_tokens")
        prompt_logprobs = req.logprobs if echo and req.logprobs is not None else None
        params = req.to_sampling_params(req.max_tokens, req.logprobs, prompt_logprobs, None)
        request_id = f"cmpl-{uuid.uuid4().hex}"
        n = req.n or 1
        requests = [
            GenerationRequest(f"{request_id}-{p}-{i}", ids, fmt.with_seed(params, i), req.model)
            for p, ids in enumerate(prompts)
            for i in range(n)
        ]
        n_prompt = sum(len(ids) for ids in prompts)
        fanout = await self._start(requests, n_prompt)
        head = fmt.Head(request_id, int(time.time()), req.model or self.model_id, self.fingerprint)
        echo_texts = [self.engine.detokenize(ids) if echo else "" for ids in prompts for _ in range(n)]
        prompt_ids = [ids for ids in prompts for _ in range(n)]
        want_logprobs = req.logprobs is not None
        if req.stream:
            options = req.stream_options
            return self._complete_stream(
                fanout, head, echo_texts, prompt_ids, want_logprobs, n_prompt, n,
                bool(options and options.include_usage),
            )
        choices = [fmt.CompletionAccumulator(echo_texts[i], prompt_ids[i], self.engine) for i in range(len(requests))]
        timings = [_Timing() for _ in requests]
        async for index, out in fanout:
            self._observe(timings[index], out)
            choices[index].add(out)
        return fmt.completion_response(head, choices, n_prompt, want_logprobs, n)

    async def _complete_stream(
        self,
        fanout: Fanout,
        head: fmt.Head,
        echo_texts: list[str],
        prompt_ids: list[list[int]],
        want_logprobs: bool,
        n_prompt: int,
        n: int,
        include_usage: bool,
    ) -> AsyncIterator[str]:
        timings = [_Timing() for _ in echo_texts]
        completion = [0] * len(echo_texts)
        cached = [0] * len(echo_texts)
        offsets = [0] * len(echo_texts)
        try:
            async for index, out in fanout:
                self._observe(timings[index], out)
                completion[index] = out.completion_tokens
                cached[index] = out.cached_tokens
                prefix = ""
                if echo_texts[index]:
                    prefix, echo_texts[index] = echo_texts[index], ""
                logprobs, offsets[index] = fmt.completion_logprobs(
                    out, prompt_ids[index], self.engine, offsets[index]
                ) if want_logprobs else (None, 0)
                yield fmt.sse(fmt.completion_chunk(head, index, prefix + out.text, logprobs, out.finish_reason,
                                                   include_usage))
            if include_usage:
                yield fmt.sse(fmt.usage_chunk(head, "text_completion", n_prompt, sum(completion), sum(cached[::n])))
        except Exception as exc:
            yield fmt.sse(fmt.stream_error(exc))
        yield fmt.SSE_DONE
