"""Ingestion throughput with 1 and 2 ``ingot worker`` processes on one shared queue.

The cluster set-up of docs/operations.md on one machine: a real PostgreSQL (the shared
catalog and job queue), one API-only replica (``ingot serve --no-ingest-workers``) that
takes the uploads, and N worker processes sharing the spool and a LanceDB directory. The
same corpus (the golden set's documents without the 619-page PDF, uploaded in one job)
is ingested once per worker count into a fresh collection; the clock runs from the
upload's 202 to the job's ``done``.

What to expect on 2 cores: a worker embeds with every core it can get, so a second worker
can only help where one leaves a core idle (extraction in its child process, I/O), and
the result says what 2 cores allow, not what 2 machines would.

Run: ``.venv/bin/python benchmarks/ingest_workers.py [--workers 1,2] [--no-write]``;
appends to benchmarks/RESULTS.md. Needs PostgreSQL from Debian (scripts/install.sh).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import common
import httpx

sys.path.insert(0, str(common.REPO / "tests"))
from stateservers import start_postgres  # noqa: E402  (the same real server the tests start)

CORPUS_LIST = common.REPO / "benchmarks" / "golden" / "docs.txt"
SKIP = ("DA-619p.pdf",)  # 12 minutes alone: it would measure one file, not the queue


def corpus() -> list[Path]:
    """The golden set's files that an upload accepts (the default INGOT_UPLOAD_EXTENSIONS)."""
    from ingot.config import Settings

    allowed = Settings().upload_extensions
    root = common.SHARED_DATA / "docs"
    files = [root / line.strip() for line in CORPUS_LIST.read_text().splitlines() if line.strip()]
    return [f for f in files if f.exists() and f.name not in SKIP and f.suffix.lower().lstrip(".") in allowed]


def start_worker(env: dict[str, str], data_dir: Path, log: Path) -> subprocess.Popen:
    port = common.free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "ingot.cli", "worker", "--port", str(port), "--workers", "1", "--log-level", "warning"],
        env={**os.environ, "INGOT_DATA_DIR": str(data_dir), **env}, stdout=log.open("ab"), stderr=subprocess.STDOUT)
    common.wait_ready(f"http://127.0.0.1:{port}/v1/health/ready", proc)
    return proc


def ingest_once(base: str, collection: str, files: list[Path]) -> tuple[float, int, int]:
    """(seconds from 202 to done, documents, chunks) for one upload of ``files``."""
    assert httpx.post(f"{base}/collections", json={"name": collection}, timeout=60).status_code == 201
    handles = [("files", (f.name, f.read_bytes())) for f in files]
    response = httpx.post(f"{base}/collections/{collection}/documents", files=handles, timeout=300)
    assert response.status_code == 202, response.text
    started = time.monotonic()
    job_id = response.json()["id"]
    while True:
        job = httpx.get(f"{base}/jobs/{job_id}", timeout=30).json()
        if job["status"] == "done":
            break
        time.sleep(0.5)
    seconds = time.monotonic() - started
    failed = [d for d in job["documents"] if d["status"] == "failed"]
    if failed:
        print(f"warning: {len(failed)} failed: {[d['filename'] for d in failed]}", file=sys.stderr)
    return seconds, sum(1 for d in job["documents"] if d["status"] == "done"), sum(d["chunks"] or 0 for d in job["documents"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="1,2", help="worker-process counts to measure, comma-separated")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    files = corpus()
    if not files:
        sys.exit(f"no corpus: {common.SHARED_DATA / 'docs'} is absent")
    megabytes = sum(f.stat().st_size for f in files) / 1e6
    url, stop_postgres = start_postgres()
    root = Path(tempfile.mkdtemp(prefix="ingot-bench-workers-"))
    env = {"INGOT_DATABASE_URL": url, "INGOT_SPOOL_DIR": str(root / "spool"), "INGOT_LANCEDB_URI": str(root / "lancedb"),
           "INGOT_THREADS": "1", "INGOT_INGEST_TIMEOUT_S": "600"}
    api, base = common.start_ingot(root / "api", "--model", "none", "--no-ingest-workers", env=env, log=root / "api.log")
    rows = []
    try:
        for count in [int(n) for n in args.workers.split(",")]:
            workers = [start_worker(env, root / f"w{count}-{i}", root / f"w{count}-{i}.log") for i in range(count)]
            try:
                seconds, documents, chunks = ingest_once(base, f"bench_{count}w", files)
            finally:
                for worker in workers:
                    common.stop(worker)
            rows.append((count, seconds, documents, chunks))
            print(f"{count} worker(s): {documents} documents, {chunks} chunks in {seconds:.1f} s", file=sys.stderr)
    finally:
        common.stop(api)
        stop_postgres()
    load = os.getloadavg()[0]
    base_seconds = rows[0][1]
    lines = [
        f"\n## {dt.date.today()}: ingestion with 1 and 2 workers (`benchmarks/ingest_workers.py`)\n",
        f"Machine: {common.machine(f'load average {load:.1f} at the end')}. One API-only replica, PostgreSQL 15 "
        f"(the shared queue), N `ingot worker` processes with 1 ingestion worker each, shared spool and LanceDB. "
        f"Corpus: {len(files)} files of benchmarks/golden/docs.txt without DA-619p.pdf, {megabytes:.1f} MB, one "
        "upload; time from the 202 to the job's done.\n",
        "| workers | documents | chunks | seconds | documents/s | chunks/s | speed-up |",
        "|---|---|---|---|---|---|---|",
    ]
    for count, seconds, documents, chunks in rows:
        lines.append(f"| {count} | {documents} | {chunks} | {seconds:.1f} | {documents / seconds:.2f} | "
                     f"{chunks / seconds:.1f} | {base_seconds / seconds:.2f}x |")
    common.record("\n".join(lines) + "\n", not args.no_write)


if __name__ == "__main__":
    main()
