"""Format detection and dispatch. Each format lives in its own module exposing
``extract(data: bytes, options: ExtractOptions) -> Extraction``.

The format is decided from the bytes (magic numbers, the OOXML content-types part),
falling back to the file extension only for plain-text formats, so a file with the wrong
extension still goes to the right parser.
"""

from __future__ import annotations

import importlib
import io
import zipfile
from pathlib import PurePath

from ingot.ingest.elements import Extraction, ExtractionError, ExtractOptions

# format -> module under ingot.ingest.extract
MODULES = {
    "pdf": "pdf",
    "docx": "docx",
    "pptx": "pptx",
    "xlsx": "xlsx",
    "csv": "xlsx",
    "html": "html",
    "markdown": "text",
    "text": "text",
    "image": "image",
}

TEXT_EXTENSIONS = {
    ".md": "markdown", ".markdown": "markdown", ".txt": "text", ".text": "text", ".csv": "csv", ".tsv": "csv",
    ".html": "html", ".htm": "html", ".xhtml": "html", ".log": "text", ".rst": "text", ".json": "text",
}

MAX_ZIP_UNCOMPRESSED = 1 << 30  # 1 GiB unpacked
MAX_ZIP_RATIO = 200  # unpacked/packed beyond this is a zip bomb, not an office file


def _ooxml_kind(data: bytes) -> str | None:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        # Starts like a zip (every .docx/.pptx/.xlsx does) but cannot be opened: damaged.
        raise ExtractionError("corrupt", f"the file looks like a zip-based Office file but is damaged: {exc}") from exc
    infos = archive.infolist()
    unpacked = sum(i.file_size for i in infos)
    packed = max(1, sum(i.compress_size for i in infos))
    if unpacked > MAX_ZIP_UNCOMPRESSED or unpacked / packed > MAX_ZIP_RATIO:
        raise ExtractionError("zip_bomb", f"archive would unpack to {unpacked} bytes ({unpacked // packed}x its size)")
    names = {i.filename for i in infos}
    if "[Content_Types].xml" not in names:
        return None
    if any(n.startswith("word/") for n in names):
        return "docx"
    if any(n.startswith("ppt/") for n in names):
        return "pptx"
    if any(n.startswith("xl/") for n in names):
        return "xlsx"
    return None


def detect_format(data: bytes, filename: str) -> str:
    """The format of ``data``; raises ExtractionError("unsupported"/"empty")."""
    if not data:
        raise ExtractionError("empty", "the file is empty (0 bytes)")
    head = data[:1024]
    if head.startswith(b"%PDF") or b"%PDF-" in head[:1024]:
        return "pdf"
    if head.startswith(b"PK\x03\x04"):
        kind = _ooxml_kind(data)
        if kind:
            return kind
        raise ExtractionError("unsupported", "a zip archive that is not a Word, PowerPoint or Excel file")
    if head.startswith((b"\x89PNG", b"\xff\xd8\xff", b"II*\x00", b"MM\x00*", b"GIF8", b"BM")) or head[:4] == b"RIFF":
        return "image"
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        raise ExtractionError("unsupported", "legacy binary Office formats (.doc/.ppt/.xls) are not supported; save as .docx/.pptx/.xlsx")
    suffix = PurePath(filename).suffix.lower()
    sniff = head.lstrip().lower()
    if suffix in TEXT_EXTENSIONS:
        return TEXT_EXTENSIONS[suffix]
    if sniff.startswith((b"<!doctype html", b"<html")):
        return "html"
    if b"\x00" in head:
        raise ExtractionError("unsupported", f"unrecognised binary format ({suffix or 'no extension'})")
    return "text"


def extract_bytes(data: bytes, options: ExtractOptions) -> tuple[str, Extraction]:
    """Detect the format and run its extractor in this process (see runner for limits)."""
    fmt = detect_format(data, options.filename)
    module = importlib.import_module(f"ingot.ingest.extract.{MODULES[fmt]}")
    try:
        return fmt, module.extract(data, options)
    except ExtractionError:
        raise
    except Exception as exc:  # a parser's own exception on a damaged file
        raise ExtractionError("corrupt", f"could not read the {fmt} file: {type(exc).__name__}: {exc}") from exc
