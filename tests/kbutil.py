"""Helpers for knowledge-base tests: real documents from ../shared/data/docs, upload and
wait for a job through the real HTTP API."""

from __future__ import annotations

import time
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
