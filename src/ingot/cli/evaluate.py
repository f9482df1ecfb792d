"""``ingot eval retrieval``: nDCG@10, recall@10/100, MRR@10 and queries/s of the real
retrieval pipeline on a BEIR-format dataset. ``ingot eval rag``: answer, citation and
refusal accuracy of RAG answers on a golden set (metrics in ``ingot.eval.rag``), asked in
this process or over HTTP."""

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


@eval_app.command("rag")
def rag(
    golden: Path = typer.Argument(..., help="Golden set: one JSON per line {question, doc, pages, answer_any, kind}."),
    collection: list[str] = typer.Option(..., "--collection", help="Collection(s) the documents were ingested into."),
    url: Optional[str] = typer.Option(None, help="Base URL of a running server (…/v1); default: answer in this process."),
    api_key: Optional[str] = typer.Option(None, envvar="INGOT_API_KEY", help="Bearer key for --url."),
    model: Optional[str] = typer.Option(None, help="Chat model (default INGOT_MODEL; with --url: the served one)."),
    top_k: Optional[int] = typer.Option(None, "--top-k", "-k", min=1, max=50, help="Passages (default INGOT_RAG_TOP_K)."),
    max_tokens: int = typer.Option(256, min=1, help="Answer length limit (as `ingot ask`)."),
    limit: Optional[int] = typer.Option(None, min=1, help="Only the first N questions (quick checks)."),
    sample: Optional[int] = typer.Option(None, min=1, help="N questions evenly spread over the set (slow models)."),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Write the JSON report (every answer) here."),
    html_path: Optional[Path] = typer.Option(None, "--html", help="Write an HTML report (tables, every answer) here."),
    retrieval_only: bool = typer.Option(
        False, "--retrieval-only",
        help="No answers: score the passages the answers would get (recall@k of the right doc+page, the "
             "evidence gate), in seconds; in this process only."),
    config: Optional[Path] = ConfigOpt,
) -> None:
    """Ask every golden question through the RAG service `ingot ask` uses and score the
    answers: fact found, right document+page cited, refusals, latency, per kind."""
    from ingot.eval.rag import GoldenError, load_golden, report, spread

    try:
        items = load_golden(golden)[:limit]
    except GoldenError as exc:
        fail(str(exc))
    if sample:
        items = spread(items, sample)
    body = {"max_tokens": max_tokens, **({"top_k": top_k} if top_k else {}),
            **({"model": model} if model else {})}
    if retrieval_only:
        if url:
            fail("--retrieval-only runs in this process: drop --url")
        if html_path is not None:
            fail("--retrieval-only writes no HTML report: use --json")
        settings = settings_or_exit(config, **({"model": model} if model else {}))
        out = run_or_exit(_retrieval_here(settings, collection, items, body))
        out.update({"golden": str(golden), "collections": collection, "top_k": top_k, "limit": limit, "sample": sample})
        _print_retrieval(out)
        if json_path is not None:
            _write_report(json_path, json.dumps(out, indent=2, ensure_ascii=False) + "\n")
        return
    if url:
        records, model_id = _rag_remote(url, api_key, collection, items, body)
    else:
        settings = settings_or_exit(config, **({"model": model} if model else {}))
        records, model_id = run_or_exit(_rag_here(settings, collection, items, body))
    out = report(records, {"golden": str(golden), "collections": collection, "model": model_id, "url": url,
                           "max_tokens": max_tokens, "top_k": top_k, "limit": limit, "sample": sample})
    _print_rag(out)
    if json_path is not None:
        _write_report(json_path, json.dumps(out, indent=2, ensure_ascii=False) + "\n")
    if html_path is not None:
        from ingot.eval.html_report import render_html

        _write_report(html_path, render_html(out))


def _write_report(path: Path, text: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        fail(f"cannot write {path}: {exc}")
    err.print(f"report written to {path}", markup=False, highlight=False)


def _rag_progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    TextColumn("{task.fields[last]}"), console=err, transient=True)


def _question_body(question: str, collections: list[str], body: dict) -> dict:
    return {"messages": [{"role": "user", "content": question}], "collections": collections, **body}


async def _rag_here(settings, collections: list[str], items: list, body: dict) -> tuple[list, str]:  # noqa: ANN001
    """In this process: the same RagService and response rendering as `ingot ask`."""
    from ingot.bootstrap import running
    from ingot.errors import ContextLengthError, InvalidRequestError
    from ingot.eval.rag import AskError, run
    from ingot.rag.protocol import RagChatRequest
    from ingot.server.openai.chat import chat_completion

    async with running(settings) as services:
        for name in collections:
            services.kb.collection(name)  # an unknown collection fails here, before any question
        rag = services.rag

        async def ask(item) -> dict:  # noqa: ANN001
            try:
                request = RagChatRequest.model_validate(_question_body(item.question, collections, body))
                return await chat_completion(await rag.ask(request, None))
            except (InvalidRequestError, ContextLengthError) as exc:  # this question only
                raise AskError(str(exc)) from exc

        with _rag_progress() as progress:
            task = progress.add_task("questions", total=len(items), last="")
            records = await run(items, ask, on_done=lambda r: progress.update(
                task, advance=1, last=f"last {r.seconds:.1f} s"))
        return records, services.generation.model_id


async def _retrieval_here(settings, collections: list[str], items: list, body: dict) -> dict:  # noqa: ANN001
    """The RAG path up to the prompt: rewrite, search, gate; no chat model call."""
    from ingot.bootstrap import running
    from ingot.eval import rag_retrieval
    from ingot.rag.protocol import RagChatRequest
    from ingot.rag.service import citation_dict

    async with running(settings) as services:
        for name in collections:
            services.kb.collection(name)
        rag = services.rag

        async def retrieve(item) -> tuple[list, bool]:  # noqa: ANN001
            request = RagChatRequest.model_validate(_question_body(item.question, collections, body))
            result, query, _ = await rag.retrieve(request, None)
            found = [{**citation_dict(i, p), "snippet": None, "text": p.record.text}
                     for i, p in enumerate(result.passages, start=1)]
            return found, rag.gate_open(result, query)

        with _rag_progress() as progress:
            task = progress.add_task("questions", total=len(items), last="")
            records = await rag_retrieval.run(items, retrieve, on_done=lambda r: progress.update(
                task, advance=1, last=f"last {r.seconds:.2f} s"))
        return rag_retrieval.report(records, {"min_score": rag.settings.min_score,
                                              "top_k_used": body.get("top_k", rag.settings.top_k)})


def _print_retrieval(out: dict) -> None:
    s = out["summary"]
    table = Table(title=f"RAG retrieval: {out['golden']} ({s['questions']} questions, top {out['top_k_used']})")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in (
        ("right doc+page at rank 1", _fraction(s["found_at_1"], s["answerable"])),
        ("right doc+page retrieved (recall@k)", _fraction(s["found"], s["answerable"])),
        ("MRR", f"{s['mrr'] or 0:.3f}"),
        ("answerable the gate refuses", _fraction(s["gate_closed_answerable"], s["answerable"])),
        ("reachable (gate open, right passage in)", _fraction(s["reachable"], s["answerable"])),
        ("unanswerable the gate refuses", _fraction(s["gate_closed_unanswerable"], s["unanswerable"])),
    ):
        table.add_row(name, value)
    console.print(table)
    kinds = Table(title="per kind")
    for column in ("kind", "n", "recall@1", "recall@k", "reachable", "gate refuses"):
        kinds.add_column(column, justify="right" if column != "kind" else "left")
    for kind, k in out["by_kind"].items():
        closed = k["gate_closed_unanswerable"] if not k["answerable"] else k["gate_closed_answerable"]
        kinds.add_row(kind, str(k["questions"]), _fraction(k["found_at_1"], k["answerable"]),
                      _fraction(k["found"], k["answerable"]), _fraction(k["reachable"], k["answerable"]),
                      str(closed))
    console.print(kinds)
    missed = [r for r in out["records"] if r["doc"] is not None and not r["reachable"]]
    for r in missed:
        why = "gate closed" if not r["gate_open"] else "right page not retrieved"
        console.print(f"  line {r['line']} ({r['kind']}): {why}: {r['question']}", markup=False, highlight=False)


def _rag_remote(url: str, api_key: Optional[str], collections: list[str], items: list,
                body: dict) -> tuple[list, str]:
    """Over HTTP against a running server: POST …/rag/chat/completions per question."""
    import asyncio

    import httpx

    from ingot.eval.rag import AskError, run

    base = url.rstrip("/")
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    served: list[str] = []

    async def go() -> list:
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=600) as client:
            for name in collections:
                _ok_or_fail(await client.get(f"/collections/{name}"))

            async def ask(item) -> dict:  # noqa: ANN001
                r = await client.post("/rag/chat/completions", json=_question_body(item.question, collections, body))
                if r.status_code in (400, 413, 422):  # this question only
                    raise AskError(_error_message(r))
                _ok_or_fail(r)
                answer = r.json()
                served[:] = [answer.get("model") or ""]
                return answer

            with _rag_progress() as progress:
                task = progress.add_task("questions", total=len(items), last="")
                return await run(items, ask, on_done=lambda rec: progress.update(
                    task, advance=1, last=f"last {rec.seconds:.1f} s"))

    try:
        records = asyncio.run(go())
    except httpx.HTTPError as exc:
        fail(f"cannot reach {url}: {exc}")
    return records, served[0] if served else ""


def _error_message(response) -> str:  # noqa: ANN001 - httpx.Response
    try:
        return str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return f"HTTP {response.status_code}: {response.text[:200]}"


def _ok_or_fail(response) -> None:  # noqa: ANN001 - httpx.Response
    if response.status_code >= 400:
        fail(_error_message(response))


def _fraction(hits: int, total: int) -> str:
    return f"{hits}/{total} ({hits / total:.0%})" if total else "-"


def _print_rag(out: dict) -> None:
    """The summary table, then one row per kind."""
    s = out["summary"]
    table = Table(title=f"RAG answers: {out['golden']} ({s['questions']} questions, model {out['model']})")
    table.add_column("metric")
    table.add_column("value", justify="right")
    rows = [
        ("answer + citation (answerable)", _fraction(s["correct_answerable"], s["answerable"])),
        ("answer accuracy", _fraction(s["answer_hits"], s["answerable"])),
        ("citation accuracy", _fraction(s["citation_hits"], s["answerable"])),
        ("  cited with an \\[n] marker", _fraction(s["marked_citation_hits"], s["answerable"])),
        ("refusal accuracy (all)", _fraction(s["refusal_hits"], s["questions"])),
        ("  unanswerable refused", _fraction(s["refused_unanswerable"], s["unanswerable"])),
        ("  answerable refused (false)", _fraction(s["refused_answerable"], s["answerable"])),
        ("errors", str(s["errors"])),
        ("latency p50 / p95", f"{s['latency_p50_s'] or 0:.2f} s / {s['latency_p95_s'] or 0:.2f} s"),
    ]
    for row in rows:
        table.add_row(*row)
    console.print(table)
    kinds = Table(title="per kind")
    for column in ("kind", "n", "answer", "citation", "answer+citation", "refusal", "p50 s"):
        kinds.add_column(column, justify="right" if column != "kind" else "left")
    for kind, k in out["by_kind"].items():
        kinds.add_row(kind, str(k["questions"]), _fraction(k["answer_hits"], k["answerable"]),
                      _fraction(k["citation_hits"], k["answerable"]),
                      _fraction(k["correct_answerable"], k["answerable"]),
                      _fraction(k["refusal_hits"], k["questions"]), f"{k['latency_p50_s'] or 0:.2f}")
    console.print(kinds)
