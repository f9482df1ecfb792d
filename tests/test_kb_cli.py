"""``ingot ingest``, ``ingot search`` and ``ingot ask`` as a user runs them.

Each command family runs at least once as a real ``python -m ingot.cli`` subprocess (the
entry point, stdout/stderr of a real process, exit codes); the other calls run the same
``app`` in this process (``kbutil.ingot_here``), which saves the 10-20 s a fresh
interpreter spends importing torch and loading the models per call."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kbutil import LOREM_DOCX, MULTI_PAGE_PDF, CliResult, ingot_here, need_docs, page_containing

pytestmark = pytest.mark.slow  # the CLI ingests and asks, a few runs of them in subprocesses, ~1 min


def ingot(data_dir: Path, *args: str) -> subprocess.CompletedProcess:
    """The real entry point in a subprocess."""
    env = {**os.environ, "INGOT_DATA_DIR": str(data_dir), "INGOT_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "ingot.cli", *args], env=env, capture_output=True, text=True,
                          timeout=300)


def here(data_dir: Path, *args: str) -> CliResult:
    """The same command in this process."""
    return ingot_here(data_dir, *args, env={"INGOT_THREADS": "1"})


def test_ingest_skip_replace_sync_and_search(data_dir: Path, tmp_path: Path) -> None:
    need_docs(MULTI_PAGE_PDF, LOREM_DOCX)
    folder = tmp_path / "handbook"
    (folder / "sub").mkdir(parents=True)
    shutil.copy(MULTI_PAGE_PDF, folder / MULTI_PAGE_PDF.name)
    shutil.copy(LOREM_DOCX, folder / "sub" / LOREM_DOCX.name)
    (folder / "note.md").write_text("# Parking\n\nVisitors park on level 3 of the north garage.\n")
    (folder / ".hidden.txt").write_text("never ingested")

    first = ingot(data_dir, "ingest", str(folder), "--collection", "cli_docs", "--json")
    assert first.returncode == 0, first.stderr
    job = json.loads(first.stdout)
    assert sorted(d["filename"] for d in job["documents"]) == [
        "handbook/multi_page.pdf", "handbook/note.md", "handbook/sub/lorem_ipsum.docx"]
    assert {d["action"] for d in job["documents"]} == {"added"}

    again = here(data_dir, "ingest", str(folder), "--collection", "cli_docs")
    assert again.returncode == 0, again.stderr
    assert "0 added, 0 replaced, 3 unchanged, 0 failed" in again.stdout

    (folder / "note.md").write_text("# Parking\n\nVisitors now park on level 5 of the south garage.\n")
    (folder / "sub" / LOREM_DOCX.name).unlink()
    synced = here(data_dir, "ingest", str(folder), "--collection", "cli_docs", "--sync")
    assert synced.returncode == 0, synced.stderr
    assert "0 added, 1 replaced, 1 unchanged, 0 failed, 1 removed" in synced.stdout

    found = ingot(data_dir, "search", "where do visitors park", "--collection", "cli_docs", "--json", "-k", "3")
    assert found.returncode == 0, found.stderr
    hits = json.loads(found.stdout)["data"]
    assert hits[0]["source"] == "handbook/note.md" and "level 5" in hits[0]["text"]
    assert not any("level 3" in h["text"] for h in hits)
    assert not any("lorem" in h["source"] for h in hits)

    table = here(data_dir, "search", "Who patented the typewriter?", "--collection", "cli_docs", "-k", "1")
    assert table.returncode == 0, table.stderr
    assert "multi_page.pdf" in table.stdout
    assert str(page_containing(MULTI_PAGE_PDF, "Sholes")) in table.stdout


def test_cli_errors_are_one_line(data_dir: Path, tmp_path: Path) -> None:
    # the first two fail before any model loads: cheap as real processes
    missing = ingot(data_dir, "ingest", str(tmp_path / "nope"), "--collection", "x")
    assert missing.returncode == 2 and "no such file or directory" in missing.stderr
    assert "Traceback" not in missing.stderr
    bad_mode = ingot(data_dir, "search", "q", "--collection", "x", "--mode", "fuzzy")
    assert bad_mode.returncode == 2 and "--mode" in bad_mode.stderr
    no_collection = here(data_dir, "search", "q", "--collection", "does_not_exist")
    assert no_collection.returncode == 2 and "does not exist" in no_collection.stderr
    assert "Traceback" not in no_collection.stderr


def test_failed_file_sets_exit_code_but_others_are_ingested(data_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "good.txt").write_text("Quarterly revenue grew by eleven percent.")
    (tmp_path / "bad.pdf").write_bytes(b"%PDF-1.4 truncated garbage")
    # a real process: run in this one (CliRunner) it once hung after its job was done (1 of 3 runs,
    # not yet explained: an idle event loop in JobRunner wait/close); kept real until that is understood
    result = ingot(data_dir, "ingest", str(tmp_path / "good.txt"), str(tmp_path / "bad.pdf"), "--collection", "cli_mixed")
    assert result.returncode == 1
    assert "1 added, 0 replaced, 0 unchanged, 1 failed" in result.stdout
    assert "bad.pdf" in result.stderr


def test_ask_in_process_and_through_a_server(data_dir: Path, tmp_path: Path, server) -> None:
    (tmp_path / "policy.md").write_text(
        "# Travel policy\n\nEmployees book flights through the Skyway portal. Economy class is required for "
        "flights shorter than six hours.\n")
    assert here(data_dir, "ingest", str(tmp_path / "policy.md"), "--collection", "cli_ask").returncode == 0
    local = here(data_dir, "ask", "Which portal do employees use to book flights?", "--collection", "cli_ask", "--json")
    assert local.returncode == 0, local.stderr
    answer = json.loads(local.stdout)
    assert answer["citations"] and answer["citations"][0]["source"] == "policy.md", answer
    assert answer["choices"][0]["message"]["content"].strip()

    # a real process: cheap with --url (no model loads here)
    remote = ingot(data_dir, "ask", "Which portal do employees use to book flights?", "--collection", "cli_ask",
                   "--url", server.base_url)
    assert remote.returncode == 0, remote.stderr
    assert "Sources" in remote.stdout and "[1] policy.md" in remote.stdout

    refused = here(data_dir, "ask", "What is the boiling point of mercury?", "--collection", "cli_ask",
                   "--url", server.base_url)
    assert refused.returncode == 0 and "documents do not say" in refused.stdout
    missing = here(data_dir, "ask", "anything", "--collection", "nope_nope", "--url", server.base_url)
    assert missing.returncode == 2 and "does not exist" in missing.stderr


def test_ingest_through_a_running_server(data_dir: Path, tmp_path: Path, server) -> None:
    import httpx

    (tmp_path / "a.md").write_text("# Alpha\n\nThe alpha launch is on Monday.\n")
    (tmp_path / "b.txt").write_text("Beta ships on Friday.")
    first = here(data_dir, "ingest", str(tmp_path), "--collection", "cli_remote", "--url", server.base_url)
    assert first.returncode == 0, first.stderr
    assert "2 added, 0 replaced, 0 unchanged, 0 failed" in first.stdout
    again = here(data_dir, "ingest", str(tmp_path), "--collection", "cli_remote", "--url", server.base_url, "--json")
    assert again.returncode == 0, again.stderr
    assert [d["action"] for d in json.loads(again.stdout)["documents"]] == ["unchanged", "unchanged"]
    docs = httpx.get(f"{server.base_url}/collections/cli_remote/documents").json()["data"]
    assert sorted(d["source"] for d in docs) == ["a.md", "b.txt"]  # the server names documents by file name
    no_sync = here(data_dir, "ingest", str(tmp_path), "--collection", "cli_remote", "--url", server.base_url, "--sync")
    assert no_sync.returncode == 2 and "--sync" in no_sync.stderr
    down = here(data_dir, "ingest", str(tmp_path), "--collection", "x", "--url", "http://127.0.0.1:9/v1")
    assert down.returncode == 2 and "cannot reach" in down.stderr and "Traceback" not in down.stderr
