"""LangChain's ChatOpenAI against ingot (it sends max_completion_tokens and stream: false)."""

from __future__ import annotations

import pytest

langchain_openai = pytest.importorskip("langchain_openai", reason="langchain-openai is a test extra")


def test_chat_openai_invoke_and_stream(server, model_id):
    llm = langchain_openai.ChatOpenAI(
        base_url=server.base_url, api_key="x", model=model_id, max_completion_tokens=12, temperature=0, max_retries=0
    )
    reply = llm.invoke("Name a fruit.")
    assert reply.content.strip()
    assert reply.usage_metadata["output_tokens"] <= 12
    assert reply.response_metadata["finish_reason"] in ("stop", "length")
    streamed = "".join(chunk.content for chunk in llm.stream("Name a fruit."))
    assert streamed == reply.content


def test_chat_openai_with_system_and_history(server, model_id):
    from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

    llm = langchain_openai.ChatOpenAI(base_url=server.base_url, api_key="x", model=model_id,
                                      max_completion_tokens=8, temperature=0, max_retries=0)
    reply = llm.invoke([SystemMessage("You are terse."), HumanMessage("Hi"), AIMessage("Hello."), HumanMessage("Bye")])
    assert isinstance(reply.content, str) and reply.content
