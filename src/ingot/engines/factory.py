"""Build the model runtimes a server needs, on this machine.

Today: llama.cpp for GGUF chat models on CPU; sentence-transformers (torch CPU) for
embedding and cross-encoder models. The vLLM engine for CUDA GPUs plugs in here (issue:
profiles per model x hardware) without touching the HTTP layer.
"""

from __future__ import annotations

from pathlib import Path

from ingot.config import Settings
from ingot.embeddings.protocol import Encoder
from ingot.engines.protocol import Engine
from ingot.metrics import EncoderMetrics
from ingot.models.files import prepare_model_file
from ingot.models.registry import ModelSpec

DISABLED = ("", "none", "off")


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


def _model_folder(spec: ModelSpec, settings: Settings) -> Path:
    """The verified local folder of a sentence-transformers model."""

    def no_quantize(*_: object) -> None:
        raise ValueError(f"{spec.id} has no derived precisions")

    path = prepare_model_file(spec, settings.models_dir(), "source", no_quantize).path
    return path if path.is_dir() else path.parent


def create_encoder(spec: ModelSpec, settings: Settings) -> Encoder:
    from ingot.embeddings.st_encoder import SentenceTransformerEncoder

    return SentenceTransformerEncoder(
        spec.id, _model_folder(spec, settings), threads=settings.embed_threads,
        query_prefix=spec.query_prefix, passage_prefix=spec.passage_prefix,
    )


def create_cross_encoder(spec: ModelSpec, settings: Settings, metrics: EncoderMetrics):  # noqa: ANN201 - Ranker
    from ingot.ranking.cross_encoder import CrossEncoderRanker

    return CrossEncoderRanker(spec.id, _model_folder(spec, settings), threads=settings.embed_threads,
                              max_batch=settings.embed_max_batch,
                              on_batch=metrics.batch_observer(spec.id, "ranking"))
