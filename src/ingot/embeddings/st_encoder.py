"""sentence-transformers on PyTorch (CPU): the reference runtime, and the fallback when
ONNX Runtime is not installed (``INGOT_EMBED_RUNTIME=torch`` forces it)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ingot.embeddings.protocol import Encoder, EncoderInfo


def truncate_ids(ids: list[int], limit: int, side: str) -> list[int]:
    """Cut to ``limit`` tokens from the END or START of the content, keeping the leading
    and trailing special tokens ([CLS] ... [SEP]) as sentence-transformers does."""
    if len(ids) <= limit:
        return ids
    head, body, tail = ids[:1], ids[1:-1], ids[-1:]
    keep = limit - 2
    body = body[:keep] if side == "END" else body[len(body) - keep :]
    return head + body + tail


class SentenceTransformerEncoder(Encoder):
    def __init__(
        self, model_id: str, path: Path, *, threads: int, query_prefix: str = "", passage_prefix: str = ""
    ) -> None:
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(threads)
        self._torch = torch
        self._model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
        self._model.eval()
        self._tokenizer = self._model.tokenizer
        self._pad_id = self._tokenizer.pad_token_id or 0
        self._info = EncoderInfo(
            id=model_id,
            dimensions=int(self._model.get_sentence_embedding_dimension()),
            max_tokens=int(self._model.max_seq_length),
            query_prefix=query_prefix,
            passage_prefix=passage_prefix,
            runtime=f"sentence-transformers (torch {torch.__version__}, {threads} threads)",
            vocab_size=int(self._tokenizer.vocab_size),
        )

    @property
    def info(self) -> EncoderInfo:
        return self._info

    def tokenize(self, texts: list[str]) -> list[list[int]]:
        return self._tokenizer(texts, add_special_tokens=True, truncation=False)["input_ids"]

    def truncate(self, ids: list[int], side: str) -> list[int]:
        return truncate_ids(ids, self._info.max_tokens, side)

    def encode(self, batch: list[list[int]]) -> np.ndarray:
        torch = self._torch
        width = max(len(ids) for ids in batch)
        input_ids = torch.full((len(batch), width), self._pad_id, dtype=torch.long)
        attention = torch.zeros((len(batch), width), dtype=torch.long)
        for row, ids in enumerate(batch):
            input_ids[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
            attention[row, : len(ids)] = 1
        features = {"input_ids": input_ids, "attention_mask": attention, "token_type_ids": torch.zeros_like(input_ids)}
        with torch.inference_mode():
            out = self._model(features)["sentence_embedding"]
        return out.float().numpy()
