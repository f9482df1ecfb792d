"""kill -9 of the server leaves no child behind: the extraction forkserver, its workers
and multiprocessing's resource tracker notice that their parent is gone and exit, so
restarts do not accumulate orphans (issue 16)."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import httpx
import pytest

from authutil import isolated_data_dir
from kbutil import DOCLING, upload, wait_job
from serverutil import RunningServer

pytestmark = [
    pytest.mark.slow,  # a server of its own (~15 s)
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the process tree from /proc"),
]


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (from /proc/*/stat parent links)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def alive(pids: set[int]) -> set[int]:
    """The pids still running (zombies count as gone: only a reap is missing)."""
    out = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            out.add(pid)
    return out


OCR_PDF = DOCLING / "ocr" / "sources" / "ocr_test.pdf"  # OCR: seconds in an extraction worker


def mid_extraction(srv: RunningServer) -> set[int]:
    """Start a slow extraction (when the shared OCR sample is present) and return the
    server's children while it runs, the extraction worker among them."""
    if not OCR_PDF.is_file():
        return set()
    job = upload(srv.base_url, "orphans", [(OCR_PDF.name, OCR_PDF.read_bytes())])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        item = httpx.get(f"{srv.base_url}/jobs/{job['id']}").json()["documents"][0]
        if item["stage"] == "extract" or item["status"] in ("done", "failed"):
            break
        time.sleep(0.05)
    time.sleep(0.5)
    return descendants(srv.proc.pid)


def test_kill_9_of_the_server_leaves_no_child(data_dir: Path, tmp_path: Path) -> None:
    srv = RunningServer(isolated_data_dir(data_dir, tmp_path), "--model", "none")
    try:
        base = srv.base_url
        assert httpx.post(f"{base}/collections", json={"name": "orphans"}).status_code == 201
        job = upload(base, "orphans", [("note.txt", b"Orphaned processes are a leak.\n")])
        assert wait_job(base, job["id"], timeout=120)["progress"]["failed"] == 0
        children = descendants(srv.proc.pid)
        assert children, "the extraction forkserver should be running after a job"
        children |= mid_extraction(srv)
        srv.proc.send_signal(signal.SIGKILL)
        srv.proc.wait(10)
        deadline = time.monotonic() + 5  # PDEATHSIG is immediate; a surviving OCR worker would run on for seconds
        while alive(children) and time.monotonic() < deadline:
            time.sleep(0.2)
        left = alive(children)
        for pid in left:  # never leave them to the next test
            os.kill(pid, signal.SIGKILL)
        assert not left, f"children of the killed server still alive: {sorted(left)}"
    finally:
        srv.stop()
