"""kill -9 of the server in the middle of an ingestion job, then a restart: the job
finishes by itself and every document is present exactly once."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import httpx
import pytest

from authutil import isolated_data_dir
from kbutil import DOCLING, need_docs, upload, wait_job
from serverutil import RunningServer

pytestmark = pytest.mark.slow  # two server starts and an OCR job killed mid-way, ~30 s

# One worker, in this order: a file done before the kill (must not be stored twice), one
# being extracted when it lands (must be redone once), and two still queued (must be done).
FILES = [
    DOCLING / "pdf" / "sources" / "multi_page.pdf",
    DOCLING / "ocr" / "sources" / "ocr_test.pdf",  # OCR: slow enough that the kill lands mid-job
    DOCLING / "docx" / "sources" / "lorem_ipsum.docx",
    DOCLING / "pptx" / "sources" / "powerpoint_sample.pptx",
]
ENV = {"INGOT_INGEST_WORKERS": "1"}


def test_kill_9_mid_job_then_restart_completes_exactly_once(data_dir: Path, tmp_path: Path) -> None:
    need_docs(*FILES)
    tmp_path = isolated_data_dir(data_dir, tmp_path)
    srv = RunningServer(tmp_path, "--model", "none", env=ENV)
    try:
        base = srv.base_url
        assert httpx.post(f"{base}/collections", json={"name": "crash"}).status_code == 201
        job_id = upload(base, "crash", [(p.name, p.read_bytes()) for p in FILES])["id"]
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            job = httpx.get(f"{base}/jobs/{job_id}").json()
            if job["progress"]["finished"] >= 1:
                break
            time.sleep(0.05)
        assert job["status"] != "done", "the job finished before the kill; the test needs a slower file"
        srv.proc.send_signal(signal.SIGKILL)
        srv.proc.wait(10)
    finally:
        srv.stop()
    finished_before = job["progress"]["finished"]

    restarted = RunningServer(tmp_path, "--model", "none", env=ENV)
    try:
        base = restarted.base_url
        job = wait_job(base, job_id, timeout=300)
        assert job["progress"] == {"total": len(FILES), "finished": len(FILES), "failed": 0}, job
        assert finished_before < len(FILES)
        docs = httpx.get(f"{base}/collections/crash/documents").json()["data"]
        assert sorted(d["source"] for d in docs) == sorted(p.name for p in FILES)
        info = httpx.get(f"{base}/collections/crash").json()
        assert info["chunks"] == sum(d["chunks"] for d in docs), "chunks duplicated or orphaned after the crash"
        for item in job["documents"]:
            assert item["chunks"] == next(d["chunks"] for d in docs if d["source"] == item["filename"])
        assert "resuming" in restarted.log()
        assert not any((tmp_path / "spool").iterdir()) if (tmp_path / "spool").exists() else True
    finally:
        restarted.stop()
