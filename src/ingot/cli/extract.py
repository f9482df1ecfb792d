"""``ingot extract``: what ingot reads from documents, for debugging ingestion."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ingot.cli.common import err, fail


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
        fail(f"--format must be markdown or json, not {output_format!r}")

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
