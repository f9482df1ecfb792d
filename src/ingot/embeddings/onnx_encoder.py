"""ONNX Runtime encoder: the default embedding runtime, chosen by measurement.

On this machine kind (2 cores, benchmarks/RESULTS.md) an fp32 ONNX export of
all-MiniLM-L6-v2 run by ONNX Runtime encodes SciFact abstracts ~1.4x faster than
sentence-transformers on torch, with min cosine 0.9999999 to it. Dynamic int8 was faster
still but fell to min cosine 0.88, so it is not offered.

The export is made once from the verified sentence-transformers folder into the model
cache (``data_dir/models/<id>/onnx/``), with a manifest naming the weights' checksum it
came from; pooling and normalization follow the folder's own sentence-transformers config.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np

from ingot.embeddings.fast_tokenizer import load_tokenizer
from ingot.embeddings.protocol import EncoderInfo, HFTokenizerEncoder, pad_batch


def _pooling(folder: Path) -> tuple[str, bool]:
    """('mean' | 'cls', normalize) from the sentence-transformers modules config."""
    mode = "mean"
    pooling_config = folder / "1_Pooling" / "config.json"
    if pooling_config.is_file():
        cfg = json.loads(pooling_config.read_text())
        if cfg.get("pooling_mode_cls_token"):
            mode = "cls"
    modules = json.loads((folder / "modules.json").read_text()) if (folder / "modules.json").is_file() else []
    normalize = any(m.get("type", "").endswith("Normalize") for m in modules)
    return mode, normalize


def export_onnx(folder: Path, target: Path) -> None:
    """Export the folder's transformer to ONNX (its last hidden state) at ``target``."""
    import torch
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(folder), device="cpu", local_files_only=True)

    class LastHidden(torch.nn.Module):
        def __init__(self, transformer: torch.nn.Module) -> None:
            super().__init__()
            self.transformer = transformer

        def forward(self, input_ids, attention_mask, token_type_ids):  # noqa: ANN001, ANN201
            return self.transformer(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    wrapped = LastHidden(model[0].model.eval())
    sample = model.tokenizer(["an example sentence"], return_tensors="pt")
    names = ["input_ids", "attention_mask", "token_type_ids"]
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about shapes we declare dynamic below
        torch.onnx.export(
            wrapped, tuple(sample[n] for n in names), str(target), input_names=names,
            output_names=["last_hidden_state"],
            dynamic_axes={n: {0: "batch", 1: "sequence"} for n in [*names, "last_hidden_state"]},
            opset_version=17, dynamo=False,
        )


class OnnxEncoder(HFTokenizerEncoder):
    def __init__(
        self, model_id: str, folder: Path, onnx_path: Path, *, threads: int, query_prefix: str = "",
        passage_prefix: str = "",
    ) -> None:
        import onnxruntime as ort

        self._tokenizer = load_tokenizer(folder)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # No busy-waiting between runs: spinning ORT threads would steal the core the event
        # loop needs to parse and answer requests on a small machine.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
        self._pooling, self._normalize = _pooling(folder)
        bert_config = json.loads((folder / "sentence_bert_config.json").read_text()) \
            if (folder / "sentence_bert_config.json").is_file() else {}
        max_tokens = int(bert_config.get("max_seq_length") or self._tokenizer.model_max_length)
        dims = self._session.get_outputs()[0].shape[-1]
        self._pad_id = self._tokenizer.pad_token_id or 0
        self._info = EncoderInfo(
            id=model_id, dimensions=int(dims), max_tokens=max_tokens, query_prefix=query_prefix,
            passage_prefix=passage_prefix, runtime=f"onnxruntime {ort.__version__} fp32, {threads} threads",
            vocab_size=int(self._tokenizer.vocab_size),
        )

    def encode(self, batch: list[list[int]]) -> np.ndarray:
        input_ids, mask = pad_batch(batch, self._pad_id)
        hidden = self._session.run(
            None, {"input_ids": input_ids, "attention_mask": mask, "token_type_ids": np.zeros_like(input_ids)}
        )[0]
        if self._pooling == "cls":
            pooled = hidden[:, 0]
        else:
            weights = mask[..., None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        if self._normalize:
            pooled = pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return pooled.astype(np.float32)
