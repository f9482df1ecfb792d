"""``ingot eval rag``: the scoring functions against hand-computed expectations (no model),
the CLI's one-line errors, and the command end to end with the bundled SmolLM2 over a
generated 3-page PDF, in this process and against a running server, checking that the
report's counts follow from what the answers actually contained."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import docgen
from authutil import isolated_data_dir
from ingot.eval.rag import (
    GoldenError,
    GoldenItem,
    answer_found,
    by_kind,
    citation_right,
    covers_pages,
    is_refusal,
    load_golden,
    marked_citations,
    names_doc,
    normalize,
    parse_golden,
    percentile,
    score,
    report,
    spread,
    summarize,
)
from ingot.eval.html_report import render_html
from kbutil import CliResult, ingot_here
from serverutil import REPO

# ---------------------------------------------------------------- pure functions


def test_normalize_folds_case_space_and_thousands_separators() -> None:
    assert normalize("  Revenue\n was  1,234,567\tUSD ") == "revenue was 1234567 usd"
    assert normalize("21 015 324") == "21 015 324"  # a space is not taken for a separator
    assert normalize("1,5 and 3.14 and 12,34") == "1,5 and 3.14 and 12,34"  # not groups of three
    assert normalize("ＡＢＣ") == "abc"  # NFKC


@pytest.mark.parametrize("answer, expected, found", [
    ("The DPR index holds 21015324 passages.", ["21,015,324"], True),
    ("It holds 21,015,324 passages.", ["21015324"], True),
    ("The patent went to C. L.  SHOLES.", ["Sholes"], True),
    ("It was patented in 1868.", ["Sholes"], False),
    ("Final Draft is one.", ["Celtx", "Final Draft"], True),
    ("", ["x"], False),
])
def test_answer_found(answer: str, expected: list[str], found: bool) -> None:
    assert answer_found(answer, expected) is found


def test_refusal_is_the_gate_or_a_model_saying_so() -> None:
    cited = [{"index": 1, "source": "a.pdf"}]
    assert is_refusal("anything", [])  # the retrieval gate answered: no sources given
    assert is_refusal("The documents do not say which year.", cited)
    assert is_refusal("The sources don't mention Macau.", cited)
    assert is_refusal("I cannot answer that from the sources.", cited)
    assert not is_refusal("The lighthouse was lit in 1887 [1].", cited)


def test_citation_names_the_document_and_covers_a_page() -> None:
    assert names_doc("multi-column.pdf", "multi-column.pdf")
    assert names_doc("docs/pdf/multi-column.pdf", "multi-column.pdf")  # ingot ingest DIR names by path
    assert not names_doc("not-multi-column.pdf", "multi-column.pdf")
    assert not names_doc(None, "a.pdf")
    assert covers_pages({"page_start": 3, "page_end": 5}, [4])
    assert covers_pages({"page_start": 3, "page_end": None}, [3])
    assert not covers_pages({"page_start": 3, "page_end": 5}, [2, 6])
    assert not covers_pages({"page_start": None}, [1])
    assert covers_pages({"page_start": None}, None)  # formats without pages: the document is enough
    cites = [{"index": 1, "source": "a.pdf", "page_start": 1, "page_end": 1},
             {"index": 2, "source": "b.pdf", "page_start": 7, "page_end": 8}]
    assert citation_right(cites, "b.pdf", [8]) and not citation_right(cites, "a.pdf", [8])
    assert marked_citations("Yes [2], see also [9].", cites) == [cites[1]]


def test_percentile_interpolates_between_ranks() -> None:
    assert percentile([4, 1, 3, 2], 50) == pytest.approx(2.5)
    assert percentile([1, 2, 3, 4], 95) == pytest.approx(3.85)  # rank 2.85: 3 + 0.85 * (4 - 3)
    assert percentile([7.0], 95) == 7.0
    assert percentile([], 50) is None


def test_spread_takes_evenly_spaced_questions() -> None:
    items = [_item(i, None, None, [], "k") for i in range(1, 11)]
    assert [i.line for i in spread(items, 4)] == [1, 3, 6, 8]  # indices 0, 2, 5, 7 of 10
    assert spread(items, 20) == items


def _item(line: int, doc: str | None, pages: list[int] | None, answers: list[str], kind: str) -> GoldenItem:
    return GoldenItem(line, f"question {line}?", doc, tuple(pages) if pages else None, tuple(answers), kind)


def _response(text: str, *cites: tuple[str, int | None]) -> dict:
    return {"choices": [{"message": {"content": text}}],
            "citations": [{"index": i, "source": s, "page_start": p, "page_end": p, "location": None}
                          for i, (s, p) in enumerate(cites, start=1)]}


def test_summary_counts_match_hand_computed_expectations() -> None:
    cases = [
        # fact + right page, marked with [1]
        (_item(1, "g.pdf", [2], ["August"], "text"), _response("In August [1].", ("g.pdf", 2)), 1.0),
        # fact, wrong page
        (_item(2, "g.pdf", [3], ["22:40"], "text"), _response("At 22:40.", ("g.pdf", 1)), 2.0),
        # right page, wrong fact
        (_item(3, "g.pdf", [1], ["1887"], "table"), _response("In 1900.", ("g.pdf", 1)), 3.0),
        # answerable but refused by the gate (false refusal)
        (_item(4, "g.pdf", [1], ["1887"], "table"), _response("The documents do not say."), 4.0),
        # unanswerable, refused by the model
        (_item(5, None, None, [], "unanswerable"), _response("The documents do not say.", ("g.pdf", 1)), 5.0),
        # unanswerable, answered anyway
        (_item(6, None, None, [], "unanswerable"), _response("Lima.", ("g.pdf", 1)), 6.0),
    ]
    records = [score(item, response, seconds) for item, response, seconds in cases]
    assert [r.answer_ok for r in records] == [True, True, False, False, None, None]
    assert [r.citation_ok for r in records] == [True, False, True, False, None, None]
    assert [r.refused for r in records] == [False, False, False, True, True, False]
    assert [r.correct for r in records] == [True, False, False, False, True, False]
    s = summarize(records)
    assert (s.questions, s.answerable, s.unanswerable) == (6, 4, 2)
    assert (s.answer_hits, s.citation_hits, s.marked_citation_hits, s.correct_answerable) == (2, 2, 1, 1)
    assert (s.refusal_hits, s.refused_unanswerable, s.refused_answerable, s.errors) == (4, 1, 1, 0)
    assert s.answer_accuracy == 0.5 and s.citation_accuracy == 0.5 and s.answer_and_citation_accuracy == 0.25
    assert s.refusal_accuracy == round(4 / 6, 4)
    assert s.latency_p50_s == 3.5 and s.latency_p95_s == pytest.approx(5.75)
    kinds = by_kind(records)
    assert list(kinds) == ["text", "table", "unanswerable"]
    assert (kinds["text"].answer_hits, kinds["text"].citation_hits) == (2, 1)
    assert kinds["unanswerable"].answer_accuracy is None and kinds["unanswerable"].refusal_accuracy == 0.5


def test_html_report_shows_the_counts_and_escapes_model_text() -> None:
    """The --html page: the headline and the per-kind rows carry the summary's counts, and
    an answer or a file name with markup is shown as text, never run."""
    cases = [
        (_item(1, "g.pdf", [2], ["August"], "text"), _response("In August [1].", ("g.pdf", 2)), 1.0),
        (_item(2, "g.pdf", [3], ["22:40"], "text"), _response("<script>alert(1)</script> at 22:40", ("<b>x.pdf", 1)), 2.0),
        (_item(3, None, None, [], "unanswerable"), _response("The documents do not say."), 3.0),
    ]
    page = render_html(report([score(item, response, secs) for item, response, secs in cases],
                              {"golden": "g.jsonl", "collections": ["c"], "model": "m", "url": None,
                               "max_tokens": 64, "top_k": None, "limit": None, "sample": None}))
    assert "<h1>RAG answers: 1/2 answered and cited,\n 1/1 unanswerable refused</h1>" in page
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt; at 22:40" in page
    assert "&lt;b&gt;x.pdf" in page and "<b>x.pdf" not in page
    assert ">text</td><td class=\"num\">2</td>" in page and ">1/2 (50%)</td>" in page  # text: fact 2/2, cited 1/2
    assert page.count('<tr class="wrong">') == 1  # question 2: wrong page


def test_golden_lines_are_validated_with_their_line_number(tmp_path: Path) -> None:
    good = {"question": "Q?", "doc": "a.pdf", "pages": [1], "answer_any": ["x"], "kind": "text"}
    items = parse_golden([json.dumps(good), "", json.dumps({**good, "doc": None, "answer_any": []})], "g.jsonl")
    assert [i.line for i in items] == [1, 3] and not items[1].answerable
    bad = [
        ("{not json", "g.jsonl:2: not JSON"),
        (json.dumps({**good, "kind": ""}), "g.jsonl:2: 'kind'"),
        (json.dumps({k: v for k, v in good.items() if k != "pages"}), "g.jsonl:2: missing field(s) pages"),
        (json.dumps({**good, "pages": [0]}), "g.jsonl:2: 'pages'"),
        (json.dumps({**good, "answer_any": []}), "g.jsonl:2: an answerable question"),
        (json.dumps([1, 2]), "g.jsonl:2: expected a JSON object"),
    ]
    for line, message in bad:
        with pytest.raises(GoldenError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
            parse_golden([json.dumps(good), line], "g.jsonl")
    with pytest.raises(GoldenError, match="no such file"):
        load_golden(tmp_path / "missing.jsonl")


# ---------------------------------------------------------------- the command


def ingot(data_dir: Path, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    """The real entry point in a subprocess (the error paths and ``--url`` load no model: cheap)."""
    env = {**os.environ, "INGOT_DATA_DIR": str(data_dir), "INGOT_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "ingot.cli", *args], env=env, capture_output=True, text=True,
                          timeout=timeout, cwd=REPO)


def here(data_dir: Path, *args: str) -> CliResult:
    """The same command in this process: no 10-20 s interpreter start and torch import."""
    return ingot_here(data_dir, *args, env={"INGOT_THREADS": "1"})


def test_cli_errors_are_one_line_with_exit_2(tmp_path: Path) -> None:
    missing = ingot(tmp_path, "eval", "rag", str(tmp_path / "nope.jsonl"), "--collection", "c")
    assert missing.returncode == 2 and "no such file" in missing.stderr and "Traceback" not in missing.stderr
    golden = tmp_path / "g.jsonl"
    golden.write_text('{"question": "Q?", "doc": null, "pages": null, "answer_any": [], "kind": "u"}\n{oops\n')
    bad = ingot(tmp_path, "eval", "rag", str(golden), "--collection", "c")
    assert bad.returncode == 2 and f"{golden}:2: not JSON" in bad.stderr and "Traceback" not in bad.stderr


GOLDEN_LINES = [
    {"question": docgen.FACTS["lighthouse"].question, "doc": "field_guide.pdf", "pages": [1],
     "answer_any": ["1887"], "kind": "fact"},
    {"question": docgen.FACTS["honey"].question, "doc": "field_guide.pdf", "pages": [2],
     "answer_any": ["August"], "kind": "fact"},
    # the fact is on page 3 of 3: accepting only page 9 makes a right citation impossible, on purpose
    {"question": docgen.FACTS["train"].question, "doc": "field_guide.pdf", "pages": [9],
     "answer_any": ["22:40"], "kind": "wrong-page"},
    {"question": "What is the capital of Peru?", "doc": None, "pages": None, "answer_any": [], "kind": "unanswerable"},
]


def _check_report(report: dict) -> None:
    """Every verdict recomputed from the record's own answer and citations (the fact and
    the page independently of ingot.eval.rag; the refusal with its unit-tested
    ``is_refusal``), then every aggregate from the verdicts."""
    records = report["records"]
    assert [r["question"] for r in records] == [g["question"] for g in GOLDEN_LINES]
    for r, g in zip(records, GOLDEN_LINES):
        said = " ".join(r["answer"].casefold().split())
        refused = is_refusal(r["answer"], r["citations"])
        assert r["refused"] == refused, r
        if g["doc"] is None:
            assert r["answer_ok"] is None and r["refusal_ok"] == refused
            continue
        assert r["answer_ok"] == any(a.casefold() in said for a in g["answer_any"]), r
        cited = any(c["source"] == g["doc"] and c["page_start"] <= p <= (c["page_end"] or c["page_start"])
                    for c in r["citations"] if c["page_start"] is not None for p in g["pages"])
        assert r["citation_ok"] == cited, r
        assert r["correct"] == (r["answer_ok"] and cited and not refused)
    assert records[2]["citation_ok"] is False  # the deliberately wrong page
    answerable = [r for r in records if r["doc"] is not None]
    s = report["summary"]
    assert s["questions"] == 4 and s["answerable"] == 3 and s["unanswerable"] == 1 and s["errors"] == 0
    assert s["answer_hits"] == sum(bool(r["answer_ok"]) for r in answerable)
    assert s["citation_hits"] == sum(bool(r["citation_ok"]) for r in answerable)
    assert s["correct_answerable"] == sum(r["correct"] for r in answerable)
    assert s["refusal_hits"] == sum(r["refusal_ok"] for r in records)
    assert s["answer_accuracy"] == round(s["answer_hits"] / 3, 4)
    assert s["citation_accuracy"] == round(s["citation_hits"] / 3, 4)
    assert s["refusal_accuracy"] == round(s["refusal_hits"] / 4, 4)
    seconds = sorted(r["seconds"] for r in records)
    assert s["latency_p50_s"] == pytest.approx((seconds[1] + seconds[2]) / 2, abs=1e-3)
    assert seconds[0] <= s["latency_p95_s"] <= seconds[-1]
    assert set(report["by_kind"]) == {"fact", "wrong-page", "unanswerable"}
    assert report["by_kind"]["fact"]["questions"] == 2


@pytest.fixture(scope="module")
def golden(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("eval-rag")
    pdf = docgen.write_pdf(folder / "field_guide.pdf", docgen.FIELD_GUIDE_PAGES)
    path = folder / "golden.jsonl"
    path.write_text("".join(json.dumps(g) + "\n" for g in GOLDEN_LINES))
    return path, pdf


@pytest.mark.slow
def test_eval_rag_in_process(data_dir: Path, tmp_path: Path, golden: tuple[Path, Path]) -> None:
    """``eval rag`` without ``--url``: the command loads the models and answers itself, on a
    fresh knowledge base (the session's model cache linked in, so nothing is rebuilt)."""
    path, pdf = golden
    fresh = isolated_data_dir(data_dir, tmp_path / "data")
    assert here(fresh, "ingest", str(pdf), "--collection", "eval_gen").returncode == 0
    out, html = tmp_path / "report.json", tmp_path / "report.html"
    done = here(fresh, "eval", "rag", str(path), "--collection", "eval_gen", "--json", str(out),
                 "--html", str(html), "--max-tokens", "48")
    assert done.returncode == 0, done.stderr
    assert "answer accuracy" in done.stdout and "per kind" in done.stdout
    report = json.loads(out.read_text())
    assert report["model"] == "smollm2-135m-instruct" and report["url"] is None
    _check_report(report)
    assert html.read_text(encoding="utf-8") == render_html(report)


@pytest.mark.slow
def test_eval_rag_against_a_server(data_dir: Path, server, golden: tuple[Path, Path], tmp_path: Path) -> None:
    path, pdf = golden
    up = here(data_dir, "ingest", str(pdf), "--collection", "eval_remote", "--url", server.base_url)
    assert up.returncode == 0, up.stderr
    out = tmp_path / "remote.json"
    done = ingot(data_dir, "eval", "rag", str(path), "--collection", "eval_remote", "--url", server.base_url,
                 "--json", str(out), "--max-tokens", "48")
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    assert report["url"] == server.base_url and report["model"] == "smollm2-135m-instruct"
    _check_report(report)
    unknown = here(data_dir, "eval", "rag", str(path), "--collection", "no_such_c", "--url", server.base_url)
    assert unknown.returncode == 2 and "does not exist" in unknown.stderr


# ---------------------------------------------------------------- --retrieval-only


def test_retrieval_summary_matches_hand_computed_counts() -> None:
    from ingot.eval import rag_retrieval

    def p(source: str, start: int | None, end: int | None = None) -> dict:
        return {"source": source, "page_start": start, "page_end": end}

    items = parse_golden([
        json.dumps({"question": "a", "doc": "x.pdf", "pages": [2], "answer_any": ["1"], "kind": "k"}),
        json.dumps({"question": "b", "doc": "x.pdf", "pages": [5], "answer_any": ["1"], "kind": "k"}),
        json.dumps({"question": "c", "doc": "y.xlsx", "pages": None, "answer_any": ["1"], "kind": "sheet"}),
        json.dumps({"question": "d", "doc": None, "pages": None, "answer_any": [], "kind": "u"}),
    ])
    records = [
        rag_retrieval.score(items[0], [p("x.pdf", 1), p("dir/x.pdf", 1, 3)], True, 0.1),  # rank 2 (span 1-3)
        rag_retrieval.score(items[1], [p("x.pdf", 4), p("z.pdf", 5)], True, 0.1),  # page 5 of another file
        rag_retrieval.score(items[2], [p("y.xlsx", None)], False, 0.1),  # found, but the gate closed
        rag_retrieval.score(items[3], [p("x.pdf", 1)], False, 0.1),
    ]
    assert [r.rank for r in records] == [2, None, 1, None]
    s = rag_retrieval.summarize(records)
    assert (s["found"], s["found_at_1"], s["reachable"]) == (2, 1, 1)
    assert s["recall_at_k"] == round(2 / 3, 4) and s["recall_at_1"] == round(1 / 3, 4)
    assert s["mrr"] == round((1 / 2 + 1) / 3, 4)
    assert s["gate_closed_answerable"] == 1 and s["gate_closed_unanswerable"] == 1
    assert rag_retrieval.report(records, {})["by_kind"]["sheet"]["reachable"] == 0


@pytest.mark.slow
def test_eval_rag_retrieval_only(data_dir: Path, tmp_path: Path, golden: tuple[Path, Path]) -> None:
    """No answers, only the passages: every rank recomputed from the record's passages."""
    path, pdf = golden
    fresh = isolated_data_dir(data_dir, tmp_path / "data")
    assert here(fresh, "ingest", str(pdf), "--collection", "eval_ret").returncode == 0
    out = tmp_path / "retrieval.json"
    done = here(fresh, "eval", "rag", str(path), "--collection", "eval_ret", "--retrieval-only", "--json", str(out))
    assert done.returncode == 0, done.stderr
    assert "recall@k" in done.stdout
    report = json.loads(out.read_text())
    records = report["records"]
    for r, g in zip(records, GOLDEN_LINES):
        ranks = [i for i, c in enumerate(r["passages"], start=1)
                 if g["doc"] and c["source"] == g["doc"] and g["pages"] and
                 c["page_start"] <= g["pages"][0] <= (c["page_end"] or c["page_start"])]
        assert r["rank"] == (ranks[0] if ranks else None), r
        assert r["reachable"] == bool(g["doc"] and r["gate_open"] and ranks)
    assert records[2]["rank"] is None  # page 9 of a 3-page file
    assert records[0]["rank"] is not None and records[1]["rank"] is not None  # the two facts are found
    s = report["summary"]
    assert s["found"] == sum(r["rank"] is not None for r in records)
    assert s["reachable"] == sum(r["reachable"] for r in records)
    with_url = here(fresh, "eval", "rag", str(path), "--collection", "eval_ret", "--retrieval-only",
                    "--url", "http://127.0.0.1:9/v1")
    assert with_url.returncode == 2 and "--retrieval-only runs in this process" in with_url.stderr
