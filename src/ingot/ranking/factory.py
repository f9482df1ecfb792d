"""Build a cross-encoder ranker from a verified local sentence-transformers CrossEncoder folder."""

from __future__ import annotations

from ingot.config import Settings
from ingot.embeddings.factory import model_folder
from ingot.metrics import EncoderMetrics
from ingot.models.registry import ModelSpec
from ingot.ranking.protocol import Ranker


def create_cross_encoder(spec: ModelSpec, settings: Settings, metrics: EncoderMetrics) -> Ranker:
    from ingot.ranking.cross_encoder import CrossEncoderRanker

    return CrossEncoderRanker(spec.id, model_folder(spec, settings)[0], threads=settings.embed_threads,
                              max_batch=settings.embed_max_batch,
                              on_batch=metrics.batch_observer(spec.id, "ranking"))
