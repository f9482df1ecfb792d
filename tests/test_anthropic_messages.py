"""Anthropic's Messages API through the unmodified ``anthropic`` SDK against a real server
(``Anthropic(base_url=ROOT)``, no ``/v1``), plus unit tests of the request conversion and of
events -> Anthropic shapes with hand-made event lists (tool_use blocks, input_json_delta).

The 135M default model: assertions are on structure, not on what it answers."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import anthropic
import httpx
import pytest

from authutil import create_key, isolated_data_dir
from ingot.generation.events import Finish, Started, TextDelta, ToolCallDelta, Usage
from ingot.server.anthropic import messages as shapes
from ingot.server.anthropic.errors import error_body
from ingot.server.anthropic.protocol import CountTokensRequest, MessagesRequest
from ingot.server.errors import APIError
from serverutil import RunningServer

MODEL = "smollm2-135m-instruct"
HELLO = [{"role": "user", "content": "Name three colors."}]
# Recent SDKs send sampling parameters only as extra body fields; the server honours them.
GREEDY = {"temperature": 0}


@pytest.fixture
def claude(server):
    return anthropic.Anthropic(base_url=server.root, api_key="x", max_retries=0, timeout=120)


def _assert_error(r: httpx.Response, status: int, kind: str) -> dict:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["type"] == "error" and set(body) == {"type", "error"}
    assert body["error"]["type"] == kind and body["error"]["message"]
    return body


# ---- the SDK against the real server ----------------------------------------------------

def test_create_returns_a_text_message_with_usage(claude, server):
    m = claude.messages.create(model=MODEL, max_tokens=16, messages=HELLO, extra_body=GREEDY,
                               extra_headers={"anthropic-version": "2023-06-01"})
    assert m.type == "message" and m.role == "assistant" and m.id.startswith("msg_")
    assert m.model == MODEL
    assert m.content[0].type == "text" and m.content[0].text.strip()
    assert m.stop_reason in ("end_turn", "max_tokens") and m.stop_sequence is None
    assert 0 < m.usage.output_tokens <= 16
    counted = claude.messages.count_tokens(model=MODEL, messages=HELLO).input_tokens
    assert m.usage.input_tokens + (m.usage.cache_read_input_tokens or 0) == counted
    assert m.usage.cache_creation_input_tokens == 0


def test_max_tokens_reports_max_tokens(claude):
    m = claude.messages.create(model=MODEL, max_tokens=3, extra_body=GREEDY,
                               messages=[{"role": "user", "content": "Write a long story about a dragon."}])
    assert m.stop_reason == "max_tokens" and m.usage.output_tokens == 3


def test_max_tokens_beyond_the_context_is_a_ceiling_not_an_error(claude, server):
    m = claude.messages.create(model=MODEL, max_tokens=1_000_000, extra_body=GREEDY,
                               messages=[{"role": "user", "content": "Say hello."}])
    assert m.content[0].type == "text" and m.stop_reason in ("end_turn", "max_tokens")
    # The OpenAI route keeps refusing what does not fit.
    r = httpx.post(f"{server.base_url}/chat/completions", json={"model": MODEL, "messages": HELLO,
                                                               "max_tokens": 1_000_000}, timeout=30)
    assert r.status_code == 400 and r.json()["error"]["code"] == "context_length_exceeded"


def test_system_as_string_and_as_blocks_render_the_same_prompt(claude):
    system = "You are a pirate. Answer in one short sentence."
    as_string = claude.messages.count_tokens(model=MODEL, system=system, messages=HELLO).input_tokens
    as_blocks = claude.messages.count_tokens(model=MODEL, messages=HELLO,
                                             system=[{"type": "text", "text": system}]).input_tokens
    plain = claude.messages.count_tokens(model=MODEL, messages=HELLO).input_tokens
    assert as_string == as_blocks != plain  # (SmolLM2's template has a default system prompt)
    for given in (system, [{"type": "text", "text": system, "cache_control": {"type": "ephemeral"}}]):
        m = claude.messages.create(model=MODEL, max_tokens=12, extra_body=GREEDY, system=given, messages=HELLO)
        assert m.content[0].type == "text" and m.content[0].text


def test_multi_turn_with_block_content(claude):
    turns = [
        {"role": "user", "content": "My name is Ada."},
        {"role": "assistant", "content": [{"type": "text", "text": "Nice to meet you, Ada."}]},
        {"role": "user", "content": [{"type": "text", "text": "What is my name?"}]},
    ]
    m = claude.messages.create(model=MODEL, max_tokens=12, extra_body=GREEDY, messages=turns)
    assert m.content[0].type == "text" and m.usage.output_tokens > 0
    one_turn = claude.messages.count_tokens(model=MODEL, messages=turns[-1:]).input_tokens
    assert claude.messages.count_tokens(model=MODEL, messages=turns).input_tokens > one_turn


def test_stop_sequences_end_the_turn_before_the_stop_string(claude):
    kwargs = dict(model=MODEL, max_tokens=40, extra_body=GREEDY,
                  messages=[{"role": "user", "content": "Count from 1 to 20, separated by commas."}])
    free = claude.messages.create(**kwargs).content[0].text
    # A stop string the greedy answer is known to contain (after its first character).
    stop = next(sep for sep in (",", "\n", " ") if sep in free[1:])
    m = claude.messages.create(**kwargs, stop_sequences=[stop, "never-said"])
    assert m.content[0].text == free[:free.index(stop)]
    assert m.stop_reason == "stop_sequence" and m.stop_sequence == stop
    with claude.messages.stream(**kwargs, stop_sequences=[stop]) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "stop_sequence" and final.stop_sequence == stop


def test_stream_helper_text_equals_final_message(claude):
    kwargs = dict(model=MODEL, max_tokens=20, extra_body=GREEDY, messages=HELLO)
    full = claude.messages.create(**kwargs)
    with claude.messages.stream(**kwargs) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == final.content[0].text == full.content[0].text
    assert final.stop_reason == full.stop_reason
    assert final.usage.output_tokens == full.usage.output_tokens
    assert final.usage.input_tokens + (final.usage.cache_read_input_tokens or 0) == \
        full.usage.input_tokens + (full.usage.cache_read_input_tokens or 0)


def test_raw_stream_events_come_in_the_documented_order(claude, server):
    events = list(claude.messages.create(model=MODEL, max_tokens=8, extra_body=GREEDY, messages=HELLO, stream=True))
    kinds = [e.type for e in events]
    assert kinds[:1] == ["message_start"]
    assert kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert set(kinds[1:-3]) <= {"content_block_start", "content_block_delta"}
    assert kinds.count("content_block_start") == 1 and kinds[1] == "content_block_start"
    start = events[0].message
    assert start.content == [] and start.stop_reason is None and start.usage.input_tokens > 0
    assert events[-2].delta.stop_reason in ("end_turn", "max_tokens") and events[-2].usage.output_tokens > 0
    # On the wire: every frame is named, its name equal to its data's type; a ping after message_start.
    body = {"model": MODEL, "max_tokens": 4, "messages": HELLO, "stream": True}
    with httpx.stream("POST", f"{server.base_url}/messages", json=body, timeout=60) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        frames = _frames("".join(r.iter_text()))
    assert [name for name, _ in frames][:2] == ["message_start", "ping"]
    assert all(name == data["type"] for name, data in frames)


def test_count_tokens_grows_with_the_input(claude, server):
    short = claude.messages.count_tokens(model=MODEL, messages=[{"role": "user", "content": "Hi"}]).input_tokens
    long = claude.messages.count_tokens(
        model=MODEL, messages=[{"role": "user", "content": "Hi, tell me about the weather on Mars today."}]
    ).input_tokens
    assert 0 < short < long
    via_tokenize = httpx.post(f"{server.root}/tokenize", json={"messages": [{"role": "user", "content": "Hi"}]})
    assert via_tokenize.json()["count"] == short


def test_missing_max_tokens_is_400_in_anthropic_shape(server, claude):
    r = httpx.post(f"{server.base_url}/messages", json={"model": MODEL, "messages": HELLO}, timeout=30)
    body = _assert_error(r, 400, "invalid_request_error")
    assert "max_tokens" in body["error"]["message"]
    with pytest.raises(anthropic.BadRequestError) as err:
        claude.messages.create(model=MODEL, max_tokens=0, messages=HELLO)
    assert err.value.body["error"]["type"] == "invalid_request_error"
    # Not valid JSON, and an unknown route under /v1/messages: the same shape.
    bad = httpx.post(f"{server.base_url}/messages", content=b"{", timeout=30,
                     headers={"content-type": "application/json"})
    _assert_error(bad, 400, "invalid_request_error")
    _assert_error(httpx.get(f"{server.base_url}/messages/nothing-here", timeout=30), 404, "not_found_error")


def test_unknown_model_is_404_not_found_error(claude):
    with pytest.raises(anthropic.NotFoundError) as err:
        claude.messages.create(model="claude-sonnet-4-5", max_tokens=8, messages=HELLO)
    assert err.value.body["error"]["type"] == "not_found_error"
    assert "claude-sonnet-4-5" in err.value.body["error"]["message"]
    with pytest.raises(anthropic.NotFoundError):
        claude.messages.count_tokens(model="claude-sonnet-4-5", messages=HELLO)


def test_image_block_is_a_clear_400(claude):
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}
    with pytest.raises(anthropic.BadRequestError) as err:
        claude.messages.create(model=MODEL, max_tokens=8, messages=[
            {"role": "user", "content": [image, {"type": "text", "text": "What is this?"}]}])
    assert "image" in err.value.message and "not supported" in err.value.message


def test_structured_output_follows_the_schema(claude):
    schema = {"type": "object", "properties": {"color": {"type": "string"}}, "required": ["color"],
              "additionalProperties": False}
    m = claude.messages.create(model=MODEL, max_tokens=40, extra_body=GREEDY, messages=HELLO,
                               output_config={"format": {"type": "json_schema", "schema": schema}})
    if m.stop_reason == "end_turn":
        assert set(json.loads(m.content[0].text)) == {"color"}
    else:
        assert m.content[0].text.lstrip().startswith("{")


def test_openai_routes_keep_openai_errors(server):
    r = httpx.post(f"{server.base_url}/chat/completions", json={"model": "nope", "messages": HELLO}, timeout=30)
    assert r.status_code == 404 and set(r.json()["error"]) == {"message", "type", "param", "code"}


WEATHER = [{"name": "get_weather", "description": "Current weather in a city",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]
ASK_WEATHER = [{"role": "user", "content": "What is the weather in Paris?"}]


def test_forced_tool_use_and_the_tool_result_round_trip(claude):
    choice = {"type": "tool", "name": "get_weather", "disable_parallel_tool_use": True}
    m = claude.messages.create(model=MODEL, max_tokens=64, extra_body=GREEDY, tools=WEATHER, messages=ASK_WEATHER,
                               tool_choice=choice)
    assert m.stop_reason == "tool_use"
    assert [b.type for b in m.content].count("tool_use") == 1
    call = m.content[-1]
    assert call.type == "tool_use" and call.name == "get_weather" and isinstance(call.input.get("city"), str)
    # count_tokens renders the tools into the prompt exactly as the request did.
    counted = claude.messages.count_tokens(model=MODEL, tools=WEATHER, messages=ASK_WEATHER,
                                           tool_choice=choice).input_tokens
    assert counted == m.usage.input_tokens + m.usage.cache_read_input_tokens
    assert counted > claude.messages.count_tokens(model=MODEL, messages=ASK_WEATHER).input_tokens
    follow = claude.messages.create(model=MODEL, max_tokens=16, extra_body=GREEDY, tools=WEATHER, messages=[
        *ASK_WEATHER, {"role": "assistant", "content": m.content},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "18 C, sunny"}]},
    ])
    assert follow.content and follow.stop_reason in ("end_turn", "max_tokens", "tool_use")


def test_streamed_tool_use_blocks_carry_input_json_deltas(claude):
    kwargs = dict(model=MODEL, max_tokens=128, extra_body=GREEDY, tools=WEATHER, messages=ASK_WEATHER,
                  tool_choice={"type": "any"})  # parallel calls allowed: this model makes two
    events = list(claude.messages.create(**kwargs, stream=True))
    starts = [e for e in events if e.type == "content_block_start" and e.content_block.type == "tool_use"]
    assert starts and all(e.content_block.id and e.content_block.name == "get_weather" for e in starts)
    inputs = []
    for start in starts:
        partial = "".join(e.delta.partial_json for e in events
                          if e.type == "content_block_delta" and e.index == start.index)
        inputs.append(json.loads(partial))
    assert all(isinstance(i.get("city"), str) for i in inputs)
    assert [e for e in events if e.type == "message_delta"][0].delta.stop_reason == "tool_use"
    with claude.messages.stream(**kwargs) as stream:  # the SDK's own accumulation of the deltas
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use"
    assert [b.input for b in final.content if b.type == "tool_use"] == inputs


@pytest.mark.slow  # a keyed server of its own
@pytest.mark.slow  # a keyed server of its own
def test_x_api_key_authenticates_and_401_is_anthropic_shaped(data_dir: Path, tmp_path_factory):
    state = isolated_data_dir(data_dir, tmp_path_factory.mktemp("anthropic-auth"))
    key = create_key(state, "claude-user")["key"]
    srv = RunningServer(state, "--context-length", "512", "--ranking-model", "none", "--embedding-model", "none")
    try:
        ok = anthropic.Anthropic(base_url=srv.root, api_key=key, max_retries=0, timeout=120)
        assert ok.messages.create(model=MODEL, max_tokens=4, messages=HELLO).content[0].type == "text"
        assert ok.messages.count_tokens(model=MODEL, messages=HELLO).input_tokens > 0
        with pytest.raises(anthropic.AuthenticationError) as err:
            anthropic.Anthropic(base_url=srv.root, api_key="sk-wrong", max_retries=0).messages.create(
                model=MODEL, max_tokens=4, messages=HELLO)
        assert err.value.body == {"type": "error", "error": {"type": "authentication_error",
                                                             "message": "invalid or revoked API key"}}
        r = httpx.post(f"{srv.base_url}/messages", json={"model": MODEL, "max_tokens": 4, "messages": HELLO})
        _assert_error(r, 401, "authentication_error")
        r = httpx.get(f"{srv.base_url}/models", timeout=30)  # OpenAI routes keep OpenAI's envelope
        assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
        assert httpx.get(f"{srv.base_url}/models", headers={"x-api-key": key}, timeout=30).status_code == 200
    finally:
        srv.stop()


# ---- request conversion -----------------------------------------------------------------

def _request(**fields) -> MessagesRequest:
    return MessagesRequest.model_validate({"model": MODEL, "max_tokens": 32, "messages": HELLO, **fields})


def test_conversion_of_plain_fields():
    chat = _request(system=[{"type": "text", "text": "Be brief."}, {"type": "text", "text": "Be kind."}],
                    stop_sequences=["\n\n", "END"], temperature=0.2, top_p=0.9, top_k=40, stream=True,
                    metadata={"user_id": "u-1"}).to_chat_request()
    assert [m.role for m in chat.messages] == ["system", "user"]
    assert chat.messages[0].content == "Be brief.\n\nBe kind."
    assert chat.max_tokens == 32 and chat.stop == ["\n\n", "END"] and chat.stream is True
    assert (chat.temperature, chat.top_p, chat.top_k, chat.user) == (0.2, 0.9, 40, "u-1")
    assert chat.tools is None and chat.tool_choice is None
    assert _request().to_chat_request().stop is None


def test_conversion_of_tool_use_and_tool_result():
    req = _request(
        messages=[
            {"role": "user", "content": "Weather in Paris and Rome?"},
            {"role": "assistant", "content": [
                {"type": "text", "text": "Let me check."},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "toolu_2", "name": "get_weather", "input": {"city": "Rome"}},
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18 C"},
                {"type": "tool_result", "tool_use_id": "toolu_2", "is_error": True,
                 "content": [{"type": "text", "text": "station "}, {"type": "text", "text": "offline"}]},
                {"type": "text", "text": "Summarize."},
            ]},
        ],
        tools=[{"name": "get_weather", "description": "Weather", "input_schema": {"type": "object"}}],
        tool_choice={"type": "any", "disable_parallel_tool_use": True},
    )
    chat = req.to_chat_request()
    roles = [m.role for m in chat.messages]
    assert roles == ["user", "assistant", "tool", "tool", "user"]
    assistant = chat.messages[1]
    assert assistant.content == "Let me check."
    assert assistant.tool_calls == [
        {"id": "toolu_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
        {"id": "toolu_2", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Rome"}'}},
    ]
    assert json.loads(assistant.tool_calls[0]["function"]["arguments"]) == {"city": "Paris"}
    assert (chat.messages[2].tool_call_id, chat.messages[2].content) == ("toolu_1", "18 C")
    assert (chat.messages[3].tool_call_id, chat.messages[3].content) == ("toolu_2", "Error: station offline")
    assert chat.messages[4].content == "Summarize."
    assert chat.tools == [{"type": "function", "function": {"name": "get_weather", "description": "Weather",
                                                            "parameters": {"type": "object"}}}]
    assert chat.tool_choice == "required"
    assert req.chat_tools()["parallel_tool_calls"] is False
    only_calls = _request(messages=[{"role": "assistant", "content": [
        {"type": "tool_use", "id": "t", "name": "f", "input": {}}]}]).to_chat_request().messages[0]
    assert only_calls.content is None and only_calls.tool_calls[0]["function"]["arguments"] == "{}"


@pytest.mark.parametrize("choice, expected", [
    ({"type": "auto"}, "auto"), ({"type": "any"}, "required"), ({"type": "none"}, "none"),
    ({"type": "tool", "name": "f"}, {"type": "function", "function": {"name": "f"}}),
])
def test_tool_choice_mapping(choice, expected):
    tools = [{"name": "f", "input_schema": {"type": "object"}}]
    fields = _request(tools=tools, tool_choice=choice).chat_tools()
    assert fields["tool_choice"] == expected and "parallel_tool_calls" not in fields
    assert fields["tools"][0]["function"]["description"] == ""


def test_conversion_errors_are_client_errors():
    from pydantic import ValidationError

    from ingot.errors import InvalidRequestError

    with pytest.raises(ValidationError, match="image content blocks are not supported"):
        _request(messages=[{"role": "user", "content": [{"type": "image", "source": {}}]}])
    with pytest.raises(ValidationError, match="not supported"):  # also inside a tool_result
        _request(messages=[{"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "t", "content": [{"type": "image", "source": {}}]}]}])
    with pytest.raises(ValidationError, match="max_tokens"):
        MessagesRequest.model_validate({"model": MODEL, "messages": HELLO})
    with pytest.raises(InvalidRequestError, match="tool_choice.name"):
        _request(tools=[{"name": "f", "input_schema": {}}], tool_choice={"type": "tool"}).to_chat_request()
    with pytest.raises(InvalidRequestError, match="assistant message"):
        _request(messages=[{"role": "user", "content": [
            {"type": "tool_use", "id": "t", "name": "f", "input": {}}]}]).to_chat_request()
    count = CountTokensRequest.model_validate({"model": MODEL, "system": "S", "messages": HELLO})
    assert [m.role for m in count.to_chat_request().messages] == ["system", "user"]


def test_error_bodies_by_status_and_path():
    assert error_body(429, "slow down") == {"type": "error",
                                            "error": {"type": "rate_limit_error", "message": "slow down"}}
    kinds = {s: error_body(s, "m")["error"]["type"] for s in (400, 401, 403, 404, 413, 415, 500, 503)}
    assert kinds == {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                     404: "not_found_error", 413: "request_too_large", 415: "invalid_request_error",
                     500: "api_error", 503: "overloaded_error"}
    error = APIError(404, "no such model", type="not_found_error", code="model_not_found")
    assert error.body("/v1/messages")["type"] == "error"
    assert error.body("/v1/messages/count_tokens")["type"] == "error"
    for openai_path in ("", "/v1/chat/completions", "/v1/messagesx"):
        assert error.body(openai_path) == {"error": {"message": "no such model", "type": "not_found_error",
                                                     "param": None, "code": "model_not_found"}}


# ---- events -> Anthropic shapes -----------------------------------------------------------

HEAD = Started("chatcmpl-abc", 1, MODEL, "fp_x", 1)
CALL_ARGS = ['{"city": ', '"Par', 'is", "days": [1, 2]}']


def _tool_events() -> list:
    return [
        HEAD,
        TextDelta(0, "Checking"), TextDelta(0, " now."),
        ToolCallDelta(0, 0, CALL_ARGS[0], id="call_1", name="get_weather"),
        ToolCallDelta(0, 0, CALL_ARGS[1]), ToolCallDelta(0, 0, CALL_ARGS[2]),
        ToolCallDelta(0, 1, "{}", id="call_2", name="get_time"),
        Finish(0, "tool_calls"),
        Usage(30, 12, 8),
    ]


async def _stream(items: list):
    for item in items:
        yield item


def _frames(text: str) -> list[tuple[str, dict]]:
    frames = []
    for raw in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in raw.splitlines())
        frames.append((lines["event"], json.loads(lines["data"])))
    return frames


def _sse(items: list, input_tokens: int = 30) -> list[tuple[str, dict]]:
    async def run() -> str:
        return "".join([frame async for frame in shapes.message_events(_stream(items), input_tokens)])

    return _frames(asyncio.run(run()))


def test_message_response_with_text_and_tool_use_blocks():
    m = asyncio.run(shapes.message(_stream(_tool_events())))
    assert m["id"] == "msg_abc" and m["type"] == "message" and m["role"] == "assistant" and m["model"] == MODEL
    assert m["content"] == [
        {"type": "text", "text": "Checking now."},
        {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris", "days": [1, 2]}},
        {"type": "tool_use", "id": "call_2", "name": "get_time", "input": {}},
    ]
    assert m["stop_reason"] == "tool_use" and m["stop_sequence"] is None
    assert m["usage"] == {"input_tokens": 22, "output_tokens": 12, "cache_creation_input_tokens": 0,
                          "cache_read_input_tokens": 8}
    only_call = [e for e in _tool_events() if not isinstance(e, TextDelta)]
    assert [b["type"] for b in asyncio.run(shapes.message(_stream(only_call)))["content"]] == ["tool_use"] * 2
    empty = asyncio.run(shapes.message(_stream([HEAD, Finish(0, "length"), Usage(5, 0)])))
    assert empty["content"] == [{"type": "text", "text": ""}] and empty["stop_reason"] == "max_tokens"


def test_stream_of_text_and_tool_use_blocks():
    frames = _sse(_tool_events())
    names = [name for name, _ in frames]
    assert all(name == data["type"] for name, data in frames)
    assert names == ["message_start", "ping",
                     "content_block_start", "content_block_delta", "content_block_delta", "content_block_stop",
                     "content_block_start", "content_block_delta", "content_block_delta", "content_block_delta",
                     "content_block_stop",
                     "content_block_start", "content_block_delta", "content_block_stop",
                     "message_delta", "message_stop"]
    start = frames[0][1]["message"]
    assert start["id"] == "msg_abc" and start["content"] == [] and start["usage"]["input_tokens"] == 30
    assert frames[2][1] == {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
    assert frames[6][1]["content_block"] == {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {}}
    assert frames[6][1]["index"] == 1 and frames[11][1]["index"] == 2
    partial = [d["delta"]["partial_json"] for _, d in frames if d.get("delta", {}).get("type") == "input_json_delta"
               and d["index"] == 1]
    assert partial == CALL_ARGS and json.loads("".join(partial)) == {"city": "Paris", "days": [1, 2]}
    delta = frames[-2][1]
    assert delta["delta"] == {"stop_reason": "tool_use", "stop_sequence": None}
    assert delta["usage"]["output_tokens"] == 12 and delta["usage"]["input_tokens"] == 22
    assert delta["usage"]["cache_read_input_tokens"] == 8


def test_stream_without_content_still_has_one_block_and_maps_length():
    names = [n for n, _ in _sse([HEAD, Finish(0, "length"), Usage(5, 1)])]
    assert names == ["message_start", "ping", "content_block_start", "content_block_stop", "message_delta",
                     "message_stop"]
    assert _sse([HEAD, TextDelta(0, "a"), Finish(0, "stop"), Usage(5, 1)])[-2][1]["delta"]["stop_reason"] == "end_turn"


def test_stream_error_after_start_is_an_error_event():
    from ingot.errors import QueueFullError

    async def failing():
        yield HEAD
        yield TextDelta(0, "partial")
        raise QueueFullError("the queue is full")

    async def run() -> str:
        return "".join([frame async for frame in shapes.message_events(failing(), 3)])

    frames = _frames(asyncio.run(run()))
    assert [n for n, _ in frames][-1] == "error"
    assert frames[-1][1] == {"type": "error", "error": {"type": "rate_limit_error", "message": "the queue is full"}}
    assert "message_stop" not in [n for n, _ in frames]
