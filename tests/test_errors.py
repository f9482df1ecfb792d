"""Client mistakes get OpenAI-style errors with the right status, never a 500 or a raw 422."""

from __future__ import annotations

import httpx
import openai
import pytest


def _post(server, path: str, **kwargs) -> httpx.Response:
    return httpx.post(f"{server.base_url}{path}", timeout=60, **kwargs)


def _assert_envelope(r: httpx.Response, status: int, param: str | None = None) -> dict:
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert set(err) >= {"message", "type", "param", "code"}
    assert err["message"]
    if param is not None:
        assert err["param"] == param, err
    return err


MSG = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize(
    "body, param",
    [
        ({}, "messages"),
        ({"messages": []}, "messages"),
        ({"messages": MSG, "temperature": 5}, "temperature"),
        ({"messages": MSG, "top_p": -0.1}, "top_p"),
        ({"messages": MSG, "n": 0}, "n"),
        ({"messages": MSG, "max_tokens": -1}, "max_tokens"),
        ({"messages": MSG, "top_logprobs": 3}, None),
        ({"messages": MSG, "top_logprobs": 50, "logprobs": True}, "top_logprobs"),
        ({"messages": [{"role": "wizard", "content": "x"}]}, None),
        ({"messages": MSG, "response_format": {"type": "xml"}}, None),
        ({"messages": MSG, "response_format": {"type": "json_schema"}}, None),
        ({"messages": MSG, "logit_bias": {"abc": 1}}, "logit_bias"),
        ({"messages": MSG, "stop": ["x"] * 40}, "stop"),
    ],
)
def test_bad_chat_parameters_are_400(server, body, param):
    _assert_envelope(_post(server, "/chat/completions", json=body), 400, param)


def test_invalid_json_body_is_400(server):
    r = _post(server, "/chat/completions", content=b"{not json", headers={"content-type": "application/json"})
    _assert_envelope(r, 400)


def test_unknown_model_is_404(server):
    err = _assert_envelope(_post(server, "/chat/completions", json={"model": "gpt-9", "messages": MSG}), 404, "model")
    assert err["code"] == "model_not_found"
    _assert_envelope(httpx.get(f"{server.base_url}/models/gpt-9"), 404)


def test_prompt_longer_than_context_is_400(server):
    long_text = "word " * 5000
    r = _post(server, "/chat/completions", json={"messages": [{"role": "user", "content": long_text}]})
    err = _assert_envelope(r, 400)
    assert err["code"] == "context_length_exceeded"
    assert "maximum context length" in err["message"]


def test_completion_budget_beyond_context_is_400(server):
    r = _post(server, "/chat/completions", json={"messages": MSG, "max_tokens": 100000})
    assert _assert_envelope(r, 400, "max_tokens")["code"] == "context_length_exceeded"


def test_bad_completion_prompts_are_400(server):
    _assert_envelope(_post(server, "/completions", json={"prompt": ""}), 400, "prompt")
    _assert_envelope(_post(server, "/completions", json={"prompt": "x", "n": 1, "best_of": 3}), 400)
    _assert_envelope(_post(server, "/completions", json={"prompt": []}), 400)
    _assert_envelope(_post(server, "/completions", json={"prompt": [10**9]}), 400, "prompt")
    _assert_envelope(_post(server, "/completions", json={"prompt": "x", "max_tokens": 0}), 400, "max_tokens")
    _assert_envelope(_post(server, "/completions", json={"prompt": "x", "suffix": "y"}), 400)


def test_invalid_schema_is_400(server):
    body = {"messages": MSG, "response_format": {"type": "json_schema",
                                                 "json_schema": {"name": "x", "schema": {"type": "object", "$ref": "#/nope"}}}}
    _assert_envelope(_post(server, "/chat/completions", json=body), 400, "response_format")


def test_image_content_is_rejected_clearly(server):
    msg = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}}]}]
    err = _assert_envelope(_post(server, "/chat/completions", json={"messages": msg}), 400, "messages")
    assert "not supported" in err["message"]


def test_tools_ingot_cannot_run_are_refused_not_ignored(server):
    """Function tools are served (tests/test_tool_calling.py); other tool types are refused."""
    tools = [{"type": "web_search_preview"}]
    _assert_envelope(_post(server, "/chat/completions", json={"messages": MSG, "tools": tools}), 400, "tools")


def test_unknown_route_uses_envelope(server):
    _assert_envelope(httpx.get(f"{server.base_url}/nope"), 404)


def test_sdk_raises_typed_errors(client):
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="nope", messages=MSG)
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="smollm2", messages=MSG, temperature=9)


def test_server_still_serves_after_errors(client, model_id):
    r = client.chat.completions.create(model=model_id, messages=MSG, max_tokens=3)
    assert r.choices[0].message.content is not None
