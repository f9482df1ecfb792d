"""What every ``ingot`` command shares: the error console, one-line failures (exit 2, no
traceback) and settings loading."""

from __future__ import annotations

from pathlib import Path
from typing import NoReturn, Optional

import typer
from rich.console import Console

from ingot.config import Settings, SettingsError, load_settings

err = Console(stderr=True)

ConfigOpt = typer.Option(None, "--config", "-c", help="YAML settings file (also INGOT_CONFIG).")


def fail(message: str) -> NoReturn:
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)  # one line, as promised
    raise typer.Exit(2)


def settings_or_exit(config: Optional[Path], **flags: object) -> Settings:
    try:
        return load_settings(config, **flags)
    except SettingsError as exc:
        fail(str(exc))
