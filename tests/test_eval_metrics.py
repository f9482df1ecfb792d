"""Retrieval metrics against hand-computed values and pytrec_eval (trec_eval's own code),
and the BEIR loader's errors. SciFact-based tests skip when ../shared/data/scifact is absent."""

from __future__ import annotations

import math
import random
from pathlib import Path

import pytest

from ingot.eval import beir
from ingot.eval.metrics import evaluate, mrr_at_k, ndcg_at_k, recall_at_k

SCIFACT = Path(__file__).resolve().parents[2] / "shared" / "data" / "scifact"
needs_scifact = pytest.mark.skipif(not (SCIFACT / "corpus.jsonl").is_file(),
                                   reason=f"SciFact not found at {SCIFACT} (see ../shared/data/README.md)")


def test_hand_computed_example():
    # graded judgments: d1 highly relevant (2), d2 and d3 relevant (1), d9 judged non-relevant
    qrels = {"d1": 2, "d2": 1, "d3": 1, "d9": 0}
    ranked = ["d2", "x", "d1", "d9", "y"]  # d3 never retrieved
    dcg = 1 / math.log2(2) + 2 / math.log2(4)  # d2 at rank 1, d1 at rank 3
    idcg = 2 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(4)
    assert ndcg_at_k(ranked, qrels, 10) == pytest.approx(dcg / idcg)
    assert ndcg_at_k(ranked, qrels, 10) == pytest.approx(0.638788, abs=1e-6)  # 2 / 3.13093
    assert recall_at_k(ranked, qrels, 10) == pytest.approx(2 / 3)
    assert recall_at_k(ranked, qrels, 1) == pytest.approx(1 / 3)
    assert mrr_at_k(ranked, qrels, 10) == 1.0
    assert mrr_at_k(["x", "y", "d3"], qrels, 10) == pytest.approx(1 / 3)
    assert mrr_at_k(["x", "y", "d3"], qrels, 2) == 0.0  # first relevant beyond the cutoff
    assert ndcg_at_k(["d1", "d2", "d3"], qrels, 10) == pytest.approx(1.0)
    assert ndcg_at_k([], qrels, 10) == 0.0
    # a repeated id counts once
    assert recall_at_k(["d2", "d2", "d2"], qrels, 10) == pytest.approx(1 / 3)


def test_evaluate_averages_over_judged_queries_and_counts_missing_runs_as_zero():
    qrels = {"q1": {"a": 1}, "q2": {"b": 1}, "q3": {"c": 0}}  # q3 has no relevant doc: excluded
    run = {"q1": ["a"], "q3": ["c"], "q4": ["z"]}  # q2 missing: 0; q4 unjudged: ignored
    m = evaluate(run, qrels)
    assert m.queries == 2
    assert (m.ndcg_at_10, m.recall_at_10, m.recall_at_100, m.mrr_at_10) == (0.5, 0.5, 0.5, 0.5)
    assert set(m.per_query) == {"q1", "q2"}
    assert m.to_dict()["queries"] == 2 and "per_query" not in m.to_dict()


def _pytrec(run: dict[str, list[str]], qrels: dict[str, dict[str, int]]) -> dict[str, float]:
    pytrec_eval = pytest.importorskip("pytrec_eval", reason="pytrec-eval-terrier is not installed (test extra)")
    # trec_eval ranks by score; strictly decreasing scores reproduce our ranked lists exactly
    scored = {q: {d: float(len(docs) - i) for i, d in enumerate(docs)} for q, docs in run.items()}
    evaluator = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10", "recall.10,100", "recip_rank"})
    per_query = evaluator.evaluate(scored)
    judged = [q for q in qrels if any(r > 0 for r in qrels[q].values())]
    # trec_eval's recip_rank has no cutoff: cut the run at 10 for MRR@10
    mrr = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(
        {q: {d: s for d, s in docs.items() if s > len(docs) - 10} for q, docs in scored.items()})

    def mean(name: str, source: dict) -> float:
        return sum(source.get(q, {}).get(name, 0.0) for q in judged) / len(judged)

    return {"ndcg_at_10": mean("ndcg_cut_10", per_query), "recall_at_10": mean("recall_10", per_query),
            "recall_at_100": mean("recall_100", per_query), "mrr_at_10": mean("recip_rank", mrr)}


def test_matches_pytrec_eval_on_random_graded_runs():
    rng = random.Random(7)
    docs = [f"d{i}" for i in range(300)]
    qrels = {f"q{j}": {d: rng.choice([0, 1, 1, 2, 3]) for d in rng.sample(docs, rng.randint(1, 12))}
             for j in range(60)}
    run = {q: rng.sample(docs, rng.randint(0, 150)) for q in qrels}
    for q in list(run)[:20]:  # make some runs good, so the metrics are not all near zero
        run[q] = [d for d, r in sorted(qrels[q].items(), key=lambda kv: -kv[1])] + run[q]
        run[q] = list(dict.fromkeys(run[q]))
    ours = evaluate(run, qrels).to_dict()
    ref = _pytrec(run, qrels)
    for name, value in ref.items():
        assert ours[name] == pytest.approx(value, abs=1e-9), name


@needs_scifact
def test_scifact_loads_and_matches_pytrec_eval():
    data = beir.load(SCIFACT, "train")
    assert len(data.corpus) == 5183
    assert len(data.queries) == len(data.qrels) == 809
    assert sum(len(j) for j in data.qrels.values()) == 919
    assert data.corpus_sha256 == "dec31c8182f3d744c7d2c09423756fd1d17cbef75808db13ba01cc0aab4d1ac6"
    doc = next(iter(data.corpus.values()))
    assert doc.full_text.startswith(doc.title)
    # a deterministic pseudo-retriever: relevant docs spread at varying depths among others
    rng = random.Random(1)
    ids = list(data.corpus)
    run = {}
    for q, judged in data.qrels.items():
        ranked = rng.sample(ids, 120)
        for d in judged:
            ranked.insert(rng.randint(0, 110), d)
        run[q] = list(dict.fromkeys(ranked))
    ours = evaluate(run, data.qrels).to_dict()
    ref = _pytrec(run, data.qrels)
    for name, value in ref.items():
        assert ours[name] == pytest.approx(value, abs=1e-9), name


def _write(root: Path, corpus: bool = True, queries: bool = True, split: str | None = "test", header: bool = True):
    root.mkdir(parents=True, exist_ok=True)
    if corpus:
        (root / "corpus.jsonl").write_text('{"_id": "d1", "title": "T", "text": "body"}\n{"_id": "d2", "text": "b2"}\n')
    if queries:
        (root / "queries.jsonl").write_text('{"_id": "q1", "text": "query one"}\n{"_id": "q2", "text": "unjudged"}\n')
    if split:
        (root / "qrels").mkdir(exist_ok=True)
        rows = ("query-id\tcorpus-id\tscore\n" if header else "") + "q1\td1\t2\nq1\td2\t0\n"
        (root / "qrels" / f"{split}.tsv").write_text(rows)
    return root


def test_beir_loader_reads_a_small_folder(tmp_path):
    data = beir.load(_write(tmp_path / "ds"), "test")
    assert list(data.corpus) == ["d1", "d2"] and data.corpus["d2"].title == ""
    assert data.corpus["d1"].full_text == "T. body" and data.corpus["d2"].full_text == "b2"
    assert data.queries == {"q1": "query one"}  # only judged queries
    assert data.qrels == {"q1": {"d1": 2, "d2": 0}}
    assert data.corpus_sha256 == beir.corpus_hash(tmp_path / "ds" / "corpus.jsonl")
    assert beir.splits(tmp_path / "ds") == ["test"]


@pytest.mark.parametrize("kwargs, split, message", [
    ({"corpus": False}, "test", "missing corpus.jsonl"),
    ({"queries": False}, "test", "missing queries.jsonl"),
    ({}, "train", "no split 'train' (qrels/train.tsv); available: test"),
    ({"split": None}, "test", "available: none"),
    ({"header": False}, "test", "header"),
])
def test_beir_loader_errors_name_the_problem(tmp_path, kwargs, split, message):
    root = _write(tmp_path / "ds", **kwargs)
    with pytest.raises(beir.BeirError, match=message.replace("(", r"\(").replace(")", r"\)")):
        beir.load(root, split)


def test_beir_loader_rejects_bad_lines(tmp_path):
    root = _write(tmp_path / "ds")
    (root / "corpus.jsonl").write_text('{"_id": "d1", "text": "ok"}\nnot json\n')
    with pytest.raises(beir.BeirError, match=r"corpus.jsonl:2: not JSON"):
        beir.load(root, "test")
    root = _write(tmp_path / "ds2")
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\thigh\n")
    with pytest.raises(beir.BeirError, match=r"test.tsv:2: score 'high' is not an integer"):
        beir.load(root, "test")
    root = _write(tmp_path / "ds3")
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq9\td1\t1\n")
    with pytest.raises(beir.BeirError, match="not in queries.jsonl"):
        beir.load(root, "test")
    with pytest.raises(beir.BeirError, match="not a directory"):
        beir.load(tmp_path / "nope", "test")
