"""API keys, stored hashed in one SQLite file under ``data_dir``.

A key reads ``sk-ingot-<id>-<secret>``: ``id`` (16 hex) finds the row by primary key and
``secret`` (32 random bytes, base64url) is checked against its stored SHA-256 with a
constant-time compare. A fast hash is enough because the secret has 256 bits of entropy:
slow password hashes exist to protect guessable passwords, and would cost every request
milliseconds for nothing. The plaintext exists only in the answer to ``create``.

The CLI and the server open the same file (WAL mode), so a key created or revoked with
``ingot keys`` takes effect on the running server at its next request.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

KEY_PREFIX = "sk-ingot-"
_KEY_RE = re.compile(r"^sk-ingot-([0-9a-f]{16})-([A-Za-z0-9_-]{43})$")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
# Group names end up in vector-store filters; a strict alphabet is a second line of
# defense behind each store's own quoting.
GROUP_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,63}$")

SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    secret_sha256 TEXT NOT NULL,
    groups TEXT NOT NULL,          -- JSON list
    admin INTEGER NOT NULL,
    rpm INTEGER,                   -- NULL: no limit
    tpm INTEGER,
    created_at REAL NOT NULL,
    revoked_at REAL
);
CREATE TABLE IF NOT EXISTS usage (
    key_id TEXT PRIMARY KEY,       -- an api_keys.id, or 'anonymous' while auth is off
    requests INTEGER NOT NULL DEFAULT 0,
    prompt_tokens INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    embedding_tokens INTEGER NOT NULL DEFAULT 0,
    first_at REAL,
    last_at REAL
);
"""


class KeyStoreError(ValueError):
    """A key operation the caller got wrong (bad name, unknown key); the message says which."""


class KeyExistsError(KeyStoreError):
    """An active key already has this name."""


@dataclass(frozen=True)
class ApiKey:
    id: str
    name: str
    groups: tuple[str, ...]
    admin: bool
    rpm: int | None
    tpm: int | None
    created_at: float
    revoked_at: float | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def public(self) -> dict[str, Any]:
        """What may be shown: everything but the hash."""
        return {"object": "api_key", "id": self.id, "name": self.name, "groups": list(self.groups),
                "admin": self.admin, "rpm": self.rpm, "tpm": self.tpm, "created_at": int(self.created_at),
                "revoked_at": int(self.revoked_at) if self.revoked_at else None}


def _sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def validate_groups(groups: Iterable[str]) -> tuple[str, ...]:
    out: list[str] = []
    for group in groups:
        group = group.strip()
        if not GROUP_RE.match(group):
            raise KeyStoreError(f"invalid group {group!r}: letters, digits and _ . : @ -, at most 64 characters")
        if group not in out:
            out.append(group)
    return tuple(out)


class KeyStore:
    """Keys and usage counters in ``data_dir/auth.sqlite3``. Thread-safe; one connection."""

    FILENAME = "auth.sqlite3"

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / self.FILENAME
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, check_same_thread=False, timeout=10, isolation_level=None)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.executescript(SCHEMA)
            self._conn = conn
        return self._conn

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    # ---- keys ----------------------------------------------------------------------

    def create(
        self, name: str, *, groups: Iterable[str] = (), admin: bool = False, rpm: int | None = None,
        tpm: int | None = None,
    ) -> tuple[ApiKey, str]:
        """A new key and its plaintext (shown once, never stored)."""
        if not NAME_RE.match(name):
            raise KeyStoreError(f"invalid key name {name!r}: letters, digits and _ . @ -, at most 64 characters")
        group_tuple = validate_groups(groups)
        if admin and group_tuple:
            raise KeyStoreError("an admin key reads every document; give groups only to non-admin keys")
        for label, value in (("rpm", rpm), ("tpm", tpm)):
            if value is not None and value < 1:
                raise KeyStoreError(f"{label} must be a positive integer")
        key_id = secrets.token_hex(8)
        secret = secrets.token_urlsafe(32)
        now = time.time()
        with self._lock:
            taken = self.conn.execute(
                "SELECT 1 FROM api_keys WHERE name = ? AND revoked_at IS NULL", (name,)
            ).fetchone()
            if taken:
                raise KeyExistsError(f"an active key named {name!r} already exists")
            self.conn.execute(
                "INSERT INTO api_keys (id, name, secret_sha256, groups, admin, rpm, tpm, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (key_id, name, _sha256(secret), json.dumps(list(group_tuple)), int(admin), rpm, tpm, now),
            )
        record = ApiKey(key_id, name, group_tuple, admin, rpm, tpm, now, None)
        return record, f"{KEY_PREFIX}{key_id}-{secret}"

    def list(self, include_revoked: bool = False) -> list[ApiKey]:
        query = "SELECT * FROM api_keys" + ("" if include_revoked else " WHERE revoked_at IS NULL")
        with self._lock:
            rows = self.conn.execute(query + " ORDER BY created_at").fetchall()
        return [self._row(r) for r in rows]

    def get(self, id_or_name: str) -> ApiKey | None:
        """By id, else by the name of an active key."""
        with self._lock:
            row = self.conn.execute("SELECT * FROM api_keys WHERE id = ?", (id_or_name,)).fetchone()
            if row is None:
                row = self.conn.execute(
                    "SELECT * FROM api_keys WHERE name = ? AND revoked_at IS NULL", (id_or_name,)
                ).fetchone()
        return self._row(row) if row else None

    def revoke(self, id_or_name: str) -> ApiKey:
        key = self.get(id_or_name)
        if key is None:
            raise KeyStoreError(f"no key with id or name {id_or_name!r}")
        if key.revoked_at is None:
            with self._lock:
                self.conn.execute("UPDATE api_keys SET revoked_at = ? WHERE id = ?", (time.time(), key.id))
        return self.get(key.id)  # type: ignore[return-value]

    def has_keys(self) -> bool:
        """True once any key was ever created (revoked ones included): revoking the last key
        must not open the server. Cheap when the file does not exist."""
        if self._conn is None and not self.path.exists():
            return False
        with self._lock:
            return self.conn.execute("SELECT 1 FROM api_keys LIMIT 1").fetchone() is not None

    def authenticate(self, presented: str) -> ApiKey | None:
        """The active key whose plaintext is ``presented``, else None."""
        match = _KEY_RE.match(presented)
        if match is None:
            return None
        key_id, secret = match.groups()
        with self._lock:
            row = self.conn.execute("SELECT * FROM api_keys WHERE id = ?", (key_id,)).fetchone()
        if row is None or not hmac.compare_digest(row["secret_sha256"], _sha256(secret)):
            return None
        key = self._row(row)
        return key if key.active else None

    # ---- usage ---------------------------------------------------------------------

    def add_usage(self, deltas: dict[str, tuple[int, int, int, int, float, float]]) -> None:
        """Add ``key_id -> (requests, prompt, completion, embedding, first_at, last_at)`` in one transaction."""
        if not deltas:
            return
        with self._lock:
            conn = self.conn
            conn.execute("BEGIN")
            try:
                conn.executemany(
                    "INSERT INTO usage (key_id, requests, prompt_tokens, completion_tokens, embedding_tokens, "
                    "first_at, last_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(key_id) DO UPDATE SET "
                    "requests = requests + excluded.requests, prompt_tokens = prompt_tokens + excluded.prompt_tokens, "
                    "completion_tokens = completion_tokens + excluded.completion_tokens, "
                    "embedding_tokens = embedding_tokens + excluded.embedding_tokens, "
                    "first_at = MIN(COALESCE(first_at, excluded.first_at), excluded.first_at), "
                    "last_at = MAX(COALESCE(last_at, excluded.last_at), excluded.last_at)",
                    [(k, *v) for k, v in deltas.items()],
                )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def usage(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            rows = self.conn.execute("SELECT * FROM usage").fetchall()
        return {r["key_id"]: dict(r) for r in rows}

    @staticmethod
    def _row(row: sqlite3.Row | tuple) -> ApiKey:
        return ApiKey(
            id=row["id"], name=row["name"], groups=tuple(json.loads(row["groups"])), admin=bool(row["admin"]),
            rpm=row["rpm"], tpm=row["tpm"], created_at=row["created_at"], revoked_at=row["revoked_at"],
        )
