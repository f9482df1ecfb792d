"""What every ``ingot`` command shares: the error console, one-line failures (exit 2, no
traceback) and settings loading."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Coroutine, NoReturn, Optional, TypeVar

import typer
from rich.console import Console

from ingot.config import Settings, SettingsError, load_settings
from ingot.errors import IngotError
from ingot.store.protocol import StoreError

T = TypeVar("T")

err = Console(stderr=True)

ConfigOpt = typer.Option(None, "--config", "-c", help="YAML settings file (also INGOT_CONFIG).")


def fail(message: str) -> NoReturn:
    """One line on stderr, exit 2. The message is printed as plain text: rich would wrap
    it at 80 columns when piped and read ``ingot[vllm]`` in it as markup."""
    err.print("[bold red]error:[/] ", end="")
    err.print(message, markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(2)


def settings_or_exit(config: Optional[Path], **flags: object) -> Settings:
    try:
        return load_settings(config, **flags)
    except SettingsError as exc:
        fail(str(exc))


def run_or_exit(work: Coroutine[Any, Any, T]) -> T:
    """Run a command's async work; what a user can cause (unknown model or collection, bad
    settings, a store refusing) ends in one line and exit 2 instead of a traceback."""
    try:
        return asyncio.run(work)
    except (IngotError, StoreError, SettingsError) as exc:
        fail(str(exc))
