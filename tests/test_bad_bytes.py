"""Bad bytes are client errors: a lone UTF-16 surrogate (JSON's ``"\\ud800"`` escape) or a
non-finite number (``NaN``, ``Infinity``, which Python's JSON decoder accepts) in any field
is a 400 naming the field, on every route, in the route's own error shape; never a 500.

The bodies are raw bytes: Python's HTTP clients refuse to encode a surrogate, so the JSON
is written by hand here exactly as a client in another language would send it.
"""

from __future__ import annotations

import httpx
import pytest

from ingot.errors import StoreFailure
from ingot.server.errors import to_api_error
from ingot.store.protocol import CollectionExists, CollectionNotFound, InvalidCollectionName, StoreError

LONE = '"hi \\ud800 there"'  # the JSON text of a string holding a lone high surrogate
LOW = '"\\udc00"'  # a lone low surrogate
CHAT = '{"messages": [{"role": "user", "content": %s}], "max_tokens": 2%s}'

# (path, raw JSON body, the field the 400 must name)
SURROGATES = [
    ("/v1/chat/completions", CHAT % (LONE, ""), "messages.0.content"),
    ("/v1/chat/completions", CHAT % (LONE, ', "stream": true'), "messages.0.content"),
    ("/v1/chat/completions", CHAT % (f'[{{"type": "text", "text": {LOW}}}]', ""), "messages.0.content"),
    ("/v1/chat/completions", CHAT % ('"hi"', f', "stop": [{LONE}]'), "stop"),
    ("/v1/chat/completions", CHAT % ('"hi"', f', "user": {LONE}'), "user"),
    ("/v1/chat/completions",
     CHAT % ('"hi"', ', "tools": [{"type": "function", "function": {"name": %s, "parameters": {}}}]' % LONE), "tools"),
    ("/v1/completions", '{"prompt": %s, "max_tokens": 2}' % LONE, "prompt"),
    ("/v1/completions", '{"prompt": ["fine", %s], "max_tokens": 2, "stream": true}' % LONE, "prompt"),
    ("/v1/embeddings", '{"input": %s}' % LONE, "input"),
    ("/v1/embeddings", '{"input": ["fine", %s]}' % LOW, "input"),
    ("/v1/rag/chat/completions", '{"messages": [{"role": "user", "content": %s}], "collection": "docs"}' % LONE,
     "messages.0.content"),
    ("/tokenize", '{"prompt": %s}' % LONE, "prompt"),
    ("/tokenize", '{"messages": [{"role": "user", "content": %s}]}' % LONE, "messages.0.content"),
    ("/v1/ranking", '{"query": {"text": %s}, "passages": [{"text": "a"}]}' % LONE, "query.text"),
    ("/v1/ranking", '{"query": {"text": "q"}, "passages": [{"text": %s}]}' % LONE, "passages.0.text"),
    ("/v1/rerank", '{"query": %s, "documents": ["a"]}' % LONE, "query"),
    ("/v1/rerank", '{"query": "q", "documents": [%s]}' % LONE, "documents"),
    ("/v1/search", '{"query": %s, "collection": "docs"}' % LONE, "query"),
    ("/v1/responses", '{"input": %s, "max_output_tokens": 2}' % LONE, "input"),
    ("/v1/responses", '{"input": "hi", "instructions": %s, "max_output_tokens": 2}' % LONE, "instructions"),
    ("/v1/messages", '{"model": "m", "max_tokens": 2, "messages": [{"role": "user", "content": %s}]}' % LONE,
     "messages.0.content"),
    ("/v1/messages/count_tokens", '{"model": "m", "messages": [{"role": "user", "content": %s}]}' % LONE,
     "messages.0.content"),
]

HI = '{"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2, %s}'
NON_FINITE = [
    ("/v1/chat/completions", HI % '"temperature": NaN', "temperature"),
    ("/v1/chat/completions", HI % '"top_p": Infinity', "top_p"),
    ("/v1/chat/completions", HI % '"presence_penalty": -Infinity', "presence_penalty"),
    ("/v1/chat/completions", HI % '"frequency_penalty": 1e999', "frequency_penalty"),
    ("/v1/chat/completions", HI % '"logit_bias": {"12": NaN}', "logit_bias.12"),
    ("/v1/chat/completions", HI % '"min_p": NaN, "stream": true', "min_p"),
    ("/v1/chat/completions",
     HI % '"tools": [{"type": "function", "function": {"name": "f", "parameters": {"maximum": NaN}}}]', "tools"),
    ("/v1/completions", '{"prompt": "hi", "max_tokens": 2, "temperature": NaN}', "temperature"),
    ("/v1/completions", '{"prompt": "hi", "max_tokens": 2, "repetition_penalty": Infinity}', "repetition_penalty"),
    ("/v1/search", '{"query": "q", "collection": "docs", "filter": {"created_after": NaN}}', "filter.created_after"),
    ("/v1/search", '{"query": "q", "collection": "docs", "filter": {"created_before": Infinity}}',
     "filter.created_before"),
    ("/v1/rag/chat/completions",
     '{"messages": [{"role": "user", "content": "q"}], "collection": "docs", "temperature": NaN}', "temperature"),
    ("/v1/responses", '{"input": "hi", "max_output_tokens": 2, "temperature": NaN}', "temperature"),
    ("/v1/messages", '{"model": "m", "max_tokens": 2, "messages": [{"role": "user", "content": "hi"}], '
                     '"temperature": NaN}', "temperature"),
]


def _post(server, path: str, body: str | bytes) -> httpx.Response:
    raw = body.encode("ascii") if isinstance(body, str) else body
    return httpx.post(server.root + path, content=raw, headers={"content-type": "application/json"}, timeout=60)


def _check_400(response: httpx.Response, path: str, field: str) -> None:
    assert response.status_code == 400, (path, response.status_code, response.text[:500])
    body = response.json()
    if path.startswith("/v1/messages"):  # Anthropic's shape: no param, the field is in the message
        assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error", body
        assert f"'{field}'" in body["error"]["message"], body
    else:  # OpenAI's envelope
        assert body["error"]["type"] == "invalid_request_error", body
        assert body["error"]["param"] == field, body
        assert f"'{field}'" in body["error"]["message"], body


@pytest.mark.parametrize("path,body,field", SURROGATES, ids=[f"{p}:{f}" for p, _, f in SURROGATES])
def test_lone_surrogate_is_400_naming_the_field(server, path: str, body: str, field: str) -> None:
    response = _post(server, path, body)
    _check_400(response, path, field)
    if not path.startswith("/v1/messages"):
        assert "surrogate" in response.json()["error"]["message"] or "unicode" in response.json()["error"]["message"]


@pytest.mark.parametrize("path,body,field", NON_FINITE, ids=[f"{p}:{f}" for p, _, f in NON_FINITE])
def test_non_finite_number_is_400_naming_the_field(server, path: str, body: str, field: str) -> None:
    _check_400(_post(server, path, body), path, field)


def test_surrogate_encoded_as_raw_bytes_is_400(server) -> None:
    """The same surrogate as (CESU-8) bytes rather than an escape: Python's decoder passes
    it through as a surrogate too; it is caught the same way."""
    body = b'{"messages": [{"role": "user", "content": "hi \xed\xa0\x80"}], "max_tokens": 2}'
    _check_400(_post(server, "/v1/chat/completions", body), "/v1/chat/completions", "messages.0.content")


def test_invalid_utf8_body_is_400(server) -> None:
    response = _post(server, "/v1/chat/completions", b'{"messages": [{"role": "user", "content": "\xff\xfe"}]}')
    assert response.status_code == 400, response.text


def test_paired_surrogates_are_fine(server) -> None:
    """An escaped pair is one valid character (U+1F600): not rejected."""
    response = _post(server, "/tokenize", '{"prompt": "smile \\ud83d\\ude00"}')
    assert response.status_code == 200, response.text
    assert response.json()["count"] > 0


def test_server_still_answers_after_bad_bytes(server) -> None:
    assert httpx.get(server.root + "/v1/health/live", timeout=10).status_code == 200
    response = _post(server, "/v1/chat/completions", CHAT % ('"Say hi"', ""))
    assert response.status_code == 200, response.text


def test_every_store_error_has_a_status() -> None:
    """StoreError is part of the hierarchy: a bare one is a 503 with its message (not an
    unmapped 500), and its kinds keep their own status."""
    assert issubclass(StoreError, StoreFailure)
    cases = {StoreError("filter bound must be finite, got nan"): 503, CollectionNotFound("no such collection"): 404,
             CollectionExists("exists"): 409, InvalidCollectionName("bad name"): 400}
    for error, status in cases.items():
        api = to_api_error(error)
        assert api.status == status, (error, api.status)
        assert api.message == str(error)
    assert to_api_error(StoreError("x")).code == "store_error"


@pytest.mark.parametrize("body", [b"[" * (1 << 20), b'{"prompt": "' + b"x" * (1 << 20), b"\xff" * (1 << 20)],
                         ids=["nested-too-deep", "truncated", "not-utf8"])
def test_big_body_that_is_not_json_is_400(server, body: bytes) -> None:
    """Bodies of 1 MiB and more are decoded off the event loop (OffloadedJSONRoute); one
    that does not decode still gets FastAPI's own 400, never a 500."""
    response = _post(server, "/v1/completions", body)
    assert response.status_code == 400, response.text[:300]
    assert response.json()["error"]["type"] == "invalid_request_error"
