"""rag/subject.py: the names a question asks about, and the refusal when no passage has
them. The questions are the golden set's (benchmarks/golden/docs.jsonl), the passages
what ingot extracted from those documents; expectations written by hand."""

from __future__ import annotations

import pytest

from ingot.rag.service import not_mentioned_answer
from ingot.rag.subject import fold, missing_names, named_phrases


@pytest.mark.parametrize("question, names", [
    ("What revenue did Widget E make in the SalesData sheet?", ["Widget E", "SalesData"]),
    ("How many samples does FinTabNet have?", ["FinTabNet"]),
    ("What Top-20 retrieval accuracy does DPR reach on the MS MARCO dataset?", ["DPR", "MS MARCO"]),
    ("How many square feet does Galaxy Gaming's Las Vegas corporate office occupy?", ["Galaxy Gaming", "Las Vegas"]),
    ("Who wrote Stories of the Wild South: A Collection of Tales?", ["Stories", "Wild South", "Collection", "Tales"]),
    ("When was the lighthouse built?", []),  # nothing named: the rule does not apply
    ("In which year did Apple release its Pages word processor?", ["Apple", "Pages"]),
])
def test_named_phrases(question: str, names: list[str]) -> None:
    assert named_phrases(question) == names


def test_fold_ignores_case_accents_dashes_and_line_breaks() -> None:
    assert fold("Nestlé's January–June\nresults") == fold("nestle s January-June results")


def test_a_name_missing_from_every_passage_is_reported() -> None:
    rows = ["| Widget A | 2024-01-05 | 12000 |", "| Widget B | 2024-01-06 | 9000 |", "SalesData"]
    assert missing_names("What revenue did Widget E make in the SalesData sheet?", rows) == ["Widget E"]
    assert missing_names("What revenue did Widget B make in the SalesData sheet?", rows) == []


def test_a_footnote_number_glued_to_a_name_still_matches() -> None:
    passage = "Studies from the Ponemon Institute2 revealed that the average cost of a data breach"
    assert missing_names("What does the Ponemon Institute say?", [passage]) == []
    assert missing_names("What does the Ponemon Institute say about MS MARCO?", [passage]) == ["MS MARCO"]


def test_the_refusal_names_what_is_missing() -> None:
    assert "mentions Widget E," in not_mentioned_answer(["Widget E"])
    assert "mentions Macau or Bonus Jackpot System," in not_mentioned_answer(["Macau", "Bonus Jackpot System"])
