"""Token accounting per request and per key.

The services know how many tokens a request used (prompt, streamed completion, embedded
input), the HTTP layer knows who asked. They meet through a context variable: the auth
middleware opens a :class:`RequestUsage` for each request, and any service running for
that request calls :func:`charge` (``charge(prompt=12)``, ``charge(completion=1)``,
``charge(embedding=30)``). Outside a request (CLI, tests, background ingestion) ``charge``
does nothing. RAG and search calling the generation/embedding services are counted
against the caller the same way, without extra plumbing.

:class:`UsageLedger` adds finished requests into the key store, batched: at most one
SQLite transaction per ``flush_interval`` on the request path, and a final flush at
shutdown, so accounting costs a dict update per request.
"""

from __future__ import annotations

import contextvars
import threading
import time
from dataclasses import dataclass
from typing import Any

from ingot.security.keys import KeyStore

ANONYMOUS_ID = "anonymous"


@dataclass
class RequestUsage:
    prompt: int = 0
    completion: int = 0
    embedding: int = 0

    @property
    def tokens(self) -> int:
        return self.prompt + self.completion + self.embedding


_current: contextvars.ContextVar[RequestUsage | None] = contextvars.ContextVar("ingot_request_usage", default=None)


def charge(*, prompt: int = 0, completion: int = 0, embedding: int = 0) -> None:
    """Count tokens against the caller of the current request (no-op outside one)."""
    usage = _current.get()
    if usage is not None:
        usage.prompt += prompt
        usage.completion += completion
        usage.embedding += embedding


def open_request() -> tuple[RequestUsage, contextvars.Token]:
    usage = RequestUsage()
    return usage, _current.set(usage)


def close_request(token: contextvars.Token) -> None:
    _current.reset(token)


class UsageLedger:
    """Per-key totals: persisted rows plus what is pending since the last flush."""

    def __init__(self, store: KeyStore, flush_interval: float = 1.0) -> None:
        self._store = store
        self._interval = flush_interval
        self._pending: dict[str, list[float]] = {}
        self._lock = threading.Lock()
        self._flushed_at = time.monotonic()

    def record(self, key_id: str, usage: RequestUsage) -> None:
        now = time.time()
        with self._lock:
            row = self._pending.get(key_id)
            if row is None:
                self._pending[key_id] = [1, usage.prompt, usage.completion, usage.embedding, now, now]
            else:
                row[0] += 1
                row[1] += usage.prompt
                row[2] += usage.completion
                row[3] += usage.embedding
                row[5] = now
            due = time.monotonic() - self._flushed_at >= self._interval
        if due:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, {}
            self._flushed_at = time.monotonic()
        if pending:
            self._store.add_usage({k: tuple(v) for k, v in pending.items()})  # type: ignore[misc]

    def totals(self) -> dict[str, dict[str, Any]]:
        """key id -> requests, prompt/completion/embedding/total tokens, first/last request time."""
        self.flush()
        out: dict[str, dict[str, Any]] = {}
        for key_id, row in self._store.usage().items():
            tokens = row["prompt_tokens"] + row["completion_tokens"] + row["embedding_tokens"]
            out[key_id] = {
                "requests": row["requests"], "prompt_tokens": row["prompt_tokens"],
                "completion_tokens": row["completion_tokens"], "embedding_tokens": row["embedding_tokens"],
                "total_tokens": tokens,
                "first_request_at": int(row["first_at"]) if row["first_at"] else None,
                "last_request_at": int(row["last_at"]) if row["last_at"] else None,
            }
        return out
