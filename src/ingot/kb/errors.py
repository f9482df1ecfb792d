"""Knowledge-base lookups that find nothing (404 through ingot.errors.NotFoundError), and
writes the caller may not make (403)."""

from __future__ import annotations

from ingot.errors import NotFoundError, PermissionDeniedError


class DocumentNotFound(NotFoundError, LookupError):
    pass


class JobNotFound(NotFoundError, LookupError):
    pass


class DocumentWriteDenied(PermissionDeniedError):
    """The caller may read the document but does not own it (403: it knows it exists)."""
