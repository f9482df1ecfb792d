"""The extraction benchmark's two scores (benchmarks/extraction_metrics.py), checked
against values worked out by hand, so a change to the scoring cannot pass unnoticed."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import extraction_metrics as m  # noqa: E402

REFERENCE = """# Title

| Name | Value |
|---|---|
| Alpha | 1,200.50 |
| Beta | 7 |
"""


def test_words_drop_markdown_punctuation():
    assert m.words("## The *Big* | table_") == ["the", "big", "table"]


def test_similarity_identical_and_disjoint():
    assert m.similarity(REFERENCE, REFERENCE) == 1.0
    assert m.similarity("one two", "three four") == 0.0
    # 2 of 3 words in order on each side: ratio = 2*2 / (3+3)
    assert m.similarity("a b c", "a b d") == pytest.approx(4 / 6)


def test_table_cells_skip_separator_and_empty_cells():
    cells = m.table_cells("| A | |\n|:---|---:|\n| b c | \\| d |\n")
    assert cells == {"a": 1, "b c": 1, "d": 1}


def test_table_cell_f1_by_hand():
    # reference cells: name, value, alpha, 1,200.50, beta, 7 (6 cells)
    ours = "| Name | Value |\n|---|---|\n| Alpha | 1 200.50 |\n| Beta 7 | |\n"
    # ours: name, value, alpha, "1 200.50", "beta 7" (5 cells); matched: name, value, alpha = 3
    precision, recall = 3 / 5, 3 / 6
    assert m.table_cell_f1(ours, REFERENCE) == pytest.approx(2 * precision * recall / (precision + recall))


def test_table_cell_f1_edges():
    assert m.table_cell_f1(REFERENCE, REFERENCE) == 1.0
    assert m.table_cell_f1("no table here", REFERENCE) == 0.0
    assert m.table_cell_f1(REFERENCE, "prose only") is None
