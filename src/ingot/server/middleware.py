"""Request plumbing as plain ASGI middleware, outermost first:

1. ``RequestContextMiddleware``: request id (``x-request-id``, the client's if sane, else a
   new one) on the response and in every log line, one access-log line, HTTP metrics, an
   optional OpenTelemetry span.
2. ``BodyLimitMiddleware``: 413 before reading a body larger than the limit
   (``max_body_bytes``; ``max_upload_bytes`` for multipart uploads).
3. ``AuthMiddleware``: Bearer key (or ``x-api-key``) -> principal (401), per-key quotas (429 + Retry-After),
   per-request token accounting committed when the response has been sent.

Also here: ``OffloadedJSONRoute``, the route class of the JSON API routers, which decodes
big request bodies off the event loop.

Plain ASGI rather than ``BaseHTTPMiddleware``: streamed responses pass through untouched,
and the context variables set here (request id, usage) are the ones the route and its
SSE generator see.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import uuid
from typing import Any, Awaitable, Callable

from fastapi import FastAPI, Request
from fastapi.routing import APIRoute
from starlette.responses import Response as StarletteResponse

from ingot.config import Settings
from ingot.logging_setup import request_id_var
from ingot.metrics import HttpMetrics
from ingot.offload import REQUEST_POOL
from ingot.security.quotas import Rejection
from ingot.security.usage import ANONYMOUS_ID, close_request, open_request
from ingot.server.auth import ANONYMOUS, UNAUTHENTICATED, Security, principal_for
from ingot.server.errors import APIError, to_api_error
from ingot.tracing import make_tracer

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

access_log = logging.getLogger("ingot.access")
REQUEST_ID_HEADER = b"x-request-id"
_SANE_ID = re.compile(rb"^[A-Za-z0-9._:/+=@-]{1,128}$")
# Open without a key: probes, and (by default) the Prometheus endpoints.
HEALTH_PREFIX = "/v1/health/"
METRICS_PATHS = frozenset({"/v1/metrics", "/metrics"})
# Outside /v1 but serving the model, so behind the key like /v1.
PROTECTED_EXTRA = frozenset({"/tokenize", "/detokenize", "/tokenizer_info"})
# Never throttled, so a throttled client can still see why.
QUOTA_EXEMPT = frozenset({"/v1/usage"})


def is_protected(path: str, settings: Settings) -> bool:
    """Does this path need a key (once auth is on)? Health never; metrics unless public."""
    if path.startswith(HEALTH_PREFIX):
        return False
    if path in METRICS_PATHS:
        return not settings.public_metrics
    return path.startswith("/v1/") or path in PROTECTED_EXTRA


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value
    return None


async def _send_error(send: Send, error: APIError, scope: Scope) -> None:
    response = error.response(scope["path"])  # in the shape the path's clients parse
    await send({"type": "http.response.start", "status": response.status_code,
                "headers": response.raw_headers})
    await send({"type": "http.response.body", "body": response.body})


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, metrics: HttpMetrics, tracer: Any = None) -> None:
        self.app = app
        self.metrics = metrics
        self.tracer = tracer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = _header(scope, REQUEST_ID_HEADER)
        request_id = given.decode() if given and _SANE_ID.match(given) else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        scope.setdefault("state", {})["request_id"] = request_id
        status = 500
        started = time.monotonic()
        responded = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, responded
            if message["type"] == "http.response.start":
                status = message["status"]
                responded = True
                headers = [h for h in message.get("headers", []) if h[0].lower() != REQUEST_ID_HEADER]
                headers.append((REQUEST_ID_HEADER, request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        span = None
        if self.tracer is not None:
            span = self.tracer.start_span(f"{scope['method']} {scope['path']}", kind=_server_kind(),
                                          attributes={"http.request.method": scope["method"],
                                                      "url.path": scope["path"], "ingot.request_id": request_id})
        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            if responded:
                raise  # mid-stream: nothing left to answer with
            # A bug escaped the routes: answer the envelope here, so a 500 too carries the
            # request id the user will quote (to_api_error logs the traceback with it).
            response = to_api_error(exc).response(scope["path"])
            await send_with_id({"type": "http.response.start", "status": response.status_code,
                                "headers": response.raw_headers})
            await send_with_id({"type": "http.response.body", "body": response.body})
        finally:
            elapsed = time.monotonic() - started
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            self.metrics.requests.labels(scope["method"], route, str(status)).inc()
            self.metrics.latency.labels(scope["method"], route).observe(elapsed)
            principal = scope.get("state", {}).get("principal")
            access_log.info(
                "%s %s %d %.1fms", scope["method"], scope["path"], status, elapsed * 1000,
                extra={"method": scope["method"], "path": scope["path"], "status": status,
                       "duration_ms": round(elapsed * 1000, 1), "key": principal.name if principal else None},
            )
            if span is not None:
                span.set_attribute("http.route", route)
                span.set_attribute("http.response.status_code", status)
                span.end()
            request_id_var.reset(token)


def _server_kind() -> Any:
    from opentelemetry.trace import SpanKind

    return SpanKind.SERVER


class BodyLimitMiddleware:
    """413 for bodies over the limit: at once from Content-Length, else while streaming in."""

    # Multipart framing (boundaries, part headers) on top of the files themselves.
    MULTIPART_SLACK = 1 << 16

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    def _limit(self, scope: Scope) -> tuple[int, str]:
        content_type = (_header(scope, b"content-type") or b"").lower()
        if content_type.startswith(b"multipart/form-data"):
            return self.settings.max_upload_bytes + self.MULTIPART_SLACK, "INGOT_MAX_UPLOAD_BYTES"
        return self.settings.max_body_bytes, "INGOT_MAX_BODY_BYTES"

    def _error(self, limit: int, setting: str) -> APIError:
        return APIError(413, f"request body is larger than {limit} bytes ({setting})", code="request_too_large")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit, setting = self._limit(scope)
        declared = _header(scope, b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > limit
            except ValueError:
                too_big = False  # h11 rejects a malformed Content-Length before we get here
            if too_big:
                await _send_error(send, self._error(limit, setting), scope)
                return
        received = 0
        exceeded = False
        started = False

        async def limited_receive() -> Message:
            nonlocal received, exceeded
            if exceeded:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True  # the app sees a disconnect and stops reading
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded and not started:
                return  # the app's answer to a truncated body is replaced by the 413 below
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not exceeded:
                raise
        if exceeded and not started:
            await _send_error(send, self._error(limit, setting), scope)


class AuthMiddleware:
    def __init__(self, app: ASGIApp, security: Security) -> None:
        self.app = app
        self.security = security

    def _protected(self, path: str) -> bool:
        return is_protected(path, self.security.settings)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, self._on_shutdown(send))
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if not self._protected(scope["path"]):
            if self.security.auth_enabled():
                scope.setdefault("state", {})["principal"] = UNAUTHENTICATED
            await self.app(scope, receive, send)
            return
        security = self.security
        principal = ANONYMOUS
        if security.auth_enabled():
            # one thread hop for the key lookup and the quota decision: both may be a round
            # trip to a shared database or Redis, which must not block the event loop
            error, principal, rejection = await asyncio.to_thread(self._admit, scope)
            if error is not None:
                security.metrics.auth_failures.labels(error.code or "unauthorized").inc()
                await _send_error(send, error, scope)
                return
            scope.setdefault("state", {})["principal"] = principal  # for the access log, even on 429
            if rejection is not None:
                security.metrics.rate_limited.labels(rejection.limit).inc()
                unit = "requests" if rejection.limit == "rpm" else "tokens"
                await _send_error(send, APIError(
                    429, f"rate limit reached for key {principal.name!r}: {rejection.per_minute} {unit} per minute; "
                    f"retry after {rejection.retry_after}s", type="rate_limit_error", code="rate_limit_exceeded",
                    headers={"Retry-After": str(rejection.retry_after)},
                ), scope)
                return
        scope.setdefault("state", {})["principal"] = principal
        usage, token = open_request()
        try:
            await self.app(scope, receive, send)
        finally:
            close_request(token)
            key_id = principal.key_id or ANONYMOUS_ID
            security.ledger.record(key_id, usage)
            if principal.key_id is not None and principal.tpm and usage.tokens > 0:
                await asyncio.to_thread(security.limiter.charge_tokens, principal.key_id, usage.tokens, principal.tpm)

    def _admit(self, scope: Scope) -> tuple[APIError | None, Any, Rejection | None]:
        """Who is calling, and whether their quota lets the request in (blocking)."""
        error, principal = self._authenticate(scope)
        if error is not None or scope["path"] in QUOTA_EXEMPT:
            return error, principal, None
        return None, principal, self.security.limiter.admit(principal.key_id, principal.rpm, principal.tpm)

    def _authenticate(self, scope: Scope) -> tuple[APIError | None, Any]:
        raw = _header(scope, b"authorization")
        if raw is None and (api_key := _header(scope, b"x-api-key")) is not None:
            raw = b"Bearer " + api_key.strip()  # Anthropic's clients send the key this way
        if raw is None:
            return _unauthorized("missing API key: send 'Authorization: Bearer <key>' or 'x-api-key: <key>' "
                                 "(see `ingot keys create`)"), None
        scheme, _, value = raw.decode("latin-1").strip().partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            return _unauthorized("the Authorization header must be 'Bearer <key>'"), None
        key = self.security.keys.authenticate(value.strip())
        if key is None:
            return _unauthorized("invalid or revoked API key"), None
        return None, principal_for(key)

    def _on_shutdown(self, send: Send) -> Send:
        async def wrapped(message: Message) -> None:
            if message["type"] == "lifespan.shutdown.complete":
                self.security.close()  # persist usage counted since the last flush
            await send(message)

        return wrapped


def _unauthorized(message: str) -> APIError:
    return APIError(401, message, type="authentication_error", code="invalid_api_key",
                    headers={"WWW-Authenticate": "Bearer"})


def install_middleware(app: FastAPI, settings: Settings, registry: Any) -> Security:
    """Add the three middlewares (outermost last) and ``app.state.security``."""
    tracer, shutdown_tracer = make_tracer(settings.otel_exporter)
    security = Security(settings=settings, metrics=HttpMetrics(registry), tracer=tracer,
                        shutdown_tracer=shutdown_tracer)
    app.state.security = security
    app.add_middleware(AuthMiddleware, security=security)
    app.add_middleware(BodyLimitMiddleware, settings=settings)
    app.add_middleware(RequestContextMiddleware, metrics=security.metrics, tracer=security.tracer)
    _declare_bearer_auth(app, settings)
    return security


def _declare_bearer_auth(app: FastAPI, settings: Settings) -> None:
    """Mark protected operations in /openapi.json with a Bearer scheme, so generated clients
    (and schemathesis' auth checks) know which routes take a key."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = build()
        schema.setdefault("components", {}).setdefault("securitySchemes", {})["bearer"] = {
            "type": "http", "scheme": "bearer",
            "description": "An ingot API key (`ingot keys create`); required once any key exists.",
        }
        for path, operations in schema.get("paths", {}).items():
            if is_protected(path, settings):
                for operation in operations.values():
                    operation["security"] = [{"bearer": []}]
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


class OffloadedJSONRoute(APIRoute):
    """A route whose big JSON body is decoded in the request pool (ingot/offload.py).

    FastAPI decodes the body with ``json.loads`` on the event loop: ~0.1-0.3 s for a 30 MB
    prompt, during which nothing else (health probes included) is answered. This handler
    decodes bodies of ``OFFLOAD_JSON_BYTES`` and more in a worker first and leaves the
    result where Starlette's ``Request.json()`` caches it, so FastAPI's own parsing (and its
    error for a body that is not JSON) runs unchanged on a body that is not decoded here."""

    def get_route_handler(self) -> Callable[[Request], Awaitable[StarletteResponse]]:
        handle = super().get_route_handler()

        async def handler(request: Request) -> StarletteResponse:
            if request.method in ("POST", "PUT", "PATCH") and _is_json(request):
                body = await request.body()
                if len(body) >= OFFLOAD_JSON_BYTES:
                    try:
                        request._json = await REQUEST_POOL.run(json.loads, body)  # Request.json() reads this
                    except (ValueError, RecursionError):
                        pass  # not JSON (or nested too deep): FastAPI parses again and answers its 400
            return await handle(request)

        return handler


OFFLOAD_JSON_BYTES = 1 << 20  # below this, decoding takes under ~10 ms: not worth a thread hop


def _is_json(request: Request) -> bool:
    kind = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    return kind == "application/json" or kind.endswith("+json")
