"""Continuous batching under real concurrency: many streams, disconnects, a full queue."""

from __future__ import annotations

import asyncio
import threading
import time

import httpx
import openai
import pytest

from serverutil import RunningServer


def _gauge(server: RunningServer, name: str) -> float:
    for line in httpx.get(f"{server.root}/metrics", timeout=10).text.splitlines():
        if line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"metric {name} not found")


def test_eight_concurrent_streams_all_complete_and_overlap(async_client, model_id):
    async def one(i: int) -> tuple[float, float, str, object]:
        started = time.monotonic()
        first = None
        text = []
        usage = None
        stream = await async_client.chat.completions.create(
            model=model_id, messages=[{"role": "user", "content": f"Tell me a fact about the number {i}."}],
            max_tokens=48, temperature=0.8, seed=i, stream=True, stream_options={"include_usage": True},
            extra_body={"ignore_eos": True},
        )
        finish = None
        async for chunk in stream:
            if chunk.choices:
                if first is None and chunk.choices[0].delta.content:
                    first = time.monotonic()
                text.append(chunk.choices[0].delta.content or "")
                finish = chunk.choices[0].finish_reason or finish
            if chunk.usage:
                usage = chunk.usage
        return started, first, time.monotonic(), finish, usage

    async def run_all():
        return await asyncio.gather(*(one(i) for i in range(8)))

    results = asyncio.run(run_all())
    assert all(r[3] == "length" and r[4].completion_tokens == 48 for r in results)
    # Shared decode steps: every stream got its first token before any stream finished.
    assert max(r[1] for r in results) < min(r[2] for r in results)


@pytest.fixture(scope="module")
def single_slot_server(data_dir):
    srv = RunningServer(data_dir, "--parallel", "1", "--max-queue", "1")
    yield srv
    srv.stop()


def _long_stream_body(model: str = "smollm2") -> dict:
    return {"model": model, "messages": [{"role": "user", "content": "Write an endless story."}],
            "max_tokens": 3000, "stream": True, "ignore_eos": True}


@pytest.mark.slow  # a one-slot server of its own
def test_disconnect_frees_slot_at_once(single_slot_server):
    srv = single_slot_server
    with httpx.Client(timeout=60) as http:
        with http.stream("POST", f"{srv.base_url}/chat/completions", json=_long_stream_body()) as r:
            assert r.status_code == 200
            lines = r.iter_lines()  # no for/break: closing this iterator closes the response
            seen = 0
            while seen < 3:
                seen += next(lines).startswith("data: {")
            assert _gauge(srv, "num_requests_running") == 1
        # Leaving the block closed the connection mid-stream.
    deadline = time.monotonic() + 5
    while _gauge(srv, "num_requests_running") != 0:
        assert time.monotonic() < deadline, "slot still busy after the client disconnected"
        time.sleep(0.05)
    # 3000 tokens would take the single slot tens of seconds; the next request must not wait.
    client = openai.OpenAI(base_url=srv.base_url, api_key="x", max_retries=0, timeout=15)
    r = client.chat.completions.create(model="smollm2", messages=[{"role": "user", "content": "hi"}], max_tokens=5)
    assert r.usage.completion_tokens >= 1


@pytest.mark.slow  # a one-slot server of its own
def test_full_queue_returns_429_with_retry_after(single_slot_server):
    srv = single_slot_server
    stop = threading.Event()

    def hold() -> None:
        with httpx.Client(timeout=120) as http:
            with http.stream("POST", f"{srv.base_url}/chat/completions", json=_long_stream_body()) as r:
                for _ in r.iter_lines():
                    if stop.is_set():
                        return

    holders = [threading.Thread(target=hold, daemon=True) for _ in range(2)]  # one running, one waiting
    for t in holders:
        t.start()
        time.sleep(0.5)
    try:
        deadline = time.monotonic() + 20
        while not (_gauge(srv, "num_requests_running") == 1 and _gauge(srv, "num_requests_waiting") == 1):
            assert time.monotonic() < deadline, "queue did not fill"
            time.sleep(0.05)
        r = httpx.post(f"{srv.base_url}/chat/completions", timeout=30,
                       json={"messages": [{"role": "user", "content": "hi"}], "max_tokens": 4})
        assert r.status_code == 429
        assert int(r.headers["retry-after"]) >= 1
        assert r.json()["error"]["code"] == "queue_full"
        client = openai.OpenAI(base_url=srv.base_url, api_key="x", max_retries=0, timeout=30)
        with pytest.raises(openai.RateLimitError):
            client.chat.completions.create(model="smollm2", messages=[{"role": "user", "content": "hi"}])
    finally:
        stop.set()
        for t in holders:
            t.join(timeout=30)
    deadline = time.monotonic() + 10
    while _gauge(srv, "num_requests_running") + _gauge(srv, "num_requests_waiting") > 0:
        assert time.monotonic() < deadline
        time.sleep(0.1)
