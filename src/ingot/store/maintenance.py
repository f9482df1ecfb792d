"""A store's upkeep (index training, compaction) in the background, off the write path.

A LanceDB index build takes seconds to minutes at 50k+ rows; done inside a write it held
up that document (and every writer waiting on the collection's lock). Writers now only
commit and ask for maintenance here; one thread runs ``store.maintain`` for the asked
collections, so upkeep never runs concurrently with itself and readers are never blocked.
"""

from __future__ import annotations

import logging
import threading
import time

from ingot.store.protocol import CollectionNotFound, VectorStore

log = logging.getLogger(__name__)


class BackgroundMaintenance:
    """Runs ``store.maintain(collection)`` for written collections in one background
    thread, so no write waits for an index build and maintenance never runs concurrently
    with itself. Requests for a collection already waiting merge into one; a request
    during a run queues another (the rows written meanwhile may make more upkeep due).
    The thread exits when idle; it is not a daemon, so a CLI run lets a build finish."""

    def __init__(self, store: VectorStore) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._pending: dict[str, None] = {}  # insertion-ordered set of collections
        self._thread: threading.Thread | None = None

    def request(self, collection: str) -> None:
        with self._lock:
            self._pending[collection] = None
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="ingot-store-maintenance")
                self._thread.start()

    def wait(self, timeout: float | None = None) -> bool:
        """Until nothing is pending or running (True), or ``timeout`` seconds (False)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._lock:
                thread = self._thread
            if thread is None:
                return True
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                return False

    def _run(self) -> None:
        while True:
            with self._lock:
                if not self._pending:
                    self._thread = None
                    return
                collection = next(iter(self._pending))
                del self._pending[collection]
            try:
                self.store.maintain(collection)
            except CollectionNotFound:
                pass  # dropped since it was written
            except Exception:  # noqa: BLE001 - the writes stand; the next request retries
                log.warning("maintenance of collection %r failed", collection, exc_info=True)
