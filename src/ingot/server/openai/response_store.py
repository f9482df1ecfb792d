"""Stored responses (``store: true``): the response object, the input items it was made
from, and the conversation before it, so ``previous_response_id`` can continue it and
``GET /v1/responses/{id}`` / ``input_items`` can read it back.

``ResponseStore`` is the interface the routes use; ``SqliteResponseStore`` is the one
backend today (``data_dir/responses.sqlite``, WAL). A PostgreSQL backend only has to
implement the same four methods. Each row keeps its whole context (the items of every
earlier turn), so deleting an earlier response never breaks a later one's chain.

Ownership lives in the record (``owner``: the API key id, ``None`` when auth is off);
``visible_to`` is the one rule: the owner or an admin.

Usage::

    store = SqliteResponseStore(settings.data_dir)
    store.put(StoredResponse(id, owner, created_at, response, input_items, context))
    record = store.get(id)
    items = record.conversation()  # context + input + output: the next turn's history
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    id TEXT PRIMARY KEY,
    owner TEXT,
    created_at INTEGER NOT NULL,
    response TEXT NOT NULL,
    input_items TEXT NOT NULL,
    context TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS responses_owner ON responses (owner, created_at);
"""


@dataclass
class StoredResponse:
    id: str
    owner: str | None  # the API key id; None: made while auth was off
    created_at: int
    response: dict[str, Any]  # the response object as served
    input_items: list[dict[str, Any]]  # this request's input items (with ids)
    context: list[dict[str, Any]]  # the conversation before them (earlier turns' input and output)

    def conversation(self) -> list[dict[str, Any]]:
        """What a follow-up with ``previous_response_id`` = this id continues from."""
        return [*self.context, *self.input_items, *self.response.get("output", [])]

    def visible_to(self, key_id: str | None, admin: bool) -> bool:
        return admin or (self.owner is not None and self.owner == key_id)


class ResponseStore(Protocol):
    def put(self, record: StoredResponse) -> None: ...

    def get(self, response_id: str) -> StoredResponse | None: ...

    def delete(self, response_id: str) -> bool: ...

    def close(self) -> None: ...


class SqliteResponseStore:
    """``data_dir/responses.sqlite``. Thread-safe (one connection behind a lock); callers on
    the event loop run it in a worker thread."""

    FILENAME = "responses.sqlite"

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / self.FILENAME
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, check_same_thread=False, timeout=10, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.executescript(SCHEMA)
            self._conn = conn
        return self._conn

    def put(self, record: StoredResponse) -> None:
        row = (record.id, record.owner, record.created_at, _dump(record.response), _dump(record.input_items),
               _dump(record.context))
        with self._lock:
            self._connection().execute(
                "INSERT OR REPLACE INTO responses (id, owner, created_at, response, input_items, context) "
                "VALUES (?, ?, ?, ?, ?, ?)", row)

    def get(self, response_id: str) -> StoredResponse | None:
        with self._lock:
            row = self._connection().execute(
                "SELECT id, owner, created_at, response, input_items, context FROM responses WHERE id = ?",
                (response_id,)).fetchone()
        if row is None:
            return None
        return StoredResponse(row[0], row[1], row[2], json.loads(row[3]), json.loads(row[4]), json.loads(row[5]))

    def delete(self, response_id: str) -> bool:
        with self._lock:
            cursor = self._connection().execute("DELETE FROM responses WHERE id = ?", (response_id,))
        return cursor.rowcount > 0

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
