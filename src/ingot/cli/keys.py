"""``ingot keys create|list|revoke``: API keys, stored hashed in the data dir."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from ingot.cli.common import ConfigOpt, err, fail, settings_or_exit

keys_app = typer.Typer(help="API keys: who may call the server, with which groups and quotas.", no_args_is_help=True)
console = Console()

DataDirOpt = typer.Option(None, "--data-dir", help="State directory holding the key store (INGOT_DATA_DIR).")


def _key_store(config: Optional[Path], data_dir: Optional[Path]):  # noqa: ANN202
    from ingot.security.keys import KeyStore

    settings = settings_or_exit(config, data_dir=data_dir)
    return KeyStore(settings.data_dir, settings.database_url)


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
        fail(str(exc))
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
        fail(str(exc))
    err.print(f"revoked key [bold]{record.name}[/] (id {record.id})")
