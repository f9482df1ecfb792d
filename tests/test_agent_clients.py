"""Agent frameworks and structured-output clients, unmodified, against the real server: the
openai SDK's ``parse`` helpers, instructor's default TOOLS mode, LlamaIndex ``FunctionAgent``
(streamed tool calls), openai-agents on its default Responses path, pydantic-ai with a
function tool on both its chat and its Responses model, Haystack's ``OpenAIChatGenerator``
with tools (and the result sent back), and LangChain's ``ChatNVIDIA.bind_tools``.

Each test forces the call it depends on (a named or required ``tool_choice``, or a
structured output the client turns into a forced tool / JSON schema), because the grammar
makes a forced call valid whatever the model; the 135M model's judgement in auto mode is
measured in benchmarks/tools.py instead of asserted here.
"""

from __future__ import annotations

import asyncio

import pytest
from pydantic import BaseModel, Field

pytestmark = pytest.mark.slow  # each drives an agent framework through several requests


class City(BaseModel):
    """A city and the country it is in."""

    name: str = Field(description="the city's name")
    country: str = Field(description="the country the city is in")


def test_openai_parse_with_a_pydantic_response_format(client, model_id):
    completion = client.chat.completions.parse(
        model=model_id, response_format=City, temperature=0, max_tokens=60,
        messages=[{"role": "user", "content": "Paris is the capital of France. Extract the city."}])
    parsed = completion.choices[0].message.parsed
    assert isinstance(parsed, City) and parsed.name


def test_openai_parse_with_a_strict_pydantic_function_tool(client, model_id):
    import openai

    tool = openai.pydantic_function_tool(City, name="record_city")
    completion = client.chat.completions.parse(
        model=model_id, tools=[tool], tool_choice={"type": "function", "function": {"name": "record_city"}},
        temperature=0, max_tokens=60,
        messages=[{"role": "user", "content": "Berlin is in Germany. Record it."}])
    call = completion.choices[0].message.tool_calls[0]
    assert completion.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "record_city"
    assert isinstance(call.function.parsed_arguments, City)


def test_instructor_default_tools_mode(server, model_id):
    import instructor
    import openai

    client = instructor.from_openai(openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=0),
                                    mode=instructor.Mode.TOOLS)
    city = client.chat.completions.create(
        model=model_id, response_model=City, max_retries=0, temperature=0, max_tokens=60,
        messages=[{"role": "user", "content": "Rome is the capital of Italy. Extract the city."}])
    assert isinstance(city, City) and city.name


def test_llamaindex_function_agent_streams_a_call_and_returns_the_tool_result(server, model_id):
    from llama_index.core.agent.workflow import FunctionAgent
    from llama_index.core.tools import FunctionTool
    from llama_index.llms.openai_like import OpenAILike

    seen: list[str] = []

    def get_weather(city: str) -> str:
        """Current weather in a city."""
        seen.append(city)
        return f"sunny in {city}"

    llm = OpenAILike(model=model_id, api_base=server.base_url, api_key="x", is_chat_model=True,
                     is_function_calling_model=True, context_window=8192, temperature=0, max_tokens=60)
    agent = FunctionAgent(tools=[FunctionTool.from_defaults(get_weather, return_direct=True)], llm=llm,
                          system_prompt="Answer with the tool.", initial_tool_choice="get_weather")
    async def run():  # noqa: ANN202 - the workflow needs a running loop when it starts
        return await agent.run("What's the weather in Paris?")

    result = asyncio.run(run())
    assert seen, "the forced call never reached the tool"
    assert str(result) == f"sunny in {seen[0]}"
    assert result.tool_calls and result.tool_calls[0].tool_name == "get_weather"


def test_openai_agents_default_responses_path(server, model_id):
    import openai
    from agents import Agent, ModelSettings, Runner, function_tool, set_default_openai_client, set_tracing_disabled

    set_tracing_disabled(True)
    seen: list[str] = []

    @function_tool
    def get_weather(city: str) -> str:
        """Current weather in a city."""
        seen.append(city)
        return f"sunny in {city}"

    set_default_openai_client(openai.AsyncOpenAI(base_url=server.base_url, api_key="x", max_retries=0),
                              use_for_tracing=False)
    agent = Agent(name="weather", instructions="Use the tool.", tools=[get_weather], model=model_id,
                  model_settings=ModelSettings(tool_choice="required", temperature=0, max_tokens=80),
                  tool_use_behavior="stop_on_first_tool")
    result = Runner.run_sync(agent, "What's the weather in Paris?")
    assert seen and result.final_output == f"sunny in {seen[0]}"
    kinds = [item.type for item in result.new_items]
    assert "tool_call_item" in kinds and "tool_call_output_item" in kinds


def _pydantic_ai_agent(model):  # noqa: ANN001
    """An agent with one function tool and a structured output, as pydantic-ai users write them.
    The tool is offered until it has been called once (pydantic-ai's ``prepare`` hook), so a
    small model that would call it forever has to give the final result next."""
    from pydantic_ai import Agent, RunContext
    from pydantic_ai.tools import ToolDefinition

    looked_up: list[str] = []
    agent = Agent(model, output_type=City, model_settings={"temperature": 0, "max_tokens": 80},
                  instructions="Look the city up with the tool, then give the final result.")

    async def until_called(ctx: RunContext, tool: ToolDefinition) -> ToolDefinition | None:  # noqa: ARG001
        return None if looked_up else tool

    @agent.tool_plain(prepare=until_called)
    def lookup_country(city: str) -> str:
        """The country a city is in."""
        looked_up.append(city)
        return "France"

    return agent, looked_up


def _run_pydantic_ai(model) -> None:  # noqa: ANN001
    """Run the agent: it calls the tool (a call is forced, since the output is structured),
    sends each return back in the next request, and ends in a valid City."""
    from pydantic_ai.messages import ToolReturnPart
    from pydantic_ai.usage import UsageLimits

    agent, looked_up = _pydantic_ai_agent(model)
    result = agent.run_sync("Paris: which country is it in?", usage_limits=UsageLimits(request_limit=6))
    assert isinstance(result.output, City) and result.output.name
    returns = [part for message in result.all_messages() for part in message.parts
               if isinstance(part, ToolReturnPart) and part.tool_name == "lookup_country"]
    assert looked_up, "the instructions name the tool and a call is forced (no text output): it must run"
    assert len(returns) == len(looked_up)


def test_pydantic_ai_agent_with_a_tool_on_chat_completions(server, model_id):
    from pydantic_ai.models.openai import OpenAIChatModel
    from pydantic_ai.providers.openai import OpenAIProvider

    _run_pydantic_ai(OpenAIChatModel(model_id, provider=OpenAIProvider(base_url=server.base_url, api_key="x")))


def test_pydantic_ai_agent_with_a_tool_on_the_responses_api(server, model_id):
    from pydantic_ai.models.openai import OpenAIResponsesModel
    from pydantic_ai.providers.openai import OpenAIProvider

    _run_pydantic_ai(OpenAIResponsesModel(model_id, provider=OpenAIProvider(base_url=server.base_url, api_key="x")))


def test_haystack_chat_generator_with_tools_and_the_result_sent_back(server, model_id):
    from haystack.components.generators.chat import OpenAIChatGenerator
    from haystack.dataclasses import ChatMessage
    from haystack.tools import Tool
    from haystack.utils import Secret

    seen: list[str] = []

    def get_weather(city: str) -> str:
        seen.append(city)
        return f"sunny in {city}"

    tool = Tool(name="get_weather", description="Current weather in a city", function=get_weather,
                parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})
    generator = OpenAIChatGenerator(api_key=Secret.from_token("x"), model=model_id, api_base_url=server.base_url,
                                    tools=[tool], generation_kwargs={"tool_choice": "required", "temperature": 0,
                                                                     "max_tokens": 60})
    question = ChatMessage.from_user("What's the weather in Paris?")
    reply = generator.run([question])["replies"][0]
    assert reply.tool_calls and reply.tool_calls[0].tool_name == "get_weather"
    assert set(reply.tool_calls[0].arguments) == {"city"}
    call = reply.tool_calls[0]
    result = ChatMessage.from_tool(tool.invoke(**call.arguments), origin=call)
    assert seen and result.tool_call_result.result == f"sunny in {seen[0]}"
    answer = generator.run([question, reply, result],
                           generation_kwargs={"tool_choice": "none", "max_tokens": 30})["replies"][0]
    assert answer.text and not answer.tool_calls


def test_chat_nvidia_bind_tools(server, model_id):
    import warnings

    from langchain_core.tools import tool
    from langchain_nvidia_ai_endpoints import ChatNVIDIA

    @tool
    def get_weather(city: str) -> str:
        """Current weather in a city."""
        return f"sunny in {city}"

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "not known to support tools": its table lists NVIDIA's hosted models only
        llm = ChatNVIDIA(base_url=server.base_url, api_key="x", model=model_id, temperature=0, max_tokens=60)
        bound = llm.bind_tools([get_weather], tool_choice="get_weather")
    message = bound.invoke("What's the weather in Paris?")
    assert message.tool_calls and message.tool_calls[0]["name"] == "get_weather"
    assert set(message.tool_calls[0]["args"]) == {"city"}
    assert get_weather.invoke(message.tool_calls[0]["args"]).startswith("sunny in ")
