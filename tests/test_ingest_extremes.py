"""Extreme inputs at a reduced scale (issue 16, item 5; full scale: benchmarks/ingest_extremes.py):
each finishes or fails with a clear reason, and the cost grows linearly with the input."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from ingest_extremes import FILENAMES, generate  # noqa: E402

from ingot.ingest.chunk import chunk_document
from ingot.ingest.elements import ExtractOptions
from ingot.ingest.runner import extract_data


def extract(case: str, n: int):  # noqa: ANN201
    data = generate(case, n)
    started = time.perf_counter()
    result = extract_data(data, ExtractOptions(filename=FILENAMES[case]))
    return result, time.perf_counter() - started


def test_blank_pdf_pages_extract_to_nothing_and_no_traceback() -> None:
    result, _ = extract("pdf", 500)
    assert result.ok, result.error
    assert result.pages == 500 and not result.elements
    assert not chunk_document(result.elements, document_id="d", content_hash="h")  # pipeline: "empty"


@pytest.mark.parametrize(("case", "small", "big"), [("pptx", 50, 200), ("csv", 20_000, 80_000)])
def test_extract_and_chunk_time_is_linear(case: str, small: int, big: int) -> None:
    extract(case, small)  # warm the forkserver and imports
    r_small, t_small = extract(case, small)
    r_big, t_big = extract(case, big)
    assert r_small.ok and r_big.ok, (r_small.error, r_big.error)
    c_small = chunk_document(r_small.elements, document_id="d", content_hash="h", max_tokens=256, overlap_tokens=32)
    c_big = chunk_document(r_big.elements, document_id="d", content_hash="h", max_tokens=256, overlap_tokens=32)
    assert 3 <= len(c_big) / len(c_small) <= 5
    # 4x the input; a process start is in both, so quadratic would show as ~16x
    assert t_big / t_small < 8, (t_small, t_big)
