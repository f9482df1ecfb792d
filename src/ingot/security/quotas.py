"""Per-key requests/min and tokens/min as token buckets.

Each limit is a bucket of ``limit`` units refilled at ``limit / 60`` per second, so a key
may burst up to its per-minute limit and is then held to the steady rate.

Tokens are only known when a request ends (completion length, streamed or not), so a
request is admitted while the key's token bucket is above zero and its real tokens are
charged when it finishes; one large request may overdraw the bucket and the key then waits
(``Retry-After``) until the debt is repaid. That is the usual trade-off of servers that do
not reserve ``max_tokens`` up front (which would refuse most requests of a small quota).

Limitation: the buckets live in this process. With N replicas behind a load balancer each
replica enforces the limits on its own, so a key gets up to N times its quota; a shared
store (Redis) would be the fix when ingot runs replicated.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field


@dataclass
class TokenBucket:
    capacity: float
    rate: float  # units per second
    level: float = field(init=False)
    stamp: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.level = self.capacity

    def _refill(self, now: float) -> None:
        self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
        self.stamp = now

    def wait_for(self, need: float, now: float) -> float:
        """Seconds until ``need`` units are available (0: now)."""
        self._refill(now)
        return 0.0 if self.level >= need else (need - self.level) / self.rate

    def take(self, amount: float, now: float) -> None:
        self._refill(now)
        self.level -= amount


@dataclass(frozen=True)
class Rejection:
    limit: str  # "rpm" or "tpm"
    per_minute: int
    retry_after: int  # whole seconds, >= 1


class QuotaLimiter:
    """Buckets per key id, rebuilt when a key's limits change."""

    def __init__(self) -> None:
        self._buckets: dict[str, tuple[int | None, int | None, TokenBucket | None, TokenBucket | None]] = {}
        self._lock = threading.Lock()

    def _for(self, key_id: str, rpm: int | None, tpm: int | None) -> tuple[TokenBucket | None, TokenBucket | None]:
        entry = self._buckets.get(key_id)
        if entry is None or entry[0] != rpm or entry[1] != tpm:
            entry = (rpm, tpm, TokenBucket(rpm, rpm / 60) if rpm else None, TokenBucket(tpm, tpm / 60) if tpm else None)
            self._buckets[key_id] = entry
        return entry[2], entry[3]

    def admit(self, key_id: str, rpm: int | None, tpm: int | None) -> Rejection | None:
        """Take one request from the key's buckets, or say how long to wait."""
        if not rpm and not tpm:
            return None
        now = time.monotonic()
        with self._lock:
            requests, tokens = self._for(key_id, rpm, tpm)
            if tokens is not None:
                # Admitted while the balance is positive: wait until it is back above zero.
                wait = tokens.wait_for(min(1.0, tokens.capacity), now)
                if wait > 0:
                    return Rejection("tpm", int(tpm), max(1, math.ceil(wait)))  # type: ignore[arg-type]
            if requests is not None:
                wait = requests.wait_for(1.0, now)
                if wait > 0:
                    return Rejection("rpm", int(rpm), max(1, math.ceil(wait)))  # type: ignore[arg-type]
                requests.take(1.0, now)
        return None

    def charge_tokens(self, key_id: str, tokens: int) -> None:
        """Charge a finished request's tokens (the bucket may go below zero)."""
        if tokens <= 0:
            return
        with self._lock:
            entry = self._buckets.get(key_id)
            if entry is not None and entry[3] is not None:
                entry[3].take(float(tokens), time.monotonic())
