"""The vLLM engine (CUDA GPUs). Importing this package does not import vLLM: only
``create_vllm_engine`` does, once a vLLM profile has been chosen for this machine."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ingot.config import Settings
    from ingot.engines.protocol import Engine
    from ingot.models.profiles import Profile
    from ingot.models.registry import ModelSpec


def create_vllm_engine(spec: "ModelSpec", profile: "Profile", settings: "Settings") -> "Engine":
    """Build the engine from the profile's checkpoint in the model cache (never
    downloaded here) and the LoRA adapters pulled for this model."""
    from ingot.engines.vllm.engine import VllmEngine, import_vllm
    from ingot.models.cache import cached_weights, lora_adapters

    if not profile.weights:
        raise ValueError(f"profile {profile.id} names no checkpoint")
    api = import_vllm()  # first: a missing vLLM is the clearer error
    weights = cached_weights(settings.models_dir(), profile.weights)
    context = min(settings.context_length, spec.context_length) if spec.context_length else settings.context_length
    return VllmEngine(spec.id, weights, profile, context_length=context, max_queue=settings.max_queue,
                      adapters=lora_adapters(settings.models_dir(), spec.id), api=api)
