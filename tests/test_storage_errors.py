"""A full or read-only data volume (issue 16): uploads answer 507 / 503 with a message
saying what is full, items that hit the limit say so in plain words and wait, stored
documents stay searchable, and ingestion resumes by itself once space is freed."""

from __future__ import annotations

import errno
import os
import sqlite3
import subprocess
import time
import uuid
from pathlib import Path

import httpx
import pytest

from authutil import isolated_data_dir
from kbutil import search, upload, wait_job
from serverutil import RunningServer

from ingot.kb.errors import InsufficientStorage, StorageReadOnly, storage_error, storage_problem
from ingot.kb.jobs import DataVolume
from ingot.store.protocol import StoreError

LANCE_FULL = ("RuntimeError: lance error: LanceError(IO): No space left on device (os error 28), "
              "/root/.cargo/registry/src/index.crates.io-6f17d22bba15001f/lance-0.20.0/src/io.rs:12:5")


@pytest.mark.parametrize(("exc", "problem"), [
    (OSError(errno.ENOSPC, "No space left on device"), "storage_full"),
    (OSError(errno.EROFS, "Read-only file system"), "storage_read_only"),
    (sqlite3.OperationalError("database or disk is full"), "storage_full"),
    (sqlite3.OperationalError("attempt to write a readonly database"), "storage_read_only"),
    (StoreError(LANCE_FULL), "storage_full"),
    (ValueError("bad value"), None),
])
def test_storage_problems_are_told_apart(exc: BaseException, problem: str | None) -> None:
    assert storage_problem(exc) == problem


def test_a_wrapped_os_error_is_found_through_its_cause() -> None:
    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError as inner:
            raise RuntimeError("write failed") from inner
    except RuntimeError as outer:
        assert storage_problem(outer) == "storage_full"


def test_storage_errors_are_507_and_503_in_plain_words() -> None:
    full, read_only = storage_error("storage_full"), storage_error("storage_read_only")
    assert isinstance(full, InsufficientStorage) and full.status == 507
    assert isinstance(read_only, StorageReadOnly) and read_only.status == 503
    assert "full" in str(full) and "read-only" in str(read_only)
    assert "/" not in str(full) + str(read_only)  # no paths, no internals


def test_data_volume_keeps_its_minimum_free(tmp_path: Path) -> None:
    volume = DataVolume(tmp_path / "not" / "yet" / "made", 0)
    assert volume.free_bytes() > 0 and volume.problem() is None
    assert volume.problem(incoming=volume.free_bytes() + 1) == "storage_full"
    with pytest.raises(InsufficientStorage):
        DataVolume(tmp_path, 1 << 62).check()


# ---------------------------------------------------------------- a real full volume

MIN_FREE = 256 << 10  # small: the store may use the reserve, and must still run out


@pytest.fixture
def small_volume(tmp_path: Path):
    """A 48 MiB tmpfs (needs root and a container that allows mounts; else skip)."""
    mount = tmp_path / "volume"
    mount.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(mount)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs for the disk-full test: {result.stderr.strip() or result.returncode}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def fill(volume: Path, leave: int) -> Path:
    """A filler file leaving about ``leave`` bytes free on ``volume``."""
    filler = volume / f"filler-{uuid.uuid4().hex[:6]}"
    free = os.statvfs(volume).f_bavail * os.statvfs(volume).f_frsize
    with filler.open("wb") as out:
        remaining = max(0, free - leave)
        block = b"\0" * (1 << 20)
        while remaining > 0:
            try:
                remaining -= out.write(block[: min(len(block), remaining)])
            except OSError:
                break
    return filler


def big_text(size: int) -> bytes:
    lines, total, i = [], 0, 0
    while total < size:
        line = f"2026-01-01 12:00:{i % 60:02d} INFO shipment {i} reached depot {i % 97} after {i % 13} hops"
        lines.append(line)
        total += len(line) + 1
        i += 1
    return "\n".join(lines).encode()


@pytest.mark.slow  # a server of its own on a tmpfs, ~40 s
def test_full_volume_507_then_resumes_when_space_returns(data_dir: Path, tmp_path: Path, small_volume: Path) -> None:
    isolated_data_dir(data_dir, small_volume)
    # 32-token chunks: many vectors per byte of text, so a small file outgrows the space
    env = {"INGOT_DATA_DIR": str(small_volume), "INGOT_INGEST_MIN_FREE_BYTES": str(MIN_FREE),
           "INGOT_CHUNK_MAX_TOKENS": "32", "INGOT_CHUNK_OVERLAP_TOKENS": "0"}
    srv = RunningServer(tmp_path, "--model", "none", env=env)
    try:
        base = srv.base_url
        assert httpx.post(f"{base}/collections", json={"name": "vol"}).status_code == 201
        first = upload(base, "vol", [("harbour.txt", b"The harbour master logs every ferry that docks.\n")])
        assert wait_job(base, first["id"], timeout=120)["progress"]["failed"] == 0

        # accepted with room to spare (60 KB in, 192 KiB above the minimum), but its ~800
        # chunks need ~1.4 MB, over 3x what the volume has left even with the reserve. The
        # file is no bigger than that: every chunk is embedded twice (before the full volume
        # and again on the retry), which is what this test's time goes into.
        filler = fill(small_volume, MIN_FREE + (192 << 10))
        job = upload(base, "vol", [("depots.log", big_text(60_000))])
        item = waiting_item(base, job["id"])
        assert item["status"] == "queued" and item["error"]["reason"] == "storage_full", item
        assert "full" in item["error"]["message"] and "/" not in item["error"]["message"]

        more = fill(small_volume, MIN_FREE // 2)
        refused = httpx.post(f"{base}/collections/vol/documents", files=[("files", ("late.txt", b"late"))], timeout=30)
        assert refused.status_code == 507, refused.text
        error = refused.json()["error"]
        assert "full" in error["message"] and "/" not in error["message"]
        metrics = httpx.get(f"{srv.root}/v1/metrics", timeout=10).text
        assert "ingot_data_free_bytes" in metrics

        hits = search(base, "vol", "harbour master ferry", mode="bm25")["data"]
        assert hits and hits[0]["source"] == "harbour.txt", "a stored document must stay searchable"

        filler.unlink()
        more.unlink()
        done = wait_job(base, job["id"], timeout=120)
        assert done["progress"]["failed"] == 0 and done["documents"][0]["chunks"] > 0, done
        hits = search(base, "vol", "shipment reached depot", mode="bm25")["data"]
        assert any(h["source"] == "depots.log" for h in hits)
    finally:
        srv.stop()


def waiting_item(base: str, job_id: str, timeout: float = 90) -> dict:
    """The job's item once it waits for storage (or has finished, for the assertion)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        item = httpx.get(f"{base}/jobs/{job_id}", timeout=10).json()["documents"][0]
        if item["error"] is not None or item["status"] in ("done", "failed"):
            return item
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} neither waited for storage nor finished: {item}")
