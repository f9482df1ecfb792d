"""Markdown tables as row records for the RAG prompt (rag/tables.py), on the shapes the
extractors produce for the golden set's documents."""

from __future__ import annotations

import numpy as np

from ingot.rag.prompt import build_prompt
from ingot.rag.tables import records, split_merged_lines, tables_as_records
from ingot.retrieval.service import Passage
from ingot.store.protocol import ChunkRecord


def test_each_value_sits_next_to_its_column_name_and_row_number() -> None:
    text = (
        "A Slide with a Table\n\n"
        "| Column 1 | Column 2 | Column 3 |\n|---|---|---|\n"
        "| Red | Green | Blue |\n| Purple | Orange | Yellow |\n\nAfter the table."
    )
    assert tables_as_records(text) == (
        "A Slide with a Table\n\n"
        "row 1: Column 1: Red; Column 2: Green; Column 3: Blue\n"
        "row 2: Column 1: Purple; Column 2: Orange; Column 3: Yellow\n\nAfter the table."
    )


def test_text_without_a_table_is_returned_as_it_is() -> None:
    for text in ("no table here", "a | pipe in running text", ""):
        assert tables_as_records(text) == text


def test_a_spanned_header_is_continued_by_the_wordy_rows_below_it() -> None:
    rows = [
        ["#", "Language", "", "TEDs", "mAP", "Inference"],
        ["enc-layers", "", "simple", "complex", "(0.75)", "time (secs)"],
        ["6", "OTSL", "0.965", "0.934", "0.88", "2.73"],
    ]
    assert records(rows) == [
        "row 1: # enc-layers: 6; Language: OTSL; simple: 0.965; TEDs complex: 0.934; "
        "mAP (0.75): 0.88; Inference time (secs): 2.73"
    ]


def test_a_full_header_is_never_continued() -> None:
    rows = [["Column 1", "Column 2"], ["Red", "Green"]]  # no digits, but a data row
    assert records(rows) == ["row 1: Column 1: Red; Column 2: Green"]


def test_rows_merged_line_by_line_are_split_back() -> None:
    assert split_merged_lines(["4", "OTSL HTML", "0.938 0.952", "0.904 0.909"]) == [
        ["4", "OTSL", "0.938", "0.904"],
        ["4", "HTML", "0.952", "0.909"],
    ]


def test_a_value_with_its_deviation_is_not_two_rows() -> None:
    row = ["Chipper", "20,843", "260.57 (145.80)", "96.20 (57.53)"]
    assert split_merged_lines(row) == [row]
    words = ["PubLayNet [38]", "F / M", "Layouts of modern scientific documents"]
    assert split_merged_lines(words) == [words]


def test_empty_cells_are_left_out_and_a_spilled_merged_cell_written_once() -> None:
    rows = [["Name", "", "Total"], ["(c) Included.", "(c) Included.", "(c) Included."], ["Nespresso", "", "777"]]
    assert records(rows) == ["row 1: (c) Included.", "row 2: Name: Nespresso; Total: 777"]


def test_the_prompt_shows_tables_as_records_only_when_asked() -> None:
    """The stored passage (and so its citation and snippet) keeps the grid; only the text the
    model reads changes."""
    grid = "Table 1\n\n| Processing | total chunks |\n|---|---|\n| Chipper | 20,843 |"
    record = ChunkRecord(id="c0", document_id="d0", content_hash="h", text=grid, vector=np.zeros(4, dtype=np.float32),
                         source="single_table.pdf", page_start=1, page_end=1)
    passage = Passage("docs", record, score=1.0)

    def words(text: str) -> int:
        return len(text.split())

    as_records = build_prompt("q?", [], [passage], count_tokens=words, context_tokens=500, answer_tokens=50,
                              table_records=True)
    as_grid = build_prompt("q?", [], [passage], count_tokens=words, context_tokens=500, answer_tokens=50)
    assert "row 1: Processing: Chipper; total chunks: 20,843" in as_records.messages[-1]["content"]
    assert "| Chipper | 20,843 |" in as_grid.messages[-1]["content"]
    assert passage.record.text == grid


def test_a_heading_wrapped_onto_a_second_line_joins_its_column_name() -> None:
    rows = [
        ["Inhibitor", "Ecorr (V)", "Polarization", "Corrosion"],
        ["concentration (g)", "", "resistance (Ω)", "rate (mm/year)"],
        ["6", "0.8027", "373.180", "0.4318"],
    ]
    assert records(rows) == [
        "row 1: Inhibitor concentration (g): 6; Ecorr (V): 0.8027; Polarization resistance (Ω): 373.180; "
        "Corrosion rate (mm/year): 0.4318"
    ]
