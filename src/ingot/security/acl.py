"""ACL groups as uploads and ``ingot ingest --acl`` state them: ``"a, b"`` -> ``["a", "b"]``."""

from __future__ import annotations

from ingot.errors import InvalidRequestError
from ingot.security.keys import GROUP_RE


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
