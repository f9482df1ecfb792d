"""generation/tools.py without a model: request validation, the forced-call grammar, the
prompt for templates with and without tools, and the streaming parser."""

from __future__ import annotations

import json

import pytest

from ingot.errors import InvalidRequestError
from ingot.generation.tools import ToolCallStream, parse_call, plan_tools, template_messages

WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
ADD = {"type": "function", "function": {"name": "add", "parameters": {
    "type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}}, "required": ["a", "b"]}}}


def feed_all(pieces: list[str], names: set[str]) -> list[tuple[str, object]]:
    stream = ToolCallStream(names)
    out = [p for piece in pieces for p in stream.feed(piece)]
    return out + stream.finish()


def test_plan_validates_tools_and_choice():
    assert plan_tools(None, None, None) is None
    assert plan_tools([WEATHER], "none", None) is None
    plan = plan_tools([WEATHER, ADD], {"type": "function", "function": {"name": "add"}}, False)
    assert plan.choice == "add" and plan.forced and not plan.parallel
    for tools, choice, param in (([{"type": "web_search"}], None, "tools"), ([WEATHER, WEATHER], None, "tools"),
                                 ([WEATHER], "sometimes", "tool_choice"),
                                 ([WEATHER], {"type": "function", "function": {"name": "nope"}}, "tool_choice"),
                                 (None, "required", "tool_choice")):
        with pytest.raises(InvalidRequestError) as err:
            plan_tools(tools, choice, None)
        assert err.value.param == param


def test_forced_grammar_names_only_the_chosen_function():
    one = plan_tools([WEATHER, ADD], {"type": "function", "function": {"name": "add"}}, False).grammar()
    assert '"\\"add\\""' in one and "get_weather" not in one and "tool-call)*" not in one
    both = plan_tools([WEATHER, ADD], "required", True).grammar()
    assert "get_weather" in both and "add" in both and 'root ::= tool-call ("\\n" tool-call)*' in both


def test_stream_splits_text_and_calls_across_any_delta_boundaries():
    output = 'Let me check.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'
    for size in (1, 3, 7, len(output)):
        found = feed_all([output[i:i + size] for i in range(0, len(output), size)], {"get_weather"})
        text = "".join(v for k, v in found if k == "text")
        calls = [v for k, v in found if k == "call"]
        assert text == "Let me check." and len(calls) == 1, (size, found)
        assert calls[0].name == "get_weather" and json.loads(calls[0].arguments) == {"city": "Paris"}


def test_parallel_calls_and_no_stray_whitespace():
    output = ('<tool_call>\n{"name": "add", "arguments": {"a": 1, "b": 2}}\n</tool_call>\n'
              '<tool_call>\n{"name": "add", "arguments": {"a": 3, "b": 4}}\n</tool_call>')
    found = feed_all(list(output), {"add"})
    assert [k for k, _ in found] == ["call", "call"]
    assert [json.loads(v.arguments) for _, v in found] == [{"a": 1, "b": 2}, {"a": 3, "b": 4}]
    assert found[0][1].id != found[1][1].id


def test_lenient_forms_fenced_bare_and_unclosed():
    names = {"get_weather"}
    fenced = '```json\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n```'
    assert [k for k, _ in feed_all([fenced], names)] == ["call"]
    bare = '{"name": "get_weather", "arguments": "{\\"city\\": \\"Rome\\"}"}'
    (kind, call), = feed_all([bare], names)
    assert kind == "call" and json.loads(call.arguments) == {"city": "Rome"}
    unclosed = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Bern"}}'
    assert [k for k, _ in feed_all([unclosed], names)] == ["call"]


def test_text_that_only_looks_like_a_call_stays_text():
    names = {"get_weather"}
    for text in ('{"answer": 42}', "```python\nprint(1)\n```", "I <3 tools", "<tool_call>not json</tool_call>",
                 '<tool_call>{"name": "other", "arguments": {}}</tool_call>'):
        found = feed_all(list(text), names)
        assert found and all(k == "text" for k, _ in found), text
        assert "".join(v for _, v in found) == text
    assert parse_call('{"name": "unknown", "arguments": {}}', names) is None


def test_prompt_without_template_support_writes_the_calls_as_tags():
    plan = plan_tools([WEATHER], "auto", True)
    messages = [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": "", "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]},
        {"role": "tool", "content": '{"temp": 21}', "tool_call_id": "call_1"},
    ]
    plain = template_messages(messages, plan, knows_tools=False)
    assert plain[0]["role"] == "system" and "<tools>" in plain[0]["content"] and "get_weather" in plain[0]["content"]
    assert plain[2]["content"] == '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'
    assert plain[3] == {"role": "user", "content": '<tool_response>\n{"temp": 21}\n</tool_response>'}
    native = template_messages(messages, plan, knows_tools=True)
    assert native[1]["tool_calls"][0]["function"]["arguments"] == {"city": "Paris"}
    assert native[2]["role"] == "tool"
