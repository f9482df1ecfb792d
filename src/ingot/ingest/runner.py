"""Run extractions so that one bad file can never hang, crash or bloat the caller.

Each file is extracted in its own child process, forked from a forkserver that has
already imported the parsers (cheap to start, safe to use from a threaded server). The
parent waits up to ``timeout_s`` and kills the child after that; the child's address space
is capped, so a decompression bomb or a leaking parser dies alone. Every outcome, good or
bad, is a ``FileResult``: the rest of a batch always continues.
"""

from __future__ import annotations

import hashlib
import multiprocessing as mp
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Callable, Iterable, Iterator

from ingot.cpu_demand import PROCESS
from ingot.ingest.elements import Element, ExtractionError, ExtractOptions

DEFAULT_TIMEOUT_S = 120.0
DEFAULT_MAX_BYTES = 200 * 1024 * 1024
DEFAULT_MEMORY_BYTES = 4 * 1024**3

# Imported once in the forkserver, so each forked child starts with them: the PDF module
# (pypdfium2 and its ctypes bindings, ~0.1-0.15 s) was otherwise imported again per file.
# PDFium initialises at import in the single-threaded forkserver, before any fork.
_PRELOAD = ["ingot.ingest.forkserver_preload", "ingot.ingest.extract", "ingot.ingest.elements",
            "ingot.ingest.extract.pdf"]


@dataclass
class FileResult:
    filename: str
    size: int
    content_hash: str  # sha256 of the bytes: same bytes, same hash, same chunk ids
    format: str | None = None
    pages: int | None = None
    elements: list[Element] = field(default_factory=list)
    error_reason: str | None = None
    error: str | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error_reason is None


def _child(conn: Connection, data: bytes, options: ExtractOptions, memory_bytes: int) -> None:
    """Runs in the child: die with the forkserver, cap memory, extract, send back
    (format, extraction) or an error."""
    import resource

    from ingot.ingest.extract import extract_bytes
    from ingot.ingest.lifeline import die_with_parent

    die_with_parent()

    try:
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    except (ValueError, OSError):
        pass
    try:
        fmt, extraction = extract_bytes(data, options)
        conn.send(("ok", fmt, extraction.pages, extraction.elements))
    except ExtractionError as exc:
        conn.send(("error", exc.reason, exc.message))
    except MemoryError:
        conn.send(("error", "too_large", "the file needs more memory than the extraction limit allows"))
    except BaseException as exc:  # noqa: BLE001 - reported as a per-file failure, never raised
        conn.send(("error", "failed", f"{type(exc).__name__}: {exc}"))
    finally:
        conn.close()


_context: mp.context.BaseContext | None = None


def _mp_context() -> mp.context.BaseContext:
    global _context
    if _context is None:
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(_PRELOAD)
        _context = ctx
    return _context


def start_forkserver() -> None:
    """Start the extraction forkserver now, from the calling thread. The server calls it
    from its main thread at start: the forkserver dies with the thread that started it
    (``lifeline``), and a worker thread of a pool may end before the server does."""
    from multiprocessing import forkserver

    _mp_context()
    forkserver.ensure_running()


def extract_data(
    data: bytes,
    options: ExtractOptions,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    max_bytes: int = DEFAULT_MAX_BYTES,
    memory_bytes: int = DEFAULT_MEMORY_BYTES,
) -> FileResult:
    """Extract ``data`` in a child process with a time limit and a memory cap."""
    started = time.monotonic()
    result = FileResult(filename=options.filename, size=len(data), content_hash=hashlib.sha256(data).hexdigest())
    if len(data) > max_bytes:
        result.error_reason, result.error = "too_large", f"{len(data)} bytes is over the {max_bytes}-byte limit"
        return result
    ctx = _mp_context()
    receive, send = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_child, args=(send, data, options, memory_bytes), daemon=True)
    message = None
    with PROCESS.hold("extract"):  # the child takes a core from generation (cpu_demand.py)
        child.start()
        send.close()
        try:
            if receive.poll(timeout_s):
                message = receive.recv()
        except EOFError:
            message = None
        finally:
            receive.close()
            if child.is_alive():
                child.kill()
            child.join(5)
    result.seconds = time.monotonic() - started
    if message is None:
        if result.seconds >= timeout_s:
            result.error_reason, result.error = "timeout", f"extraction took longer than {timeout_s:.0f} s and was stopped"
        else:
            result.error_reason = "failed"
            result.error = f"the extraction process died (exit code {child.exitcode}); the file may be malformed"
        return result
    if message[0] == "ok":
        _, result.format, result.pages, result.elements = message
    else:
        _, result.error_reason, result.error = message
    return result


def extract_path(path: Path, options: ExtractOptions | None = None, **limits: float) -> FileResult:
    options = options or ExtractOptions(filename=path.name)
    try:
        size = path.stat().st_size
        max_bytes = int(limits.get("max_bytes", DEFAULT_MAX_BYTES))
        if size > max_bytes:
            return FileResult(filename=path.name, size=size, content_hash="", error_reason="too_large",
                              error=f"{size} bytes is over the {max_bytes}-byte limit")
        data = path.read_bytes()
    except OSError as exc:
        return FileResult(filename=path.name, size=0, content_hash="", error_reason="failed",
                          error=f"cannot read the file: {exc.strerror or exc}")
    return extract_data(data, options, **limits)  # type: ignore[arg-type]


def extract_paths(
    paths: Iterable[Path],
    make_options: Callable[[Path], ExtractOptions] | None = None,
    on_result: Callable[[FileResult], None] | None = None,
    **limits: float,
) -> Iterator[FileResult]:
    """Extract files one after another (each isolated); yields every result."""
    for path in paths:
        options = make_options(path) if make_options else ExtractOptions(filename=path.name)
        result = extract_path(path, options, **limits)
        if on_result is not None:
            on_result(result)
        yield result
