"""Health, metadata, models, tokenizer and metrics endpoints, as orchestrators and
lm-evaluation-harness call them."""

from __future__ import annotations

import httpx


def test_health_live_and_ready(server):
    assert httpx.get(f"{server.base_url}/health/live").json()["status"] == "live"
    r = httpx.get(f"{server.base_url}/health/ready")
    assert r.status_code == 200 and r.json()["status"] == "ready"


def test_models_lists_served_model_with_details(client, model_id):
    models = client.models.list().data
    assert [m.id for m in models if m.model_dump()["kind"] == "chat"] == [model_id]
    card = next(m.model_dump() for m in models if m.id == model_id)
    assert card["max_model_len"] == 4096
    assert card["engine"] == "llama.cpp"
    assert client.models.retrieve(model_id).id == model_id


def test_metadata_and_version(server):
    meta = httpx.get(f"{server.base_url}/metadata").json()
    info = meta["modelInfo"][0]
    assert info["shortName"] == "smollm2-135m-instruct"
    assert len(info["sha256"]) == 64
    assert httpx.get(f"{server.base_url}/version").json()["release"]


def test_tokenize_detokenize_roundtrip(server):
    text = "Héllo, wörld! 42"
    tok = httpx.post(f"{server.root}/tokenize", json={"prompt": text, "return_token_strs": True}).json()
    assert tok["count"] == len(tok["tokens"]) > 0
    assert "".join(tok["token_strs"]) == text
    assert httpx.post(f"{server.root}/detokenize", json={"tokens": tok["tokens"]}).json()["prompt"] == text


def test_tokenizer_info_has_what_lm_eval_needs(server):
    info = httpx.get(f"{server.root}/tokenizer_info").json()
    assert info["eos_token"] == "<|im_end|>"
    # lm-eval derives eos_token_id by tokenizing the eos text without special tokens.
    ids = httpx.post(f"{server.root}/tokenize", json={"prompt": info["eos_token"], "add_special_tokens": False}).json()
    assert ids["tokens"] == [2]
    assert "im_start" in info["chat_template"]


def test_metrics_have_operator_names(client, model_id, server):
    client.chat.completions.create(model=model_id, messages=[{"role": "user", "content": "hi"}], max_tokens=3)
    text = httpx.get(f"{server.base_url}/metrics").text
    for name in (
        "num_requests_running", "num_requests_waiting", "time_to_first_token_seconds_bucket",
        "time_per_output_token_seconds_bucket", "e2e_request_latency_seconds_count", "prompt_tokens_total",
        "generation_tokens_total", "request_finish_total",
    ):
        assert name in text, name
    generated = [l for l in text.splitlines() if l.startswith("generation_tokens_total{")]
    assert float(generated[0].rsplit(" ", 1)[1]) >= 1
