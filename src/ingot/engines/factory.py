"""Build the model runtimes a server needs, on this machine.

Chat models run on the profile chosen for this hardware (models/profiles.py): vLLM on a
CUDA GPU with enough memory, llama.cpp for GGUF on the CPU. Embedding and cross-encoder
models run on ONNX Runtime or sentence-transformers (torch CPU).
"""

from __future__ import annotations

import logging
from pathlib import Path

from ingot.config import Settings
from ingot.embeddings.protocol import Encoder
from ingot.engines.protocol import Engine
from ingot.metrics import EncoderMetrics
from ingot.models.files import derived_file, prepare_model_file
from ingot.models.registry import ModelSpec

DISABLED = ("", "none", "off")
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
        parallel=settings.parallel,
        batch_tokens=settings.batch_tokens,
        max_queue=settings.max_queue,
        chat_template=spec.chat_template,
    )


def _model_folder(spec: ModelSpec, settings: Settings) -> tuple[Path, str]:
    """The verified local folder of a sentence-transformers model, and the checksum of its
    weights ("" for a folder given by path, which has no single weights file to check)."""

    def no_quantize(*_: object) -> None:
        raise ValueError(f"{spec.id} has no derived precisions")

    model_file = prepare_model_file(spec, settings.models_dir(), "source", no_quantize)
    path = model_file.path
    return (path if path.is_dir() else path.parent), model_file.sha256


def _onnx_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("onnxruntime") is not None and importlib.util.find_spec("onnx") is not None


def create_encoder(spec: ModelSpec, settings: Settings) -> Encoder:
    folder, weights_sha = _model_folder(spec, settings)
    runtime = settings.embed_runtime
    if runtime == "auto":
        runtime = "onnx" if _onnx_available() else "torch"
    prefixes = {"query_prefix": spec.query_prefix, "passage_prefix": spec.passage_prefix}
    if runtime == "torch":
        from ingot.embeddings.st_encoder import SentenceTransformerEncoder

        return SentenceTransformerEncoder(spec.id, folder, threads=settings.embed_threads, **prefixes)
    from ingot.embeddings.onnx_encoder import OnnxEncoder, export_onnx

    onnx_path = _cached_export(spec, settings, folder, weights_sha, "onnx/model.onnx", export_onnx)
    return OnnxEncoder(spec.id, folder, onnx_path, threads=settings.embed_threads, **prefixes)


def _cached_export(  # noqa: ANN001 - export: Callable[[Path, Path], None]
    spec: ModelSpec, settings: Settings, folder: Path, weights_sha: str, name: str, export
) -> Path:
    """An export of the model folder in the model cache, rebuilt when the weights change
    (reusing the checksum verified at load instead of hashing the weights again)."""
    source_sha = weights_sha or f"folder:{folder}"
    target = settings.models_dir() / spec.id / name
    return derived_file(target, source_sha, lambda out: export(folder, out))[0]


def create_cross_encoder(spec: ModelSpec, settings: Settings, metrics: EncoderMetrics):  # noqa: ANN201 - Ranker
    from ingot.ranking.cross_encoder import CrossEncoderRanker

    return CrossEncoderRanker(spec.id, _model_folder(spec, settings)[0], threads=settings.embed_threads,
                              max_batch=settings.embed_max_batch,
                              on_batch=metrics.batch_observer(spec.id, "ranking"))
