"""The server under asyncio's debug mode (PYTHONASYNCIODEBUG=1): uploads through the real
HTTP API, concurrent jobs, then a clean shutdown.

Debug mode makes the event loop raise "Non-thread-safe operation" when a worker thread
touches loop-owned objects (an ``asyncio.Queue``, an ``asyncio.Event``). The upload route
once queued jobs from a worker thread: it worked by accident and hung the shutdown here.
"""

from __future__ import annotations

import concurrent.futures
import signal
import subprocess

import httpx
import pytest

from kbutil import upload, wait_job
from serverutil import RunningServer

pytestmark = pytest.mark.slow  # a server in asyncio debug mode, ~40 s


def _text(i: int) -> bytes:
    return (f"Report {i}\n\nThe depot in district {i} opens at {6 + i % 4} a.m. and keeps "
            f"{10 * i} spare parts for model K-{i}.\n").encode()


def test_uploads_and_shutdown_are_clean_in_asyncio_debug_mode(tmp_path):
    server = RunningServer(tmp_path, "--model", "none", env={"PYTHONASYNCIODEBUG": "1", "INGOT_INGEST_WORKERS": "2"})
    try:
        r = httpx.post(f"{server.base_url}/collections", json={"name": "debug_mode"}, timeout=30)
        assert r.status_code == 201, r.text
        batches = [[(f"report_{b}_{i}.txt", _text(10 * b + i)) for i in range(3)] for b in range(4)]
        with concurrent.futures.ThreadPoolExecutor(4) as pool:  # four uploads at once
            jobs = list(pool.map(lambda files: upload(server.base_url, "debug_mode", files), batches))
        for job in jobs:
            done = wait_job(server.base_url, job["id"])
            assert [d["status"] for d in done["documents"]] == ["done"] * 3, done
        listed = httpx.get(f"{server.base_url}/collections/debug_mode/documents", timeout=30).json()["data"]
        assert len(listed) == 12
        found = httpx.post(f"{server.base_url}/search", timeout=30,
                           json={"collection": "debug_mode", "query": "spare parts for model K-21"}).json()
        assert found["data"][0]["source"] == "report_2_1.txt"
    finally:
        server.proc.send_signal(signal.SIGINT)
        try:
            code = server.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.stop()
            raise AssertionError(f"the server did not shut down within 30 s:\n{server.log()[-4000:]}")
        server.stop()
    log = server.log()
    assert "Non-thread-safe operation" not in log, log[-4000:]
    assert "Traceback" not in log, log[-4000:]
    assert code == 0, log[-4000:]
