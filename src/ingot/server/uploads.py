"""Turn a multipart upload into safe (source name, file) pairs and ACL groups.

The client's filename is only ever a *label* (the document's source name, shown in
citations); it is never used as a path: bytes are spooled under job ids.
"""

from __future__ import annotations


from fastapi import UploadFile

from ingot.config import Settings
from ingot.security.keys import GROUP_RE
from ingot.security.uploads import check_upload
from ingot.server.errors import APIError

MAX_FILES = 1000


def acl_groups(raw: str | None) -> list[str] | None:
    """``"a, b"`` -> ``["a", "b"]``; None when the field is absent (inherit the collection's)."""
    if raw is None:
        return None
    groups = [g.strip() for g in raw.split(",") if g.strip()]
    for group in groups:
        if not GROUP_RE.match(group):
            raise APIError(400, f"invalid ACL group {group!r}: up to 64 letters, digits and _ . : @ - "
                           "(starting with a letter or digit)", param="acl")
    return sorted(set(groups))


def checked_uploads(files: list[UploadFile], settings: Settings) -> list[tuple[str, UploadFile]]:
    if not files:
        raise APIError(400, "attach at least one file in the 'files' field", param="files")
    if len(files) > MAX_FILES:
        raise APIError(400, f"at most {MAX_FILES} files per upload, got {len(files)}", param="files")
    out = []
    for upload in files:
        size = upload.size if upload.size is not None else _size(upload)
        out.append((check_upload(upload.filename, size, settings), upload))
    return out


def _size(upload: UploadFile) -> int:
    stream = upload.file
    stream.seek(0, 2)
    size = stream.tell()
    stream.seek(0)
    return size
