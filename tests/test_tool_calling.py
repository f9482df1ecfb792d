"""Chat tool calling against the real server with the real, unmodified clients: the openai
SDK (each tool_choice, parallel calls, streamed deltas, a tool result sent back), LangChain
``bind_tools`` / ``with_structured_output(method="function_calling")``, LiteLLM,
openai-agents and pydantic-ai.

The bundled model is 135M parameters: forced calls (required / named) are checked for
validity against the schema, which the grammar guarantees whatever the model; auto mode
is checked for shape only (benchmarks/tools.py measures how often small models call
when they should).
"""

from __future__ import annotations

import json
import os

import jsonschema
import pytest

pytestmark = pytest.mark.slow  # drives six client libraries against the server

WEATHER_PARAMS = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
    "required": ["city", "unit"],
}
WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "Current weather in a city",
                                            "parameters": WEATHER_PARAMS}}
ORDER_PARAMS = {
    "type": "object",
    "properties": {
        "customer": {"type": "object", "properties": {"name": {"type": "string"}, "vip": {"type": "boolean"}},
                     "required": ["name", "vip"]},
        "items": {"type": "array", "items": {"type": "object", "properties": {
            "sku": {"type": "string"}, "quantity": {"type": "integer"}}, "required": ["sku", "quantity"]}},
    },
    "required": ["customer", "items"],
}
ORDER = {"type": "function", "function": {"name": "place_order", "description": "Place an order",
                                          "parameters": ORDER_PARAMS}}
ASK = [{"role": "user", "content": "What is the weather in Paris, in celsius?"}]


def _calls(response) -> list:  # noqa: ANN001
    return response.choices[0].message.tool_calls or []


@pytest.mark.parametrize("choice", ["required", {"type": "function", "function": {"name": "get_weather"}}])
def test_forced_calls_parse_and_validate(client, model_id, choice):
    r = client.chat.completions.create(model=model_id, messages=ASK, tools=[WEATHER, ORDER], tool_choice=choice,
                                       max_tokens=120, temperature=0)
    calls = _calls(r)
    assert calls and r.choices[0].finish_reason == "tool_calls"
    assert r.choices[0].message.content is None
    for call in calls:
        assert call.type == "function" and call.id.startswith("call_")
        schema = WEATHER_PARAMS if call.function.name == "get_weather" else ORDER_PARAMS
        jsonschema.validate(json.loads(call.function.arguments), schema)
    if isinstance(choice, dict):
        assert {c.function.name for c in calls} == {"get_weather"}
    assert len({c.id for c in calls}) == len(calls)


def test_nested_arguments_are_forced_valid_too(client, model_id):
    r = client.chat.completions.create(
        model=model_id, messages=[{"role": "user", "content": "Order two of sku A1 for Ada, a VIP."}],
        tools=[ORDER], tool_choice={"type": "function", "function": {"name": "place_order"}},
        parallel_tool_calls=False, max_tokens=160, temperature=0)
    (call,) = _calls(r)
    jsonschema.validate(json.loads(call.function.arguments), ORDER_PARAMS)


def test_parallel_tool_calls_false_makes_exactly_one_call(client, model_id):
    for seed in (1, 2, 3):
        r = client.chat.completions.create(model=model_id, messages=ASK, tools=[WEATHER], tool_choice="required",
                                           parallel_tool_calls=False, max_tokens=120, temperature=0.8, seed=seed)
        assert len(_calls(r)) == 1


def test_none_and_auto(client, model_id):
    none = client.chat.completions.create(model=model_id, messages=ASK, tools=[WEATHER], tool_choice="none",
                                          max_tokens=30, temperature=0)
    assert not _calls(none) and none.choices[0].message.content
    auto = client.chat.completions.create(model=model_id, messages=ASK, tools=[WEATHER], max_tokens=80, temperature=0)
    choice = auto.choices[0]
    if choice.message.tool_calls:  # auto: either a valid call or an answer, never a half-parsed mix
        assert choice.finish_reason == "tool_calls"
        jsonschema.validate(json.loads(choice.message.tool_calls[0].function.arguments), WEATHER_PARAMS)
    else:
        assert choice.message.content and "<tool_call>" not in choice.message.content


def test_streamed_fragments_reassemble_to_the_final_arguments(client, model_id):
    stream = client.chat.completions.create(model=model_id, messages=ASK, tools=[WEATHER], tool_choice="required",
                                            max_tokens=120, temperature=0, stream=True,
                                            stream_options={"include_usage": True})
    calls: dict[int, dict] = {}
    finish = None
    usage = None
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        if not chunk.choices:
            continue
        finish = chunk.choices[0].finish_reason or finish
        for frag in chunk.choices[0].delta.tool_calls or []:
            entry = calls.setdefault(frag.index, {"id": None, "name": None, "arguments": ""})
            if frag.id:
                assert entry["id"] is None, "a call's id comes once, with its first fragment"
                entry["id"], entry["name"] = frag.id, frag.function.name
            entry["arguments"] += frag.function.arguments or ""
    assert finish == "tool_calls" and calls and usage is not None and usage.completion_tokens > 0
    for entry in calls.values():
        assert entry["id"] and entry["name"] == "get_weather"
        jsonschema.validate(json.loads(entry["arguments"]), WEATHER_PARAMS)


def test_a_tool_result_sent_back_gets_an_answer(client, model_id):
    first = client.chat.completions.create(model=model_id, messages=ASK, tools=[WEATHER], tool_choice="required",
                                           parallel_tool_calls=False, max_tokens=120, temperature=0)
    call = _calls(first)[0]
    history = [*ASK, first.choices[0].message.model_dump(exclude_none=True),
               {"role": "tool", "tool_call_id": call.id, "content": json.dumps({"temperature": 21, "sky": "clear"})}]
    answer = client.chat.completions.create(model=model_id, messages=history, tools=[WEATHER], tool_choice="none",
                                            max_tokens=40, temperature=0)
    plain = client.chat.completions.create(model=model_id, messages=ASK, max_tokens=1, temperature=0)
    assert answer.choices[0].message.content and not answer.choices[0].message.tool_calls
    # the call and its result are in the prompt (rendered as <tool_call> / <tool_response> for this template)
    assert answer.usage.prompt_tokens > plain.usage.prompt_tokens + 20


def test_malformed_tool_calls_in_the_history_are_400s_not_500s(server):
    import httpx

    bad = [*ASK, {"role": "assistant", "content": None, "tool_calls": [{}]}]
    for url, body in ((f"{server.base_url}/chat/completions", {"messages": bad, "max_tokens": 4}),
                      (f"{server.root}/tokenize", {"messages": bad})):
        r = httpx.post(url, json=body, timeout=60)
        assert r.status_code == 400 and r.json()["error"]["param"] == "messages", r.text


def test_bad_tool_requests_are_clear_400s(client, model_id):
    import openai

    for tools, choice, needle in (([{"type": "code_interpreter"}], "auto", "only function tools"),
                                  ([WEATHER], {"type": "function", "function": {"name": "fly"}}, "not among the tools"),
                                  ([WEATHER], "always", "tool_choice must be")):
        with pytest.raises(openai.BadRequestError) as err:
            client.chat.completions.create(model=model_id, messages=ASK, tools=tools, tool_choice=choice, max_tokens=8)
        assert needle in err.value.body["message"]


@pytest.mark.slow  # agent framework client
def test_langchain_bind_tools_and_structured_output(server, model_id):
    from langchain_openai import ChatOpenAI
    from pydantic import BaseModel, Field

    class Weather(BaseModel):
        """Report the weather in a city."""

        city: str = Field(description="the city")
        celsius: int = Field(description="temperature in degrees Celsius")

    llm = ChatOpenAI(base_url=server.base_url, api_key="x", model=model_id, temperature=0, max_tokens=80)
    message = llm.bind_tools([Weather], tool_choice="required").invoke("Paris is at 21 degrees. Report it.")
    assert message.tool_calls and message.tool_calls[0]["name"] == "Weather"
    assert set(message.tool_calls[0]["args"]) == {"city", "celsius"}
    report = llm.with_structured_output(Weather, method="function_calling").invoke("Paris is at 21 degrees.")
    assert isinstance(report, Weather) and isinstance(report.celsius, int)


@pytest.mark.slow  # imports litellm, ~17 s
def test_litellm_passes_tools_through(server, model_id):
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # offline: no cost-map download
    import litellm

    r = litellm.completion(model=f"openai/{model_id}", api_base=server.base_url, api_key="x", messages=ASK,
                           tools=[WEATHER], tool_choice="required", max_tokens=120, temperature=0)
    call = r.choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather"
    jsonschema.validate(json.loads(call.function.arguments), WEATHER_PARAMS)


@pytest.mark.slow  # agent framework client
def test_openai_agents_calls_a_function_tool_over_chat_completions(server, model_id):
    import openai
    from agents import Agent, ModelSettings, OpenAIChatCompletionsModel, Runner, function_tool, set_tracing_disabled

    set_tracing_disabled(True)
    seen: list[str] = []

    @function_tool
    def get_weather(city: str) -> str:
        """Current weather in a city."""
        seen.append(city)
        return f"sunny in {city}"

    client = openai.AsyncOpenAI(base_url=server.base_url, api_key="x", max_retries=0)
    agent = Agent(name="weather", instructions="Use the tool.", tools=[get_weather],
                  model=OpenAIChatCompletionsModel(model=model_id, openai_client=client),
                  model_settings=ModelSettings(tool_choice="required", temperature=0, max_tokens=80),
                  tool_use_behavior="stop_on_first_tool")
    result = Runner.run_sync(agent, "What's the weather in Paris?")
    assert seen and result.final_output == f"sunny in {seen[0]}"


@pytest.mark.slow  # agent framework client
def test_pydantic_ai_structured_output_rides_on_a_forced_tool(server, model_id):
    from pydantic import BaseModel
    from pydantic_ai import Agent
    from pydantic_ai.models.openai import OpenAIChatModel
    from pydantic_ai.providers.openai import OpenAIProvider

    class City(BaseModel):
        name: str
        country: str

    model = OpenAIChatModel(model_id, provider=OpenAIProvider(base_url=server.base_url, api_key="x"))
    agent = Agent(model, output_type=City, model_settings={"temperature": 0, "max_tokens": 80})
    result = agent.run_sync("Paris is the capital of France. Extract the city.")
    assert isinstance(result.output, City) and result.output.name
