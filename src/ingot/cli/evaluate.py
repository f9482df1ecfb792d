"""``ingot eval retrieval``: nDCG@10, recall@10/100, MRR@10 and queries/s of the real
retrieval pipeline on a BEIR-format dataset."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ingot.cli.common import ConfigOpt, err, fail, run_or_exit, settings_or_exit

eval_app = typer.Typer(help="Built-in evaluation.", no_args_is_help=True)
console = Console()


@eval_app.command("retrieval")
def retrieval(
    beir: Path = typer.Option(..., "--beir", help="BEIR folder: corpus.jsonl, queries.jsonl, qrels/<split>.tsv."),
    split: str = typer.Option("test", help="qrels split (train, dev, test)."),
    mode: list[str] = typer.Option(["hybrid"], help="dense | bm25 | hybrid | hybrid+rerank (repeat for several)."),
    limit: Optional[int] = typer.Option(None, min=1, help="Only the first N queries (quick checks)."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per mode (one line each)."),
    config: Optional[Path] = ConfigOpt,
) -> None:
    """Ingest the corpus into a scratch collection (cached by corpus hash), run the split's
    queries, print the metrics."""
    from ingot.eval import beir as beir_format
    from ingot.eval.metrics import evaluate
    from ingot.eval.retrieval import MODES, ensure_corpus, report, run_queries, scratch_collection_name
    from ingot.bootstrap import running
    from ingot.kb.service import TextDocument

    for m in mode:
        if m not in MODES:
            fail(f"--mode must be one of {', '.join(MODES)}, not {m!r}")
    try:
        data = beir_format.load(beir, split)
    except beir_format.BeirError as exc:
        fail(str(exc))
    queries = dict(list(data.queries.items())[:limit]) if limit else data.queries
    qrels = {q: data.qrels[q] for q in queries}
    settings = settings_or_exit(config)
    collection = scratch_collection_name(data.corpus_sha256)
    corpus = [TextDocument(source=d.id, text=d.text, title=d.title) for d in data.corpus.values()]

    async def run() -> list[dict]:
        async with running(settings, chat=False) as services:
            kb = services.kb
            columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
            with Progress(*columns, console=err, transient=True) as progress:
                task = progress.add_task(f"indexing corpus into {collection}", total=len(corpus))
                await ensure_corpus(kb, collection, corpus, on_done=lambda *_: progress.advance(task))
            results = []
            for m in mode:
                with Progress(*columns, console=err, transient=True) as progress:
                    task = progress.add_task(f"{m}: queries", total=len(queries))
                    ran = await run_queries(kb, collection, queries, m, on_done=lambda: progress.advance(task))
                metrics = evaluate(ran.rankings, qrels).to_dict()
                queries_scored = metrics.pop("queries")
                results.append(report(m, split, metrics, ran, queries_scored, len(corpus)))
                if as_json:  # one line per mode as soon as it is known (long runs)
                    print(json.dumps(results[-1]), flush=True)
            return results

    results = run_or_exit(run())
    if as_json:
        return
    table = Table(title=f"{beir.name} ({split}, {len(queries)} queries, {len(corpus)} documents)")
    for column in ("mode", "nDCG@10", "recall@10", "recall@100", "MRR@10", "queries/s"):
        table.add_column(column, justify="right")
    for r in results:
        table.add_row(r["mode"], f"{r['ndcg_at_10']:.4f}", f"{r['recall_at_10']:.4f}", f"{r['recall_at_100']:.4f}",
                      f"{r['mrr_at_10']:.4f}", f"{r['queries_per_second']:.1f}")
    console.print(table)
