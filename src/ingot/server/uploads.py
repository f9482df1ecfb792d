"""Turn a multipart upload into safe (source name, file) pairs (ACL groups: security/acl.py).

The client's filename is only ever a *label* (the document's source name, shown in
citations); it is never used as a path: bytes are spooled under job ids.
"""

from __future__ import annotations

from fastapi import UploadFile

from ingot.config import Settings
from ingot.errors import InvalidRequestError
from ingot.security.uploads import check_upload

MAX_FILES = 1000


def checked_uploads(files: list[UploadFile], settings: Settings) -> list[tuple[str, UploadFile]]:
    if not files:
        raise InvalidRequestError("attach at least one file in the 'files' field", "files")
    if len(files) > MAX_FILES:
        raise InvalidRequestError(f"at most {MAX_FILES} files per upload, got {len(files)}", "files")
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
