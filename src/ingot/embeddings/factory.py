"""Build the encoder of an embedding model: ONNX Runtime (default when installed, measured
fastest) or sentence-transformers on torch, from the verified local model folder."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Callable

from ingot.config import Settings
from ingot.embeddings.protocol import Encoder
from ingot.models.files import derived_file, prepare_model_file
from ingot.models.registry import ModelSpec


def model_folder(spec: ModelSpec, settings: Settings) -> tuple[Path, str]:
    """The verified local folder of a sentence-transformers model, and the checksum of its
    weights ("" for a folder given by path, which has no single weights file to check)."""

    def no_quantize(*_: object) -> None:
        raise ValueError(f"{spec.id} has no derived precisions")

    model_file = prepare_model_file(spec, settings.models_dir(), "source", no_quantize)
    path = model_file.path
    return (path if path.is_dir() else path.parent), model_file.sha256


def _onnx_available() -> bool:
    return importlib.util.find_spec("onnxruntime") is not None and importlib.util.find_spec("onnx") is not None


def create_encoder(spec: ModelSpec, settings: Settings) -> Encoder:
    folder, weights_sha = model_folder(spec, settings)
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


def _cached_export(
    spec: ModelSpec, settings: Settings, folder: Path, weights_sha: str, name: str,
    export: Callable[[Path, Path], None],
) -> Path:
    """An export of the model folder in the model cache, rebuilt when the weights change
    (reusing the checksum verified at load instead of hashing the weights again)."""
    source_sha = weights_sha or f"folder:{folder}"
    target = settings.models_dir() / spec.id / name
    return derived_file(target, source_sha, lambda out: export(folder, out))[0]
