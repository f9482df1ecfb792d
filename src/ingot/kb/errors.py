"""Knowledge-base lookups that find nothing (404 through ingot.errors.NotFoundError),
writes the caller may not make (403), and a data volume that is full (507) or read-only
(503), told apart from any other failure by :func:`storage_problem`."""

from __future__ import annotations

import errno

from ingot.errors import IngotError, NotFoundError, PermissionDeniedError


class DocumentNotFound(NotFoundError, LookupError):
    pass


class JobNotFound(NotFoundError, LookupError):
    pass


class DocumentWriteDenied(PermissionDeniedError):
    """The caller may read the document but does not own it (403: it knows it exists)."""


class InsufficientStorage(IngotError):
    """The data volume has too little free space to accept more (507, as WebDAV defines
    it): uploads are refused before a byte is spooled, so nothing stored is at risk."""

    status = 507
    type = "insufficient_storage"
    code = "insufficient_storage"


class StorageReadOnly(IngotError):
    """The data volume is mounted read-only (or refuses writes): 503, since an operator
    can fix it and the same request will then succeed."""

    status = 503
    type = "service_unavailable"
    code = "storage_read_only"


# errno values and the texts SQLite and Lance (Rust: "os error N") report them with
_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT}
_READ_ONLY_ERRNOS = {errno.EROFS}
_FULL_TEXTS = ("no space left on device", "os error 28", "os error 122", "database or disk is full",
               "disk quota exceeded")
_READ_ONLY_TEXTS = ("read-only file system", "os error 30", "readonly database")

STORAGE_MESSAGES = {
    "storage_full": "the server's data volume is full; ingestion continues by itself once space is freed",
    "storage_read_only": "the server's data volume is read-only; ingestion continues by itself once it is writable",
}


def storage_problem(exc: BaseException) -> str | None:
    """``storage_full`` / ``storage_read_only`` when ``exc`` (or what caused it) is the
    data volume refusing a write, else None. Stores wrap the OS error in their own (Lance
    as text with a build path), so the errno is checked first and the text second."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        number = getattr(current, "errno", None)
        if number in _FULL_ERRNOS:
            return "storage_full"
        if number in _READ_ONLY_ERRNOS:
            return "storage_read_only"
        text = str(current).lower()
        if any(t in text for t in _FULL_TEXTS):
            return "storage_full"
        if any(t in text for t in _READ_ONLY_TEXTS):
            return "storage_read_only"
        current = current.__cause__ or current.__context__
    return None


def storage_error(problem: str) -> IngotError:
    """The API error for a storage problem found by :func:`storage_problem`."""
    if problem == "storage_read_only":
        return StorageReadOnly(STORAGE_MESSAGES[problem])
    return InsufficientStorage(STORAGE_MESSAGES[problem])
