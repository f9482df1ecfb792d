"""Which leading rows of a table are its header (ingest/table_header.py), on the shapes the
golden set's documents produce, and that every split part of a table repeats all of them."""

from __future__ import annotations

from ingot.ingest.elements import markdown_cells, markdown_table, split_table
from ingot.ingest.table_header import continued_header, header_rows


def test_a_title_row_over_the_column_names_is_one_header() -> None:
    rows = [
        ["In millions of CHF", "", "", "January–June 2022"],
        ["", "Sales (a)", "Underlying trading operating profit (b)", "Depreciation"],
        ["Nespresso", "3,190", "777", "-143"],
    ]
    assert header_rows(rows) == 2
    header, body = continued_header(rows[0], rows[1:])
    assert header == ["In millions of CHF", "Sales (a)", "Underlying trading operating profit (b)",
                      "January–June 2022 Depreciation"]
    assert body == [rows[2]]


def test_word_rows_that_fill_no_empty_column_name_are_data() -> None:
    """vodafone.xlsx's index: the FY 23 column has no name, and the first row is all words."""
    rows = [
        ["Topic", "Period", "", "Page"],
        ["Quarterly revenue", "Nine quarters to 30 June 2023", "", "1"],
        ["Group financial performance", "FY 22", "FY 23", "2"],
    ]
    assert header_rows(rows) == 1


def test_an_empty_first_column_name_heads_the_row_labels() -> None:
    rows = [["", "Food", "Calories per portion"], ["Leaves", "Ash, Elm, Maple", "50"], ["Grain", "Corn", "200"]]
    assert header_rows(rows) == 1


def test_wrapped_and_spanned_headings_continue_but_data_words_do_not() -> None:
    wrapped = [["Inhibitor", "Polarization", "Corrosion"], ["concentration (g)", "resistance (Ω)", "rate (mm/year)"],
               ["6", "373.180", "0.4318"]]
    spanned = [["#", "Language", "", "TEDs", "mAP"], ["enc-layers", "", "simple", "complex", "(0.75)"],
               ["6", "OTSL", "0.965", "0.934", "0.88"]]
    words = [["Column 1", "Column 2"], ["Red", "Green"], ["Purple", "Orange"]]
    assert [header_rows(wrapped), header_rows(spanned), header_rows(words)] == [2, 2, 1]
    assert header_rows([]) == 0


def test_every_part_of_a_split_table_repeats_the_whole_header() -> None:
    rows = [["Inhibitor", "Polarization"], ["concentration (g)", "resistance (Ω)"]]
    rows += [[str(g), f"{100 + g}.5"] for g in range(0, 12, 2)]
    parts = split_table(rows, 2)
    assert len(parts) == 3
    for part in parts:
        assert part.header_rows == 2 and part.rows[:2] == rows[:2]
    assert [part.first_row for part in parts] == [2, 4, 6]  # among the rows after the first
    assert [row for part in parts for row in part.rows[2:]] == rows[2:]


def test_markdown_cells_unescape_pipes() -> None:
    line = markdown_table([["a", "b|c", ""]]).split("\n")[0]
    assert markdown_cells(line) == ["a", "b|c", ""]


def test_a_heading_centred_over_its_columns_names_them_all() -> None:
    """OTSL's Table 1 (PDF): "TEDs" sits over the middle of simple | complex | all."""
    header = ["#", "#", "Language", "", "TEDs", "", "mAP", "Inference"]
    below = [["enc-layers", "dec-layers", "", "simple", "complex", "all", "(0.75)", "time (secs)"],
             ["6", "6", "OTSL", "0.965", "0.934", "0.955", "0.88", "2.73"]]
    names, body = continued_header(header, below)
    assert names == ["# enc-layers", "# dec-layers", "Language", "TEDs simple", "TEDs complex", "TEDs all",
                     "mAP (0.75)", "Inference time (secs)"]
    assert body == below[1:]
    # the row labels' column is never spanned: "Sales" has no empty cell on its left
    left, _ = continued_header(["", "Sales", "", ""], [["Zone", "first half", "second half", "change"], ["NA", "1", "2", "3"]])
    assert left == ["Zone", "Sales first half", "second half", "change"]
