"""Two ``ingot serve`` replicas and ``ingot worker`` processes sharing one PostgreSQL, one
Redis, one spool and one LanceDB directory, all real processes on 127.0.0.1.

What a load balancer in front of replicas needs to be true: a key made on A works on B,
a file uploaded via A is ingested by the worker and its job, listing and search answer on
B, a 5 requests/minute quota holds across A and B together, a key revoked on B is refused
by A; and a worker killed with ``kill -9`` mid-document has its item finished by another
worker, the document present exactly once and the spool emptied.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import sqlalchemy

from kbutil import search, upload, wait_job
from serverutil import REPO, free_port, stop_process
from stateservers import postgres_url, redis_url  # noqa: F401  (fixtures)

# four model-loading processes and a database: ~2 min on a quiet 2-core machine, more when loaded
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


class Process:
    """An ``ingot`` subprocess (serve or worker) with its log; ``ready`` waits for health."""

    def __init__(self, name: str, root: Path, args: list[str], env: dict[str, str]) -> None:
        self.port = free_port()
        self.root = f"http://127.0.0.1:{self.port}"
        self.base_url = f"{self.root}/v1"
        self.log_path = root / f"{name}.log"
        data_dir = root / name
        data_dir.mkdir()
        full_env = {**os.environ, "INGOT_DATA_DIR": str(data_dir), "INGOT_THREADS": "1", **env}
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "ingot.cli", *args, "--host", "127.0.0.1",
                                          "--port", str(self.port)], env=full_env, stdout=log,
                                         stderr=subprocess.STDOUT, cwd=REPO)

    def ready(self, timeout: float = 240) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if httpx.get(f"{self.base_url}/health/ready", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"not ready after {timeout} s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        stop_process(self.proc)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, postgres_url: str, redis_url: str):  # noqa: F811
    root = tmp_path_factory.mktemp("cluster")
    shared = {
        "INGOT_DATABASE_URL": postgres_url, "INGOT_REDIS_URL": redis_url,
        "INGOT_SPOOL_DIR": str(root / "spool"), "INGOT_LANCEDB_URI": str(root / "lancedb"),
        "INGOT_LANCEDB_CONSISTENCY_S": "0", "INGOT_INGEST_LEASE_S": "3",
    }
    admin = subprocess.run([sys.executable, "-m", "ingot.cli", "keys", "create", "--name", "ops", "--admin", "--json"],
                           env={**os.environ, "INGOT_DATA_DIR": str(root / "cli"), **shared},
                           capture_output=True, text=True, cwd=REPO, timeout=120)
    assert admin.returncode == 0, admin.stderr
    processes = {
        "a": Process("a", root, ["serve", "--model", "none", "--no-ingest-workers"], shared),
        "b": Process("b", root, ["serve", "--model", "none", "--no-ingest-workers"], shared),
        "w1": Process("w1", root, ["worker", "--workers", "1"], shared),
        "w2": Process("w2", root, ["worker", "--workers", "1"], shared),
    }
    try:
        for process in processes.values():
            process.ready()
        yield {"root": root, "env": shared, "admin": json.loads(admin.stdout)["key"], **processes}
    finally:
        for process in processes.values():
            process.stop()


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_keys_documents_and_jobs_are_the_clusters(cluster: dict) -> None:
    a, b, admin = cluster["a"], cluster["b"], _auth(cluster["admin"])
    made = httpx.post(f"{a.base_url}/keys", json={"name": "alice"}, headers=admin, timeout=30)
    assert made.status_code == 201, made.text
    alice = _auth(made.json()["key"])
    assert httpx.get(f"{b.base_url}/models", headers=alice, timeout=30).status_code == 200

    assert httpx.post(f"{a.base_url}/collections", json={"name": "shared"}, headers=admin, timeout=30).status_code == 201
    job = upload(a.base_url, "shared", [("harbour.txt", b"The harbour master logs every ferry that docks at pier nine.")],
                 headers=admin)
    done = wait_job(b.base_url, job["id"], timeout=120, headers=admin)  # polled on the other replica
    assert done["progress"]["failed"] == 0 and done["documents"][0]["chunks"] >= 1
    listed = httpx.get(f"{b.base_url}/collections/shared/documents", headers=admin, timeout=30).json()
    assert [d["source"] for d in listed["data"]] == ["harbour.txt"]
    hits = search(b.base_url, "shared", "which pier do ferries dock at", headers=admin)["data"]
    assert hits and hits[0]["source"] == "harbour.txt"

    revoked = httpx.delete(f"{b.base_url}/keys/{made.json()['id']}", headers=admin, timeout=30)
    assert revoked.status_code == 200, revoked.text
    refused = httpx.get(f"{a.base_url}/models", headers=alice, timeout=30)
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "invalid_api_key"


def test_a_quota_holds_across_replicas(cluster: dict) -> None:
    a, b, admin = cluster["a"], cluster["b"], _auth(cluster["admin"])
    made = httpx.post(f"{a.base_url}/keys", json={"name": "metered", "rpm": 5}, headers=admin, timeout=30)
    metered = _auth(made.json()["key"])
    codes = [httpx.get(f"{(a, b)[i % 2].base_url}/models", headers=metered, timeout=30).status_code for i in range(7)]
    assert codes == [200] * 5 + [429] * 2, codes


def test_a_killed_worker_s_item_is_finished_by_another(cluster: dict) -> None:
    a, b, admin = cluster["a"], cluster["b"], _auth(cluster["admin"])
    lines = "\n".join(f"Shipment {i} reached depot {i % 97} after {i % 13} days on the northern line."
                      for i in range(8_000)).encode()
    assert httpx.post(f"{a.base_url}/collections", json={"name": "kill"}, headers=admin, timeout=30).status_code == 201
    job = upload(a.base_url, "kill", [("depots.log", lines), ("note.txt", b"A short note about the depot keys.")],
                 headers=admin)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:  # kill its holder while the big file is being embedded
        items = httpx.get(f"{b.base_url}/jobs/{job['id']}", headers=admin, timeout=10).json()["documents"]
        big = next(i for i in items if i["filename"] == "depots.log")
        if big["status"] == "running" and "chunks_embedded" in big:  # progress from a worker, seen on B
            break
        time.sleep(0.2)
    else:
        raise AssertionError(f"the big file never started embedding: {items}")
    holder_pid = _lease_holder_pid(cluster["env"]["INGOT_DATABASE_URL"], job["id"], "depots.log")
    holder = next(p for name, p in cluster.items() if name.startswith("w") and p.proc.pid == holder_pid)
    os.kill(holder.proc.pid, signal.SIGKILL)
    holder.proc.wait()

    done = wait_job(a.base_url, job["id"], timeout=300, headers=admin)  # the other worker, once the lease ran out
    assert done["progress"]["failed"] == 0, done
    documents = httpx.get(f"{b.base_url}/collections/kill/documents", headers=admin, timeout=30).json()["data"]
    assert sorted(d["source"] for d in documents) == ["depots.log", "note.txt"]  # each exactly once
    collection = httpx.get(f"{b.base_url}/collections/kill", headers=admin, timeout=30).json()
    assert collection["chunks"] == sum(d["chunks"] for d in documents) > 0
    spool = Path(cluster["env"]["INGOT_SPOOL_DIR"])
    assert not spool.exists() or not any(spool.iterdir()), list(spool.iterdir())


def _lease_holder_pid(url: str, job_id: str, filename: str) -> int:
    """The pid in the lease of the worker holding ``filename`` (``host:pid:nonce``)."""
    engine = sqlalchemy.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as conn:
            owner = conn.execute(sqlalchemy.text(
                "SELECT lease_owner FROM job_items WHERE job_id = :job AND filename = :name"),
                {"job": job_id, "name": filename}).scalar_one()
    finally:
        engine.dispose()
    assert owner, "a running item must be held by a lease"
    return int(owner.split(":")[1])
