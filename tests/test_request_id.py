"""Request ids on a real server: echoed when the client sends a sane one, generated
otherwise, on every response (errors included), and carried by the JSON log lines
(INGOT_LOG_FORMAT=json); with INGOT_OTEL_EXPORTER=console each request is a span."""

from __future__ import annotations

import importlib.util
import json
import re
import time
import uuid
from pathlib import Path

import httpx
import pytest

from serverutil import RunningServer

HAS_OTEL = importlib.util.find_spec("opentelemetry.sdk") is not None


@pytest.fixture(scope="module")
def json_log_server(tmp_path_factory: pytest.TempPathFactory, data_dir: Path):
    from authutil import isolated_data_dir

    state = isolated_data_dir(data_dir, tmp_path_factory.mktemp("reqid"))
    env = {"INGOT_LOG_FORMAT": "json", **({"INGOT_OTEL_EXPORTER": "console"} if HAS_OTEL else {})}
    srv = RunningServer(state, "--model", "none", "--ranking-model", "none", env=env)
    yield srv
    srv.stop()


def _json_lines(srv: RunningServer) -> list[dict]:
    return [json.loads(line) for line in srv.log().splitlines() if line.startswith('{"ts"')]


@pytest.mark.slow  # a JSON-log server of its own
def test_client_request_id_is_echoed_on_success_and_errors(json_log_server):
    srv = json_log_server
    rid = f"client-{uuid.uuid4().hex[:8]}"
    ok = httpx.post(f"{srv.base_url}/embeddings", json={"input": "hello"}, headers={"x-request-id": rid}, timeout=60)
    assert ok.status_code == 200 and ok.headers["x-request-id"] == rid
    bad = httpx.post(f"{srv.base_url}/embeddings", json={"input": 5}, headers={"X-Request-ID": rid + "b"}, timeout=60)
    assert bad.status_code == 400 and bad.headers["x-request-id"] == rid + "b"
    missing = httpx.get(f"{srv.base_url}/no-such-route", headers={"x-request-id": rid + "c"}, timeout=30)
    assert missing.status_code == 404 and missing.headers["x-request-id"] == rid + "c"
    assert len(ok.headers.get_list("x-request-id")) == 1


@pytest.mark.slow  # a JSON-log server of its own
def test_request_id_is_generated_when_absent_or_unsafe(json_log_server):
    srv = json_log_server
    ids = {httpx.get(f"{srv.base_url}/models", timeout=30).headers["x-request-id"] for _ in range(3)}
    assert len(ids) == 3 and all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    for unsafe in (b"x" * 200, b"has space", b'quote"d', "ünïcode".encode()):
        r = httpx.get(f"{srv.base_url}/models", headers={"x-request-id": unsafe}, timeout=30)
        assert re.fullmatch(r"[0-9a-f]{32}", r.headers["x-request-id"]), unsafe


@pytest.mark.slow  # a JSON-log server of its own
def test_json_log_lines_carry_the_request_id(json_log_server):
    srv = json_log_server
    rid = f"trace-{uuid.uuid4().hex[:12]}"
    r = httpx.post(f"{srv.base_url}/embeddings", json={"input": ["a", "b"]}, headers={"x-request-id": rid},
                   timeout=60)
    assert r.status_code == 200
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        mine = [e for e in _json_lines(srv) if e.get("request_id") == rid]
        if mine:
            break
        time.sleep(0.1)
    assert mine, srv.log()[-3000:]
    access = [e for e in mine if e["logger"] == "ingot.access"]
    assert access and access[0]["path"] == "/v1/embeddings" and access[0]["status"] == 200
    assert access[0]["method"] == "POST" and access[0]["duration_ms"] >= 0
    lines = _json_lines(srv)
    assert any(e["logger"].startswith("uvicorn") for e in lines)  # uvicorn's own lines are JSON too
    assert all({"ts", "level", "logger", "message", "request_id"} <= set(e) for e in lines)
    # Lines logged outside any request say so rather than borrowing an id.
    assert any(e["request_id"] is None for e in lines if e["logger"] == "ingot.server")


@pytest.mark.slow  # a server of its own
@pytest.mark.skipif(not HAS_OTEL, reason="opentelemetry-sdk is the optional 'otel' extra")
def test_console_exporter_writes_one_span_per_request(tmp_path: Path, data_dir: Path):
    srv = RunningServer(tmp_path, "--model", "none", "--embedding-model", "none", "--ranking-model", "none",
                        env={"INGOT_OTEL_EXPORTER": "console"})
    try:
        rid = f"span-{uuid.uuid4().hex[:8]}"
        assert httpx.get(f"{srv.base_url}/version", headers={"x-request-id": rid}, timeout=30).status_code == 200
    finally:
        srv.stop()  # flushes the batch exporter
    log = srv.log()
    assert '"name": "GET /v1/version"' in log and rid in log and '"http.route": "/v1/version"' in log


def test_a_bug_answers_500_with_the_envelope_and_request_id(tmp_path: Path):
    """In-process: a route that raises must still answer JSON with the id the user will quote."""
    from starlette.testclient import TestClient

    from ingot.config import load_settings
    from ingot.server.app import build_app

    app = build_app(load_settings(data_dir=tmp_path, model="none", embedding_model="none", ranking_model="none"))

    async def boom() -> None:
        raise RuntimeError("a bug")

    app.add_api_route("/v1/boom", boom)
    client = TestClient(app, raise_server_exceptions=False)
    r = client.get("/v1/boom", headers={"x-request-id": "bug-42"})
    assert r.status_code == 500 and r.headers["x-request-id"] == "bug-42"
    assert r.json()["error"]["type"] == "server_error" and "a bug" not in r.text
