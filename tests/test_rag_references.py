"""Which tables a passage points at, and which chunk is that table (rag/references.py);
the retrieval that follows them runs on the real DPR paper in tests/test_rag.py."""

from __future__ import annotations

import pytest

from ingot.rag.references import TableReference, is_caption_of, referenced_labels, unresolved_references


def test_references_are_read_once_each_in_order() -> None:
    text = "Table 5 shows the performance. As Tab. 2 and Table 5 show, and Table 3a too; Tables 6-7 differ."
    assert referenced_labels(text) == ["5", "2", "3a"]
    assert referenced_labels("the table below; stable 4; Tabled 2") == []


@pytest.mark.parametrize(("text", "headings", "label", "expected"), [
    ("Table 5: Comparisons of training schemes\n\n| Top-1 | Top-20 |\n|---|---|", (), "5", True),
    ("**Table 5.** Results\n| a |", (), "5", True),
    ("| Top-1 | Top-20 |\n|---|---|\n| 44.9 | 77.1 |", ("Experiments", "Table 5: Ablation"), "5", True),
    ("Table 5 shows the performance of distant supervision.", (), "5", False),  # prose naming it
    ("Table 15: Other", (), "5", False),
    ("Table 5: Results", (), "50", False),
])
def test_a_caption_opens_a_line_or_a_heading(text: str, headings: tuple[str, ...], label: str, expected: bool) -> None:
    assert is_caption_of(label, text, headings) is expected


def test_only_tables_no_passage_of_that_document_is_are_unresolved() -> None:
    passages = [
        ("dpr", "Table 5 shows the performance; Table 2 lists the data.", ()),
        ("dpr", "Table 2: Number of questions in each QA dataset.\n| NQ | 58,880 |", ()),
        ("other", "Table 5: a table of another document", ()),
    ]
    assert unresolved_references(passages) == [(0, TableReference("dpr", "5"))]
    named_later = [("dpr", "Table 3: Training schemes\n| a |", ()), ("dpr", "See Table 3 and Table 5.", ())]
    assert unresolved_references(named_later) == [(1, TableReference("dpr", "5"))]
    assert unresolved_references([("dpr", "no references here", ())]) == []


@pytest.mark.parametrize(("text", "label"), [
    ("Table 2-1 FUNCTION_USAGE view", "2-1"), ("Table 3.2: Results", "3.2"), ("Table 3.2 Results here", "3.2"),
    ("TABLE IV. Costs", "IV"), ("Table 5 - Results", "5"), ("Table 1. HPO performed in OTSL", "1"),
    ("Table 2-2 shows a comparison", None), ("Table 2-1 describes the columns", None), ("Table 5-7 show", None),
    ("Table 5.2", None), ("The Table 5: not at the start", None),
])
def test_caption_labels(text: str, label: str | None) -> None:
    from ingot.ingest.captions import caption_label

    assert caption_label(text) == label
    if label is not None:
        assert referenced_labels(text) == [label]  # a reference to it reads the same label
