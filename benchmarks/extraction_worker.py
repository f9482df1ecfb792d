"""ingot's side of benchmarks/extraction.py: extract files in this process, the way the
peers' worker (benchmarks/peers/worker.py) runs each peer, and speak the same protocol.

Run: ``.venv/bin/python benchmarks/extraction_worker.py --out DIR FILE...``. For each file
it writes ``DIR/<name>.md`` (the ``ingot extract`` Markdown body, comments dropped) and
prints one JSON line ``{"file", "ok", "error", "wall_s", "cpu_s", "pages"}``; the last line
is ``{"peak_rss_mb"}``. In-process on purpose: the isolated runner's child process would
hide its CPU time from this process and charge process start to every file, which the
peers do not pay either; imports happen before the first clock starts.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import resource
import time
from pathlib import Path

from ingot.ingest.elements import ExtractionError, ExtractOptions
from ingot.ingest.extract import MODULES, extract_bytes
from ingot.ingest.render import to_markdown
from ingot.ingest.runner import FileResult


def body_markdown(result: FileResult) -> str:
    """The Markdown view without its title line and comments (page markers, metadata)."""
    return "\n".join(line for line in to_markdown(result).splitlines()[1:] if not line.startswith("<!--"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("files", nargs="+", type=Path)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for module in set(MODULES.values()):  # every format's parser loaded before the clocks
        importlib.import_module(f"ingot.ingest.extract.{module}")
    for path in args.files:
        data = path.read_bytes()
        result = FileResult(filename=path.name, size=len(data), content_hash=hashlib.sha256(data).hexdigest())
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            result.format, extraction = extract_bytes(data, ExtractOptions(filename=path.name))
            result.pages, result.elements = extraction.pages, extraction.elements
        except ExtractionError as exc:
            result.error_reason, result.error = exc.reason, exc.message
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        (args.out / f"{path.name}.md").write_text(body_markdown(result) if result.ok else "")
        print(json.dumps({"file": str(path), "ok": result.ok, "error": result.error, "wall_s": round(wall, 4),
                          "cpu_s": round(cpu, 4), "pages": result.pages}), flush=True)
    print(json.dumps({"peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}))


if __name__ == "__main__":
    main()
