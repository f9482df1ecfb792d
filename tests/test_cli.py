"""The ``ingot`` command as a user runs it: clear messages, no tracebacks. Real subprocesses,
except the in-process chat (``kbutil.ingot_here``: same app, no interpreter start)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from kbutil import ingot_here
from serverutil import REPO


def _ingot(*args: str, stdin: str | None = None, env: dict | None = None, timeout: int = 120):
    return subprocess.run(
        [sys.executable, "-m", "ingot.cli", *args], input=stdin, capture_output=True, text=True,
        timeout=timeout, cwd=REPO, env={**os.environ, "INGOT_THREADS": "1", **(env or {})},
    )


def test_models_list_json():
    r = _ingot("models", "list", "--json")
    assert r.returncode == 0, r.stderr
    rows = {row["id"]: row for row in json.loads(r.stdout)}
    assert rows["smollm2-135m-instruct"]["available"] is True
    assert "qwen2.5-coder-0.5b-instruct" in rows


def test_unknown_model_is_a_clean_error(tmp_path):
    r = _ingot("serve", "--model", "gpt-9", env={"INGOT_DATA_DIR": str(tmp_path)})
    assert r.returncode == 2
    assert "unknown chat model" in r.stderr and "Traceback" not in r.stderr


def test_bad_setting_is_a_clean_error(tmp_path):
    r = _ingot("serve", env={"INGOT_PARALLEL": "lots", "INGOT_DATA_DIR": str(tmp_path)})
    assert r.returncode == 2
    assert "parallel" in r.stderr and "Traceback" not in r.stderr


def test_chat_against_running_server(server):
    r = _ingot("chat", "--url", server.base_url, "--max-tokens", "8", "--temperature", "0", stdin="Hello\n")
    assert r.returncode == 0, r.stderr
    assert "assistant> " in r.stdout
    reply = r.stdout.split("assistant> ", 1)[1].strip()
    assert reply


@pytest.mark.slow  # loads the chat model
def test_chat_in_process(data_dir):
    r = ingot_here(data_dir, "chat", "--max-tokens", "8", "--temperature", "0", stdin="Hello\nHow are you?\n",
                   env={"INGOT_THREADS": "1"})
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("assistant> ") == 2


@pytest.mark.slow  # waits for connection retries
def test_chat_unreachable_server_is_a_clean_error():
    r = _ingot("chat", "--url", "http://127.0.0.1:9/v1", stdin="hi\n")
    assert r.returncode == 2
    assert "cannot reach" in r.stderr and "Traceback" not in r.stderr
