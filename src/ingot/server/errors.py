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

from ingot.engines.protocol import (
    ContextLengthError,
    EngineError,
    InvalidRequestError,
    NotReadyError,
    QueueFullError,
)
from ingot.generation.chat_template import ChatTemplateError
from ingot.generation.grammar import SchemaError
from ingot.kb.errors import DocumentNotFound, JobNotFound
from ingot.models.registry import UnknownModelError
from ingot.store.protocol import CollectionExists, CollectionNotFound, InvalidCollectionName

log = logging.getLogger("ingot.server")


class APIError(Exception):
    """An error with its HTTP status, rendered as ``{"error": {...}}``."""

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
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers)


def to_api_error(exc: BaseException) -> APIError:
    """Map any exception raised while serving a request to an APIError."""
    if isinstance(exc, APIError):
        return exc
    if isinstance(exc, QueueFullError):
        return APIError(
            429, str(exc), type="rate_limit_error", code="queue_full",
            headers={"Retry-After": str(exc.retry_after)},
        )
    if isinstance(exc, NotReadyError):
        return APIError(503, str(exc), type="service_unavailable", code="model_loading", headers={"Retry-After": "2"})
    if isinstance(exc, ContextLengthError):
        return APIError(400, str(exc), param=exc.param, code="context_length_exceeded")
    if isinstance(exc, InvalidRequestError):
        return APIError(400, str(exc), param=exc.param)
    if isinstance(exc, (ChatTemplateError, SchemaError)):
        return APIError(400, str(exc), param="messages" if isinstance(exc, ChatTemplateError) else "response_format")
    if isinstance(exc, UnknownModelError):
        return APIError(404, str(exc.args[0]), param="model", code="model_not_found")
    if isinstance(exc, (CollectionNotFound, DocumentNotFound, JobNotFound)):
        return APIError(404, str(exc), type="not_found_error", code="not_found")
    if isinstance(exc, CollectionExists):
        return APIError(409, str(exc), param="name", code="already_exists")
    if isinstance(exc, InvalidCollectionName):
        return APIError(400, str(exc.args[0]), param="name", code="invalid_name")
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
    for known in (EngineError, ChatTemplateError, SchemaError, UnknownModelError, CollectionNotFound,
                  CollectionExists, InvalidCollectionName, DocumentNotFound, JobNotFound):
        app.add_exception_handler(known, _mapped)
    app.add_exception_handler(Exception, _mapped)
