"""What embedding clients get without setting anything: over-long inputs are truncated at
the end by default (INGOT_EMBED_TRUNCATE=END, as TEI's --auto-truncate), so LlamaIndex's
1024-token chunks and Haystack's document embedder work; NIM clients that send the first
/v1/models entry (the chat model) as ``model`` are answered by the embedding model, which
the response names."""

from __future__ import annotations

import warnings

import httpx
import numpy as np

EMBED_MODEL = "all-minilm-l6-v2"
LONG = "The harbour office opens at dawn and the ferries leave on the hour. " * 120  # ~1,700 tokens


def _vector(server, **body) -> tuple[np.ndarray, dict]:  # noqa: ANN001
    r = httpx.post(f"{server.base_url}/embeddings", json={"input": LONG, **body}, timeout=60)
    assert r.status_code == 200, r.text
    return np.array(r.json()["data"][0]["embedding"]), r.json()


def test_over_long_input_is_truncated_at_the_end_by_default(server):
    implicit, body = _vector(server, model=EMBED_MODEL)
    explicit, _ = _vector(server, model=EMBED_MODEL, truncate="END")
    assert np.allclose(implicit, explicit) and body["usage"]["prompt_tokens"] == 256
    r = httpx.post(f"{server.base_url}/embeddings", json={"input": LONG, "truncate": "NONE"}, timeout=60)
    assert r.status_code == 400 and r.json()["error"]["param"] == "input"


def test_the_chat_model_name_is_answered_by_the_embedding_model(server):
    by_chat, body = _vector(server, model="smollm2-135m-instruct")
    by_own, _ = _vector(server, model=EMBED_MODEL)
    assert body["model"] == EMBED_MODEL and np.allclose(by_chat, by_own)
    r = httpx.post(f"{server.base_url}/embeddings", json={"input": "x", "model": "text-embedding-3-large"}, timeout=60)
    assert r.status_code == 404


def test_nvidia_embeddings_without_a_model(server):
    from langchain_nvidia_ai_endpoints import NVIDIAEmbeddings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # it warns that it picked the first listed model
        # it sends truncate=NONE unless told (NIM's default), so an over-long text needs END here
        embedder = NVIDIAEmbeddings(base_url=server.base_url, api_key="x", truncate="END")
        vectors = embedder.embed_documents(["visitors park behind building B", LONG])
        query = embedder.embed_query("where do visitors park")
    assert len(vectors) == 2 and len(vectors[0]) == len(query) == 384
    assert float(np.dot(vectors[0], query)) > float(np.dot(vectors[1], query))


def test_haystack_document_embedder_embeds_long_documents(server):
    from haystack import Document
    from haystack.components.embedders import OpenAIDocumentEmbedder
    from haystack.utils import Secret

    embedder = OpenAIDocumentEmbedder(api_key=Secret.from_token("x"), model=EMBED_MODEL, api_base_url=server.base_url)
    docs = embedder.run([Document(content=LONG), Document(content="short")])["documents"]
    assert all(d.embedding is not None and len(d.embedding) == 384 for d in docs)
