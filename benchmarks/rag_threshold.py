"""Calibrate INGOT_RAG_MIN_SCORE: the best-passage cosine similarity below which RAG says
"the documents do not say" without calling the model.

Three kinds of questions over the SciFact corpus (5,183 abstracts), embedded by the
default model, through the real retrieval service (dense, top 10):

* answerable: SciFact train queries (809); their evidence is in the collection;
* missing evidence (hard): the same queries, scoring only passages that are *not* among
  their relevant abstracts, as if those documents had never been uploaded;
* off-topic: everyday and enterprise questions the corpus cannot answer (below).

For each threshold it prints the share of answerable questions answered and the share of
the others refused, and picks the threshold with the best balanced accuracy between
answerable and off-topic questions (answered + refused, ties to the lower threshold, since a
wrong refusal costs more than a weak answer that cites its sources). Missing evidence
among topically close documents is not separable by any similarity threshold (see the
percentiles); for those the prompt tells the model to say the documents do not say.

Usage: python benchmarks/rag_threshold.py [--data-dir DIR] [--write]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import sys
from pathlib import Path

import numpy as np

import common

ROOT = Path(__file__).resolve().parent.parent
SCIFACT = ROOT.parent / "shared" / "data" / "scifact"

OFF_TOPIC = [
    "What is the capital of Peru?", "Who won the 2018 football World Cup?", "How do I reset my VPN password?",
    "What is our parental leave policy?", "When is the next public holiday?", "How tall is the Eiffel Tower?",
    "What is the best pizza topping?", "How do I book a meeting room?", "Who wrote Pride and Prejudice?",
    "What time does the cafeteria open?", "How many moons does Jupiter have?", "What is the price of a Tesla Model 3?",
    "How do I file an expense report?", "Which team won the last Super Bowl?", "What is the boiling point of mercury?",
    "How do I change the toner in the printer?", "What is the GDP of Japan?", "Who is the CEO of our company?",
    "How do I set up two-factor authentication?", "What are the opening hours of the Louvre?",
    "What programming language is Kubernetes written in?", "How much vacation do new employees get?",
    "What is the speed of sound in air?", "How do I cook basmati rice?", "What is the tallest mountain in Africa?",
    "Where is the parking garage for visitors?", "How do I request a new laptop?", "Who painted the Mona Lisa?",
    "What is the exchange rate between euro and dollar?", "How long is a marathon?",
    "What does the quarterly sales report say about EMEA revenue?", "When was the company founded?",
    "How do I connect to the office Wi-Fi?", "What is the dress code for client meetings?",
    "Which airline has the most legroom?", "How many players are on a basketball team?",
    "What is the plot of the movie Inception?", "How do I renew my passport?", "What is the population of Canada?",
    "Who invented the telephone?", "What is the warranty period for our products?", "How do I cancel a subscription?",
    "What is the fastest land animal?", "How do I export a spreadsheet to PDF?", "Who is the current UN secretary general?",
    "What is the recipe for pancakes?", "What are the rules of chess castling?", "How far is the Moon from Earth?",
    "What is the deadline for the annual tax return?", "Which planet has the most rings?",
]


def load_corpus():  # noqa: ANN201
    from ingot.eval import beir
    from ingot.kb.service import TextDocument

    data = beir.load(SCIFACT, "train")
    corpus = [TextDocument(source=d.id, text=d.text, title=d.title) for d in data.corpus.values()]
    return data, corpus


async def scores(data_dir: Path) -> dict[str, list[float]]:
    from ingot.config import load_settings
    from ingot.eval.retrieval import ensure_corpus, scratch_collection_name
    from ingot.bootstrap import running

    data, corpus = load_corpus()
    settings = load_settings(data_dir=data_dir)
    collection = scratch_collection_name(data.corpus_sha256)
    out: dict[str, list[float]] = {"answerable": [], "missing": [], "off-topic": []}
    async with running(settings, chat=False) as services:
        kb = services.kb
        await ensure_corpus(kb, collection, corpus)

        async def best(query: str, exclude: set[str]) -> float:
            result = await kb.retrieval.search([collection], query, top_k=40, mode="dense")
            values = [p.dense_score for p in result.passages if p.record.source not in exclude]
            return float(max(values)) if values else -1.0

        for qid, query in data.queries.items():
            relevant = {d for d, g in data.qrels[qid].items() if g > 0}
            out["answerable"].append(await best(query, set()))
            out["missing"].append(await best(query, relevant))
        for query in OFF_TOPIC:
            out["off-topic"].append(await best(query, set()))
    return out


def table(values: dict[str, list[float]]) -> tuple[str, float]:
    answerable = np.array(values["answerable"])
    missing = np.array(values["missing"])
    off = np.array(values["off-topic"])
    lines = [
        "| threshold | answerable answered | missing evidence refused | off-topic refused |",
        "|---|---|---|---|",
    ]
    chosen, best = 0.0, -1.0
    for t in np.arange(0.10, 0.61, 0.05):
        answered = float((answerable >= t).mean())
        balanced = answered + float((off < t).mean())
        if balanced > best + 1e-9:
            chosen, best = round(float(t), 2), balanced
        lines.append(f"| {t:.2f} | {answered:.1%} | {(missing < t).mean():.1%} | {(off < t).mean():.1%} |")
    pct = lambda a: ", ".join(f"p{p}={np.percentile(a, p):.3f}" for p in (5, 25, 50, 75, 95))  # noqa: E731
    lines += [
        "",
        f"best-passage cosine: answerable {pct(answerable)}; missing evidence {pct(missing)}; off-topic {pct(off)}",
        f"chosen threshold (best answerable-answered + off-topic-refused): **{chosen:.2f}**",
    ]
    return "\n".join(lines), chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("INGOT_DATA_DIR", "/tmp/ingot-eval")))
    parser.add_argument("--write", action="store_true", help="append the table to RESULTS.md")
    args = parser.parse_args()
    if not SCIFACT.is_dir():
        sys.exit(f"SciFact not found at {SCIFACT}")
    values = asyncio.run(scores(args.data_dir))
    body, chosen = table(values)
    header = (f"## {dt.date.today()}: RAG relevance threshold (`benchmarks/rag_threshold.py`)\n\n"
              f"Machine: {common.machine()}. SciFact train: {len(values['answerable'])} answerable queries, the same "
              f"queries with their relevant abstracts excluded (missing evidence), {len(values['off-topic'])} "
              "off-topic questions. Score = best dense (cosine) similarity among the top 40 passages.\n\n")
    common.record(header + body + "\n", args.write)


if __name__ == "__main__":
    main()
