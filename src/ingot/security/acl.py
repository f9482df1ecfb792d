"""ACL groups as uploads and ``ingot ingest --acl`` state them (``"a, b"`` -> ``["a", "b"]``),
and the tenancy rules every route and the knowledge base apply: who may *read* a
document (its ``acl``), who may *write* it (its ``writers``, the owner scope), and which
id a caller's upload of a name gets.

Why two lists: ``acl`` is who the uploader shares a document with (readers); ``writers``
is who owns it, fixed at the first upload: the uploading key's groups (or, for a key in no
group, the key itself; for an admin or the CLI, the operator: ``[]``). Sharing a document
for reading must never let the readers replace or delete it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from ingot.errors import InvalidRequestError
from ingot.security.keys import GROUP_RE

# A scope entry for a key in no group. "/" is outside GROUP_RE, so no group can equal it.
KEY_SCOPE_PREFIX = "key/"


@dataclass(frozen=True)
class Caller:
    """Who asks, as the tenancy rules see it. ``groups=None``: an admin key, the CLI, or a
    server without keys (reads and writes everything, sees every job)."""

    key_id: str | None = None
    groups: tuple[str, ...] | None = None

    @property
    def is_operator(self) -> bool:
        return self.groups is None


OPERATOR = Caller()


def acl_groups(raw: str | None) -> list[str] | None:
    """``"a, b"`` -> ``["a", "b"]``; None when the field is absent (inherit the collection's)."""
    if raw is None:
        return None
    groups = [g.strip() for g in raw.split(",") if g.strip()]
    for group in groups:
        if not GROUP_RE.match(group):
            raise InvalidRequestError(f"invalid ACL group {group!r}: up to 64 letters, digits and _ . : @ - "
                                      "(starting with a letter or digit)", "acl")
    return sorted(set(groups))


def may_read(caller: Caller, acl: Sequence[str]) -> bool:
    """Same rule as the store filter: everything for the operator, else public (no ACL)
    or sharing a group."""
    return caller.groups is None or not acl or bool(set(acl) & set(caller.groups))


def write_scope(caller: Caller) -> list[str]:
    """The ``writers`` of a document this caller creates: ``[]`` (the operator) for an
    admin, else the key's groups, or ``["key/<id>"]`` for a key in no group (its documents
    are its own, never the operator's)."""
    if caller.groups is None:
        return []
    if caller.groups:
        return sorted(set(caller.groups))
    return [KEY_SCOPE_PREFIX + (caller.key_id or "anonymous")]


def may_write(caller: Caller, writers: Sequence[str]) -> bool:
    """The operator writes everything; anyone else writes a document whose owner groups it
    all belongs to. Operator-owned documents (``writers == []``: uploaded by an admin or the
    CLI, or written before owners were recorded) are the admins' alone."""
    if caller.groups is None:
        return True
    return bool(writers) and set(writers) <= set(write_scope(caller))


def scoped_document_id(source: str, writers: Sequence[str] = ()) -> str:
    """Stable id from (owner scope, source name). The operator's scope (``[]``) keeps the
    id of older versions (a hash of the name alone), so existing catalogs keep their ids;
    another scope hashes its writers in, so two tenants' ``plan.txt`` are two documents
    and one tenant can never address (replace, or learn of) another's by its name."""
    key = source if not writers else ",".join(sorted(writers)) + "\x00" + source
    return "doc_" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:24]
