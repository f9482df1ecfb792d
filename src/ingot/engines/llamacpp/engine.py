"""The llama.cpp engine: loads a GGUF, validates requests, streams from the scheduler."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import AsyncIterator

from ingot.engines.llamacpp.binding import LlamaContext, LlamaModel, Sampler
from ingot.engines.llamacpp.scheduler import Delivery, Scheduler, Sequence, make_deliver
from ingot.engines.llamacpp.threads import ThreadPolicy
from ingot.engines.protocol import (
    Engine,
    GenerationOutput,
    GenerationRequest,
    ModelInfo,
    check_budget,
)


class LlamaCppEngine(Engine):
    def __init__(
        self,
        model_id: str,
        path: Path,
        *,
        sha256: str,
        precision: str,
        context_length: int,
        threads: int,
        parallel: int,
        batch_tokens: int,
        max_queue: int,
        max_draft: int = 0,
        share_prefixes: bool = True,
        chat_template: str | None = None,
        threads_when_busy: int | None = None,
    ) -> None:
        self._model = LlamaModel(path)
        n_ctx_seq = min(context_length, self._model.n_ctx_train or context_length)
        self._ctx = LlamaContext(self._model, parallel, n_ctx_seq, batch_tokens, threads)
        policy = ThreadPolicy(threads, threads_when_busy or threads)
        self._scheduler = Scheduler(self._model, self._ctx, parallel, batch_tokens, max_queue, max_draft,
                                    share_prefixes, policy)
        template = chat_template or self._model.meta("tokenizer.chat_template")
        self._info = ModelInfo(
            id=model_id,
            context_length=self._ctx.n_ctx_seq,
            vocab_size=self._model.n_vocab,
            bos_token=self._model.token_text(self._model.bos_id) or None,
            eos_token=self._model.token_text(self._model.eos_id) or None,
            chat_template=template,
            engine="llama.cpp",
            precision=precision,
            path=str(path),
            sha256=sha256,
        )

    @property
    def info(self) -> ModelInfo:
        return self._info

    def _validate(self, request: GenerationRequest) -> int:
        """Check the request fits; return its completion budget."""
        return check_budget(request.prompt_token_ids, request.params.max_tokens, self._info.context_length,
                            self._model.n_vocab)

    async def generate(self, request: GenerationRequest) -> AsyncIterator[GenerationOutput]:
        max_tokens = self._validate(request)
        seed = request.params.seed if request.params.seed is not None else random.getrandbits(32)
        sampler = Sampler(self._model, request.params, seed)
        queue: asyncio.Queue[Delivery] = asyncio.Queue()
        seq = Sequence(
            request=request,
            sampler=sampler,
            deliver=make_deliver(asyncio.get_running_loop(), queue),
            max_tokens=max_tokens,
        )
        try:
            self._scheduler.submit(seq)
        except BaseException:
            sampler.close()
            raise
        finished = False
        try:
            while True:
                item = await queue.get()
                if isinstance(item, BaseException):
                    raise item
                yield item
                if item.finish_reason is not None:
                    finished = True
                    return
        finally:
            if not finished:
                self._scheduler.abort(request.request_id)

    def abort(self, request_id: str) -> None:
        self._scheduler.abort(request_id)

    def tokenize(self, text: str, add_special: bool = True) -> list[int]:
        return self._model.tokenize(text, add_special=add_special)

    def detokenize(self, token_ids: list[int]) -> str:
        return self._model.detokenize(token_ids)

    def document_start_token(self) -> int:
        model = self._model
        return model.bos_id if model.bos_id >= 0 else model.eos_id

    def token_text(self, token_id: int) -> str:
        return self._model.token_text(token_id)

    def stats(self) -> dict[str, int]:
        return self._scheduler.stats()

    def check_health(self) -> None:
        if not self._scheduler.alive():
            raise RuntimeError("the llama.cpp scheduler thread is not running")

    async def shutdown(self) -> None:
        await asyncio.to_thread(self._scheduler.close)
        self._ctx.close()
        self._model.close()
