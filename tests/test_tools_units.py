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


def folded(found: list[tuple[str, object]]) -> tuple[str, list[tuple[str, str]], int]:
    """The pieces as a client sees them once concatenated: text, (name, arguments) per call,
    and how many pieces the calls took."""
    text, calls, pieces = "", [], 0
    for kind, value in found:
        if kind == "text":
            text += value
        elif kind == "call":
            calls.append([value.name, value.arguments])
            pieces += 1
        else:
            calls[-1][1] += value
            pieces += 1
    return text, [tuple(c) for c in calls], pieces


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
        text, calls, _ = folded(found)
        assert text == "Let me check." and calls == [("get_weather", '{"city": "Paris"}')], (size, found)


def test_a_canonical_call_opens_at_its_name_and_streams_its_arguments_verbatim():
    arguments = '{"city": "Pa\\"ris}", "tags": [{"a": "{"}], "n": 2}'  # braces in strings, an escaped quote
    output = f'<tool_call>\n{{"name": "get_weather", "arguments": {arguments}}}\n</tool_call>'
    stream = ToolCallStream({"get_weather"})
    head = [p for ch in output[:output.index(arguments) + 1] for p in stream.feed(ch)]
    assert [k for k, _ in head] == ["call", "arguments"] and head[0][1].arguments == "" and head[1][1] == "{"
    for size in (1, 2, 5, len(output)):
        text, calls, pieces = folded(feed_all([output[i:i + size] for i in range(0, len(output), size)],
                                              {"get_weather"}))
        assert text == "" and calls == [("get_weather", arguments)], size
        assert pieces > 2 or size == len(output)
    # a call cut by max_tokens still streamed what it had
    cut = output[:output.index('"n"')]
    assert folded(feed_all(list(cut), {"get_weather"}))[1] == [("get_weather", arguments[:arguments.index('"n"')])]


def test_a_call_in_another_key_order_goes_out_whole():
    output = '<tool_call>{"arguments": {"city": "Oslo"}, "name": "get_weather"}</tool_call>'
    found = feed_all(list(output), {"get_weather"})
    assert [k for k, _ in found] == ["call"] and json.loads(found[0][1].arguments) == {"city": "Oslo"}


def test_parallel_calls_and_no_stray_whitespace():
    output = ('<tool_call>\n{"name": "add", "arguments": {"a": 1, "b": 2}}\n</tool_call>\n'
              '<tool_call>\n{"name": "add", "arguments": {"a": 3, "b": 4}}\n</tool_call>')
    found = feed_all(list(output), {"add"})
    text, calls, _ = folded(found)
    assert text == "" and calls == [("add", '{"a": 1, "b": 2}'), ("add", '{"a": 3, "b": 4}')]
    ids = [v.id for k, v in found if k == "call"]
    assert len(set(ids)) == 2


def test_lenient_forms_fenced_bare_and_unclosed():
    names = {"get_weather"}
    fenced = '```json\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n```'
    assert [k for k, _ in feed_all([fenced], names)] == ["call"]
    bare = '{"name": "get_weather", "arguments": "{\\"city\\": \\"Rome\\"}"}'
    (kind, call), = feed_all([bare], names)
    assert kind == "call" and json.loads(call.arguments) == {"city": "Rome"}
    unclosed = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Bern"}}'
    assert folded(feed_all([unclosed], names))[1] == [("get_weather", '{"city": "Bern"}')]


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
