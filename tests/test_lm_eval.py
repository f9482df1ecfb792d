"""lm-evaluation-harness's ``local-completions`` model scores a multiple-choice task
through ingot: remote tokenizer (/tokenizer_info, /tokenize, /detokenize) and
``/v1/completions`` with echo + logprobs on token-id prompts."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.slow  # lm-evaluation-harness scoring run, ~20 s

lm_eval = pytest.importorskip("lm_eval", reason="lm-eval is a test extra")

# Easy continuations of our own; a working scorer gets nearly all of them right and
# chance is 1/3.
ITEMS = [
    ("One, two, three,", [" four", " purple", " tomorrow"], 0),
    ("Monday, Tuesday,", [" banana", " Wednesday", " seven"], 1),
    ("The opposite of hot is", [" seventeen", " window", " cold"], 2),
    ("A, B, C, D,", [" E", " dog", " ocean"], 0),
    ("January, February,", [" spoon", " March", " green"], 1),
    ("Twinkle, twinkle, little", [" engine", " carpet", " star"], 2),
    ("Red, orange, yellow,", [" green", " Tuesday", " piano"], 0),
    ("The cat says", [" moo", " meow", " quack"], 1),
]


def test_local_completions_scores_multiple_choice(server, tmp_path, model_id):
    data = tmp_path / "items.jsonl"
    data.write_text("\n".join(json.dumps({"question": q, "choices": c, "answer": a}) for q, c, a in ITEMS))
    (tmp_path / "ingot_tiny_mc.yaml").write_text(
        "task: ingot_tiny_mc\n"
        "dataset_path: json\n"
        f"dataset_kwargs:\n  data_files:\n    test: {data}\n"
        "output_type: multiple_choice\n"
        "test_split: test\n"
        "doc_to_text: '{{question}}'\n"
        "doc_to_choice: '{{choices}}'\n"
        "doc_to_target: '{{answer}}'\n"
        "target_delimiter: ''\n"
        "metric_list:\n  - metric: acc\n"
    )
    from lm_eval.tasks import TaskManager

    results = lm_eval.simple_evaluate(
        model="local-completions",
        model_args=f"model={model_id},base_url={server.base_url}/completions,num_concurrent=2,max_retries=1",
        tasks=["ingot_tiny_mc"],
        task_manager=TaskManager(include_path=str(tmp_path)),
    )
    acc = results["results"]["ingot_tiny_mc"]["acc,none"]
    assert acc >= 0.75, results["results"]
