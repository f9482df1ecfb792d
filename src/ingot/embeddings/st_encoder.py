"""sentence-transformers on PyTorch (CPU): the reference runtime, and the fallback when
ONNX Runtime is not installed (``INGOT_EMBED_RUNTIME=torch`` forces it)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ingot.embeddings.protocol import EncoderInfo, HFTokenizerEncoder, pad_batch


class SentenceTransformerEncoder(HFTokenizerEncoder):
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

    def encode(self, batch: list[list[int]]) -> np.ndarray:
        torch = self._torch
        ids, mask = pad_batch(batch, self._pad_id)
        input_ids, attention = torch.from_numpy(ids), torch.from_numpy(mask)
        features = {"input_ids": input_ids, "attention_mask": attention, "token_type_ids": torch.zeros_like(input_ids)}
        with torch.inference_mode():
            out = self._model(features)["sentence_embedding"]
        return out.float().numpy()
