"""/v1/ranking (NIM) and /v1/rerank (Cohere-style) with real clients and real data."""

from __future__ import annotations

import csv
import json

import httpx
import numpy as np
import pytest

from conftest import SHARED_DATA
from serverutil import RunningServer

SCIFACT = SHARED_DATA / "scifact"
PASSAGES = [
    "The Eiffel Tower is a wrought-iron lattice tower in Paris, completed in 1889.",
    "Photosynthesis converts light energy into chemical energy in plants.",
    "The stock market fell sharply on Monday amid fears of rising interest rates.",
]


def test_nim_ranking_schema_sorted_best_first(server):
    r = httpx.post(f"{server.base_url}/ranking", json={
        "model": "all-minilm-l6-v2", "query": {"text": "How do plants make energy from sunlight?"},
        "passages": [{"text": p} for p in PASSAGES], "truncate": "END",
    })
    assert r.status_code == 200, r.text
    rankings = r.json()["rankings"]
    assert sorted(x["index"] for x in rankings) == [0, 1, 2]
    assert rankings[0]["index"] == 1
    logits = [x["logit"] for x in rankings]
    assert logits == sorted(logits, reverse=True)


def test_nvidia_langchain_reranker(server):
    from langchain_core.documents import Document
    from langchain_nvidia_ai_endpoints import NVIDIARerank

    ranker_id = next(m["id"] for m in httpx.get(f"{server.base_url}/models").json()["data"] if m["kind"] == "ranking")
    reranker = NVIDIARerank(base_url=server.base_url, model=ranker_id, top_n=2)
    docs = reranker.compress_documents(documents=[Document(page_content=p) for p in PASSAGES],
                                       query="When was the Eiffel Tower built?")
    assert len(docs) == 2
    assert docs[0].page_content == PASSAGES[0]
    assert docs[0].metadata["relevance_score"] >= docs[1].metadata["relevance_score"]


def test_rerank_cohere_schema(server):
    r = httpx.post(f"{server.base_url}/rerank", json={
        "query": "interest rates and stocks", "documents": PASSAGES, "top_n": 2, "return_documents": True,
    })
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert len(results) == 2
    assert results[0]["index"] == 2 and results[0]["document"]["text"] == PASSAGES[2]
    assert 0 <= results[1]["relevance_score"] <= results[0]["relevance_score"] <= 1
    bare = httpx.post(f"{server.base_url}/rerank", json={"query": "x", "documents": PASSAGES,
                                                          "return_documents": False}).json()["results"]
    assert "document" not in bare[0] and len(bare) == 3


@pytest.mark.slow  # SciFact from ../shared
@pytest.mark.skipif(not SCIFACT.is_dir(), reason=f"SciFact not found at {SCIFACT} (../shared/data)")
def test_scifact_claims_rank_their_own_abstract_first(server):
    corpus = {}
    with (SCIFACT / "corpus.jsonl").open() as fh:
        for line in fh:
            doc = json.loads(line)
            corpus[doc["_id"]] = f"{doc['title']}. {doc['text']}"
    queries = {}
    with (SCIFACT / "queries.jsonl").open() as fh:
        for line in fh:
            q = json.loads(line)
            queries[q["_id"]] = q["text"]
    with (SCIFACT / "qrels" / "train.tsv").open() as fh:
        pairs = [(row["query-id"], row["corpus-id"]) for row in csv.DictReader(fh, delimiter="\t")][:20]
    # Each claim against its own abstract and the four other claims' abstracts.
    hits = 0
    for i, (qid, did) in enumerate(pairs[:5]):
        others = [d for _, d in pairs if d != did][i : i + 4]
        passages = [corpus[did]] + [corpus[d] for d in others]
        r = httpx.post(f"{server.base_url}/ranking", timeout=60, json={
            "query": {"text": queries[qid]}, "passages": [{"text": p} for p in passages], "truncate": "END"})
        hits += r.json()["rankings"][0]["index"] == 0
    assert hits == 5


@pytest.mark.parametrize(
    "path, body, status",
    [
        ("/ranking", {"query": {"text": "q"}, "passages": []}, 400),
        ("/ranking", {"query": "q", "passages": [{"text": "p"}]}, 400),
        ("/ranking", {"query": {"text": "q"}, "passages": [{"text": "p"}], "model": "nv-rerank-qa"}, 404),
        ("/ranking", {"query": {"text": "q"}, "passages": [{"text": "word " * 400}], "truncate": "NONE"}, 400),
        ("/rerank", {"query": "q", "documents": []}, 400),
        ("/rerank", {"query": "", "documents": ["a"]}, 400),
        ("/rerank", {"query": "q", "documents": ["a"], "top_n": 0}, 400),
    ],
)
def test_bad_ranking_requests(server, path, body, status):
    r = httpx.post(f"{server.base_url}{path}", json=body, timeout=60)
    assert r.status_code == status, r.text
    assert r.json()["error"]["message"]


@pytest.fixture(scope="module")
def tiny_cross_encoder(tmp_path_factory):
    """A real (randomly initialised) BERT cross-encoder folder: no cross-encoder ships
    offline, but any folder in this format must load and serve."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from ingot.models.registry import ALL_MINILM_L6_V2

    folder = tmp_path_factory.mktemp("tiny-cross-encoder")
    tokenizer = AutoTokenizer.from_pretrained(str(ALL_MINILM_L6_V2.source.locate().parent))
    torch.manual_seed(0)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64, num_labels=1, max_position_embeddings=512)
    BertForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.mark.slow  # its own server, ~18 s
def test_cross_encoder_folder_serves_same_logits_as_in_process(tiny_cross_encoder, data_dir):
    import torch
    from sentence_transformers import CrossEncoder

    srv = RunningServer(data_dir, "--model", "none", "--ranking-model", str(tiny_cross_encoder))
    try:
        query = "When was the Eiffel Tower built?"
        r = httpx.post(f"{srv.base_url}/ranking", json={"query": {"text": query},
                                                         "passages": [{"text": p} for p in PASSAGES]}).json()
        got = {x["index"]: x["logit"] for x in r["rankings"]}
        ref = CrossEncoder(str(tiny_cross_encoder), device="cpu")
        want = ref.predict([(query, p) for p in PASSAGES], activation_fn=torch.nn.Identity())
        assert np.allclose([got[i] for i in range(3)], np.asarray(want).reshape(-1), atol=1e-5)
        models = httpx.get(f"{srv.base_url}/models").json()["data"]
        assert {m["kind"] for m in models} == {"embedding", "ranking"}
        chat = httpx.post(f"{srv.base_url}/chat/completions", json={"messages": [{"role": "user", "content": "x"}]})
        assert chat.status_code == 404  # no chat model configured: a clear error, not a crash
    finally:
        srv.stop()
