"""Helpers for the tenant tests: a data dir of its own (keys switch auth on for every server
that shares the dir) that still reuses the session's model cache, and keys made with the
real CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from serverutil import REPO


def isolated_data_dir(shared: Path, fresh: Path) -> Path:
    """``fresh`` with ``models`` linked to the session's cache (derived model files built once)."""
    (shared / "models").mkdir(parents=True, exist_ok=True)
    fresh.mkdir(parents=True, exist_ok=True)
    (fresh / "models").symlink_to(shared / "models", target_is_directory=True)
    return fresh


def ingot(data_dir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ingot.cli", *args, "--data-dir", str(data_dir)],
                          capture_output=True, text=True, cwd=REPO, timeout=60)


def create_key(data_dir: Path, name: str, *flags: str) -> dict:
    """``ingot keys create --json``: the record plus the plaintext ``key``."""
    result = ingot(data_dir, "keys", "create", "--name", name, "--json", *flags)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)
