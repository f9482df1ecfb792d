"""Pick and build the engine for a model on this machine.

Today: llama.cpp for GGUF files on CPU. The vLLM engine for CUDA GPUs plugs in here
(issue: profiles per model x hardware) without touching the HTTP layer.
"""

from __future__ import annotations

from ingot.config import Settings
from ingot.engines.protocol import Engine
from ingot.models.files import prepare_model_file
from ingot.models.registry import ModelSpec


def create_engine(spec: ModelSpec, settings: Settings) -> Engine:
    from ingot.engines.llamacpp import binding
    from ingot.engines.llamacpp.engine import LlamaCppEngine

    model_file = prepare_model_file(
        spec,
        settings.models_dir(),
        settings.model_precision,
        lambda src, dst, precision: binding.quantize(src, dst, precision, threads=settings.threads),
    )
    context = settings.context_length
    if spec.context_length:
        context = min(context, spec.context_length)
    return LlamaCppEngine(
        spec.id,
        model_file.path,
        sha256=model_file.sha256,
        precision=model_file.precision,
        context_length=context,
        threads=settings.threads,
        parallel=settings.parallel,
        batch_tokens=settings.batch_tokens,
        max_queue=settings.max_queue,
        chat_template=spec.chat_template,
    )
