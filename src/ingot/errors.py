"""The one error hierarchy: what went wrong with a request, independent of any wire format.

Services, engines and stores raise these (or a domain subclass such as
``CollectionNotFound``); ``server/errors.py`` turns any of them into an HTTP response in one
place by reading the class attributes below, and the CLI prints ``str(exc)``. Nothing in
this module knows about HTTP beyond the status number each kind maps to, so a low layer
(the batcher, a store) can raise a client error without importing the server.

Usage::

    raise InvalidRequestError("top_n must be at least 1", "top_n")   # -> 400, param top_n
    raise QueueFullError("the queue is full", retry_after=3)          # -> 429 + Retry-After
"""

from __future__ import annotations


class IngotError(Exception):
    """Base of every error a request can cause. ``status``/``type``/``code`` say how the API
    reports it; ``param`` names the request field at fault, when there is one."""

    status = 400
    type = "invalid_request_error"
    code: str | None = None
    param: str | None = None  # a subclass may name the field it is always about

    def __init__(self, message: str, param: str | None = None, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if param is not None:
            self.param = param
        if code is not None:
            self.code = code

    def __str__(self) -> str:  # KeyError-style quoting never leaks into messages
        return self.message

    def headers(self) -> dict[str, str]:
        return {}


class InvalidRequestError(IngotError):
    """A parameter that cannot be honoured (bad grammar, bad logprobs count, bad name...)."""

    # Stated again (not only inherited) so a class that also derives from another kind,
    # such as ``InvalidCollectionName(InvalidRequestError, StoreError)``, stays a 400.
    status = 400
    type = "invalid_request_error"
    code = None


class ContextLengthError(InvalidRequestError):
    """Prompt (+ requested completion) does not fit the model's context."""

    code = "context_length_exceeded"
    param = "messages"


class NotFoundError(IngotError):
    """The named thing (collection, document, job, key, model) does not exist for the caller."""

    status = 404
    type = "not_found_error"
    code = "not_found"


class ConflictError(IngotError):
    """The thing to create exists already."""

    status = 409
    type = "invalid_request_error"
    code = "already_exists"


class PermissionDeniedError(IngotError):
    """The caller is known but may not do this."""

    status = 403
    type = "permission_error"
    code = "forbidden"


class PayloadTooLargeError(IngotError):
    status = 413


class UnsupportedMediaTypeError(IngotError):
    status = 415


class QueueFullError(IngotError):
    """A waiting queue is full; the client should retry after ``retry_after`` seconds."""

    status = 429
    type = "rate_limit_error"
    code = "queue_full"

    def __init__(self, message: str, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class StoreFailure(IngotError):
    """A vector store could not do what was asked (``store.protocol.StoreError`` is this):
    the backend failed, is closed, or refused a value. 503: the request may succeed once
    the store is back; the message says what the store reported."""

    status = 503
    type = "service_unavailable"
    code = "store_error"


class NotReadyError(IngotError):
    """A model is still loading."""

    status = 503
    type = "service_unavailable"
    code = "model_loading"

    def headers(self) -> dict[str, str]:
        return {"Retry-After": "2"}
