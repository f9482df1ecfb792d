"""Build the generation engine for a chat model, on this machine.

Chat models run on the profile chosen for this hardware (models/profiles.py): vLLM on a
CUDA GPU with enough memory, llama.cpp for GGUF on the CPU. (Encoders are built by
embeddings/factory.py, cross-encoders by ranking/factory.py; ingot/bootstrap.py wires them.)
"""

from __future__ import annotations

import logging

from ingot.config import Settings
from ingot.engines.protocol import Engine
from ingot.models.files import prepare_model_file
from ingot.models.registry import ModelSpec

log = logging.getLogger("ingot.engines")


def create_engine(spec: ModelSpec, settings: Settings) -> Engine:
    """The engine of the profile chosen for this machine (or named by INGOT_MODEL_PROFILE);
    ProfileError when none can run here."""
    from ingot.models.profiles import choose_profile

    profile = choose_profile(spec, settings.model_profile)
    log.info("model %s: profile %s", spec.id, profile.id)
    if profile.engine == "vllm":
        from ingot.engines.vllm import create_vllm_engine

        return create_vllm_engine(spec, profile, settings)

    from ingot.engines.llamacpp import binding
    from ingot.engines.llamacpp.engine import LlamaCppEngine

    # INGOT_MODEL_PRECISION still picks the GGUF type inside the llama.cpp profile.
    precision = profile.precision if settings.model_precision == "auto" else settings.model_precision
    model_file = prepare_model_file(
        spec,
        settings.models_dir(),
        precision,
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
        threads_when_busy=settings.threads_when_busy,
        parallel=settings.parallel,
        batch_tokens=settings.batch_tokens,
        max_queue=settings.max_queue,
        max_draft=settings.speculative_draft_tokens,
        share_prefixes=settings.share_prefixes,
        chat_template=spec.chat_template,
    )
