"""``ingot worker``: a process that only ingests, next to API-only ``ingot serve`` replicas.

It shares the replicas' database (``INGOT_DATABASE_URL``), spool (``INGOT_SPOOL_DIR``) and
vector store, claims upload items from the job table and serves nothing but health and
metrics (``server/worker.py``). On one node ``ingot serve`` keeps ingesting by itself and
no worker is needed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ingot import __version__
from ingot.cli.common import ConfigOpt, err, fail, settings_or_exit

DEFAULT_PORT = 8001  # not INGOT_PORT: a worker next to a server on one machine must not collide


def worker(
    host: Optional[str] = typer.Option(None, help="Interface for health and metrics (INGOT_HOST)."),
    port: int = typer.Option(DEFAULT_PORT, help="Port for health and metrics."),
    workers: Optional[int] = typer.Option(None, help="Documents ingested at once (INGOT_INGEST_WORKERS)."),
    data_dir: Optional[Path] = typer.Option(None, help="State directory (INGOT_DATA_DIR)."),
    log_level: Optional[str] = typer.Option(None, help="debug|info|warning|error (INGOT_LOG_LEVEL)."),
    config: Optional[Path] = ConfigOpt,
) -> None:
    """Ingest uploaded documents from the shared job queue (no API; health and metrics only)."""
    from ingot.cli.serve import run_uvicorn
    from ingot.config import SettingsError
    from ingot.logging_setup import setup_logging
    from ingot.models.registry import UnknownModelError
    from ingot.server.worker import build_worker_app

    settings = settings_or_exit(config, host=host, ingest_workers=workers, data_dir=data_dir, log_level=log_level)
    setup_logging(settings.log_level, settings.log_format)
    try:
        application = build_worker_app(settings)
    except (UnknownModelError, SettingsError) as exc:
        fail(str(exc))
    where = "shared database" if settings.database_url else f"{settings.data_dir} (SQLite)"
    err.print(f"ingot {__version__} worker: {settings.ingest_workers} ingestion worker(s) on {where}; "
              f"health and metrics on http://{settings.host}:{port}")
    run_uvicorn(application, settings, host=settings.host, port=port)
