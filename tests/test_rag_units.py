"""Pure logic of retrieval and RAG: reciprocal rank fusion, the prompt budget, and the
follow-up rewrite's acceptance rules (the rewriting model is replaced by scripted replies,
named as such, so each rule is exercised deterministically; the real model runs in
tests/test_rag.py)."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from ingot.errors import ContextLengthError
from ingot.rag.prompt import SYSTEM_PROMPT, build_prompt
from ingot.rag.rewrite import refers_back, standalone_query
from ingot.retrieval.fusion import rrf
from ingot.retrieval.service import Passage
from ingot.store.protocol import ChunkRecord


def test_rrf_matches_the_formula() -> None:
    fused = dict(rrf([(["a", "b", "c"], 1.0), (["c", "a"], 1.0)], k=60))
    assert fused["a"] == pytest.approx(1 / 61 + 1 / 62)
    assert fused["c"] == pytest.approx(1 / 63 + 1 / 61)
    assert fused["b"] == pytest.approx(1 / 62)
    assert [key for key, _ in rrf([(["a", "b", "c"], 1.0), (["c", "a"], 1.0)])] == ["a", "c", "b"]
    assert [key for key, _ in rrf([(["a", "b"], 1.0), (["b", "a"], 3.0)])] == ["b", "a"]  # weights count
    assert rrf([(["a"], 0.0)]) == []  # a zero-weight ranking contributes nothing


def passage(i: int, words: int, page: int | None = 1) -> Passage:
    record = ChunkRecord(id=f"c{i}", document_id="d", content_hash="h", text=" ".join([f"w{i}"] * words),
                         vector=np.zeros(0, dtype=np.float32), source="a.pdf", page_start=page, page_end=page)
    return Passage("docs", record, score=1.0 / (i + 1))


def words(text: str) -> int:
    return len(text.split())


def test_prompt_drops_the_lowest_ranked_passages_to_fit() -> None:
    passages = [passage(0, 100), passage(1, 100), passage(2, 100)]
    roomy = build_prompt("q?", [], passages, count_tokens=words, context_tokens=2000, answer_tokens=100)
    assert [p.record.id for p in roomy.passages] == ["c0", "c1", "c2"] and roomy.dropped == 0
    tight = build_prompt("q?", [], passages, count_tokens=words, context_tokens=450, answer_tokens=100)
    assert [p.record.id for p in tight.passages] == ["c0", "c1"] and tight.dropped == 1
    assert tight.messages[0] == {"role": "system", "content": SYSTEM_PROMPT}
    user = tight.messages[-1]["content"]
    assert user.startswith("Sources:") and user.endswith("Question: q?")
    assert "[1] page 1" in user and "[2] page 1" in user and "w2" not in user
    assert sum(words(m["content"]) for m in tight.messages) + 100 <= 450


def test_prompt_keeps_history_and_refuses_when_it_cannot_fit() -> None:
    history = [{"role": "user", "content": "first"}, {"role": "assistant", "content": "answer [1]"}]
    prompt = build_prompt("then?", history, [passage(0, 5)], count_tokens=words, context_tokens=500, answer_tokens=50)
    assert prompt.messages[1:3] == history
    with pytest.raises(ContextLengthError):
        build_prompt("q " * 300, [], [passage(0, 5)], count_tokens=words, context_tokens=200, answer_tokens=50)


def scripted(reply: str):  # noqa: ANN201 - stands in for the chat model: returns a fixed reply
    async def generate(messages: list[dict], max_tokens: int) -> str:
        assert "Follow-up question" in messages[-1]["content"]
        return reply
    return generate


HISTORY = [{"role": "user", "content": "When did Microsoft launch Word?"},
           {"role": "assistant", "content": "In 1983 [1]."}]


@pytest.mark.parametrize(("reply", "how", "query"), [
    ("Which operating system did Microsoft Word run on?", "rewritten",
     "Which operating system did Microsoft Word run on?"),
    ("Microsoft Word was great.", "combined",  # lost the question's own words
     "When did Microsoft launch Word? Which operating system did it run on?"),
    ("Which operating system did it run on?", "combined",  # lost the topic
     "When did Microsoft launch Word? Which operating system did it run on?"),
    ("", "combined", "When did Microsoft launch Word? Which operating system did it run on?"),
])
def test_rewrite_is_kept_only_when_it_carries_topic_and_question(reply: str, how: str, query: str) -> None:
    got = asyncio.run(standalone_query(HISTORY, "Which operating system did it run on?", scripted(reply)))
    assert got == (query, how)


async def never(messages: list[dict], max_tokens: int) -> str:
    raise AssertionError("the model must not be called for a question that stands alone")


def test_first_question_is_used_as_is_without_calling_the_model() -> None:
    assert asyncio.run(standalone_query([], "What is RAG?", never)) == ("What is RAG?", "as-is")


def test_a_follow_up_that_stands_alone_is_searched_as_asked() -> None:
    question = "And when was Google Docs introduced?"
    assert asyncio.run(standalone_query(HISTORY, question, never)) == (question, "as-is")


@pytest.mark.parametrize("question", ["Which operating system did it run on?", "Why?", "Who made those?"])
def test_follow_ups_that_refer_back_go_to_the_model(question: str) -> None:
    assert refers_back(question)
    query, how = asyncio.run(standalone_query(HISTORY, question, scripted("")))
    assert how == "combined" and query.startswith("When did Microsoft launch Word?")


# ---------------------------------------------------------------- post-hoc attribution
# Passages are excerpts of the golden-set documents (benchmarks/golden/docs.txt), as the
# chunker produced them: the OTSL paper's hyper-parameter table, the Nestlé half-year sheet,
# the duck survey slide.

from ingot.generation.events import Citations, Finish, Started, TextDelta, Usage, collect  # noqa: E402
from ingot.rag.attribution import PassageTerms, attribute, place_markers, split_complete  # noqa: E402
from ingot.rag.citing import UNSUPPORTED_ANSWER, CitedAnswer, cited_events  # noqa: E402

OTSL_TEXT = ("5.1 Hyper Parameter Optimization\n\nWe have chosen the PubTabNet data set to perform HPO, since it "
             "includes a highly diverse set of tables. However OTSL yields a 2x speed up in the inference runtime "
             "over HTML.")
OTSL_TABLE = ("# | # | TEDs | mAP | Inference | Language | enc-layers dec-layers | simple complex | all | (0.75) | "
              "time (secs) | OTSL | 0.965 | 0.934 | 0.955 | 0.88 | 2.73 | 6 | 6 | HTML | 0.969 | 0.927 | 0.955 | "
              "0.857 | 5.39 | OTSL | 0.938 | 0.904 | 0.927 | 0.853 | 1.97 | 4 | 4 | HTML | 0.952 | 0.909 | 0.938 | "
              "0.843 | 3.77")
OTSL_RESULTS = ("5.2 Quantitative Results\n\nWe picked the model parameter configuration that produced the best "
                "prediction quality (enc=6, dec=6, heads=8) with PubTabNet alone, then independently trained and "
                "evaluated it on three publicly available data sets: PubTabNet (395k samples), FinTabNet (113k "
                "samples) and PubTables-1M (about 1M samples).")
SALES_2023 = ("| In millions of CHF | January–June 2023 | | Sales (a) | Underlying Trading operating profit (b) | "
              "| Zone NA | 12,553 | 2,713 | 2,632 | | Zone EUR | 9,467 | 1,570 | 1,373 |")
SALES_2022 = ("| In millions of CHF | January–June 2022 | | Sales (a) | Underlying Trading operating profit (b) | "
              "| Zone NA | 12,138 | 2,284 | 1,829 | | Zone EUR | 9,283 | 1,606 | 1,494 |")
DUCKS = ("Quarterly Duck Survey\n\nWild Duck Observations by Year\n\n| | Freshwater Ducks | Saltwater Ducks |\n"
         "| 2019 | 120 | 80 |\n| 2020 | 130 | 95 |\n| 2021 | 150 | 110 |")
OTSL_QUESTION = ("In the OTSL hyper-parameter table, what is the inference time in seconds of the HTML model with 6 "
                 "encoder and 6 decoder layers?")


def terms(*texts: str) -> list[PassageTerms]:
    return [PassageTerms.of(t) for t in texts]


def test_the_sentence_is_attributed_to_the_passage_holding_its_number() -> None:
    otsl = terms(OTSL_TEXT, OTSL_TABLE, OTSL_RESULTS)
    answer = "The inference time in seconds of the HTML model with 6 encoder and 6 decoder layers is 5.39."
    assert attribute(answer, OTSL_QUESTION, otsl) == [1]  # the table, not the prose around it
    assert attribute(answer.replace("5.39", "5.93"), OTSL_QUESTION, otsl) == []  # a number no passage has


def test_numbers_match_across_thousands_separators_and_pick_the_right_year() -> None:
    sheets = terms(SALES_2022, SALES_2023)
    question = "What were Zone NA sales in January-June 2023, in millions of CHF?"
    assert attribute("Zone NA sales in January-June 2023 were 12553 million CHF.", question, sheets) == [1]
    assert attribute("Zone NA sales in January-June 2022 were 12,138 million CHF.", question, sheets) == [0]
    assert attribute("Zone NA sales in January-June 2023 were 12,138 million CHF.", question, sheets) == []


def test_no_marker_when_nothing_supports_the_sentence() -> None:
    question = "How many saltwater ducks were observed in 2018 in the Quarterly Duck Survey?"
    ducks = terms(DUCKS, OTSL_TEXT)
    # The near miss: 80 is the 2019 row; no passage has 80 and 2018 together.
    assert attribute("There were 80 saltwater ducks observed in 2018.", question, ducks) == []
    assert attribute("There were 80 saltwater ducks observed in 2019.", question, ducks) == [0]
    assert attribute("The documents do not say how many saltwater ducks were seen.", question, ducks) == []
    assert attribute("Yes.", question, ducks) == []


DOMESTICATION = ("Domestication\n\nDucks have many economic uses, being farmed for their meat, eggs, and feathers. "
                 "Approximately 3 billion ducks are slaughtered each year for meat worldwide.")
BIBLIOGRAPHY = "Thorpe, I. J. (1996). The Origins of Agriculture in Europe. Routledge."


def test_a_sentence_about_none_of_the_questions_names_is_not_supported_by_a_passage_naming_none() -> None:
    question = "How many duck eggs are hatched in Europe each year?"
    wiki = terms(DOMESTICATION, BIBLIOGRAPHY)
    # The 1.5B's answer (golden set, 2026-12-03): true of the passage, about another question.
    assert attribute("Approximately 3 billion ducks are slaughtered each year for meat worldwide.", question, wiki) == []
    # The same fact counts when the sentence or its passage says what the question names.
    assert attribute("In Europe, 3 billion ducks are slaughtered each year for meat.", question, wiki) == [0]
    europe = [PassageTerms.of(DOMESTICATION, "", "ducks-in-europe.html")]
    assert attribute("Approximately 3 billion ducks are slaughtered each year for meat worldwide.", question,
                     europe) == [0]
    # Questions that name nothing are not affected.
    assert attribute("Approximately 3 billion ducks are slaughtered each year for meat worldwide.",
                     "How many ducks are slaughtered each year?", wiki) == [0]


def test_markers_go_before_the_full_stop_and_replace_the_models_own() -> None:
    assert place_markers("The time is 5.39.", [2]) == "The time is 5.39 [2]."
    assert place_markers(" It is 5.39 [3].\n", [1, 2]) == " It is 5.39 [1][2].\n"
    assert place_markers("According to [2], Zone NA sales were 12,553 million CHF.", [1]) == \
        "Zone NA sales were 12,553 million CHF [1]."
    assert place_markers("No source backs this [1].", []) == "No source backs this."
    assert place_markers("Cut off mid", [1]) == "Cut off mid [1]"
    # a bracket or quote that closes a value stays with it; one after a full stop is the ending
    assert place_markers("The type is VARCHAR(30).", [1]) == "The type is VARCHAR(30) [1]."
    assert place_markers('The notes say "baz things".', [2]) == 'The notes say "baz things" [2].'
    assert place_markers('He said "yes."', [1]) == 'He said "yes [1]."'


def test_sentences_end_at_a_full_stop_before_whitespace_not_inside_a_number() -> None:
    text = "The time is 5.39 seconds. HTML is slower!\nNext line is cut"
    pieces, rest = split_complete(text)
    assert pieces == ["The time is 5.39 seconds.", " HTML is slower!", "\n"] and rest == "Next line is cut"
    assert "".join(pieces) + rest == text


def _scripted_events(pieces: list[str], finish: str = "stop", closed: list[bool] | None = None):  # noqa: ANN202
    """Stands in for the generation service's stream: fixed text deltas (cut mid-word, as
    tokens are), then Finish and Usage; records whether it was closed early."""
    async def gen():  # noqa: ANN202
        try:
            yield Started("chatcmpl-x", 0, "m", "fp", 1)
            for piece in pieces:
                yield TextDelta(0, piece)
            yield Finish(0, finish)
            yield Usage(100, 50)
        finally:
            if closed is not None:
                closed.append(True)
    return gen()


GIVEN = [{"index": i, "source": "otsl.pdf"} for i in (1, 2, 3)]


def _run(pieces: list[str], question: str, passages: list[str], closed: list[bool] | None = None):  # noqa: ANN202
    async def go():  # noqa: ANN202
        answer = CitedAnswer(question, terms(*passages))
        events = cited_events(_scripted_events(pieces, closed=closed), answer, GIVEN, {"passages_used": 3},
                              count_tokens=lambda text: len(text.split()), count_prompt=_prompt_tokens)
        seen = [e async for e in events]
        return seen, await collect(_replay(seen))
    return asyncio.run(go())


async def _prompt_tokens() -> int:
    return 100


async def _replay(events: list):  # noqa: ANN202
    for event in events:
        yield event


def test_the_stream_sends_whole_sentences_with_markers_and_ends_with_the_cited_passages() -> None:
    pieces = ["The inference ti", "me of the HTML model is 5.", "39. OTSL yields a 2x speed", " up over HTML."]
    seen, result = _run(pieces, OTSL_QUESTION, [OTSL_TEXT, OTSL_TABLE, OTSL_RESULTS])
    texts = [e.text for e in seen if isinstance(e, TextDelta)]
    assert texts == ["The inference time of the HTML model is 5.39 [2].", " OTSL yields a 2x speed up over HTML [1]."]
    assert result.text == "".join(texts)  # the streamed text is the final content
    kinds = [type(e).__name__ for e in seen]
    assert kinds[-3:] == ["Citations", "Finish", "Usage"]
    final = seen[-3]
    assert isinstance(final, Citations) and [c["index"] for c in final.citations] == [1, 2]  # [3] was not cited
    assert result.citations is final and final.retrieval["passages_cited"] == 2


def test_a_repeated_sentence_stops_the_answer() -> None:
    closed: list[bool] = []
    loop = ["The answer is 5.39.\n\n"] * 6 + ["The answer is"]
    seen, result = _run(loop, OTSL_QUESTION, [OTSL_TABLE], closed)
    assert result.text.count("5.39") == 1 and result.choices[0].finish_reason == "stop"
    assert closed == [True]  # the engine's stream was closed, not read to max_tokens
    assert result.citations.retrieval["stopped_on_repeat"] is True
    assert result.usage.prompt_tokens == 100 and result.usage.completion_tokens > 0


def test_an_answer_no_passage_supports_is_withheld() -> None:
    question = "How many saltwater ducks were observed in 2018 in the Quarterly Duck Survey?"
    seen, result = _run(["According to the survey, there were 80 saltwater ducks in 2018."], question, [DUCKS])
    assert result.text == UNSUPPORTED_ANSWER and result.citations.citations == []
    assert result.citations.retrieval["answer_withheld"] is True
    # Supported: sent as is, with its marker.
    seen, result = _run(["There were 80 saltwater ducks in 2019."], question, [DUCKS])
    assert result.text == "There were 80 saltwater ducks in 2019 [1]."


def test_a_one_digit_number_alone_is_no_evidence() -> None:
    # SmolLM2's loop on the DPR question: "2" occurs in every passage, the claim in none.
    question = "How many passages did splitting the English Wikipedia dump into 100-word blocks produce for DPR?"
    assert attribute("The answer is 2.", question, terms(OTSL_TABLE, OTSL_TEXT)) == []
    assert attribute("It is 5.39.", OTSL_QUESTION, terms(OTSL_TEXT, OTSL_TABLE)) == [1]


DPR_TRAINING = ("The DPR model used in our main experiments is trained using the in-batch negative setting (Section "
                "3.2) with a batch size of 128 and one additional BM25 negative passage per question.")


def test_a_passage_naming_none_of_the_questions_subjects_does_not_support() -> None:
    # The 1.5B's answer to an unanswerable question: DPR's batch size given for TableFormer.
    question = "What batch size was used to train the OTSL TableFormer model?"
    passages = terms(OTSL_TEXT, OTSL_RESULTS, DPR_TRAINING)
    assert attribute("The OTSL TableFormer model was trained using a batch size of 128.", question, passages) == []
    assert attribute("The DPR model was trained with a batch size of 128.",
                     "What batch size was used to train the DPR model?", passages) == [2]


TYPEWRITER = ("Pre-Digital Era (19th - Early 20th Century)\n\nThe origins of word processing can be traced back to "
              "the invention of the typewriter in the mid-19th century. Patented in 1868 by Christopher Latham "
              "Sholes, the typewriter revolutionized written communication.")


def test_a_right_answer_with_an_added_name_is_still_cited() -> None:
    # SmolLM2 on docling's multi_page.pdf: "American" is in no passage, the fact is.
    sentence = ("The invention of the typewriter in 1868 by Christopher Latham Sholes is attributed to the "
                "American inventor and engineer, Christopher Latham Sholes.")
    assert attribute(sentence, "Who patented the typewriter in 1868?", terms(OTSL_TEXT, TYPEWRITER)) == [1]
    assert attribute(sentence.replace("1868", "1869"), "Who patented the typewriter?", terms(TYPEWRITER)) == []
