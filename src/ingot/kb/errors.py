"""Knowledge-base lookups that find nothing (404 through ingot.errors.NotFoundError)."""

from __future__ import annotations

from ingot.errors import NotFoundError


class DocumentNotFound(NotFoundError, LookupError):
    pass


class JobNotFound(NotFoundError, LookupError):
    pass
