"""Who is calling: the principal every route can ask for.

Without API keys configured every caller is the anonymous operator: admin, no group
restriction. Once a key exists (``ingot keys create``) or ``INGOT_REQUIRE_AUTH=1``, the
middleware (``server/middleware.py``) demands ``Authorization: Bearer <key>`` on every
protected route and sets ``request.state.principal`` from the key: its groups (an admin
key: ``None``, it reads everything) and whether it is an admin.
"""

from __future__ import annotations

import time

from dataclasses import dataclass, field
from typing import Any, Callable

from fastapi import Request

from ingot.config import Settings
from ingot.metrics import HttpMetrics
from ingot.security.acl import Caller
from ingot.security.keys import ApiKey, KeyStore
from ingot.security.quotas import Limiter, make_limiter
from ingot.security.usage import UsageLedger
from ingot.server.errors import APIError


@dataclass(frozen=True)
class Principal:
    key_id: str | None  # None: auth is off (no keys configured)
    name: str
    groups: tuple[str, ...] | None  # None: may read every document; a tuple: only public + these groups
    admin: bool
    rpm: int | None = None
    tpm: int | None = None

    @property
    def caller(self) -> Caller:
        """This principal as the tenancy rules see it (security/acl.py): an admin (or auth
        off) is the operator; any other key is its id and groups."""
        return Caller(self.key_id, None if self.admin else (self.groups or ()))


ANONYMOUS = Principal(key_id=None, name="anonymous", groups=None, admin=True)
# An open route (health, metrics, docs) while keys are on: no key, public documents only.
UNAUTHENTICATED = Principal(key_id=None, name="unauthenticated", groups=(), admin=False)


def principal_for(key: ApiKey) -> Principal:
    return Principal(key_id=key.id, name=key.name, groups=None if key.admin else key.groups, admin=key.admin,
                     rpm=key.rpm, tpm=key.tpm)


def get_principal(request: Request) -> Principal:
    """FastAPI dependency: the caller's principal (set by the auth middleware when keys exist)."""
    return getattr(request.state, "principal", ANONYMOUS)


def require_admin(request: Request) -> Principal:
    principal = get_principal(request)
    if not principal.admin:
        security = getattr(request.app.state, "security", None)
        if security is not None:
            security.metrics.auth_failures.labels("forbidden").inc()
        raise APIError(403, "this operation needs an admin key", type="permission_error", code="forbidden")
    return principal


@dataclass
class Security:
    """Keys, quotas and usage for one app (``app.state.security``)."""

    settings: Settings
    metrics: HttpMetrics
    keys: KeyStore = field(init=False)
    ledger: UsageLedger = field(init=False)
    limiter: Limiter = field(init=False)
    tracer: Any = None
    shutdown_tracer: Callable[[], None] = lambda: None
    _auth_on: bool = False
    _checked_at: float = float("-inf")

    def __post_init__(self) -> None:
        self.keys = KeyStore(self.settings.data_dir, self.settings.database_url)
        self.ledger = UsageLedger(self.keys)
        self.limiter = make_limiter(self.settings.redis_url)

    def auth_enabled(self) -> bool:
        """Latches on: once keys exist, removing them all never reopens the server. With a
        shared database the "no keys yet" answer is re-checked at most once a second (a
        round trip per request would block the event loop); a key made on another replica
        switches this one on within that second."""
        if not self._auth_on:
            now = time.monotonic()
            if self.settings.database_url is None or now - self._checked_at >= 1.0:
                self._checked_at = now
                self._auth_on = self.settings.require_auth or self.keys.has_keys()
        return self._auth_on

    def close(self) -> None:
        """At shutdown: persist pending usage, flush spans."""
        self.ledger.flush()
        self.keys.close()
        self.limiter.close()
        self.shutdown_tracer()


def get_security(request: Request) -> Security:
    return request.app.state.security
