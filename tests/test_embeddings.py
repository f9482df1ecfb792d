"""/v1/embeddings with the clients people use, checked against the in-process model."""

from __future__ import annotations

import asyncio
import base64

import httpx
import numpy as np
import pytest

from ingot.models.registry import ALL_MINILM_L6_V2

EMBED_MODEL = "all-minilm-l6-v2"
TEXTS = [
    "The mitochondria is the powerhouse of the cell.",
    "Paris is the capital of France.",
    "Gradient descent minimizes a loss function step by step.",
]


@pytest.fixture(scope="module")
def reference():
    """The same model, in this process, the way users run it without ingot."""
    from sentence_transformers import SentenceTransformer

    folder = ALL_MINILM_L6_V2.source.locate().parent
    return SentenceTransformer(str(folder), device="cpu", local_files_only=True)


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return (a * b).sum(axis=1)


@pytest.mark.slow  # compares with sentence-transformers loaded in-process (~9 s once)
def test_openai_sdk_default_base64_matches_in_process(client, reference):
    r = client.embeddings.create(model=EMBED_MODEL, input=TEXTS)  # the SDK asks for base64 and decodes it
    got = np.array([d.embedding for d in r.data])
    want = reference.encode(TEXTS)
    assert got.shape == (3, 384)
    assert np.all(1 - _cosines(got, want) < 1e-5)
    assert [d.index for d in r.data] == [0, 1, 2]
    assert r.usage.prompt_tokens == sum(len(ids) for ids in reference.tokenizer(TEXTS)["input_ids"])


def test_float_and_raw_base64_agree(server):
    body = {"model": EMBED_MODEL, "input": TEXTS[0]}
    as_float = httpx.post(f"{server.base_url}/embeddings", json={**body, "encoding_format": "float"}).json()
    as_b64 = httpx.post(f"{server.base_url}/embeddings", json={**body, "encoding_format": "base64"}).json()
    decoded = np.frombuffer(base64.b64decode(as_b64["data"][0]["embedding"]), dtype="<f4")
    assert np.allclose(decoded, as_float["data"][0]["embedding"], atol=1e-7)
    assert abs(np.linalg.norm(decoded) - 1) < 1e-5


def test_dimensions_truncate_and_renormalize(client):
    full = np.array(client.embeddings.create(model=EMBED_MODEL, input=TEXTS[1], encoding_format="float").data[0].embedding)
    short = np.array(client.embeddings.create(model=EMBED_MODEL, input=TEXTS[1], dimensions=64).data[0].embedding)
    assert short.shape == (64,)
    assert abs(np.linalg.norm(short) - 1) < 1e-5
    assert np.allclose(short, full[:64] / np.linalg.norm(full[:64]), atol=1e-6)


@pytest.mark.slow  # compares with sentence-transformers loaded in-process (~9 s once)
def test_token_id_input_equals_text_input(client, reference):
    ids = reference.tokenizer(TEXTS[2])["input_ids"]
    by_ids = client.embeddings.create(model=EMBED_MODEL, input=[ids], encoding_format="float").data[0].embedding
    by_text = client.embeddings.create(model=EMBED_MODEL, input=TEXTS[2], encoding_format="float").data[0].embedding
    assert np.allclose(by_ids, by_text, atol=1e-6)


@pytest.mark.slow  # compares with sentence-transformers loaded in-process (~9 s once)
def test_truncate_end_matches_sentence_transformers_truncation(client, reference):
    long_text = "word " * 400
    r = client.embeddings.create(model=EMBED_MODEL, input=long_text, encoding_format="float",
                                 extra_body={"truncate": "END"})
    got = np.array([r.data[0].embedding])
    assert 1 - _cosines(got, reference.encode([long_text]))[0] < 1e-5


@pytest.mark.slow  # compares with sentence-transformers loaded in-process (~9 s once)
def test_langchain_openai_embeddings(server, reference):
    from langchain_openai import OpenAIEmbeddings

    emb = OpenAIEmbeddings(base_url=server.base_url, api_key="x", model=EMBED_MODEL, check_embedding_ctx_length=False)
    docs = np.array(emb.embed_documents(TEXTS))
    query = np.array([emb.embed_query(TEXTS[0])])
    assert np.all(1 - _cosines(docs, reference.encode(TEXTS)) < 1e-5)
    assert 1 - _cosines(query, reference.encode(TEXTS[:1]))[0] < 1e-5


@pytest.mark.slow  # compares with sentence-transformers loaded in-process (~9 s once)
def test_haystack_openai_text_embedder(server, reference):
    from haystack.components.embedders import OpenAITextEmbedder
    from haystack.utils import Secret

    embedder = OpenAITextEmbedder(api_key=Secret.from_token("x"), model=EMBED_MODEL, api_base_url=server.base_url)
    out = embedder.run(text=TEXTS[1])
    assert 1 - _cosines(np.array([out["embedding"]]), reference.encode(TEXTS[1:2]))[0] < 1e-5


def test_concurrent_requests_are_batched_together(server):
    async def run() -> list[int]:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=60) as http:
            rs = await asyncio.gather(*(
                http.post("/embeddings", json={"model": EMBED_MODEL, "input": f"sentence number {i}"}) for i in range(48)
            ))
        return [r.status_code for r in rs]

    def batches() -> tuple[float, float]:
        text = httpx.get(f"{server.base_url}/metrics").text
        count = total = 0.0
        for line in text.splitlines():
            if line.startswith('encoder_batch_size_count{') and 'service="embeddings"' in line:
                count = float(line.rsplit(" ", 1)[1])
            if line.startswith('encoder_batch_size_sum{') and 'service="embeddings"' in line:
                total = float(line.rsplit(" ", 1)[1])
        return count, total

    before = batches()
    assert asyncio.run(run()) == [200] * 48
    after = batches()
    n_batches, n_items = after[0] - before[0], after[1] - before[1]
    assert n_items == 48
    assert n_batches < 48 / 2  # several requests shared each forward pass


@pytest.mark.parametrize(
    "body, status, param",
    [
        ({"input": []}, 400, "input"),
        ({"input": ["x"] * 10_000}, 400, "input"),
        ({"input": ["ok", 3]}, 400, "input"),
        ({"input": [None]}, 400, "input"),
        ({"input": ""}, 400, "input"),
        ({"input": "hi", "model": "text-embedding-3-large"}, 404, "model"),
        ({"input": "word " * 400, "truncate": "NONE"}, 400, "input"),
        ({"input": "hi", "dimensions": 1000}, 400, "dimensions"),
        ({"input": "hi", "encoding_format": "int8"}, 400, "encoding_format"),
        ({"input": [[10**7]]}, 400, "input"),
    ],
)
def test_bad_embedding_requests(server, body, status, param):
    r = httpx.post(f"{server.base_url}/embeddings", json={"model": EMBED_MODEL, **body}, timeout=60)
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["param"] == param
    if body.get("truncate") == "NONE":
        assert "tokens" in err["message"] and "256" in err["message"]


def test_models_lists_every_kind(client):
    kinds = {m.model_dump()["kind"]: m.id for m in client.models.list().data}
    assert kinds["embedding"] == EMBED_MODEL
    assert kinds["chat"] == "smollm2-135m-instruct"
    assert "ranking" in kinds


@pytest.mark.slow  # its own server on torch, ~17 s
def test_torch_runtime_fallback_gives_the_same_vectors(data_dir, reference):
    from serverutil import RunningServer

    srv = RunningServer(data_dir, "--model", "none", "--ranking-model", "none", env={"INGOT_EMBED_RUNTIME": "torch"})
    try:
        card = httpx.get(f"{srv.base_url}/models").json()["data"][0]
        assert card["kind"] == "embedding" and card["engine"].startswith("sentence-transformers")
        r = httpx.post(f"{srv.base_url}/embeddings", json={"input": TEXTS}).json()
        got = np.array([d["embedding"] for d in r["data"]])
        assert np.all(1 - _cosines(got, reference.encode(TEXTS)) < 1e-5)
    finally:
        srv.stop()
