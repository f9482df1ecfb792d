"""The OpenAI Responses API: unit tests of the input conversion and of events -> response
object / event stream (hand-made events, tool calls included), then the real, unmodified
openai SDK against a real server (create, instructions, item input, streaming, storage,
previous_response_id over three turns, function tools, errors, ownership across keys) and
a schemathesis run over the Responses operations of OpenAI's spec.

The bundled model is 135M parameters: structure is asserted, not answer quality.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import openai
import pytest

from authutil import create_key, isolated_data_dir
from conftest import SHARED_DATA
from ingot.errors import InvalidRequestError, NotFoundError
from ingot.generation.events import Finish, Started, TextDelta, ToolCallDelta, Usage
from ingot.server.openai.response_store import SqlResponseStore, StoredResponse
from ingot.server.openai.responses import Turn
from ingot.server.openai.responses_protocol import CreateResponseRequest, input_items, to_chat_request
from ingot_st_hooks import st_env
from serverutil import RunningServer

WEATHER = {"type": "function", "name": "get_weather", "description": "Current weather in a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
           "strict": True}


# ---- unit: input conversion ---------------------------------------------------------------

def _chat(body: dict[str, Any], context: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    req = CreateResponseRequest.model_validate(body)
    chat = to_chat_request(req, [*(context or []), *input_items(req)])
    return [m.model_dump(exclude_none=True) for m in chat.messages]


def test_string_input_and_instructions_become_system_then_user():
    assert _chat({"input": "Hi", "instructions": "Be brief."}) == [
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]


def test_item_list_with_calls_and_outputs_maps_to_chat_tool_messages():
    messages = _chat({"input": [
        {"role": "developer", "content": "Use tools."},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Weather in "},
                                                         {"type": "input_text", "text": "Paris?"}]},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Checking."}]},
        {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": '{"city":"Paris"}'},
        {"type": "function_call", "call_id": "call_2", "name": "get_weather", "arguments": '{"city":"Nice"}'},
        {"type": "function_call_output", "call_id": "call_1", "output": "18C"},
        {"type": "function_call_output", "call_id": "call_2", "output": [{"type": "input_text", "text": "21C"}]},
    ]})
    assert messages == [
        {"role": "developer", "content": "Use tools."},
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": "Checking.", "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}},
            {"id": "call_2", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Nice"}'}}]},
        {"role": "tool", "content": "18C", "tool_call_id": "call_1"},
        {"role": "tool", "content": "21C", "tool_call_id": "call_2"},
    ]


def test_a_call_with_no_assistant_text_opens_its_own_assistant_message():
    messages = _chat({"input": [
        {"role": "user", "content": "Weather?"},
        {"type": "function_call", "call_id": "c", "name": "get_weather", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c", "output": "sunny"}]})
    assert messages[1] == {"role": "assistant", "tool_calls": [
        {"id": "c", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}]}


def test_stored_context_comes_before_the_input_and_after_new_instructions():
    context = input_items(CreateResponseRequest(input="first")) + [
        {"type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
         "content": [{"type": "output_text", "text": "answer", "annotations": []}]}]
    assert _chat({"input": "second", "instructions": "New rules."}, context) == [
        {"role": "system", "content": "New rules."}, {"role": "user", "content": "first"},
        {"role": "assistant", "content": "answer"}, {"role": "user", "content": "second"}]


def test_tools_tool_choice_and_text_format_map_to_the_chat_request():
    req = CreateResponseRequest.model_validate({
        "input": "x", "tools": [WEATHER], "tool_choice": {"type": "function", "name": "get_weather"},
        "parallel_tool_calls": False, "max_output_tokens": 7, "temperature": 0, "top_p": 0.5,
        "text": {"format": {"type": "json_schema", "name": "p", "schema": {"type": "object"}, "strict": True}}})
    chat = to_chat_request(req, input_items(req))
    assert chat.tools == [{"type": "function", "function": {
        "name": "get_weather", "description": "Current weather in a city", "parameters": WEATHER["parameters"],
        "strict": True}}]
    assert chat.tool_choice == {"type": "function", "function": {"name": "get_weather"}}
    assert chat.parallel_tool_calls is False
    assert chat.max_completion_tokens == 7 and chat.temperature == 0 and chat.top_p == 0.5
    assert chat.response_format.type == "json_schema"
    assert chat.response_format.json_schema.schema_ == {"type": "object"}
    assert chat.response_format.json_schema.name == "p"
    req = CreateResponseRequest.model_validate({"input": "x", "text": {"format": {"type": "json_object"}}})
    assert to_chat_request(req, input_items(req)).response_format.type == "json_object"


@pytest.mark.parametrize("body, param", [
    ({"input": "x", "tools": [{"type": "web_search_preview"}]}, "tools"),
    ({"input": "x", "tool_choice": {"type": "file_search"}}, "tool_choice"),
    ({"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "http://x"}]}]}, "input"),
    ({"input": [{"type": "item_reference", "id": "x"}]}, "input"),
    ({"input": [{"role": "robot", "content": "x"}]}, "input"),
    ({"input": []}, "input"),
])
def test_what_cannot_be_served_is_a_400_naming_the_parameter(body, param):
    req = CreateResponseRequest.model_validate(body)
    with pytest.raises(InvalidRequestError) as info:
        to_chat_request(req, input_items(req))
    assert info.value.param == param and info.value.status == 400


def test_background_and_conversation_are_refused():
    for body, param in (({"input": "x", "background": True}, "background"),
                        ({"input": "x", "conversation": "conv_1"}, "conversation")):
        with pytest.raises(InvalidRequestError) as info:
            CreateResponseRequest.model_validate(body).check_supported()
        assert info.value.param == param


# ---- unit: events -> response object and event stream -----------------------------------

class _Events:
    """A hand-made event stream with the AdmittedStream surface."""

    def __init__(self, events: list[Any], error: Exception | None = None) -> None:
        self._events, self._error, self.closed = list(events), error, False

    def __aiter__(self) -> "_Events":
        return self

    async def __anext__(self) -> Any:
        if self._events:
            return self._events.pop(0)
        if self._error is not None:
            raise self._error
        raise StopAsyncIteration

    async def aclose(self) -> None:
        self.closed = True


def _turn(tmp_path: Path, **body: Any) -> tuple[Turn, SqlResponseStore]:
    store = SqlResponseStore(tmp_path)
    return Turn(CreateResponseRequest.model_validate({"input": "hi", **body}), store, "key1", []), store


START = Started("chatcmpl-1", 1, "smollm2", "fp_x", 1)


async def _frames(turn: Turn, events: _Events) -> list[dict[str, Any]]:
    out = []
    async for frame in turn.stream(events):
        head, data = frame.strip().split("\n")
        payload = json.loads(data.removeprefix("data: "))
        assert head == f"event: {payload['type']}"
        out.append(payload)
    assert events.closed
    return out


def test_text_events_stream_every_event_in_order_and_fold_to_the_object(tmp_path):
    asyncio.run(_test_text_events_stream_every_event_in_order_and_fold_to_the_object(tmp_path))


async def _test_text_events_stream_every_event_in_order_and_fold_to_the_object(tmp_path):
    turn, store = _turn(tmp_path)
    events = [START, TextDelta(0, "Hel"), TextDelta(0, ""), TextDelta(0, "lo"), Finish(0, "stop"), Usage(5, 2, 1)]
    frames = await _frames(turn, _Events(events))
    assert [f["type"] for f in frames] == [
        "response.created", "response.in_progress", "response.output_item.added", "response.content_part.added",
        "response.output_text.delta", "response.output_text.delta", "response.output_text.done",
        "response.content_part.done", "response.output_item.done", "response.completed"]
    assert [f["sequence_number"] for f in frames] == list(range(len(frames)))
    assert frames[0]["response"]["status"] == "in_progress" and frames[0]["response"]["output"] == []
    done = frames[-1]["response"]
    assert done["status"] == "completed" and done["id"] == turn.id and done["model"] == "smollm2"
    [message] = done["output"]
    assert message["type"] == "message" and message["status"] == "completed" and message["id"].startswith("msg_")
    assert message["content"] == [{"type": "output_text", "text": "Hello", "annotations": [], "logprobs": []}]
    assert frames[6]["text"] == "Hello" == "".join(f["delta"] for f in frames if f["type"].endswith("text.delta"))
    assert done["usage"] == {"input_tokens": 5, "input_tokens_details": {"cached_tokens": 1, "cache_write_tokens": 0},
                             "output_tokens": 2, "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 7}
    stored = store.get(turn.id)
    assert stored is not None and stored.response == done and stored.owner == "key1"
    whole = await _turn(tmp_path)[0].complete(_Events(events))
    assert whole["output"][0]["content"] == message["content"] and whole["status"] == "completed"


def test_tool_calls_become_function_call_items_with_all_done_events(tmp_path):
    asyncio.run(_test_tool_calls_become_function_call_items_with_all_done_events(tmp_path))


async def _test_tool_calls_become_function_call_items_with_all_done_events(tmp_path):
    turn, _ = _turn(tmp_path, tools=[WEATHER])
    events = [START, TextDelta(0, "Let me check."),
              ToolCallDelta(0, 0, '{"city":', id="call_a", name="get_weather"), ToolCallDelta(0, 0, '"Paris"}'),
              ToolCallDelta(0, 1, '{"city":"Nice"}', id="call_b", name="get_weather"),
              Finish(0, "tool_calls"), Usage(9, 20)]
    frames = await _frames(turn, _Events(events))
    assert [f["type"] for f in frames] == [
        "response.created", "response.in_progress",
        "response.output_item.added", "response.content_part.added", "response.output_text.delta",
        "response.output_text.done", "response.content_part.done", "response.output_item.done",
        "response.output_item.added", "response.function_call_arguments.delta",
        "response.function_call_arguments.delta", "response.function_call_arguments.done",
        "response.output_item.done",
        "response.output_item.added", "response.function_call_arguments.delta",
        "response.function_call_arguments.done", "response.output_item.done",
        "response.completed"]
    added = frames[8]["item"]
    assert added["type"] == "function_call" and added["arguments"] == "" and added["status"] == "in_progress"
    assert frames[11]["arguments"] == '{"city":"Paris"}' and frames[11]["name"] == "get_weather"
    output = frames[-1]["response"]["output"]
    assert [i["type"] for i in output] == ["message", "function_call", "function_call"]
    assert [(i["call_id"], i["arguments"], i["status"]) for i in output[1:]] == [
        ("call_a", '{"city":"Paris"}', "completed"), ("call_b", '{"city":"Nice"}', "completed")]
    assert output[1]["id"].startswith("fc_") and frames[-1]["response"]["tools"][0]["name"] == "get_weather"
    assert [f["output_index"] for f in frames if f["type"] == "response.output_item.done"] == [0, 1, 2]


def test_max_tokens_makes_the_response_incomplete(tmp_path):
    asyncio.run(_test_max_tokens_makes_the_response_incomplete(tmp_path))


async def _test_max_tokens_makes_the_response_incomplete(tmp_path):
    turn, _ = _turn(tmp_path, max_output_tokens=2)
    frames = await _frames(turn, _Events([START, TextDelta(0, "ab"), Finish(0, "length"), Usage(3, 2)]))
    final = frames[-1]
    assert final["type"] == "response.incomplete"
    assert final["response"]["status"] == "incomplete"
    assert final["response"]["incomplete_details"] == {"reason": "max_output_tokens"}
    assert final["response"]["output"][0]["status"] == "incomplete"
    assert final["response"]["max_output_tokens"] == 2


def test_an_empty_answer_still_has_a_message_item(tmp_path):
    asyncio.run(_test_an_empty_answer_still_has_a_message_item(tmp_path))


async def _test_an_empty_answer_still_has_a_message_item(tmp_path):
    turn, _ = _turn(tmp_path)
    whole = await turn.complete(_Events([START, Finish(0, "stop"), Usage(3, 0)]))
    assert whole["output"][0]["content"][0]["text"] == ""


def test_an_error_after_start_sends_error_then_failed_and_stores_the_failure(tmp_path):
    asyncio.run(_test_an_error_after_start_sends_error_then_failed_and_stores_the_failure(tmp_path))


async def _test_an_error_after_start_sends_error_then_failed_and_stores_the_failure(tmp_path):
    turn, store = _turn(tmp_path)
    frames = await _frames(turn, _Events([START, TextDelta(0, "partial")], error=RuntimeError("engine died")))
    types = [f["type"] for f in frames]
    assert types[-2:] == ["error", "response.failed"]
    assert frames[-2]["code"] == "server_error" and frames[-2]["message"]
    failed = frames[-1]["response"]
    assert failed["status"] == "failed" and failed["error"]["code"] == "server_error"
    assert store.get(turn.id).response["status"] == "failed"
    assert [f["sequence_number"] for f in frames] == list(range(len(frames)))


def test_store_false_saves_nothing(tmp_path):
    asyncio.run(_test_store_false_saves_nothing(tmp_path))


async def _test_store_false_saves_nothing(tmp_path):
    turn, store = _turn(tmp_path, store=False)
    await turn.complete(_Events([START, TextDelta(0, "x"), Finish(0, "stop"), Usage(1, 1)]))
    assert store.get(turn.id) is None


def test_previous_response_is_visible_to_its_owner_and_admins_only(tmp_path):
    asyncio.run(_test_previous_response_is_visible_to_its_owner_and_admins_only(tmp_path))


async def _test_previous_response_is_visible_to_its_owner_and_admins_only(tmp_path):
    store = SqlResponseStore(tmp_path)
    store.put(StoredResponse("resp_1", "alice", 1, {"output": []}, [], []))
    req = CreateResponseRequest(input="x", previous_response_id="resp_1")
    assert (await Turn.prepare(req, store, "alice", False)).context == []
    await Turn.prepare(req, store, "bob", True)  # an admin reads everything
    with pytest.raises(NotFoundError) as info:
        await Turn.prepare(req, store, "bob", False)
    assert info.value.param == "previous_response_id"
    assert store.delete("resp_1") and store.get("resp_1") is None and not store.delete("resp_1")


# ---- the real server, the real SDK ---------------------------------------------------------

ASK = "Name three colors."


def _text(response) -> str:  # noqa: ANN001
    return response.output_text


def test_create_returns_a_completed_response_with_usage(client, model_id):
    r = client.responses.create(model=model_id, input=ASK, max_output_tokens=16, temperature=0)
    assert r.object == "response" and r.id.startswith("resp_")
    assert r.status in ("completed", "incomplete")
    assert r.output[0].type == "message" and r.output[0].role == "assistant"
    assert r.output[0].content[0].type == "output_text"
    assert r.output_text.strip()
    assert 0 < r.usage.output_tokens <= 16 and r.usage.input_tokens > 0
    assert r.usage.total_tokens == r.usage.input_tokens + r.usage.output_tokens
    assert r.store is True and r.error is None and r.temperature == 0 and r.max_output_tokens == 16


def test_max_output_tokens_makes_it_incomplete(client, model_id):
    r = client.responses.create(model=model_id, input="Write a long story about a dragon.", max_output_tokens=3,
                                temperature=0)
    assert r.status == "incomplete" and r.incomplete_details.reason == "max_output_tokens"
    assert r.usage.output_tokens == 3


def test_instructions_are_part_of_the_prompt_and_echoed(client, model_id, server):
    instructions = "You are a pirate. Answer like one."
    r = client.responses.create(model=model_id, input=ASK, instructions=instructions, max_output_tokens=4,
                                temperature=0, store=False)
    assert r.instructions == instructions
    # The prompt is exactly the system message from the instructions, then the input.
    messages = [{"role": "system", "content": instructions}, {"role": "user", "content": ASK}]
    assert r.usage.input_tokens == httpx.post(f"{server.root}/tokenize", json={"messages": messages}).json()["count"]


def test_input_as_an_item_list(client, model_id):
    r = client.responses.create(model=model_id, max_output_tokens=8, temperature=0, input=[
        {"role": "developer", "content": "Answer in one word."},
        {"role": "user", "content": [{"type": "input_text", "text": "What color is the sky?"}]},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Blue."}]},
        {"role": "user", "content": "And grass?"},
    ])
    assert r.status in ("completed", "incomplete") and r.output_text.strip()


def test_stream_helper_sends_every_event_in_order(client, model_id):
    with client.responses.stream(model=model_id, input=ASK, max_output_tokens=12, temperature=0) as stream:
        events = list(stream)
        final = stream.get_final_response()
    types = [e.type for e in events]
    assert types[:4] == ["response.created", "response.in_progress", "response.output_item.added",
                         "response.content_part.added"]
    assert types[-4:] == ["response.output_text.done", "response.content_part.done", "response.output_item.done",
                          "response.completed" if final.status == "completed" else "response.incomplete"]
    assert set(types[4:-4]) == {"response.output_text.delta"}
    numbers = [e.sequence_number for e in events]
    assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    done = next(e for e in events if e.type == "response.output_text.done")
    assert deltas == done.text == final.output_text != ""
    assert final.usage.output_tokens > 0


def test_create_stream_true_matches_the_whole_response(client, model_id):
    kwargs = dict(model=model_id, input=ASK, max_output_tokens=12, temperature=0, store=False)
    whole = client.responses.create(**kwargs)
    events = list(client.responses.create(**kwargs, stream=True))
    assert events[-1].type in ("response.completed", "response.incomplete")
    assert events[-1].response.output_text == whole.output_text
    assert events[-1].response.usage.input_tokens == whole.usage.input_tokens


def test_raw_sse_names_every_event(server, model_id):
    body = {"model": model_id, "input": ASK, "max_output_tokens": 3, "stream": True}
    with httpx.stream("POST", f"{server.base_url}/responses", json=body, timeout=60) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in r.iter_lines() if line]
    names = [line.removeprefix("event: ") for line in lines if line.startswith("event: ")]
    datas = [json.loads(line.removeprefix("data: ")) for line in lines if line.startswith("data: ")]
    assert names == [d["type"] for d in datas] and names[-1] in ("response.completed", "response.incomplete")


def test_store_get_input_items_delete(client, model_id):
    r = client.responses.create(model=model_id, input=ASK, max_output_tokens=6, temperature=0,
                                metadata={"case": "store"})
    got = client.responses.retrieve(r.id)
    assert got.id == r.id and got.output_text == r.output_text and got.metadata == {"case": "store"}
    items = client.responses.input_items.list(r.id)
    assert [(i.type, i.role, i.content[0].text) for i in items.data] == [("message", "user", ASK)]
    assert items.first_id == items.data[0].id and items.has_more is False
    client.responses.delete(r.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(r.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.delete(r.id)


def test_store_false_is_not_retrievable(client, model_id):
    r = client.responses.create(model=model_id, input=ASK, max_output_tokens=2, store=False)
    assert r.store is False
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(r.id)


def test_cancel_a_completed_response_is_a_400(client, model_id):
    r = client.responses.create(model=model_id, input=ASK, max_output_tokens=2)
    with pytest.raises(openai.BadRequestError) as info:
        client.responses.cancel(r.id)
    assert "cancel" in info.value.message


def test_previous_response_id_carries_a_three_turn_conversation(client, model_id):
    first = client.responses.create(model=model_id, input="My name is Ada. Say hi.", instructions="Be brief.",
                                    max_output_tokens=8, temperature=0)
    second = client.responses.create(model=model_id, input="What is my name?", previous_response_id=first.id,
                                     max_output_tokens=8, temperature=0)
    third = client.responses.create(model=model_id, input="Thanks. One more word?", previous_response_id=second.id,
                                    max_output_tokens=8, temperature=0)
    assert second.previous_response_id == first.id and third.previous_response_id == second.id
    assert first.usage.input_tokens < second.usage.input_tokens < third.usage.input_tokens
    # The second prompt holds the first turn's input and output (not its instructions).
    alone = client.responses.create(model=model_id, input="What is my name?", max_output_tokens=1, store=False)
    assert second.usage.input_tokens > alone.usage.input_tokens + first.usage.output_tokens
    assert second.instructions is None
    assert third.output_text.strip() and third.status in ("completed", "incomplete")
    # The chain survives deleting an earlier turn: each stored turn keeps its context.
    client.responses.delete(first.id)
    fourth = client.responses.create(model=model_id, input="Bye.", previous_response_id=third.id,
                                     max_output_tokens=4, temperature=0)
    assert fourth.usage.input_tokens > third.usage.input_tokens


def test_json_schema_text_format_gives_parseable_json(client, model_id):
    schema = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 20},
                                               "age": {"type": "integer"}},
              "required": ["name", "age"], "additionalProperties": False}
    r = client.responses.create(
        model=model_id, input="Invent a person. Reply in JSON with name and age.", max_output_tokens=80,
        temperature=0, text={"format": {"type": "json_schema", "name": "person", "schema": schema, "strict": True}})
    assert r.status == "completed"
    jsonschema.validate(json.loads(r.output_text), schema)
    assert r.text.format.type == "json_schema"


def _envelope(error: openai.APIStatusError) -> dict:
    body = error.response.json()
    assert set(body) == {"error"} and {"message", "type", "param", "code"} <= set(body["error"])
    return body["error"]


@pytest.mark.parametrize("kwargs, status, param", [
    ({"previous_response_id": "resp_does_not_exist"}, 404, "previous_response_id"),
    ({"tools": [{"type": "web_search_preview"}]}, 400, "tools"),
    ({"background": True}, 400, "background"),
    ({"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "http://x/y.png"}]}]}, 400,
     "input"),
])
def test_errors_come_in_openais_envelope(client, model_id, kwargs, status, param):
    with pytest.raises(openai.APIStatusError) as info:
        client.responses.create(**{"model": model_id, "input": ASK, "max_output_tokens": 2, **kwargs})
    assert info.value.status_code == status
    assert _envelope(info.value)["param"] == param


def test_a_client_made_error_before_start_is_a_clean_400_even_when_streamed(server, model_id):
    body = {"model": model_id, "input": ASK, "stream": True, "tools": [{"type": "code_interpreter"}]}
    r = httpx.post(f"{server.base_url}/responses", json=body, timeout=30)
    assert r.status_code == 400 and r.json()["error"]["param"] == "tools"


@pytest.mark.slow
def test_function_tool_round_trip(client, model_id):
    first = client.responses.create(model=model_id, input="What is the weather in Paris?", tools=[WEATHER],
                                    tool_choice="required", max_output_tokens=60, temperature=0)
    calls = [item for item in first.output if item.type == "function_call"]
    assert calls and all(c.name == "get_weather" and c.status == "completed" for c in calls)
    jsonschema.validate(json.loads(calls[0].arguments), WEATHER["parameters"])
    assert calls[0].id.startswith("fc_") and calls[0].call_id
    follow = client.responses.create(
        model=model_id, previous_response_id=first.id, tools=[WEATHER], max_output_tokens=16, temperature=0,
        input=[{"type": "function_call_output", "call_id": c.call_id, "output": "18C and sunny"} for c in calls])
    assert follow.usage.input_tokens > first.usage.input_tokens
    assert follow.status in ("completed", "incomplete")


@pytest.mark.slow
def test_function_tool_streamed(client, model_id):
    with client.responses.stream(model=model_id, input="Weather in Rome?", tools=[WEATHER],
                                 tool_choice={"type": "function", "name": "get_weather"}, max_output_tokens=60,
                                 parallel_tool_calls=False, temperature=0) as stream:
        events = list(stream)
        final = stream.get_final_response()
    types = [e.type for e in events]
    assert "response.function_call_arguments.delta" in types
    done = next(e for e in events if e.type == "response.function_call_arguments.done")
    deltas = "".join(e.delta for e in events if e.type == "response.function_call_arguments.delta")
    call = next(i for i in final.output if i.type == "function_call")
    assert deltas == done.arguments == call.arguments
    jsonschema.validate(json.loads(call.arguments), WEATHER["parameters"])
    assert types[-1] == "response.completed"


# ---- ownership across keys (a server of its own, keys on) --------------------------------

@pytest.fixture(scope="module")
def keyed(data_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    home = isolated_data_dir(data_dir, tmp_path_factory.mktemp("responses-keys"))
    keys = {"admin": create_key(home, "ops", "--admin")["key"], "alice": create_key(home, "alice")["key"],
            "bob": create_key(home, "bob")["key"]}
    srv = RunningServer(home)
    clients = {name: openai.OpenAI(base_url=srv.base_url, api_key=key, max_retries=0, timeout=120)
               for name, key in keys.items()}
    yield clients
    srv.stop()


@pytest.mark.slow  # a keyed server of its own, ~20 s
@pytest.mark.slow
def test_a_stored_response_belongs_to_its_key(keyed, model_id):
    alice, bob, admin = keyed["alice"], keyed["bob"], keyed["admin"]
    r = alice.responses.create(model=model_id, input=ASK, max_output_tokens=4, temperature=0)
    assert alice.responses.retrieve(r.id).id == r.id
    for attempt in (lambda: bob.responses.retrieve(r.id), lambda: bob.responses.input_items.list(r.id),
                    lambda: bob.responses.delete(r.id),
                    lambda: bob.responses.create(model=model_id, input="x", previous_response_id=r.id,
                                                 max_output_tokens=2)):
        with pytest.raises(openai.NotFoundError) as info:
            attempt()
        assert r.id in _envelope(info.value)["message"]
    assert admin.responses.retrieve(r.id).id == r.id  # admins read every response
    follow = alice.responses.create(model=model_id, input="More.", previous_response_id=r.id, max_output_tokens=2)
    assert follow.usage.input_tokens > r.usage.input_tokens
    alice.responses.delete(r.id)
    with pytest.raises(openai.NotFoundError):
        admin.responses.retrieve(r.id)


# ---- OpenAI's spec, fuzzed ------------------------------------------------------------------

SPEC = SHARED_DATA / "openai-openapi" / "openapi.yaml"
EXCLUDED = ("ignored_auth,missing_required_header,status_code_conformance,positive_data_acceptance,"
            "negative_data_rejection,unsupported_method,allow_header_conformance")


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.skipif(not SPEC.is_file(), reason=f"OpenAI spec not found at {SPEC} (../shared/data)")
@pytest.mark.parametrize("operation, extra_excluded, examples", [
    # createResponse generates text for every case: budgets capped by the hooks, and no
    # coverage phase (it enumerates hundreds of boundary cases of the huge request schema:
    # 6-9 minutes of the suite); examples + fuzzing + stateful still run
    ("createResponse", "", 25), ("getResponse", "", 25), ("listInputItems", "", 25),
    # The spec documents their 404 body as a bare Error object; OpenAI (and ingot) send the envelope.
    ("deleteResponse", ",response_schema_conformance", 25), ("cancelResponse", ",response_schema_conformance", 25),
])
def test_schemathesis_finds_no_server_errors(operation, extra_excluded, examples, data_dir: Path):
    pytest.importorskip("schemathesis", reason="schemathesis is a test extra")
    st = Path(sys.executable).with_name("st")
    srv = _fuzz_server(data_dir)
    result = subprocess.run(
        [str(st), "run", str(SPEC), "--url", srv.base_url, "-H", "Authorization: Bearer x",
         "--include-operation-id", operation, "--max-examples", str(examples), "--request-timeout", "60",
         "--generation-deterministic", "--exclude-checks", EXCLUDED + extra_excluded,
         *(["--phases", "examples,fuzzing,stateful"] if operation == "createResponse" else [])],
        capture_output=True, text=True, timeout=540, env=st_env(),
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]


_FUZZ: dict[str, RunningServer] = {}


def _fuzz_server(data_dir: Path) -> RunningServer:
    # A short context bounds each generated request's work, so fuzzing stays quick.
    if "srv" not in _FUZZ:
        _FUZZ["srv"] = RunningServer(data_dir, "--context-length", "256", "--parallel", "4")
    return _FUZZ["srv"]


@pytest.fixture(scope="module", autouse=True)
def _stop_fuzz_server():
    yield
    if "srv" in _FUZZ:
        _FUZZ.pop("srv").stop()
