"""Per-model sampling defaults: a request that omits temperature/top_p/top_k/repetition
penalty gets the catalog model's recommendation (SmolLM2: temperature 0.2, top_p 0.9), not
OpenAI's 1.0, so the README's first request answers sensibly."""

from __future__ import annotations

import pytest

from ingot.generation.protocol import ChatCompletionRequest
from ingot.models.registry import QWEN25_CODER_05B, SMOLLM2_135M

HELLO = [{"role": "user", "content": "Hello!"}]


def test_omitted_fields_take_the_models_defaults_and_explicit_ones_win():
    defaults = QWEN25_CODER_05B.sampling.to_dict()
    omitted = ChatCompletionRequest(messages=HELLO).to_sampling_params(16, None, None, None, defaults)
    assert (omitted.temperature, omitted.top_p, omitted.top_k, omitted.repetition_penalty) == (0.7, 0.8, 20, 1.05)
    explicit = ChatCompletionRequest(messages=HELLO, temperature=0, top_p=1.0, top_k=0, repetition_penalty=1.0)
    params = explicit.to_sampling_params(16, None, None, None, defaults)
    assert (params.temperature, params.top_p, params.top_k, params.repetition_penalty) == (0, 1.0, 0, 1.0)
    openai = ChatCompletionRequest(messages=HELLO).to_sampling_params(16, None, None, None, {})
    assert (openai.temperature, openai.top_p) == (1.0, 1.0)


def test_models_list_shows_the_defaults(client, model_id):
    card = next(m for m in client.models.list().model_dump()["data"] if m["id"] == model_id)
    assert card["sampling_defaults"] == SMOLLM2_135M.sampling.to_dict() == {"temperature": 0.2, "top_p": 0.9}


def test_a_request_without_sampling_fields_samples_as_the_model_recommends(client, model_id):
    """Same seed: omitting the fields equals stating the model's values, and differs from 1.0."""
    def reply(**sampling: float) -> str:
        r = client.chat.completions.create(model=model_id, messages=HELLO, max_tokens=24, seed=11, **sampling)
        return r.choices[0].message.content

    implicit = reply()
    assert implicit == reply(temperature=0.2, top_p=0.9)
    assert implicit.strip()


def test_readme_hello_gets_a_greeting(client, model_id):
    """The README's first request (no sampling fields): a greeting back, at least 2 of 3
    times (max_tokens only bounds the time: an unbounded reply can run to the context)."""
    texts = [client.chat.completions.create(model=model_id, messages=HELLO, max_tokens=40).choices[0].message.content
             for _ in range(3)]
    greetings = [t for t in texts if any(w in t.lower() for w in ("hello", "hi", "help", "assist", "welcome"))]
    assert len(greetings) >= 2, texts


@pytest.mark.slow  # a server of its own
def test_operator_cap_on_requests_without_a_budget(tmp_path):
    import openai

    from serverutil import RunningServer

    srv = RunningServer(tmp_path, "--embedding-model", "none", env={"INGOT_MAX_TOKENS_DEFAULT": "3"})
    try:
        client = openai.OpenAI(base_url=srv.base_url, api_key="x", max_retries=0)
        ask = [{"role": "user", "content": "Tell me a long story about the sea."}]
        capped = client.chat.completions.create(model="smollm2-135m-instruct", messages=ask, temperature=0)
        assert capped.usage.completion_tokens == 3 and capped.choices[0].finish_reason == "length"
        own = client.chat.completions.create(model="smollm2-135m-instruct", messages=ask, temperature=0, max_tokens=6)
        assert own.usage.completion_tokens == 6  # a request's own budget wins over the cap
    finally:
        srv.stop()
