"""The ``ingot`` command line: serve, models, chat, version.

Errors a user can cause (bad flag, unknown model, unreachable server) end with a one-line
message and exit code 2, never a traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from ingot import __version__

app = typer.Typer(help="ingot: OpenAI-compatible model serving and RAG, offline-first.", no_args_is_help=True)
models_app = typer.Typer(help="Models ingot knows and has locally.", no_args_is_help=True)
app.add_typer(models_app, name="models")
keys_app = typer.Typer(help="API keys: who may call the server, with which groups and quotas.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")

console = Console()
# Shared with the other command modules (cli_kb.py ...): one-line errors, settings.
from ingot.cli_common import ConfigOpt, err  # noqa: E402
from ingot.cli_common import fail as _fail  # noqa: E402
from ingot.cli_common import settings_or_exit as _settings  # noqa: E402


@app.command()
def version() -> None:
    """Print ingot's version."""
    print(f"ingot {__version__}")


@app.command()
def serve(
    host: Optional[str] = typer.Option(None, help="Interface to bind (INGOT_HOST)."),
    port: Optional[int] = typer.Option(None, help="Port (INGOT_PORT)."),
    model: Optional[str] = typer.Option(None, help="Chat model id, alias, .gguf path or 'none' (INGOT_MODEL)."),
    embedding_model: Optional[str] = typer.Option(
        None, help="Embedding model id, folder or 'none' (INGOT_EMBEDDING_MODEL)."),
    ranking_model: Optional[str] = typer.Option(
        None, help="'embedding', a cross-encoder folder, or 'none' (INGOT_RANKING_MODEL)."),
    threads: Optional[int] = typer.Option(None, help="llama.cpp threads (INGOT_THREADS)."),
    parallel: Optional[int] = typer.Option(None, help="Sequences decoded together (INGOT_PARALLEL)."),
    max_queue: Optional[int] = typer.Option(None, help="Waiting requests before 429 (INGOT_MAX_QUEUE)."),
    context_length: Optional[int] = typer.Option(None, help="Context tokens per sequence (INGOT_CONTEXT_LENGTH)."),
    batch_tokens: Optional[int] = typer.Option(None, help="Tokens per decode step (INGOT_BATCH_TOKENS)."),
    model_precision: Optional[str] = typer.Option(
        None, help="auto | source | q8_0 | q4_0 ... (INGOT_MODEL_PRECISION)."),
    model_profile: Optional[str] = typer.Option(
        None, help="auto | latency | throughput | a profile id from `ingot profiles` (INGOT_MODEL_PROFILE)."),
    data_dir: Optional[Path] = typer.Option(None, help="State directory (INGOT_DATA_DIR)."),
    log_level: Optional[str] = typer.Option(None, help="debug|info|warning|error (INGOT_LOG_LEVEL)."),
    config: Optional[Path] = ConfigOpt,
) -> None:
    """Start the OpenAI-compatible server."""
    import uvicorn

    from ingot.models.registry import UnknownModelError
    from ingot.server.app import build_app

    settings = _settings(
        config, host=host, port=port, model=model, embedding_model=embedding_model, ranking_model=ranking_model,
        threads=threads, parallel=parallel, max_queue=max_queue,
        context_length=context_length, batch_tokens=batch_tokens, model_precision=model_precision,
        model_profile=model_profile, data_dir=data_dir, log_level=log_level,
    )
    from ingot.cli_models import serve_precheck

    serve_precheck(settings)
    from ingot.logging_setup import setup_logging

    setup_logging(settings.log_level, settings.log_format)
    try:
        application = build_app(settings)
    except UnknownModelError as exc:
        _fail(str(exc.args[0]))
    err.print(f"ingot {__version__} on http://{settings.host}:{settings.port}/v1 - chat: [bold]{settings.model}[/], "
              f"embeddings: [bold]{settings.embedding_model}[/], ranking: [bold]{settings.ranking_model}[/]")
    # ingot's own access log (with request id and key) replaces uvicorn's; log_config=None
    # keeps uvicorn from replacing the handlers set up above.
    uvicorn.run(application, host=settings.host, port=settings.port, log_level=settings.log_level,
                timeout_graceful_shutdown=5, access_log=False, log_config=None)


@models_app.command("list")
def models_list(as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """List the catalog and whether each model's files are on this machine."""
    import json

    from ingot.models.registry import CATALOG

    rows = [
        {
            "id": spec.id,
            "kind": spec.kind,
            "available": spec.source.available(),
            "context_length": spec.context_length,
            "license": spec.license,
            "install": spec.source.install_hint(),
            "description": spec.description,
        }
        for spec in CATALOG
    ]
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table(title="ingot models")
    for column in ("id", "kind", "available", "context", "install"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row["id"], row["kind"], "yes" if row["available"] else "no", str(row["context_length"]), row["install"]
        )
    console.print(table)


@app.command()
def extract(
    files: list[Path] = typer.Argument(..., help="Files to extract (PDF, DOCX, PPTX, XLSX/CSV, HTML, Markdown, text, images)."),
    output_format: str = typer.Option("markdown", "--format", "-f", help="markdown | json (one JSON object per line)."),
    timeout: float = typer.Option(120.0, help="Seconds allowed per file before it is stopped."),
    ocr: bool = typer.Option(True, help="OCR scanned pages and images."),
    password: Optional[str] = typer.Option(None, help="Password for encrypted PDFs."),
) -> None:
    """Show what ingot extracts from documents: elements with page/slide/sheet, headings and tables."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from ingot.ingest.elements import ExtractOptions
    from ingot.ingest.render import to_json_line, to_markdown
    from ingot.ingest.runner import extract_paths

    if output_format not in ("markdown", "json"):
        _fail(f"--format must be markdown or json, not {output_format!r}")

    def options(path: Path) -> ExtractOptions:
        return ExtractOptions(filename=path.name, password=password, ocr=ocr)

    failures = 0
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err, transient=True, disable=len(files) < 2) as progress:
        task = progress.add_task("extracting", total=len(files))
        for result in extract_paths(files, options, timeout_s=timeout):
            progress.update(task, advance=1, description=f"extracting {result.filename}")
            if not result.ok:
                failures += 1
                err.print(f"[bold red]{result.filename}:[/] {result.error_reason}: {result.error}")
            print(to_json_line(result) if output_format == "json" else to_markdown(result), flush=True)
    if failures:
        raise typer.Exit(1)


@app.command()
def chat(
    url: Optional[str] = typer.Option(None, help="Base URL of a running server, e.g. http://127.0.0.1:8000/v1. "
                                                   "Without it the model runs in this process."),
    model: Optional[str] = typer.Option(None, help="Model id (default: the server's / settings' model)."),
    system: Optional[str] = typer.Option(None, help="System prompt."),
    max_tokens: int = typer.Option(512, help="Reply length limit."),
    temperature: float = typer.Option(0.7),
    config: Optional[Path] = ConfigOpt,
) -> None:
    """Chat in the terminal, streaming replies. Empty line or Ctrl-D quits."""
    from ingot.chat_repl import run_chat

    settings = _settings(config, model=model)
    try:
        run_chat(settings, url=url, model=model, system=system, max_tokens=max_tokens, temperature=temperature)
    except ConnectionError as exc:
        _fail(str(exc))


DataDirOpt = typer.Option(None, "--data-dir", help="State directory holding the key store (INGOT_DATA_DIR).")


def _key_store(config: Optional[Path], data_dir: Optional[Path]):  # noqa: ANN202
    from ingot.security.keys import KeyStore

    return KeyStore(_settings(config, data_dir=data_dir).data_dir)


@keys_app.command("create")
def keys_create(
    name: str = typer.Option(..., "--name", help="Unique name of the key (a tenant, an app)."),
    groups: str = typer.Option("", "--groups", help="Comma-separated ACL groups whose documents it may read."),
    rpm: Optional[int] = typer.Option(None, "--rpm", help="Requests per minute (default: unlimited)."),
    tpm: Optional[int] = typer.Option(None, "--tpm", help="Tokens per minute (default: unlimited)."),
    admin: bool = typer.Option(False, "--admin", help="May manage keys and delete collections; reads everything."),
    as_json: bool = typer.Option(False, "--json", help="Print the key and its record as JSON."),
    data_dir: Optional[Path] = DataDirOpt,
    config: Optional[Path] = ConfigOpt,
) -> None:
    """Create a key and print it once: only its hash is stored."""
    import json

    from ingot.security.keys import KeyStoreError

    store = _key_store(config, data_dir)
    try:
        record, plaintext = store.create(name, groups=[g for g in groups.split(",") if g.strip()], admin=admin,
                                         rpm=rpm, tpm=tpm)
    except KeyStoreError as exc:
        _fail(str(exc))
    if as_json:
        print(json.dumps({**record.public(), "key": plaintext}))
        return
    print(plaintext)
    err.print(f"created key [bold]{record.name}[/] (id {record.id}); it is shown only now, store it safely")


@keys_app.command("list")
def keys_list(
    show_revoked: bool = typer.Option(False, "--all", help="Include revoked keys."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    data_dir: Optional[Path] = DataDirOpt,
    config: Optional[Path] = ConfigOpt,
) -> None:
    """List keys (never their secrets)."""
    import json

    rows = [k.public() for k in _key_store(config, data_dir).list(include_revoked=show_revoked)]
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table(title="ingot API keys")
    for column in ("id", "name", "groups", "admin", "rpm", "tpm", "revoked"):
        table.add_column(column)
    for r in rows:
        table.add_row(r["id"], r["name"], ",".join(r["groups"]) or "-", "yes" if r["admin"] else "no",
                      str(r["rpm"] or "-"), str(r["tpm"] or "-"), "yes" if r["revoked_at"] else "no")
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(
    key: str = typer.Argument(..., help="Key id or name."),
    data_dir: Optional[Path] = DataDirOpt,
    config: Optional[Path] = ConfigOpt,
) -> None:
    """Revoke a key; a running server refuses it from its next request."""
    from ingot.security.keys import KeyStoreError

    try:
        record = _key_store(config, data_dir).revoke(key)
    except KeyStoreError as exc:
        _fail(str(exc))
    err.print(f"revoked key [bold]{record.name}[/] (id {record.id})")


def _register_knowledge_base_commands() -> None:
    from ingot import cli_kb

    app.command("ingest")(cli_kb.ingest)
    app.command("search")(cli_kb.search)
    app.command("ask")(cli_kb.ask)
    from ingot.cli_eval import eval_app

    app.add_typer(eval_app, name="eval")


_register_knowledge_base_commands()


def _register_model_commands() -> None:
    from ingot import cli_models

    app.command("profiles")(cli_models.profiles)
    models_app.command("pull")(cli_models.models_pull)
    models_app.command("verify")(cli_models.models_verify)


_register_model_commands()


def main() -> None:  # pragma: no cover - console-script shim
    app()


if __name__ == "__main__":  # pragma: no cover
    app()
