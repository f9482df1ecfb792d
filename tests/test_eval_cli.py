"""`ingot eval retrieval` end to end on a small BEIR folder cut from SciFact: the real
pipeline indexes the corpus once (cached by its hash) and scores each mode."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import SHARED_DATA
from kbutil import CliResult, ingot_here

pytestmark = pytest.mark.slow  # indexes a SciFact cut, ~40 s

SCIFACT = SHARED_DATA / "scifact"


def small_beir(folder: Path, documents: int = 40) -> int:
    """The first ``documents`` abstracts, the queries judged against them, their qrels."""
    corpus = (SCIFACT / "corpus.jsonl").read_text().splitlines()[:documents]
    ids = {json.loads(line)["_id"] for line in corpus}
    rows = [r for r in (SCIFACT / "qrels" / "train.tsv").read_text().splitlines()[1:] if r.split("\t")[1] in ids]
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text("\n".join(corpus) + "\n")
    (folder / "queries.jsonl").write_text((SCIFACT / "queries.jsonl").read_text())
    (folder / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\n" + "\n".join(rows) + "\n")
    return len({r.split("\t")[0] for r in rows})


def ingot(data_dir: Path, *args: str) -> subprocess.CompletedProcess:
    """The real entry point in a subprocess."""
    env = {**os.environ, "INGOT_DATA_DIR": str(data_dir)}
    return subprocess.run([sys.executable, "-m", "ingot.cli", *args], env=env, capture_output=True, text=True,
                          timeout=600)


def here(data_dir: Path, *args: str) -> CliResult:
    """The same command in this process (no 10-20 s interpreter start and model import)."""
    return ingot_here(data_dir, *args)


def test_eval_retrieval_reports_each_mode_and_reuses_the_index(data_dir: Path, tmp_path: Path) -> None:
    if not (SCIFACT / "corpus.jsonl").is_file():
        pytest.skip(f"SciFact is absent at {SCIFACT}")
    queries = small_beir(tmp_path / "mini")
    args = ("eval", "retrieval", "--beir", str(tmp_path / "mini"), "--split", "train", "--json")
    first = ingot(data_dir, *args, "--mode", "dense", "--mode", "bm25", "--mode", "hybrid")
    assert first.returncode == 0, first.stderr
    rows = [json.loads(line) for line in first.stdout.splitlines()]
    assert [r["mode"] for r in rows] == ["dense", "bm25", "hybrid"]
    for r in rows:
        assert r["queries"] == queries and r["corpus_documents"] == 40
        assert set(r) >= {"ndcg_at_10", "recall_at_10", "recall_at_100", "mrr_at_10", "queries_per_second"}
        assert 0.5 < r["ndcg_at_10"] <= 1.0 and r["recall_at_100"] >= r["recall_at_10"]
    again = here(data_dir, *args)  # default mode: hybrid; the corpus is already indexed (by the subprocess)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout) == {**rows[2], "queries_per_second": json.loads(again.stdout)["queries_per_second"]}
    # fails before a model loads: cheap as a real process
    missing = ingot(data_dir, "eval", "retrieval", "--beir", str(tmp_path / "mini"), "--split", "test")
    assert missing.returncode == 2 and "no split 'test'" in missing.stderr and "Traceback" not in missing.stderr
    bad_mode = here(data_dir, *args, "--mode", "fuzzy")
    assert bad_mode.returncode == 2 and "--mode" in bad_mode.stderr
