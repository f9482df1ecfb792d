"""Per-key quotas and usage against a real server: requests/min and tokens/min answer 429
with Retry-After; /v1/usage counts exactly the tokens the responses reported (plain,
streamed, embeddings); the Prometheus counters move with the same requests."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import openai
import pytest

from authutil import create_key, isolated_data_dir
from serverutil import RunningServer

pytestmark = pytest.mark.slow  # its own keyed server, ~20 s

MODEL = "smollm2-135m-instruct"


@pytest.fixture(scope="module")
def quota_server(data_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    state = isolated_data_dir(data_dir, tmp_path_factory.mktemp("quotas"))
    keys = {
        "admin": create_key(state, "ops", "--admin"),
        "rpm": create_key(state, "slow", "--rpm", "3"),
        "tpm": create_key(state, "thrifty", "--tpm", "40"),
        "meter": create_key(state, "metered", "--groups", "team"),
    }
    srv = RunningServer(state, "--parallel", "2", "--context-length", "512")
    yield srv, keys
    srv.stop()


def _client(srv: RunningServer, key: dict) -> openai.OpenAI:
    return openai.OpenAI(base_url=srv.base_url, api_key=key["key"], max_retries=0, timeout=120)


def _usage(srv: RunningServer, key: dict) -> list[dict]:
    r = httpx.get(f"{srv.base_url}/usage", headers={"Authorization": f"Bearer {key['key']}"}, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()["data"]


def _metric(srv: RunningServer, name: str, **labels: str) -> float:
    text = httpx.get(f"{srv.base_url}/metrics", timeout=30).text
    total = 0.0
    for line in text.splitlines():
        match = re.match(rf"^{name}(\{{[^}}]*\}})? (\S+)$", line)
        if match and all(f'{k}="{v}"' in (match.group(1) or "") for k, v in labels.items()):
            total += float(match.group(2))
    return total


def test_requests_per_minute_429_with_retry_after(quota_server):
    srv, keys = quota_server
    client = _client(srv, keys["rpm"])
    for _ in range(3):  # the bucket holds one minute's worth
        client.models.list()
    before = _metric(srv, "ingot_rate_limited_total", limit="rpm")
    with pytest.raises(openai.RateLimitError) as caught:
        client.models.list()
    response = caught.value.response
    assert response.status_code == 429
    retry_after = int(response.headers["retry-after"])
    assert 1 <= retry_after <= 20  # one request refills in 60/3 s
    body = response.json()["error"]
    assert body["type"] == "rate_limit_error" and body["code"] == "rate_limit_exceeded" and "3 requests" in body["message"]
    assert _metric(srv, "ingot_rate_limited_total", limit="rpm") == before + 1
    # Other keys are not affected by this key's quota.
    _client(srv, keys["meter"]).models.list()


def test_tokens_per_minute_429_after_the_budget_is_spent(quota_server):
    srv, keys = quota_server
    client = _client(srv, keys["tpm"])
    text = "The quarterly report covers revenue, costs, hiring and the outlook for the coming year. " * 3
    first = client.embeddings.create(model="all-minilm-l6-v2", input=text)
    assert first.usage.prompt_tokens > 40  # one request may overdraw the 40-token bucket...
    with pytest.raises(openai.RateLimitError) as caught:  # ...and the next one waits for the debt
        client.embeddings.create(model="all-minilm-l6-v2", input="hi")
    response = caught.value.response
    owed = first.usage.prompt_tokens - 40
    assert int(response.headers["retry-after"]) >= max(1, int(owed * 60 / 40))
    assert "40 tokens" in response.json()["error"]["message"]
    # /v1/usage is exempt so a throttled key can see why, and it counted the first request.
    mine = _usage(srv, keys["tpm"])
    assert [u["embedding_tokens"] for u in mine] == [first.usage.prompt_tokens]


def test_usage_counts_what_the_responses_reported(quota_server):
    srv, keys = quota_server
    client = _client(srv, keys["meter"])
    names = ("prompt_tokens_total", "generation_tokens_total", "request_finish_total", "embedding_prompt_tokens_total")
    metrics_before = {n: _metric(srv, n) for n in names}
    ranking_before = _metric(srv, "encoder_requests_total", service="ranking")
    before = _usage(srv, keys["meter"])[0]

    chat = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Name a colour."}], max_tokens=8, seed=1
    )
    stream = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Count to three."}], max_tokens=6, stream=True,
        stream_options={"include_usage": True},
    )
    streamed = [c.usage for c in stream if c.usage is not None][-1]
    completion = client.completions.create(model=MODEL, prompt="One, two,", max_tokens=4)
    emb = client.embeddings.create(model="all-minilm-l6-v2", input=["alpha beta", "gamma delta epsilon"])
    ranked = httpx.post(f"{srv.base_url}/rerank", headers={"Authorization": f"Bearer {keys['meter']['key']}"},
                        json={"query": "colour", "documents": ["red", "tax"]}, timeout=60)
    assert ranked.status_code == 200

    after = _usage(srv, keys["meter"])
    assert len(after) == 1 and after[0]["name"] == "metered"  # a non-admin sees only itself
    after = after[0]
    prompt = chat.usage.prompt_tokens + streamed.prompt_tokens + completion.usage.prompt_tokens
    generated = chat.usage.completion_tokens + streamed.completion_tokens + completion.usage.completion_tokens
    assert after["prompt_tokens"] - before["prompt_tokens"] == prompt
    assert after["completion_tokens"] - before["completion_tokens"] == generated
    assert after["embedding_tokens"] - before["embedding_tokens"] == emb.usage.prompt_tokens
    assert after["total_tokens"] - before["total_tokens"] == prompt + generated + emb.usage.prompt_tokens
    # 5 API calls + the first /v1/usage read (counted once it had finished)
    assert after["requests"] - before["requests"] == 6

    # The Prometheus counters moved by the same real requests.
    assert _metric(srv, "prompt_tokens_total") - metrics_before["prompt_tokens_total"] == prompt
    assert _metric(srv, "generation_tokens_total") - metrics_before["generation_tokens_total"] == generated
    assert _metric(srv, "request_finish_total") - metrics_before["request_finish_total"] == 3
    assert _metric(srv, "embedding_prompt_tokens_total") - metrics_before["embedding_prompt_tokens_total"] \
        == emb.usage.prompt_tokens
    assert _metric(srv, "encoder_requests_total", service="ranking") == ranking_before + 1
    assert _metric(srv, "ingot_http_requests_total", route="/v1/chat/completions", status="200") >= 2
    for name in ("time_to_first_token_seconds_count", "e2e_request_latency_seconds_count",
                 "encoder_request_latency_seconds_count"):
        assert _metric(srv, name) > 0, name


def test_admin_sees_every_key(quota_server):
    srv, keys = quota_server
    rows = {row["name"]: row for row in _usage(srv, keys["admin"])}
    assert {"ops", "slow", "thrifty", "metered"} <= set(rows)
    assert rows["slow"]["requests"] == 3  # the refused 4th request is not usage
    assert rows["metered"]["completion_tokens"] > 0
