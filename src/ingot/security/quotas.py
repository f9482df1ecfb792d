"""Per-key requests/min and tokens/min as token buckets.

Each limit is a bucket of ``limit`` units refilled at ``limit / 60`` per second, so a key
may burst up to its per-minute limit and is then held to the steady rate.

Tokens are only known when a request ends (completion length, streamed or not), so a
request is admitted while the key's token bucket is above zero and its real tokens are
charged when it finishes; one large request may overdraw the bucket and the key then waits
(``Retry-After``) until the debt is repaid. That is the usual trade-off of servers that do
not reserve ``max_tokens`` up front (which would refuse most requests of a small quota).

Two implementations of one interface (``admit`` / ``charge_tokens``): ``QuotaLimiter``
keeps the buckets in this process (one node; with N replicas a key would get N times its
quota), ``RedisQuotaLimiter`` keeps them in Redis (``INGOT_REDIS_URL``) so every replica
draws from the same buckets. There each decision is one Lua script, atomic on the Redis
server and timed by the server's clock, so replicas with skewed clocks still agree.
``make_limiter`` picks one from the settings.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from typing import Protocol

import redis


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

    def charge_tokens(self, key_id: str, tokens: int, tpm: int | None = None) -> None:
        """Charge a finished request's tokens (the bucket may go below zero). ``tpm`` is
        the key's limit (the Redis limiter needs it; here the bucket already knows)."""
        if tokens <= 0:
            return
        with self._lock:
            entry = self._buckets.get(key_id)
            if entry is not None and entry[3] is not None:
                entry[3].take(float(tokens), time.monotonic())

    def close(self) -> None:
        """Nothing to release: the buckets are this process's memory."""


class Limiter(Protocol):
    def admit(self, key_id: str, rpm: int | None, tpm: int | None) -> Rejection | None: ...

    def charge_tokens(self, key_id: str, tokens: int, tpm: int | None = None) -> None: ...

    def close(self) -> None: ...


# Buckets are hashes {level, stamp}; a missing one is full. Returns false (admitted) or
# {limit, seconds to wait}. Numbers go back as strings: Redis truncates Lua floats.
_REFILL = """
local function refill(key, cap, now)
  local v = redis.call('HMGET', key, 'level', 'stamp')
  local level = tonumber(v[1]) or cap
  local stamp = tonumber(v[2]) or now
  return math.min(cap, level + math.max(0, now - stamp) * cap / 60)
end
local function store(key, level, now)
  redis.call('HSET', key, 'level', tostring(level), 'stamp', tostring(now))
  redis.call('EXPIRE', key, 120)
end
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
"""
_ADMIT = _REFILL + """
local rpm = tonumber(ARGV[1])
local tpm = tonumber(ARGV[2])
if tpm > 0 then
  local level = refill(KEYS[2], tpm, now)
  store(KEYS[2], level, now)
  local need = math.min(1, tpm)
  if level < need then return {'tpm', tostring((need - level) * 60 / tpm)} end
end
if rpm > 0 then
  local level = refill(KEYS[1], rpm, now)
  if level < 1 then
    store(KEYS[1], level, now)
    return {'rpm', tostring((1 - level) * 60 / rpm)}
  end
  store(KEYS[1], level - 1, now)
end
return false
"""
_CHARGE = _REFILL + """
local tpm = tonumber(ARGV[1])
store(KEYS[1], refill(KEYS[1], tpm, now) - tonumber(ARGV[2]), now)
return 1
"""


class RedisQuotaLimiter:
    """The same buckets as ``QuotaLimiter``, shared through Redis by every replica."""

    PREFIX = "ingot:quota:"

    def __init__(self, url: str) -> None:
        self.client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2,
                                           health_check_interval=30)
        self._admit = self.client.register_script(_ADMIT)
        self._charge = self.client.register_script(_CHARGE)

    def admit(self, key_id: str, rpm: int | None, tpm: int | None) -> Rejection | None:
        if not rpm and not tpm:
            return None
        keys = [f"{self.PREFIX}{key_id}:rpm", f"{self.PREFIX}{key_id}:tpm"]
        result = self._admit(keys=keys, args=[rpm or 0, tpm or 0])
        if not result:
            return None
        limit, wait = result[0].decode(), float(result[1])
        per_minute = rpm if limit == "rpm" else tpm
        return Rejection(limit, int(per_minute), max(1, math.ceil(wait)))  # type: ignore[arg-type]

    def charge_tokens(self, key_id: str, tokens: int, tpm: int | None = None) -> None:
        if tokens <= 0 or not tpm:
            return
        self._charge(keys=[f"{self.PREFIX}{key_id}:tpm"], args=[tpm, tokens])

    def close(self) -> None:
        self.client.close()


def make_limiter(redis_url: str | None) -> Limiter:
    """Redis buckets when a URL is configured (replicas), else this process's own."""
    return RedisQuotaLimiter(redis_url) if redis_url else QuotaLimiter()
