"""The vLLM engine for CUDA GPUs, behind ingot's engine contract.

vLLM's ``AsyncLLM`` already does continuous batching, paged KV cache, prefix caching,
tensor parallelism, structured outputs and multi-LoRA; this class only adapts: it
validates like the llama.cpp engine (same errors, same statuses), maps parameters and
outputs (``mapping.py``), bounds the waiting queue (vLLM queues without limit; ingot
answers 429 beyond ``max_queue``), and selects LoRA adapters by the request's model name.

vLLM is imported here and only here, when a vLLM profile is chosen: it is an optional
extra (``pip install 'ingot[vllm]'``) that the CPU install never pulls.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from pathlib import Path
from typing import Any, AsyncIterator, Mapping

from ingot.engines.protocol import Engine, GenerationOutput, GenerationRequest, ModelInfo, check_budget
from ingot.errors import InvalidRequestError, QueueFullError
from ingot.engines.vllm import mapping
from ingot.models.profiles import Profile

log = logging.getLogger("ingot.engines.vllm")


class VllmNotInstalledError(RuntimeError):
    """A vLLM profile was chosen but vLLM is not importable."""


def import_vllm() -> Any:
    try:
        import vllm  # noqa: F401
        from vllm import AsyncEngineArgs, SamplingParams
        from vllm.lora.request import LoRARequest
        from vllm.sampling_params import RequestOutputKind
    except ImportError as exc:
        raise VllmNotInstalledError(
            f"the chosen profile runs on vLLM, which is not installed here ({exc}); "
            "install it with: pip install 'ingot[vllm]' (CUDA machines), or set INGOT_MODEL_PROFILE to a CPU profile"
        ) from exc
    try:
        from vllm.v1.engine.async_llm import AsyncLLM
    except ImportError:  # older releases expose it at the top level only
        from vllm import AsyncLLMEngine as AsyncLLM  # type: ignore[no-redef]
    try:
        from vllm.sampling_params import StructuredOutputsParams
    except ImportError:  # vLLM < 0.11 named it GuidedDecodingParams
        StructuredOutputsParams = None  # noqa: N806
    return type("VllmApi", (), {
        "AsyncLLM": AsyncLLM, "AsyncEngineArgs": AsyncEngineArgs, "SamplingParams": SamplingParams,
        "LoRARequest": LoRARequest, "DELTA": RequestOutputKind.DELTA, "StructuredOutputsParams": StructuredOutputsParams,
    })


def weights_digest(weights: Path) -> str:
    """One checksum for a checkpoint folder: the sha256 of its cache manifest (which lists
    every file's sha256), so /v1/metadata and the response fingerprint change with it."""
    manifest = weights.parent / "manifest.json"
    return hashlib.sha256(manifest.read_bytes()).hexdigest() if manifest.is_file() else ""


class VllmEngine(Engine):
    def __init__(
        self,
        model_id: str,
        weights: Path,
        profile: Profile,
        *,
        context_length: int,
        max_queue: int,
        adapters: Mapping[str, Path] | None = None,
        api: Any = None,
        tokenizer: Any = None,
    ) -> None:
        self._api = api or import_vllm()
        self._adapters = dict(adapters or {})
        self._lora_ids = mapping.lora_ids(self._adapters)
        args = mapping.engine_args(profile, weights, model_id, context_length, self._adapters)
        log.info("starting vLLM: %s", args)
        self._llm = self._api.AsyncLLM.from_engine_args(self._api.AsyncEngineArgs(**args))
        if tokenizer is None:
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(str(weights))
        self._tok = tokenizer
        self._max_queue = max_queue
        # vLLM decodes up to max_num_seqs sequences at once and queues the rest without a
        # bound; ingot counts its in-flight requests against slots + max_queue (as on llama.cpp).
        scheduler = getattr(getattr(self._llm, "vllm_config", None), "scheduler_config", None)
        self._slots = int(getattr(scheduler, "max_num_seqs", None) or 256)
        self._inflight = 0
        self._info = ModelInfo(
            id=model_id,
            context_length=context_length,
            vocab_size=len(tokenizer),
            bos_token=tokenizer.bos_token,
            eos_token=tokenizer.eos_token,
            chat_template=getattr(tokenizer, "chat_template", None),
            engine="vllm",
            precision=profile.precision,
            path=str(weights),
            sha256=weights_digest(weights),
        )

    @property
    def info(self) -> ModelInfo:
        return self._info

    def adapter_names(self) -> tuple[str, ...]:
        return tuple(sorted(self._adapters))

    def _lora_request(self, name: str | None) -> Any:
        if not name or name not in self._adapters:
            return None
        return self._api.LoRARequest(name, self._lora_ids[name], str(self._adapters[name]))

    def _sampling_params(self, kwargs: dict[str, Any]) -> Any:
        structured = kwargs.pop("structured_outputs", None)
        if structured is not None:
            if self._api.StructuredOutputsParams is None:
                raise InvalidRequestError("this vLLM version cannot enforce grammars; upgrade vLLM", "response_format")
            kwargs["structured_outputs"] = self._api.StructuredOutputsParams(**structured)
        try:
            return self._api.SamplingParams(output_kind=self._api.DELTA, **kwargs)
        except ValueError as exc:  # vLLM's validation errors subclass ValueError
            raise InvalidRequestError(str(exc)) from exc

    async def generate(self, request: GenerationRequest) -> AsyncIterator[GenerationOutput]:
        params = request.params
        max_tokens = check_budget(request.prompt_token_ids, params.max_tokens,
                                          self._info.context_length, self._info.vocab_size)
        if self._inflight >= self._slots + self._max_queue:
            raise QueueFullError(f"{self._inflight - self._slots} requests are waiting for a slot "
                                 f"(max_queue={self._max_queue}); retry shortly", retry_after=1)
        sampling = self._sampling_params(mapping.sampling_kwargs(params, max_tokens))
        mapper = mapping.OutputMapper(request.request_id, list(request.prompt_token_ids), params.logprobs,
                                      params.prompt_logprobs, echo_only=max_tokens == 0, token_text=self.token_text)
        stream = self._llm.generate({"prompt_token_ids": list(request.prompt_token_ids)}, sampling,
                                    request.request_id, lora_request=self._lora_request(request.model))
        self._inflight += 1
        try:
            async for out in stream:
                result = mapper.map(out.prompt_logprobs, out.outputs[0], getattr(out, "num_cached_tokens", 0))
                yield result
                if result.finish_reason is not None:
                    return
        except ValueError as exc:
            raise InvalidRequestError(str(exc)) from exc
        finally:
            self._inflight -= 1
            await stream.aclose()  # vLLM aborts a request whose generator closes early

    def abort(self, request_id: str) -> None:
        try:
            asyncio.get_running_loop().create_task(self._llm.abort(request_id))
        except RuntimeError:  # no loop: nothing is streaming
            pass

    def tokenize(self, text: str, add_special: bool = True) -> list[int]:
        return list(self._tok.encode(text, add_special_tokens=add_special))

    def detokenize(self, token_ids: list[int]) -> str:
        return self._tok.decode(token_ids)

    def document_start_token(self) -> int:
        bos = self._tok.bos_token_id
        return bos if bos is not None else self._tok.eos_token_id

    def token_text(self, token_id: int) -> str:
        return self._tok.decode([token_id])

    def stats(self) -> dict[str, int]:
        running = min(self._inflight, self._slots)
        return {"running": running, "waiting": self._inflight - running, "slots": self._slots,
                "max_queue": self._max_queue}

    def check_health(self) -> None:
        if getattr(self._llm, "errored", False):
            raise RuntimeError("the vLLM engine core died; see the server log")

    async def shutdown(self) -> None:
        await asyncio.to_thread(self._llm.shutdown)
