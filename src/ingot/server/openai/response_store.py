"""Stored responses (``store: true``): the response object, the input items it was made
from, and the conversation before it, so ``previous_response_id`` can continue it and
``GET /v1/responses/{id}`` / ``input_items`` can read it back.

``ResponseStore`` is the interface the routes use; ``SqlResponseStore`` keeps them in the
``responses`` state area (``data_dir/responses.sqlite`` on one node, the shared PostgreSQL
database across replicas, so a follow-up may land on any replica). Each row keeps its
whole context (the items of every earlier turn), so deleting an earlier response never
breaks a later one's chain.

Ownership lives in the record (``owner``: the API key id, ``None`` when auth is off);
``visible_to`` is the one rule: the owner or an admin.

Usage::

    store = SqlResponseStore(settings.data_dir, settings.database_url)
    store.put(StoredResponse(id, owner, created_at, response, input_items, context))
    record = store.get(id)
    items = record.conversation()  # context + input + output: the next turn's history
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import delete, select

from ingot.state.database import Database, open_database
from ingot.state.schema import stored_responses


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


class SqlResponseStore:
    """The ``responses`` area. Thread-safe; opens on first use (a server that never stores
    a response creates no file). Callers on the event loop run it in a worker thread."""

    def __init__(self, data_dir: Path, database_url: str | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.database_url = database_url
        self._lock = threading.Lock()
        self._db: Database | None = None

    @property
    def db(self) -> Database:
        with self._lock:
            if self._db is None:
                self._db = open_database("responses", data_dir=self.data_dir, url=self.database_url)
            return self._db

    def put(self, record: StoredResponse) -> None:
        values = {"id": record.id, "owner": record.owner, "created_at": record.created_at,
                  "response": _dump(record.response), "input_items": _dump(record.input_items),
                  "context": _dump(record.context)}
        statement = self.db.insert(stored_responses).values(values)
        with self.db.write() as conn:
            conn.execute(statement.on_conflict_do_update(
                index_elements=["id"], set_={k: v for k, v in values.items() if k != "id"}))

    def get(self, response_id: str) -> StoredResponse | None:
        with self.db.read() as conn:
            row = conn.execute(select(stored_responses).where(stored_responses.c.id == response_id)).mappings().first()
        if row is None:
            return None
        return StoredResponse(row["id"], row["owner"], row["created_at"], json.loads(row["response"]),
                              json.loads(row["input_items"]), json.loads(row["context"]))

    def delete(self, response_id: str) -> bool:
        with self.db.write() as conn:
            result = conn.execute(delete(stored_responses).where(stored_responses.c.id == response_id))
        return result.rowcount > 0

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
