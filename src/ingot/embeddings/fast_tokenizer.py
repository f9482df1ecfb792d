"""A model folder's ``tokenizer.json`` through the ``tokenizers`` library directly.

Why not ``transformers.AutoTokenizer``: its fast tokenizers wrap this same library and give
the same ids, but importing transformers pulls in torch. On the ONNX path (the default)
that was ~4 s of every server start and a few hundred MB of memory for a tokenizer
(measured: 4.1 s vs 0.08 s to load all-MiniLM-L6-v2's). Folders without a
``tokenizer.json`` (slow-tokenizer-only models) still go through transformers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


class FastTokenizer:
    """The parts of a transformers tokenizer the encoders use: ``__call__`` for input ids,
    ``pad_token_id``, ``vocab_size`` and ``model_max_length``."""

    def __init__(self, folder: Path) -> None:
        from tokenizers import Tokenizer

        self._tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        # tokenizer.json may carry the exporter's truncation and padding (MiniLM's: 128
        # tokens, padded); the encoders want the full ids and pad per batch themselves.
        self._tokenizer.no_truncation()
        self._tokenizer.no_padding()
        config = _json(folder / "tokenizer_config.json")
        special = _json(folder / "special_tokens_map.json")
        pad = _token_text(config.get("pad_token")) or _token_text(special.get("pad_token"))
        self.pad_token_id: int | None = self._tokenizer.token_to_id(pad) if pad else None
        self.vocab_size: int = self._tokenizer.get_vocab_size(with_added_tokens=False)
        self.model_max_length: int = int(config.get("model_max_length") or 512)

    def __call__(self, texts: list[str], add_special_tokens: bool = True, truncation: bool = False) -> dict[str, Any]:
        if truncation:
            raise ValueError("FastTokenizer never truncates: the encoders cut ids themselves")
        encodings = self._tokenizer.encode_batch(texts, add_special_tokens=add_special_tokens)
        return {"input_ids": [e.ids for e in encodings]}


def load_tokenizer(folder: Path) -> Any:
    """The folder's tokenizer: ``FastTokenizer`` when it has a tokenizer.json, else
    transformers' ``AutoTokenizer``."""
    if (folder / "tokenizer.json").is_file():
        return FastTokenizer(folder)
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(folder), local_files_only=True)


def _json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def _token_text(value: Any) -> str | None:
    """A special token as tokenizer configs write it: a string or an AddedToken dict."""
    if isinstance(value, dict):
        return value.get("content")
    return value if isinstance(value, str) else None
