"""Helpers for knowledge-base tests: real documents from ../shared/data/docs, upload and
wait for a job through the real HTTP API, and the ``ingot`` command run in this process."""

from __future__ import annotations

import json
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from conftest import SHARED_DATA

DOCLING = SHARED_DATA / "docs" / "docling" / "tests" / "data"
MULTI_PAGE_PDF = DOCLING / "pdf" / "sources" / "multi_page.pdf"
SAMPLE_PPTX = DOCLING / "pptx" / "sources" / "powerpoint_sample.pptx"
LOREM_DOCX = DOCLING / "docx" / "sources" / "lorem_ipsum.docx"


def need_docs(*paths: Path) -> None:
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        pytest.skip(f"shared test documents are absent: {', '.join(missing)}")


def page_containing(pdf: Path, needle: str) -> int:
    """1-based page of ``pdf`` whose text layer contains ``needle`` (independent of ingot)."""
    import pypdfium2

    doc = pypdfium2.PdfDocument(str(pdf))
    try:
        for index in range(len(doc)):
            if needle in doc[index].get_textpage().get_text_range():
                return index + 1
    finally:
        doc.close()
    raise AssertionError(f"{needle!r} not found in {pdf}")


def upload(base_url: str, collection: str, files: list[tuple[str, bytes]], acl: str | None = None,
           headers: dict[str, str] | None = None) -> dict:
    data = {"acl": acl} if acl is not None else None
    r = httpx.post(f"{base_url}/collections/{collection}/documents",
                   files=[("files", (name, content)) for name, content in files], data=data,
                   headers=headers, timeout=60)
    assert r.status_code == 202, r.text
    return r.json()


def wait_job(base_url: str, job_id: str, timeout: float = 180, headers: dict[str, str] | None = None) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = httpx.get(f"{base_url}/jobs/{job_id}", headers=headers, timeout=10).json()
        if job["status"] == "done":
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} not done after {timeout} s: {job}")


def search(base_url: str, collection: str, query: str, headers: dict[str, str] | None = None, **extra: object) -> dict:
    r = httpx.post(f"{base_url}/search", json={"collection": collection, "query": query, **extra},
                   headers=headers, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


@dataclass
class CliResult:
    """What a ``subprocess.run`` of the command would give: exit status, stdout, stderr."""

    returncode: int
    stdout: str
    stderr: str


def ingot_here(data_dir: Path, *args: str, env: dict[str, str] | None = None, stdin: str | None = None) -> CliResult:
    """``ingot ARGS`` in this process with typer's CliRunner: the entry point's own ``app``,
    the same settings from the environment, the real models, store and server; it saves
    the 10-20 s a fresh interpreter spends importing torch and friends per call. Each
    command family keeps at least one real subprocess run in its test file.

    A user sees a traceback exactly when an exception escapes ``app``; CliRunner catches
    it, so it fails the test here (with the traceback) instead of reaching stderr."""
    from typer.testing import CliRunner

    from ingot.cli import app

    result = CliRunner().invoke(app, list(args), input=stdin, env={"INGOT_DATA_DIR": str(data_dir), **(env or {})})
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        shown = "".join(traceback.format_exception(result.exception))
        raise AssertionError(f"ingot {' '.join(args)} raised instead of a one-line error:\n{shown}\n{result.stderr}")
    return CliResult(result.exit_code, result.stdout, result.stderr)


def given_passages(base_url: str, body: dict, headers: dict[str, str] | None = None) -> list[dict]:
    """The passages a RAG answer was given: the first chunk of a streamed answer lists all
    of them (the final ``citations`` list only those the answer cites), so retrieval and
    ACL checks do not depend on what a small model chose to say."""
    with httpx.stream("POST", f"{base_url}/rag/chat/completions", json={**body, "stream": True}, headers=headers,
                      timeout=120) as response:
        assert response.status_code == 200, response.read().decode()
        for line in response.iter_lines():
            if line.startswith("data: ") and line != "data: [DONE]":
                return json.loads(line[len("data: "):])["citations"]
    raise AssertionError("the stream had no chunk")
