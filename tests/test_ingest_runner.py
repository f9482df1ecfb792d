"""Format detection and the isolated extraction runner: per-file errors with reasons,
time limits, size limits, and a batch that always continues."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from ingot.ingest.elements import ExtractionError, ExtractOptions, markdown_table
from ingot.ingest.extract import detect_format
from ingot.ingest.runner import extract_data, extract_path
from serverutil import REPO

DOCS = Path(__file__).resolve().parents[2] / "shared" / "data" / "docs"
needs_docs = pytest.mark.skipif(not DOCS.is_dir(), reason=f"documents not found at {DOCS} (../shared/data)")
A_PDF = DOCS / "docling" / "tests" / "data" / "pdf" / "sources" / "normal_4pages.pdf"


def test_markdown_table_escapes_and_pads():
    table = markdown_table([["a", "b|c"], ["1"], ["x\ny", "2"]])
    assert table.splitlines() == ["| a | b\\|c |", "|---|---|", "| 1 |  |", "| x y | 2 |"]


@pytest.mark.parametrize(
    "data, name, fmt",
    [
        (b"%PDF-1.7\n...", "report.txt", "pdf"),
        (b"<!DOCTYPE html><html><body>x</body></html>", "page", "html"),
        (b"# Title\n\ntext", "notes.md", "markdown"),
        (b"a;b\n1;2\n", "data.csv", "csv"),
        (b"\x89PNG\r\n\x1a\n....", "scan.bin", "image"),
        (b"just some words", "README", "text"),
    ],
)
def test_detects_format_from_bytes_first(data, name, fmt):
    assert detect_format(data, name) == fmt


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"", "empty"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 100, "unsupported"),
        (b"\x00\x01\x02\x03binary", "unsupported"),
    ],
)
def test_undetectable_files_have_reasons(data, reason):
    with pytest.raises(ExtractionError) as info:
        detect_format(data, "file.bin")
    assert info.value.reason == reason


def test_zip_bomb_is_refused_before_parsing():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("word/document.xml", b"\0" * (40 * 1024 * 1024))
    result = extract_data(buffer.getvalue(), ExtractOptions(filename="bomb.docx"))
    assert result.error_reason == "zip_bomb"


def test_size_limit(tmp_path):
    f = tmp_path / "big.txt"
    f.write_bytes(b"x" * 5000)
    assert extract_path(f, max_bytes=1000).error_reason == "too_large"


@needs_docs
def test_timeout_stops_the_file_and_reports_it():
    result = extract_data(A_PDF.read_bytes(), ExtractOptions(filename=A_PDF.name), timeout_s=0.001)
    assert result.error_reason == "timeout"
    assert "stopped" in result.error


@needs_docs
def test_same_bytes_same_hash_and_elements():
    a = extract_path(A_PDF)
    b = extract_path(A_PDF)
    assert a.ok and a.content_hash == b.content_hash
    assert [e.text for e in a.elements] == [e.text for e in b.elements]
    assert a.format == "pdf" and a.pages and a.pages > 1


def _ingot(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ingot.cli", *args], capture_output=True, text=True, timeout=300,
                          cwd=REPO, env={**os.environ})


def test_cli_extract_batch_continues_past_bad_files(tmp_path):
    good = tmp_path / "notes.md"
    good.write_text("# Plan\n\nShip the **release** on Friday.\n\n| k | v |\n|---|---|\n| a | 1 |\n")
    empty = tmp_path / "empty.pdf"
    empty.write_bytes(b"")
    broken = tmp_path / "broken.docx"
    broken.write_bytes(b"PK\x03\x04 not really a zip")
    r = _ingot("extract", str(empty), str(good), str(broken))
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    assert "empty.pdf" in r.stderr and "empty" in r.stderr
    assert "broken.docx" in r.stderr
    assert "Ship the" in r.stdout and "# notes.md" in r.stdout


def test_cli_extract_json_lines(tmp_path):
    f = tmp_path / "a.md"
    f.write_text("# Heading\n\nBody text here.\n")
    r = _ingot("extract", "--format", "json", str(f))
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout.strip().splitlines()[0])
    assert doc["format"] == "markdown" and doc["error"] is None
    body = next(e for e in doc["elements"] if e["text"].startswith("Body"))
    assert body["heading_path"] == ["Heading"]


@needs_docs
def test_same_bytes_ingested_twice_give_the_same_chunk_ids(tmp_path):
    """End to end: extract (isolated) and chunk a real deck twice, once under another name."""
    from ingot.ingest.chunk import chunk_document

    source = DOCS / "docling" / "tests" / "data" / "pptx" / "sources" / "powerpoint_sample.pptx"
    copy = tmp_path / "renamed-copy.pptx"
    copy.write_bytes(source.read_bytes())
    runs = []
    for path in (source, copy):
        result = extract_path(path)
        assert result.ok, result.error
        chunks = chunk_document(result.elements, document_id="deck", content_hash=result.content_hash, max_tokens=256)
        runs.append([c.id for c in chunks])
    assert runs[0] == runs[1] and len(runs[0]) >= 1
    changed = source.read_bytes() + b"\0"  # different bytes -> different hash -> different ids
    other = extract_data(changed, ExtractOptions(filename="x.pptx"))
    if other.ok:
        ids = [c.id for c in chunk_document(other.elements, document_id="deck", content_hash=other.content_hash,
                                            max_tokens=256)]
        assert not set(ids) & set(runs[0])
