"""One large request must not stall the others: while a huge prompt is rendered, tokenized
or refused, ``/v1/health/live`` (what Kubernetes' liveness probe asks) is probed every
100 ms and no probe may take over a second. Before the request pool (ingot/offload.py) a
30 MB chat prompt stalled the probe 17 s, a 30 MB /tokenize 18 s, an 8 MB embedding input
11 s and 10,000 messages 3 s.

The probe runs in its own thread with its own connection; the big request is read as a
stream and dropped, so this process never holds the GIL long enough to slow the probe.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any

import httpx
import pytest

from ingot.errors import QueueFullError
from ingot.offload import CpuPool

PROBE_EVERY = 0.1
MAX_PROBE = 1.0
BIG = 30_000_000  # bytes of prompt text


def _probe(root: str, stop: threading.Event, latencies: list[float]) -> None:
    with httpx.Client(timeout=30) as client:
        while not stop.is_set():
            started = time.monotonic()
            assert client.get(f"{root}/v1/health/live").status_code == 200
            latencies.append(time.monotonic() - started)
            time.sleep(PROBE_EVERY)


def _send(root: str, path: str, body: dict[str, Any]) -> tuple[int, bytes]:
    """POST ``body`` and read the answer as a stream; only its first bytes are kept."""
    raw = json.dumps(body).encode()
    head = b""
    with httpx.Client(timeout=300) as client:
        with client.stream("POST", root + path, content=raw, headers={"content-type": "application/json"}) as r:
            for chunk in r.iter_bytes():
                head += chunk[: max(0, 2000 - len(head))]
            return r.status_code, head


def probed(root: str, path: str, body: dict[str, Any]) -> tuple[int, bytes, float]:
    """Send one big request while probing liveness; (status, answer's head, slowest probe)."""
    stop = threading.Event()
    latencies: list[float] = []
    prober = threading.Thread(target=_probe, args=(root, stop, latencies), daemon=True)
    prober.start()
    try:
        time.sleep(0.3)  # a few probes before, so the check also covers the upload
        status, head = _send(root, path, body)
        time.sleep(0.3)
    finally:
        stop.set()
        prober.join(timeout=30)
    assert len(latencies) >= 4, latencies
    print(f"{path}: {status}, {len(latencies)} probes, slowest {max(latencies):.3f} s")
    return status, head, max(latencies)


def _text(size: int) -> str:
    return "hello world " * (size // 12)


def test_30mb_chat_prompt_is_refused_without_stalling(server) -> None:
    status, head, slowest = probed(server.root, "/v1/chat/completions",
                                   {"messages": [{"role": "user", "content": _text(BIG)}], "max_tokens": 4})
    assert status == 400 and b"context_length_exceeded" in head, head
    assert slowest < MAX_PROBE, f"a liveness probe took {slowest:.2f} s"


def test_10000_messages_do_not_stall(server) -> None:
    messages = [{"role": "user" if i % 2 == 0 else "assistant", "content": "hello there " * 10} for i in range(10_000)]
    status, head, slowest = probed(server.root, "/v1/chat/completions", {"messages": messages, "max_tokens": 4})
    assert status == 400 and b"context_length_exceeded" in head, head
    assert slowest < MAX_PROBE, f"a liveness probe took {slowest:.2f} s"


@pytest.mark.slow  # ~30 s: the whole 30 MB is tokenized (any length is counted), 5 million ids come back
def test_30mb_tokenize_does_not_stall(server) -> None:
    status, head, slowest = probed(server.root, "/tokenize", {"prompt": _text(BIG)})
    assert status == 200 and head.startswith(b'{"count": 500000'), head[:200]
    assert slowest < MAX_PROBE, f"a liveness probe took {slowest:.2f} s"


@pytest.mark.slow  # ~15 s: an 8 MB input is tokenized before the token limit can refuse it
def test_8mb_embedding_input_does_not_stall(server) -> None:
    status, head, slowest = probed(server.root, "/v1/embeddings", {"input": _text(8_000_000)})
    assert status == 400 and b"tokens" in head, head
    assert slowest < MAX_PROBE, f"a liveness probe took {slowest:.2f} s"


@pytest.mark.slow  # ~10 s: 2,048 embeddings computed
def test_2048_embeddings_answer_does_not_stall(server) -> None:
    """The answer's JSON (~15 MB of floats; 2.5 s as one JSONResponse) is written off the loop."""
    status, head, slowest = probed(server.root, "/v1/embeddings", {"input": [f"short text {i}" for i in range(2048)]})
    assert status == 200 and head.startswith(b'{"object":"list","data":[{"object":"embedding"'), head[:200]
    assert slowest < MAX_PROBE, f"a liveness probe took {slowest:.2f} s"


def test_early_refusal_leaves_borderline_prompts_to_the_engine(server) -> None:
    """The early refusal (GenerationService.check_prompt_chars) only refuses text longer
    than context * the longest token piece, which no prompt that fits can be: a prompt
    just over the context in tokens is counted and refused by the engine itself."""
    text = "hello world " * 2100  # ~4,200 tokens: over the 4,096 context, far under the bound
    status, head = _send(server.root, "/v1/completions", {"prompt": text, "max_tokens": 1})
    assert status == 400 and b"context_length_exceeded" in head, head
    assert b"your prompt has" in head and b"characters long" not in head, head
    status, head = _send(server.root, "/v1/completions", {"prompt": "hello world " * 100, "max_tokens": 1})
    assert status == 200, head


def test_pool_is_bounded() -> None:
    """At most ``workers`` jobs run and ``max_waiting`` wait; the next caller gets a 429."""
    release = threading.Event()

    async def scenario() -> None:
        pool = CpuPool(workers=1, max_waiting=1, inline_below=10)
        first = asyncio.create_task(pool.run(release.wait, size=100))
        second = asyncio.create_task(pool.run(release.wait, size=100))
        await asyncio.sleep(0.05)
        assert pool.pending == 2
        with pytest.raises(QueueFullError):
            await pool.run(release.wait, size=100)
        assert await pool.run(len, "small", size=5) == 5  # small work runs inline, never refused
        release.set()
        assert await first and await second
        assert pool.pending == 0

    asyncio.run(scenario())
