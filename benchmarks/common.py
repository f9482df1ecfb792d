"""Plumbing shared by the benchmark scripts: start a real server, describe the machine,
record a result table."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import platform
import shutil
import tempfile
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "RESULTS.md"
SHARED_DATA = REPO.parent / "shared" / "data"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, proc: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited early ({proc.returncode})")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    proc.kill()
    raise RuntimeError(f"not ready after {timeout}s: {url}")


def start_ingot(data_dir: Path, *flags: str, env: dict[str, str] | None = None,
                log: Path | None = None) -> tuple[subprocess.Popen, str]:
    """``ingot serve`` on a free port; returns the process and its /v1 base URL once ready."""
    port = free_port()
    out = log.open("ab") if log else subprocess.DEVNULL
    proc = subprocess.Popen(
        [sys.executable, "-m", "ingot.cli", "serve", "--port", str(port), "--log-level", "warning", *flags],
        env={**os.environ, "INGOT_DATA_DIR": str(data_dir), **(env or {})}, stdout=out, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}/v1"
    wait_ready(f"{base}/health/ready", proc)
    return proc, base


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


def machine(*extra: str) -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return ", ".join([cpu, f"{os.cpu_count()} cores", f"Python {platform.python_version()}", *extra])


def record(table: str, write: bool) -> None:
    print(table)
    if write:
        with RESULTS.open("a") as fh:
            fh.write(table)


@contextlib.contextmanager
def scratch_dir(prefix: str) -> Iterator[tuple[Path, Path]]:
    """A temporary data dir and the servers' log file in it; on a failure the log's tail is
    printed (the servers' own account of what went wrong), and the dir is removed either way."""
    data_dir = Path(tempfile.mkdtemp(prefix=prefix))
    log = data_dir / "servers.log"
    try:
        yield data_dir, log
    except BaseException:
        if log.exists():
            print(log.read_text(errors="replace")[-4000:], file=sys.stderr)
        raise
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def section(title: str, started: dt.datetime, finished: dt.datetime, settings: str, lines: list[str]) -> str:
    """A dated RESULTS.md section: heading, machine, run window (UTC), settings, table."""
    return (f"\n## {started:%Y-%m-%d}: {title}\n\nMachine: {machine()}. Run {started:%H:%M}-{finished:%H:%M} UTC. "
            f"{settings}\n\n" + "\n".join(lines) + "\n")
