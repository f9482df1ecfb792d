"""``ingot ingest`` and ``ingot search``: the knowledge base from the terminal, in this
process (same pipeline, store and retrieval as the server; no server needed)."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections import Counter
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from ingot.cli.common import ConfigOpt, err, fail, run_or_exit, settings_or_exit

console = Console()

STAGES = ("extract", "chunk", "embed", "store")


def collect_files(paths: list[Path], extensions: tuple[str, ...]) -> tuple[list[tuple[str, Path]], list[Path]]:
    """(source name, absolute path) for every file to ingest, and the directory roots
    (for --sync). A directory's files are named ``<dir name>/<relative path>`` so the same
    folder gives the same document ids from any working directory; hidden files are skipped."""
    files: list[tuple[str, Path]] = []
    roots: list[Path] = []
    for path in paths:
        path = path.expanduser().absolute()
        if path.is_dir():
            roots.append(path)
            for dirpath, dirnames, filenames in os.walk(path):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                for name in sorted(filenames):
                    full = Path(dirpath) / name
                    if name.startswith(".") or full.suffix.lower().lstrip(".") not in extensions:
                        continue
                    files.append((f"{path.name}/{full.relative_to(path).as_posix()}", full))
        elif path.is_file():
            files.append((path.name, path))
        else:
            fail(f"no such file or directory: {path}")
    return files, roots


def ingest(
    paths: list[Path] = typer.Argument(..., help="Files or folders (searched recursively)."),
    collection: str = typer.Option(..., "--collection", help="Collection name (created if absent)."),
    sync: bool = typer.Option(False, "--sync", help="Remove documents whose source file under the given folders is gone."),
    acl: Optional[str] = typer.Option(None, help="Comma-separated ACL groups for these documents."),
    as_json: bool = typer.Option(False, "--json", help="Print the job as JSON instead of a summary."),
    url: Optional[str] = typer.Option(None, help="Upload to a running server (…/v1) instead of ingesting in this "
                                                   "process (needed for Milvus Lite, which one process locks)."),
    api_key: Optional[str] = typer.Option(None, envvar="INGOT_API_KEY", help="Bearer key for --url."),
    config: Optional[Path] = ConfigOpt,
) -> None:
    """Ingest documents into a collection: added, replaced when changed, skipped when unchanged."""
    from ingot.bootstrap import running
    from ingot.errors import IngotError
    from ingot.kb.jobs import SourceFile
    from ingot.kb.service import job_dict
    from ingot.security.acl import acl_groups

    settings = settings_or_exit(config)
    try:
        groups = acl_groups(acl)
    except IngotError as exc:
        fail(str(exc))
    files, roots = collect_files(paths, settings.upload_extensions)
    if not files and not sync:
        fail("no files to ingest (supported: " + ", ".join(settings.upload_extensions) + ")")
    if url:
        if sync:
            fail("--sync works on this machine's files only; run it without --url")
        job = _ingest_remote(url, api_key, collection, files, acl)
        print(json.dumps(job, indent=2)) if as_json else _summary(job, [])
        if job["progress"]["failed"]:
            raise typer.Exit(1)
        return

    async def run() -> tuple[dict, list]:
        async with running(settings, chat=False) as services:
            kb = services.kb
            kb.ensure_collection(collection)
            progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                TimeElapsedColumn(), console=err, transient=True)
            with progress:
                overall = progress.add_task(f"documents ({collection})", total=len(files))
                job = await kb.submit_paths(collection, [SourceFile(s, p, str(p)) for s, p in files], groups)
                per_file: dict[str, TaskID] = {}
                waiter = asyncio.ensure_future(kb.jobs.wait(job.id))
                while not waiter.done():
                    _show(progress, overall, per_file, job_dict(kb.job(job.id))["documents"])
                    await asyncio.wait([waiter], timeout=0.2)
                _show(progress, overall, per_file, job_dict(kb.job(job.id))["documents"])
            removed = kb.sync(collection, roots, {str(p) for _, p in files}) if sync else []
            return job_dict(kb.job(job.id)), removed

    job, removed = run_or_exit(run())
    if as_json:
        print(json.dumps({**job, "removed": [r.source for r in removed]}, indent=2))
    else:
        _summary(job, removed)
    if job["progress"]["failed"]:
        raise typer.Exit(1)


def _show(progress: Progress, overall: TaskID, per_file: dict[str, TaskID], documents: list[dict]) -> None:
    """Overall bar, plus one bar per running file that advances through the stages
    (``documents``: the job objects' per-file entries, as the API returns them)."""
    finished = sum(1 for d in documents if d["status"] in ("done", "failed"))
    progress.update(overall, completed=finished)
    for i, doc in enumerate(documents):
        key = f"{i}:{doc['filename']}"
        task = per_file.get(key)
        if doc["status"] == "running" and task is None:
            task = per_file[key] = progress.add_task(f"  {doc['filename']}", total=len(STAGES))
        if task is None:
            continue
        if doc["status"] in ("done", "failed"):
            progress.remove_task(task)
            del per_file[key]
        elif doc["stage"] in STAGES:
            progress.update(task, completed=STAGES.index(doc["stage"]), description=f"  {doc['filename']} [{doc['stage']}]")


UPLOAD_BATCH = 16  # files per multipart request


def _ingest_remote(url: str, api_key: Optional[str], collection: str, files: list[tuple[str, Path]],
                   acl: Optional[str]) -> dict:
    """Upload through the server's API (the server names documents by file name) and follow
    the jobs; returns one job-shaped summary of all of them."""
    import httpx

    client = httpx.Client(base_url=url.rstrip("/"), timeout=300,
                          headers={"Authorization": f"Bearer {api_key}"} if api_key else {})

    try:
        created = client.post("/collections", json={"name": collection})
        if created.status_code != 409:
            _json_or_fail(created)
        started = time.time()
        job_ids = []
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=err, transient=True) as progress:
            overall = progress.add_task(f"documents ({collection})", total=len(files))
            for start in range(0, len(files), UPLOAD_BATCH):
                batch = files[start:start + UPLOAD_BATCH]
                handles = [path.open("rb") for _, path in batch]
                try:
                    parts = [("files", (path.name, fh)) for (_, path), fh in zip(batch, handles)]
                    job_ids.append(_json_or_fail(client.post(f"/collections/{collection}/documents", files=parts,
                                                       data={"acl": acl} if acl is not None else None))["id"])
                finally:
                    for fh in handles:
                        fh.close()
            per_file: dict[str, TaskID] = {}
            while True:
                jobs = [_json_or_fail(client.get(f"/jobs/{job_id}")) for job_id in job_ids]
                documents = [d for j in jobs for d in j["documents"]]
                _show(progress, overall, per_file, documents)
                if all(j["status"] == "done" for j in jobs):
                    break
                time.sleep(0.5)
    except httpx.HTTPError as exc:
        fail(f"cannot reach {url}: {exc}")
    return {
        "object": "ingest.jobs", "ids": job_ids, "collection": collection, "status": "done",
        "created_at": int(started), "finished_at": int(time.time()), "documents": documents,
        "progress": {"total": len(documents), "finished": len(documents),
                     "failed": sum(1 for d in documents if d["status"] == "failed")},
    }


def _summary(job: dict, removed: list) -> None:  # noqa: ANN001
    counts = Counter(d["action"] or d["status"] for d in job["documents"])
    for doc in job["documents"]:
        if doc["status"] == "failed":
            err.print(f"[bold red]{doc['filename']}:[/] {doc['error']['reason']}: {doc['error']['message']}")
    parts = [f"{counts.get(k, 0)} {k}" for k in ("added", "replaced", "unchanged", "failed")]
    if removed:
        parts.append(f"{len(removed)} removed")
    seconds = (job["finished_at"] or time.time()) - job["created_at"] if job["created_at"] else 0
    console.print(f"{job['collection']}: " + ", ".join(parts) + f" ({len(job['documents'])} files, {seconds:.0f} s)")


def search(
    query: str = typer.Argument(..., help="What to look for."),
    collection: list[str] = typer.Option(..., "--collection", help="Collection(s) to search."),
    top_k: int = typer.Option(5, "--top-k", "-k", min=1, max=100),
    mode: str = typer.Option("hybrid", help="hybrid | dense | bm25"),
    rerank: Optional[bool] = typer.Option(None, "--rerank/--no-rerank", help="Default: INGOT_SEARCH_RERANK."),
    as_json: bool = typer.Option(False, "--json"),
    config: Optional[Path] = ConfigOpt,
) -> None:
    """Search collections and print the best passages with their source and page."""
    from ingot.bootstrap import running

    if mode not in ("hybrid", "dense", "bm25"):
        fail(f"--mode must be hybrid, dense or bm25, not {mode!r}")
    if not query.strip():
        fail("the query is empty")
    settings = settings_or_exit(config)

    async def run():  # noqa: ANN202
        async with running(settings, chat=False) as services:
            return await services.kb.retrieval.search(collection, query, top_k=top_k, mode=mode,  # type: ignore[union-attr]
                                                      rerank=rerank)  # type: ignore[arg-type]

    result = run_or_exit(run())
    rows = [p.to_dict(i) for i, p in enumerate(result.passages, start=1)]
    if as_json:
        print(json.dumps({"object": "search.result", "query": query, "mode": mode, "reranked": result.reranked,
                          "data": rows}, indent=2))
        return
    if not rows:
        console.print("no passages found")
        return
    table = Table(show_lines=True)
    for column in ("#", "score", "source", "page", "text"):
        table.add_column(column, overflow="fold")
    for row in rows:
        page = _pages(row["page_start"], row["page_end"]) or (row["location"] or "")
        text = row["text"] if len(row["text"]) <= 300 else row["text"][:300] + "..."
        table.add_row(str(row["rank"]), f"{row['score']:.4f}", row["source"], page, text)
    console.print(table)


def _pages(start: int | None, end: int | None) -> str:
    if start is None:
        return ""
    return str(start) if end in (None, start) else f"{start}-{end}"


def ask(
    question: str = typer.Argument(..., help="The question."),
    collection: list[str] = typer.Option(..., "--collection", help="Collection(s) to answer from."),
    url: Optional[str] = typer.Option(None, help="Base URL of a running server (…/v1); default: answer in this process."),
    api_key: Optional[str] = typer.Option(None, envvar="INGOT_API_KEY", help="Bearer key for --url."),
    top_k: Optional[int] = typer.Option(None, "--top-k", "-k", min=1, max=50, help="Passages (default INGOT_RAG_TOP_K)."),
    max_tokens: int = typer.Option(256, help="Answer length limit."),
    as_json: bool = typer.Option(False, "--json", help="Print the API response."),
    config: Optional[Path] = ConfigOpt,
) -> None:
    """Answer a question from your documents, with the sources (file, page) it used."""
    if not question.strip():
        fail("the question is empty")
    body = {"messages": [{"role": "user", "content": question}], "collections": collection, "max_tokens": max_tokens,
            **({"top_k": top_k} if top_k else {})}
    if url:
        response = _ask_remote(url, api_key, body)
    else:
        response = _ask_here(settings_or_exit(config), body)
    if as_json:
        print(json.dumps(response, indent=2))
        return
    console.print(response["choices"][0]["message"]["content"].strip(), highlight=False)
    if response.get("citations"):
        console.print("\n[bold]Sources[/]")
        for c in response["citations"]:
            where = _pages(c["page_start"], c["page_end"]) or (c["location"] or "")
            console.print(f"  [{c['index']}] {c['source']}" + (f", page {where}" if where else ""), highlight=False)


def _ask_remote(url: str, api_key: Optional[str], body: dict) -> dict:
    import httpx

    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        r = httpx.post(url.rstrip("/") + "/rag/chat/completions", json=body, headers=headers, timeout=300)
    except httpx.HTTPError as exc:
        fail(f"cannot reach {url}: {exc}")
    return _json_or_fail(r)


def _json_or_fail(response) -> dict:  # noqa: ANN001 - httpx.Response (imported lazily)
    """The response's JSON, or a one-line exit with the server's error message."""
    if response.status_code >= 400:
        try:
            fail(response.json()["error"]["message"])
        except (ValueError, KeyError, TypeError):
            fail(f"HTTP {response.status_code}: {response.text[:200]}")
    return response.json()


def _ask_here(settings, body: dict) -> dict:  # noqa: ANN001
    """Load the chat model and the knowledge base in this process and answer once, as the
    server's route would (the same service, the same response shape)."""
    from ingot.bootstrap import running
    from ingot.rag.protocol import RagChatRequest
    from ingot.server.openai.chat import chat_completion

    request = RagChatRequest.model_validate(body)

    async def run() -> dict:
        async with running(settings) as services:
            return await chat_completion(await services.rag.ask(request, None))  # type: ignore[union-attr]

    return run_or_exit(run())
