"""Guided decoding as vLLM and NIM clients send it: structured_outputs / guided_* / nvext
with a JSON schema, a regular expression, a choice list or a GBNF grammar; the output
always satisfies the constraint; impossible combinations are clear 400s."""

from __future__ import annotations

import json
import re

import httpx
import jsonschema
import pytest

from ingot.generation.grammar import grammar_for_choice, grammar_for_regex

ASK = [{"role": "user", "content": "Give me a product code and tell me if it is in stock."}]
CODE = r"[A-Z]{3}-[0-9]{4}"
SCHEMA = {"type": "object", "properties": {"code": {"type": "string", "maxLength": 12}, "in_stock": {"type": "boolean"}},
          "required": ["code", "in_stock"]}  # a bounded string: a small model can loop inside an open one


def _chat(server, **body) -> httpx.Response:  # noqa: ANN001
    return httpx.post(f"{server.base_url}/chat/completions", timeout=120,
                      json={"messages": ASK, "max_tokens": 60, "temperature": 0.7, **body})


def _text(r: httpx.Response) -> str:
    assert r.status_code == 200, r.text
    return r.json()["choices"][0]["message"]["content"]


def test_grammar_builders():
    assert grammar_for_choice(["yes", 'say "no"']) == 'root ::= "yes" | "say \\"no\\""'
    assert "root ::=" in grammar_for_regex(CODE)
    with pytest.raises(Exception):
        grammar_for_regex("(?=lookahead)x")


@pytest.mark.parametrize("field", [
    {"structured_outputs": {"choice": ["in stock", "sold out", "discontinued"]}},
    {"guided_choice": ["in stock", "sold out", "discontinued"]},
    {"nvext": {"guided_choice": ["in stock", "sold out", "discontinued"]}},
])
def test_choice_in_every_dialect(server, field):
    for seed in (1, 2):
        assert _text(_chat(server, seed=seed, **field)) in ("in stock", "sold out", "discontinued")


def test_regex_json_and_grammar(server):
    for seed in (1, 2, 3):
        assert re.fullmatch(CODE, _text(_chat(server, seed=seed, structured_outputs={"regex": CODE})))
    jsonschema.validate(json.loads(_text(_chat(server, guided_json=SCHEMA, max_tokens=80, temperature=0))), SCHEMA)
    jsonschema.validate(json.loads(_text(_chat(server, nvext={"guided_json": json.dumps(SCHEMA)}, max_tokens=80,
                                               temperature=0))), SCHEMA)
    gbnf = 'root ::= "code " [0-9] [0-9] [0-9]'
    assert re.fullmatch(r"code [0-9]{3}", _text(_chat(server, structured_outputs={"grammar": gbnf})))


def test_completions_take_guided_decoding_too(server):
    r = httpx.post(f"{server.base_url}/completions", timeout=120,
                   json={"prompt": "The answer is", "max_tokens": 10, "guided_choice": ["yes", "no"]})
    assert r.status_code == 200, r.text
    assert r.json()["choices"][0]["text"] in ("yes", "no")


@pytest.mark.parametrize("body,param", [
    ({"guided_regex": CODE, "guided_choice": ["a"]}, "guided_regex"),
    ({"guided_choice": ["a"], "response_format": {"type": "json_object"}}, "guided_choice"),
    ({"structured_outputs": {"regex": "(?=x)y"}}, "structured_outputs.regex"),
    ({"guided_grammar": "no rules here"}, "guided_grammar"),
    ({"guided_json": "{not json"}, "guided_json"),
    ({"guided_choice": []}, "guided_choice"),
])
def test_impossible_constraints_are_clear_400s(server, body, param):
    r = _chat(server, **body)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["type"] == "invalid_request_error" and (error["param"] or "").startswith(param.split(".")[0]), error
