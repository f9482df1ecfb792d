"""Legacy completions, including lm-evaluation-harness style scoring (echo + logprobs)."""

from __future__ import annotations

import math

import httpx


def test_completion_from_text(client, model_id):
    r = client.completions.create(model=model_id, prompt="The sky is", max_tokens=8, temperature=0)
    assert r.object == "text_completion"
    assert r.choices[0].text
    assert r.usage.completion_tokens == 8 or r.choices[0].finish_reason == "stop"


def test_default_max_tokens_is_16(client, model_id):
    r = client.completions.create(model=model_id, prompt="Once upon a time", temperature=0, extra_body={"ignore_eos": True})
    assert r.usage.completion_tokens == 16
    assert r.choices[0].finish_reason == "length"


def test_echo_with_logprobs_scores_prompt_tokens(client, model_id, server):
    prompt_ids = httpx.post(f"{server.root}/tokenize", json={"prompt": "The capital of France is Paris"}).json()["tokens"]
    # Exactly what lm-eval's local-completions sends for loglikelihood requests.
    r = client.completions.create(
        model=model_id, prompt=prompt_ids, max_tokens=1, temperature=0, logprobs=1, echo=True, seed=1234
    )
    lp = r.choices[0].logprobs
    n = len(prompt_ids)
    assert len(lp.tokens) == n + 1  # prompt tokens + one generated
    assert lp.token_logprobs[0] is None and lp.top_logprobs[0] is None
    assert all(v <= 0 and math.isfinite(v) for v in lp.token_logprobs[1:])
    assert all(len(top) >= 1 for top in lp.top_logprobs[1:])
    assert lp.text_offset == sorted(lp.text_offset)
    prompt_text = httpx.post(f"{server.root}/detokenize", json={"tokens": prompt_ids}).json()["prompt"]
    assert r.choices[0].text.startswith(prompt_text)
    assert "".join(lp.tokens[:n]) == prompt_text
    assert r.usage.prompt_tokens == n


def test_likely_continuation_scores_higher(client, model_id, server):
    """The scores must mean something: a natural continuation beats a scrambled one."""

    def continuation_logprob(context: str, continuation: str) -> float:
        ctx = httpx.post(f"{server.root}/tokenize", json={"prompt": context}).json()["tokens"]
        full = httpx.post(f"{server.root}/tokenize", json={"prompt": context + continuation}).json()["tokens"]
        r = client.completions.create(model=model_id, prompt=full, max_tokens=0, logprobs=0, echo=True)
        return sum(r.choices[0].logprobs.token_logprobs[len(ctx):])

    good = continuation_logprob("One, two, three, four,", " five, six")
    bad = continuation_logprob("One, two, three, four,", " banana carpet")
    assert good > bad


def test_echo_only_with_zero_max_tokens(client, model_id):
    r = client.completions.create(model=model_id, prompt="Hello world", max_tokens=0, echo=True, logprobs=0)
    assert r.choices[0].text == "Hello world"
    assert r.usage.completion_tokens == 0


def test_several_prompts_give_one_choice_each(client, model_id):
    r = client.completions.create(model=model_id, prompt=["Red,", "One,", "Monday,"], max_tokens=4, temperature=0)
    assert [c.index for c in r.choices] == [0, 1, 2]
    single = client.completions.create(model=model_id, prompt="One,", max_tokens=4, temperature=0)
    assert r.choices[1].text == single.choices[0].text


def test_completion_stream_with_usage(client, model_id):
    chunks = list(client.completions.create(
        model=model_id, prompt="Count: 1, 2,", max_tokens=6, temperature=0, stream=True,
        stream_options={"include_usage": True},
    ))
    text = "".join(c.choices[0].text for c in chunks if c.choices)
    full = client.completions.create(model=model_id, prompt="Count: 1, 2,", max_tokens=6, temperature=0)
    assert text == full.choices[0].text
    assert chunks[-1].usage.completion_tokens == full.usage.completion_tokens


def test_null_prompt_generates_from_document_start(server, model_id):
    """OpenAI's spec makes ``prompt`` nullable (default: start of a document)."""
    r = httpx.post(f"{server.base_url}/completions", timeout=60,
                   json={"model": model_id, "prompt": None, "max_tokens": 5, "temperature": 0})
    assert r.status_code == 200, r.text
    assert r.json()["usage"]["prompt_tokens"] == 1
