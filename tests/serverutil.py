"""Start a real ``ingot serve`` on 127.0.0.1 in a subprocess and wait until it is ready
(pattern from vLLM's RemoteOpenAIServer)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_process(proc: subprocess.Popen, grace_s: float = 20) -> None:
    """SIGTERM, then SIGKILL if it has not exited after ``grace_s`` seconds."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class RunningServer:
    def __init__(self, data_dir: Path, *args: str, env: dict[str, str] | None = None, ready_timeout: float = 180) -> None:
        self.port = free_port()
        self.root = f"http://127.0.0.1:{self.port}"
        self.base_url = f"{self.root}/v1"
        self.log_path = data_dir / f"server-{self.port}.log"
        full_env = {**os.environ, "INGOT_DATA_DIR": str(data_dir), "INGOT_THREADS": "1", **(env or {})}
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ingot.cli", "serve", "--host", "127.0.0.1", "--port", str(self.port), *args],
            env=full_env, stdout=self._log, stderr=subprocess.STDOUT, cwd=REPO,
        )
        self._wait_ready(ready_timeout)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                r = httpx.get(f"{self.base_url}/health/ready", timeout=2)
                if r.status_code == 200:
                    return
                if "failed to load" in r.text:
                    self.stop()
                    raise RuntimeError(f"server could not load its models: {r.text}\n{self.log()}")
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"server not ready after {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL, for a test done with a server that is busy: a graceful stop waits for
        the work in flight (up to ``stop``'s 20 s), which such a test does not check."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._log.close()

    def stop(self) -> None:
        stop_process(self.proc)
        self._log.close()
