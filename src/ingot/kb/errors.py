"""Knowledge-base lookups that find nothing (mapped to 404 by the server)."""

from __future__ import annotations


class DocumentNotFound(LookupError):
    pass


class JobNotFound(LookupError):
    pass
