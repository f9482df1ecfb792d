"""``ingot serve`` and ``ingot version``."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Optional

import typer

from ingot import __version__
from ingot.cli.common import ConfigOpt, err, fail, settings_or_exit
from ingot.config import Settings


def version() -> None:
    """Print ingot's version."""
    print(f"ingot {__version__}")


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
    ingest_workers: bool = typer.Option(
        True, "--ingest-workers/--no-ingest-workers",
        help="Ingest uploads in this process; --no-ingest-workers for an API-only replica next to `ingot worker` "
        "processes (INGOT_INGEST_WORKERS=0)."),
    config: Optional[Path] = ConfigOpt,
) -> None:
    """Start the OpenAI-compatible server."""
    from ingot.models.registry import UnknownModelError
    from ingot.server.app import build_app

    settings = settings_or_exit(
        config, host=host, port=port, model=model, embedding_model=embedding_model, ranking_model=ranking_model,
        threads=threads, parallel=parallel, max_queue=max_queue,
        context_length=context_length, batch_tokens=batch_tokens, model_precision=model_precision,
        model_profile=model_profile, data_dir=data_dir, log_level=log_level,
        **({} if ingest_workers else {"ingest_workers": 0}),
    )
    from ingot.cli.models import serve_precheck

    serve_precheck(settings)
    from ingot.logging_setup import setup_logging

    setup_logging(settings.log_level, settings.log_format)
    try:
        application = build_app(settings)
    except UnknownModelError as exc:
        fail(str(exc))
    err.print(f"ingot {__version__} on http://{settings.host}:{settings.port}/v1 - chat: [bold]{_chat_label(settings)}[/], "
              f"embeddings: [bold]{settings.embedding_model}[/], ranking: [bold]{settings.ranking_model}[/]")
    run_uvicorn(application, settings, host=settings.host, port=settings.port)


def _chat_label(settings: Settings) -> str:
    """The chat model as configured, and what ``auto`` chose on this machine."""
    from ingot.models.registry import AUTO, default_chat_model

    if settings.model.strip().lower() != AUTO:
        return settings.model
    return f"{default_chat_model(settings.models_dir()).id} (auto)"


def run_uvicorn(application: object, settings: Settings, *, host: str, port: int) -> None:
    """Serve ``application`` until SIGINT/SIGTERM (the server's and the worker's way)."""
    import uvicorn

    # ingot's own access log (with request id and key) replaces uvicorn's; log_config=None
    # keeps uvicorn from replacing the handlers set up by setup_logging.
    server = uvicorn.Server(uvicorn.Config(application, host=host, port=port,
                                           log_level=settings.log_level, timeout_graceful_shutdown=5,
                                           access_log=False, log_config=None))
    # Our own runner rather than uvicorn.run, which forces the loop's debug mode off on
    # Python 3.11: here PYTHONASYNCIODEBUG=1 turns on asyncio's checks (a loop object touched
    # from a worker thread raises), as tests/test_asyncio_debug.py relies on.
    with contextlib.suppress(KeyboardInterrupt), asyncio.Runner(loop_factory=server.config.get_loop_factory()) as runner:
        runner.run(server.serve())
    if not server.started:
        raise typer.Exit(3)  # uvicorn's STARTUP_FAILURE: the port was taken, or the app failed to start
