"""Checks for uploaded files: size, type, and a filename that is safe to show and store.

A client-supplied filename is a label (the document's source name in citations), never a
path: store the bytes under a name ingot generates (job id, content hash) and keep
:func:`safe_filename`'s result as metadata. ``safe_filename`` is still a single, harmless
path component, so a caller that does join it to a directory cannot leave that directory.

Usage in an upload route::

    for upload in files:
        name = check_upload(upload.filename, upload.size, settings)  # 413 / 415 (ingot.errors)
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from ingot.errors import PayloadTooLargeError, UnsupportedMediaTypeError

if TYPE_CHECKING:
    from ingot.config import Settings

MAX_NAME_BYTES = 255
_UNSAFE = re.compile(r'[\x00-\x1f\x7f<>:"|?*]')
# Bidirectional controls (embeddings, overrides, isolates, marks) and the BOM: invisible,
# and U+202E makes "gpj.exe" display as "exe.jpg" (Trojan Source, CVE-2021-42574). A
# label shown to other people must read as what it is, so they are dropped.
_BIDI = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff]")
_WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)), *(f"LPT{i}" for i in range(1, 10))}
FALLBACK = "upload"


def safe_filename(name: str | None) -> str:
    """The last component of ``name`` with separators, control characters (bidirectional
    controls included), leading dots and reserved device names removed; ``"upload"`` when
    nothing usable is left.

    ``"../../etc/passwd"`` -> ``"passwd"``, ``"C:\\\\x\\\\..\\\\a.pdf"`` -> ``"a.pdf"``, ``".."`` -> ``"upload"``.
    """
    text = unicodedata.normalize("NFC", name or "")
    text = text.replace("\\", "/")
    text = PurePosixPath(text).name if "/" in text else text
    text = _BIDI.sub("", _UNSAFE.sub("", text)).strip().lstrip(".").strip()
    if not text or text in (".", ".."):
        return FALLBACK
    stem = text.split(".", 1)[0].upper()
    if stem in _WINDOWS_RESERVED:
        text = "_" + text
    encoded = text.encode("utf-8")
    if len(encoded) > MAX_NAME_BYTES:
        suffix = PurePosixPath(text).suffix
        suffix = suffix if len(suffix.encode()) <= 16 else ""
        budget = MAX_NAME_BYTES - len(suffix.encode())
        text = encoded[:budget].decode("utf-8", errors="ignore") + suffix
    return text


def extension(name: str) -> str:
    """Lower-case extension without the dot ('' when none)."""
    return PurePosixPath(name).suffix.lower().lstrip(".")


def check_upload(filename: str | None, size: int | None, settings: "Settings") -> str:
    """Validate one uploaded file; return its safe filename.

    Raises PayloadTooLargeError 413 (``file_too_large``) above ``settings.max_upload_bytes`` and 415
    (``unsupported_file_type``) when the extension is not in ``settings.upload_extensions``.
    ``size=None`` (unknown) skips the size check; the body limit still applies.
    """
    name = safe_filename(filename)
    if size is not None and size > settings.max_upload_bytes:
        raise PayloadTooLargeError(
            f"file {name!r} is {size} bytes; the limit is {settings.max_upload_bytes} (INGOT_MAX_UPLOAD_BYTES)",
            param="files", code="file_too_large",
        )
    ext = extension(name)
    if ext not in settings.upload_extensions:
        allowed = ", ".join(sorted(settings.upload_extensions))
        shown = f".{ext}" if ext else "no extension"
        raise UnsupportedMediaTypeError(
            f"file {name!r} has {shown}; allowed types: {allowed} (INGOT_UPLOAD_EXTENSIONS)",
            param="files", code="unsupported_file_type",
        )
    return name
