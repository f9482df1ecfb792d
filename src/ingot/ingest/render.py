"""Human-readable Markdown (and JSON) views of an extraction, for people debugging how
ingot sees their documents (``ingot extract``)."""

from __future__ import annotations

import json
from typing import Any

from ingot.ingest.runner import FileResult


def to_markdown(result: FileResult) -> str:
    lines = [f"# {result.filename}", ""]
    if not result.ok:
        return "\n".join(lines + [f"**error ({result.error_reason})**: {result.error}", ""])
    pages = f", {result.pages} pages" if result.pages is not None else ""
    lines += [f"<!-- format: {result.format}{pages}, sha256 {result.content_hash[:12]}, {len(result.elements)} elements, "
              f"{result.seconds:.2f} s -->", ""]
    current_page: int | None = None
    for element in result.elements:
        if element.page is not None and element.page != current_page:
            current_page = element.page
            lines += [f"<!-- {element.location or f'page {element.page}'} -->", ""]
        region = element.meta.get("region")
        if region in ("header", "footer"):
            # A page header/footer (DOCX) stays visible but outside the body text: one comment
            # line per line of it, so a line-wise "drop comments" filter drops all of it.
            lines += [f"<!-- {region}: {_comment_text(line)} -->" for line in element.text.splitlines() if line.strip()]
            lines.append("")
            continue
        if element.kind == "title":
            level = min(6, max(1, len(element.heading_path) or 1) + 1)
            lines.append(f"{'#' * level} {element.text}")
        elif element.kind == "notes":
            lines.append("> **Notes:** " + element.text.replace("\n", "\n> "))
        elif element.kind in ("chart", "image-text"):
            lines.append(f"<!-- {element.kind} -->")
            lines.append(element.text)
        else:
            lines.append(element.text)
        lines.append("")
    return "\n".join(lines)


def _comment_text(text: str) -> str:
    """Text safe inside an HTML comment: a "-->" in it would end the comment early."""
    return text.strip().replace("-->", "-- >")


def to_json(result: FileResult) -> dict[str, Any]:
    return {
        "filename": result.filename,
        "format": result.format,
        "size": result.size,
        "sha256": result.content_hash,
        "pages": result.pages,
        "seconds": round(result.seconds, 3),
        "error": None if result.ok else {"reason": result.error_reason, "message": result.error},
        "elements": [e.to_dict() for e in result.elements],
    }


def to_json_line(result: FileResult) -> str:
    return json.dumps(to_json(result), ensure_ascii=False)
