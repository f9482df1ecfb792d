"""Chat completions through the real openai SDK against a real server."""

from __future__ import annotations

import concurrent.futures
import json

import httpx
import jsonschema
import pytest

QUESTION = [{"role": "user", "content": "Name three colors."}]


def test_chat_returns_message_with_usage(client, model_id, server):
    r = client.chat.completions.create(model=model_id, messages=QUESTION, max_tokens=24, temperature=0)
    choice = r.choices[0]
    assert r.object == "chat.completion"
    assert choice.message.role == "assistant"
    assert choice.message.content.strip()
    assert choice.message.refusal is None
    assert choice.finish_reason in ("stop", "length")
    # usage.prompt_tokens must equal what /tokenize counts for the same messages.
    counted = httpx.post(f"{server.root}/tokenize", json={"messages": QUESTION}).json()["count"]
    assert r.usage.prompt_tokens == counted
    assert 0 < r.usage.completion_tokens <= 24
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens


def test_max_tokens_is_honoured_and_reports_length(client, model_id):
    r = client.chat.completions.create(
        model=model_id, messages=[{"role": "user", "content": "Write a long story about a dragon."}],
        max_completion_tokens=5, temperature=0,
    )
    assert r.usage.completion_tokens == 5
    assert r.choices[0].finish_reason == "length"


def test_stream_with_usage_matches_non_stream(client, model_id):
    kwargs = dict(model=model_id, messages=QUESTION, max_tokens=20, temperature=0)
    full = client.chat.completions.create(**kwargs)
    stream = client.chat.completions.create(**kwargs, stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert text == full.choices[0].message.content
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == [full.choices[0].finish_reason]
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None
    assert last.usage.completion_tokens == full.usage.completion_tokens
    assert last.usage.prompt_tokens == full.usage.prompt_tokens
    assert all(c.usage is None for c in chunks[:-1])


def test_stream_raw_sse_ends_with_done(server, model_id):
    body = {"model": model_id, "messages": QUESTION, "max_tokens": 4, "stream": True}
    with httpx.stream("POST", f"{server.base_url}/chat/completions", json=body, timeout=60) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in r.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    assert all(line.startswith("data: ") for line in lines)


def test_seed_makes_sampling_reproducible(client, model_id):
    kwargs = dict(model=model_id, messages=QUESTION, max_tokens=16, temperature=1.0, seed=1234)
    a = client.chat.completions.create(**kwargs).choices[0].message.content
    b = client.chat.completions.create(**kwargs).choices[0].message.content
    assert a == b


def test_n_returns_distinct_indexed_choices(client, model_id):
    r = client.chat.completions.create(model=model_id, messages=QUESTION, max_tokens=12, temperature=1.0, n=3, seed=7)
    assert [c.index for c in r.choices] == [0, 1, 2]
    assert 3 <= r.usage.completion_tokens <= 3 * 12
    assert len({c.message.content for c in r.choices}) >= 2  # seeds 7, 8, 9 differ


def test_stop_string_cuts_output(client, model_id):
    base = client.chat.completions.create(model=model_id, messages=QUESTION, max_tokens=30, temperature=0)
    text = base.choices[0].message.content
    # A stop string taken from the middle of the greedy answer (it may span tokens).
    assert len(text) >= 8, text
    stop = text[len(text) // 2 : len(text) // 2 + 3]
    expected = text[: text.find(stop)]
    r = client.chat.completions.create(model=model_id, messages=QUESTION, max_tokens=30, temperature=0, stop=[stop])
    assert r.choices[0].finish_reason == "stop"
    assert r.choices[0].message.content == expected


def test_logprobs_and_top_logprobs(client, model_id):
    r = client.chat.completions.create(
        model=model_id, messages=QUESTION, max_tokens=6, temperature=0, logprobs=True, top_logprobs=3
    )
    content = r.choices[0].logprobs.content
    assert len(content) == r.usage.completion_tokens
    for entry in content:
        assert entry.logprob <= 0
        assert len(entry.top_logprobs) == 3
        tops = [t.logprob for t in entry.top_logprobs]
        assert tops == sorted(tops, reverse=True)
        # Greedy decoding: the chosen token is the most likely one.
        assert entry.logprob == pytest.approx(tops[0], abs=1e-4)
    # The tokens spell the message (an end-of-turn token, if any, comes last).
    assert "".join(e.token for e in content).startswith(r.choices[0].message.content)


PERSON_SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 20},
        "age": {"type": "integer"},
        "city": {"type": "string", "maxLength": 20},
    },
    "required": ["name", "age", "city"],
    "additionalProperties": False,
}


def test_json_schema_output_parses_and_validates(client, model_id):
    r = client.chat.completions.create(
        model=model_id,
        messages=[{"role": "user", "content": "Invent a person. Reply in JSON with name, age and city."}],
        max_tokens=120,
        temperature=0.7,
        seed=3,
        response_format={"type": "json_schema", "json_schema": {"name": "person", "schema": PERSON_SCHEMA, "strict": True}},
    )
    assert r.choices[0].finish_reason == "stop"
    data = json.loads(r.choices[0].message.content)
    jsonschema.validate(data, PERSON_SCHEMA)


def test_json_object_output_parses(client, model_id):
    r = client.chat.completions.create(
        model=model_id,
        messages=[{"role": "user", "content": "Reply with a JSON object with the keys name and color for a cat."}],
        max_tokens=200,
        temperature=0,
        response_format={"type": "json_object"},
    )
    # JSON mode guarantees valid JSON when the model finishes (as OpenAI's does: a
    # "length" finish may cut it); the grammar allows nothing but JSON before the end.
    assert r.choices[0].finish_reason == "stop"
    assert isinstance(json.loads(r.choices[0].message.content), dict)


def test_presence_and_frequency_penalties_change_sampling(client, model_id):
    kwargs = dict(model=model_id, messages=[{"role": "user", "content": "Repeat the word cat many times."}],
                  max_tokens=30, temperature=0)
    plain = client.chat.completions.create(**kwargs).choices[0].message.content
    penalised = client.chat.completions.create(**kwargs, frequency_penalty=2.0, presence_penalty=2.0)
    assert penalised.choices[0].message.content != plain


def test_prefix_cache_reuses_earlier_prompt_and_keeps_answers(client, model_id):
    """A follow-up turn reuses the KV of the shared history; the answer must not change
    because of it (greedy output equals a run that had nothing cached)."""
    history = [{"role": "system", "content": "You are a geography tutor who answers briefly and precisely."},
               {"role": "user", "content": "Which river flows through Paris?"}]
    first = client.chat.completions.create(model=model_id, messages=history, max_tokens=12, temperature=0)
    follow = history + [{"role": "assistant", "content": first.choices[0].message.content},
                        {"role": "user", "content": "And through London?"}]
    second = client.chat.completions.create(model=model_id, messages=follow, max_tokens=12, temperature=0)
    assert second.usage.prompt_tokens_details.cached_tokens >= first.usage.prompt_tokens - 2
    # Asked again, all but the last prompt token come from the cache, and the answer is
    # the same as with the partly cold cache above.
    again = client.chat.completions.create(model=model_id, messages=follow, max_tokens=12, temperature=0)
    assert again.choices[0].message.content == second.choices[0].message.content
    assert again.usage.prompt_tokens_details.cached_tokens == again.usage.prompt_tokens - 1


def test_concurrent_requests_share_a_long_system_prompt(client, model_id):
    """Four chats sent at once under one long system prompt: the first prefills it, the others
    copy its KV cells (shared prefixes across slots) and say so in cached_tokens."""
    rules = " ".join(f"Rule {i}: answer travel questions about harbour {i} politely and briefly." for i in range(30))
    questions = ["Where do ferries leave from?", "When does the market open?", "Is parking free?",
                 "Can I bring a bicycle?"]

    def ask(question: str):
        return client.chat.completions.create(
            model=model_id, max_tokens=4, temperature=0,
            messages=[{"role": "system", "content": rules}, {"role": "user", "content": question}])

    with concurrent.futures.ThreadPoolExecutor(len(questions)) as pool:
        replies = list(pool.map(ask, questions))
    system_tokens = len(rules.split())  # fewer words than tokens: a floor for the shared part
    cached = sorted(r.usage.prompt_tokens_details.cached_tokens for r in replies)
    assert cached[0] < system_tokens  # whichever came first prefilled the system prompt
    assert all(c >= system_tokens for c in cached[1:]), cached
