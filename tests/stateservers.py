"""Real PostgreSQL and Redis servers for the shared-state tests, started on 127.0.0.1.

Both come from Debian (``scripts/install.sh`` installs ``postgresql`` and
``redis-server`` for tests); each fixture starts its own server on a free port in a
temporary directory and stops it afterwards, so nothing depends on a system service.
Tests that need one skip, saying why, when the binaries are absent.

PostgreSQL refuses to run as root, and CI runs as root: the cluster is then initialised
and run as the ``postgres`` user the Debian package creates.

Usage (a test module)::

    from stateservers import postgres_url, redis_url  # noqa: F401  (fixtures)

    def test_x(postgres_url): ...
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

PG_BIN = next((p for p in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
               if (p / "initdb").exists()), None) if Path("/usr/lib/postgresql").is_dir() else None
REDIS_SERVER = shutil.which("redis-server")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_postgres() -> tuple[list[str], int | None]:
    """The command prefix that runs a PostgreSQL binary as a non-root user, and its uid."""
    if os.geteuid() != 0:
        return [], None
    try:
        uid = pwd.getpwnam("postgres").pw_uid
    except KeyError:
        pytest.skip("running as root and there is no 'postgres' user to run PostgreSQL as")
    return ["runuser", "-u", "postgres", "--"], uid


def _wait_for_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


def start_postgres() -> tuple[str, callable]:
    """A fresh cluster with database ``ingot``; returns (URL, stop)."""
    if PG_BIN is None:
        pytest.skip("PostgreSQL binaries are not installed (apt-get install postgresql)")
    prefix, uid = _as_postgres()
    root = Path(tempfile.mkdtemp(prefix="ingot-pg-"))
    if uid is not None:
        os.chown(root, uid, -1)
    data = root / "data"
    port = free_port()
    subprocess.run([*prefix, str(PG_BIN / "initdb"), "-D", str(data), "-U", "ingot", "--auth=trust",
                    "-E", "UTF8", "--no-sync"], check=True, capture_output=True)
    subprocess.run([*prefix, str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-w", "-t", "60",
                    "-o", f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off", "start"],
                   check=True, capture_output=True)
    subprocess.run([*prefix, str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "ingot", "ingot"],
                   check=True, capture_output=True)

    def stop() -> None:
        subprocess.run([*prefix, str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                       capture_output=True)
        shutil.rmtree(root, ignore_errors=True)

    return f"postgresql://ingot@127.0.0.1:{port}/ingot", stop


def start_redis() -> tuple[str, callable]:
    """A Redis server without persistence; returns (URL, stop)."""
    if REDIS_SERVER is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    root = Path(tempfile.mkdtemp(prefix="ingot-redis-"))
    port = free_port()
    process = subprocess.Popen(
        [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(root)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_for_port(port)

    def stop() -> None:
        process.terminate()
        process.wait(10)
        shutil.rmtree(root, ignore_errors=True)

    return f"redis://127.0.0.1:{port}/0", stop


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    url, stop = start_postgres()
    try:
        yield url
    finally:
        stop()


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    url, stop = start_redis()
    try:
        yield url
    finally:
        stop()
