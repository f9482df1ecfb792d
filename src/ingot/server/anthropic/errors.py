"""Anthropic's error body: ``{"type": "error", "error": {"type": ..., "message": ...}}``.

The kind is read from the HTTP status (the statuses are the ones every ingot route uses),
so one mapping serves handler errors, validation errors and the middlewares' 401/413/429.
No imports from the server: ``server/errors.py`` calls this.
"""

from __future__ import annotations

from typing import Any

# https://docs.anthropic.com/en/api/errors
_KINDS = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    503: "overloaded_error",  # a model still loading: retry shortly, as after Anthropic's 529
    529: "overloaded_error",
}


def error_type(status: int) -> str:
    if status in _KINDS:
        return _KINDS[status]
    return "api_error" if status >= 500 else "invalid_request_error"


def error_body(status: int, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": error_type(status), "message": message}}
