"""One error shape (OpenAI's envelope) and one place that maps exceptions to statuses.

Every client mistake gets a 4xx with a message that names the parameter; a 500 means a
bug in ingot, never bad input.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ingot.errors import IngotError

log = logging.getLogger("ingot.server")


class APIError(IngotError):
    """An error raised by the HTTP layer itself with an explicit status (auth, uploads)."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message, param, code=code)
        self.status = status
        self.type = type
        self._headers = headers or {}

    @classmethod
    def of(cls, exc: IngotError) -> "APIError":
        return cls(exc.status, str(exc), type=exc.type, param=exc.param, code=exc.code, headers=exc.headers())

    def headers(self) -> dict[str, str]:
        return self._headers

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers())


def to_api_error(exc: BaseException) -> APIError:
    """Map any exception raised while serving a request to an APIError: every client error
    is an ``IngotError`` that knows its status; anything else is a bug (500, logged)."""
    if isinstance(exc, APIError):
        return exc
    if isinstance(exc, IngotError):
        return APIError.of(exc)
    log.exception("unhandled error while serving a request", exc_info=exc)
    return APIError(500, "internal server error; see the server log", type="server_error")


def _describe_validation(exc: RequestValidationError) -> APIError:
    errors = exc.errors()
    if not errors:
        return APIError(400, "invalid request")
    first = errors[0]
    loc = [str(p) for p in first.get("loc", ()) if p != "body"]
    # Drop pydantic's union-branch names ("str", "list[int]") from the location.
    loc = [p for p in loc if not any(ch in p for ch in "[]") and p not in ("str", "int", "function-after")]
    param = ".".join(loc) or None
    if first.get("type") == "json_invalid":
        return APIError(400, "the request body is not valid JSON")
    if first.get("type") == "missing":
        return APIError(400, f"'{param}' is a required property", param=param)
    message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
    return APIError(400, f"invalid value for '{param}': {message}{more}" if param else message + more, param=param)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(APIError)
    async def _api(_: Request, exc: APIError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return _describe_validation(exc).response()

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
        return APIError(exc.status_code, str(exc.detail), type=kind, headers=dict(exc.headers or {})).response()

    async def _mapped(_: Request, exc: Exception) -> JSONResponse:
        return to_api_error(exc).response()

    # Known request errors get their own handlers: Starlette routes a bare ``Exception``
    # handler through ServerErrorMiddleware, which re-raises and resets the keep-alive
    # connection that SDK clients reuse.
    app.add_exception_handler(IngotError, _mapped)
    app.add_exception_handler(Exception, _mapped)
