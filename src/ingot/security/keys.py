"""API keys, stored hashed in the ``auth`` state area (``data_dir/auth.sqlite3`` on one
node, the shared PostgreSQL database when replicas share one).

A key reads ``sk-ingot-<id>-<secret>``: ``id`` (16 hex) finds the row by primary key and
``secret`` (32 random bytes, base64url) is checked against its stored SHA-256 with a
constant-time compare. A fast hash is enough because the secret has 256 bits of entropy:
slow password hashes exist to protect guessable passwords, and would cost every request
milliseconds for nothing. The plaintext exists only in the answer to ``create``.

Every request reads its key's row (by primary key), nothing is cached: a key created or
revoked with ``ingot keys`` (or on another replica) takes effect at the next request.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from sqlalchemy import case, select, update

from ingot.state.database import Database, open_database
from ingot.state.schema import api_keys, usage

KEY_PREFIX = "sk-ingot-"
_KEY_RE = re.compile(r"^sk-ingot-([0-9a-f]{16})-([A-Za-z0-9_-]{43})$")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
# Group names end up in vector-store filters; a strict alphabet is a second line of
# defense behind each store's own quoting.
GROUP_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,63}$")

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
    """Keys and usage counters in the ``auth`` area. Thread-safe (pooled connections); the
    database opens on first use, so a server without keys never creates the file."""

    FILENAME = "auth.sqlite3"

    def __init__(self, data_dir: Path, database_url: str | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.path = self.data_dir / self.FILENAME
        self.database_url = database_url
        self._lock = threading.Lock()
        self._db: Database | None = None

    @property
    def db(self) -> Database:
        with self._lock:
            if self._db is None:
                self._db = open_database("auth", data_dir=self.data_dir, url=self.database_url)
            return self._db

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

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
        with self.db.write() as conn:
            taken = conn.execute(select(api_keys.c.id).where(api_keys.c.name == name, api_keys.c.revoked_at.is_(None))
                                 .with_for_update()).first()
            if taken:
                raise KeyExistsError(f"an active key named {name!r} already exists")
            conn.execute(api_keys.insert().values(
                id=key_id, name=name, secret_sha256=_sha256(secret), groups=json.dumps(list(group_tuple)),
                admin=int(admin), rpm=rpm, tpm=tpm, created_at=now))
        record = ApiKey(key_id, name, group_tuple, admin, rpm, tpm, now, None)
        return record, f"{KEY_PREFIX}{key_id}-{secret}"

    def list(self, include_revoked: bool = False) -> list[ApiKey]:
        query = select(api_keys).order_by(api_keys.c.created_at)
        if not include_revoked:
            query = query.where(api_keys.c.revoked_at.is_(None))
        with self.db.read() as conn:
            return [self._row(r) for r in conn.execute(query).mappings()]

    def get(self, id_or_name: str) -> ApiKey | None:
        """By id, else by the name of an active key."""
        with self.db.read() as conn:
            row = conn.execute(select(api_keys).where(api_keys.c.id == id_or_name)).mappings().first()
            if row is None:
                row = conn.execute(select(api_keys).where(
                    api_keys.c.name == id_or_name, api_keys.c.revoked_at.is_(None))).mappings().first()
        return self._row(row) if row else None

    def revoke(self, id_or_name: str) -> ApiKey:
        key = self.get(id_or_name)
        if key is None:
            raise KeyStoreError(f"no key with id or name {id_or_name!r}")
        if key.revoked_at is None:
            with self.db.write() as conn:
                conn.execute(update(api_keys).where(api_keys.c.id == key.id, api_keys.c.revoked_at.is_(None))
                             .values(revoked_at=time.time()))
        return self.get(key.id)  # type: ignore[return-value]

    def has_keys(self) -> bool:
        """True once any key was ever created (revoked ones included): revoking the last key
        must not open the server. Cheap when there is no SQLite file and no database URL."""
        if self._db is None and self.database_url is None and not self.path.exists():
            return False
        with self.db.read() as conn:
            return conn.execute(select(api_keys.c.id).limit(1)).first() is not None

    def authenticate(self, presented: str) -> ApiKey | None:
        """The active key whose plaintext is ``presented``, else None."""
        match = _KEY_RE.match(presented)
        if match is None:
            return None
        key_id, secret = match.groups()
        with self.db.read() as conn:
            row = conn.execute(select(api_keys).where(api_keys.c.id == key_id)).mappings().first()
        if row is None or not hmac.compare_digest(row["secret_sha256"], _sha256(secret)):
            return None
        key = self._row(row)
        return key if key.active else None

    # ---- usage ---------------------------------------------------------------------

    def add_usage(self, deltas: dict[str, tuple[int, int, int, int, float, float]]) -> None:
        """Add ``key_id -> (requests, prompt, completion, embedding, first_at, last_at)`` in one
        transaction; replicas add to the same rows, so the totals are the cluster's."""
        if not deltas:
            return
        statement = self.db.insert(usage)
        new = statement.excluded
        statement = statement.on_conflict_do_update(index_elements=["key_id"], set_={
            "requests": usage.c.requests + new.requests,
            "prompt_tokens": usage.c.prompt_tokens + new.prompt_tokens,
            "completion_tokens": usage.c.completion_tokens + new.completion_tokens,
            "embedding_tokens": usage.c.embedding_tokens + new.embedding_tokens,
            "first_at": case((usage.c.first_at.is_(None), new.first_at), (new.first_at < usage.c.first_at, new.first_at),
                             else_=usage.c.first_at),
            "last_at": case((usage.c.last_at.is_(None), new.last_at), (new.last_at > usage.c.last_at, new.last_at),
                            else_=usage.c.last_at),
        })
        rows = [{"key_id": k, "requests": v[0], "prompt_tokens": v[1], "completion_tokens": v[2],
                 "embedding_tokens": v[3], "first_at": v[4], "last_at": v[5]} for k, v in deltas.items()]
        with self.db.write() as conn:
            conn.execute(statement, rows)

    def usage(self) -> dict[str, dict[str, Any]]:
        with self.db.read() as conn:
            return {r["key_id"]: dict(r) for r in conn.execute(select(usage)).mappings()}

    @staticmethod
    def _row(row: Any) -> ApiKey:
        return ApiKey(
            id=row["id"], name=row["name"], groups=tuple(json.loads(row["groups"])), admin=bool(row["admin"]),
            rpm=row["rpm"], tpm=row["tpm"], created_at=row["created_at"], revoked_at=row["revoked_at"],
        )
