"""The web page: ``/`` serves the single-page app, ``/ui/*`` its static files.

Plain files shipped inside the package (``ingot/ui``), no build step and no CDN, so the
page works on an offline server. The page itself needs no API key (it holds no data); it
sends the key the user enters with every API call. Kept out of the OpenAPI schema: these
are not API routes.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from ingot.server.errors import APIError

UI_DIR = Path(__file__).resolve().parent.parent.parent / "ui"

_MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
}

# The page builds every element from text nodes; this policy is the second line of
# defence: no inline script, nothing loaded from another origin.
_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # Small files that change with every release: revalidate rather than serve a stale app.
    "Cache-Control": "no-cache",
}

router = APIRouter(include_in_schema=False)


def _file(name: str) -> FileResponse:
    """One file of the UI folder; anything else (missing, a folder, ``..``) is a 404."""
    root = UI_DIR.resolve()
    path = (root / name).resolve()
    if root not in path.parents or not path.is_file() or path.suffix not in _MEDIA_TYPES:
        raise APIError(404, f"no such UI file: {name}", type="not_found_error", code="not_found")
    return FileResponse(path, media_type=_MEDIA_TYPES[path.suffix], headers=_HEADERS)


@router.get("/")
async def index() -> FileResponse:
    return _file("index.html")


@router.get("/ui/{name:path}")
async def static(name: str) -> FileResponse:
    return _file(name)
