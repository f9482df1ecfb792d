"""One place that maps exceptions to statuses, and the error shape each path speaks:
OpenAI's envelope, except under the prefixes in ``ERROR_SHAPES`` (Anthropic's
``/v1/messages``), whose SDKs parse a body of their own. Handlers and middlewares pass the
request path to ``APIError.response``/``body``, so validation errors, 401/413/429 and 500s
all come in the caller's shape.

Every client mistake gets a 4xx with a message that names the parameter; a 500 means a
bug in ingot, never bad input.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from ingot.errors import IngotError
from ingot.kb.errors import storage_error, storage_problem
from ingot.server.anthropic.errors import error_body as anthropic_error_body

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

    def body(self, path: str = "") -> dict[str, Any]:
        """The error body for a request to ``path`` (OpenAI's envelope unless ``ERROR_SHAPES`` says otherwise)."""
        for prefix, render in ERROR_SHAPES.items():
            if path == prefix or path.startswith(prefix + "/"):
                return render(self)
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    def response(self, path: str = "") -> JSONResponse:
        return JSONResponse(self.body(path), status_code=self.status, headers=self.headers())


# Path prefix -> error body, for the wire protocols whose clients expect their own shape.
ERROR_SHAPES: dict[str, Callable[[APIError], dict[str, Any]]] = {
    "/v1/messages": lambda error: anthropic_error_body(error.status, error.message),
}


def to_api_error(exc: BaseException) -> APIError:
    """Map any exception raised while serving a request to an APIError: every client error
    is an ``IngotError`` that knows its status; anything else is a bug (500, logged)."""
    if isinstance(exc, APIError):
        return exc
    if isinstance(exc, IngotError):
        return APIError.of(exc)
    if isinstance(exc, (OperationalError, InterfaceError)):
        # the state database refused or is out of reach: the request may succeed once it is back
        problem = storage_problem(exc)
        if problem is not None:
            return APIError.of(storage_error(problem))
        log.error("state database unavailable: %s", exc)
        return APIError(503, "the server's state database is unavailable; retry shortly", type="service_unavailable",
                        code="state_unavailable")
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
    async def _api(request: Request, exc: APIError) -> JSONResponse:
        return exc.response(request.scope["path"])

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _describe_validation(exc).response(request.scope["path"])

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
        error = APIError(exc.status_code, str(exc.detail), type=kind, headers=dict(exc.headers or {}))
        return error.response(request.scope["path"])

    async def _mapped(request: Request, exc: Exception) -> JSONResponse:
        return to_api_error(exc).response(request.scope["path"])

    # Known request errors get their own handlers: Starlette routes a bare ``Exception``
    # handler through ServerErrorMiddleware, which re-raises and resets the keep-alive
    # connection that SDK clients reuse.
    app.add_exception_handler(IngotError, _mapped)
    app.add_exception_handler(Exception, _mapped)
