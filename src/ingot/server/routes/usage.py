"""GET /v1/usage: requests and tokens per API key (a key sees its own; an admin, all)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from ingot.security.usage import ANONYMOUS_ID
from ingot.server.auth import Principal, Security, get_principal, get_security

router = APIRouter(tags=["tenants"])


def _empty() -> dict:
    return {"requests": 0, "prompt_tokens": 0, "completion_tokens": 0, "embedding_tokens": 0, "total_tokens": 0,
            "first_request_at": None, "last_request_at": None}


@router.get("/v1/usage")
async def usage(request: Request, principal: Principal = Depends(get_principal),
                security: Security = Depends(get_security)) -> dict:
    """Totals since each key was created; counted when a request finishes (streams included)."""
    totals = security.ledger.totals()
    names = {key.id: key for key in security.keys.list(include_revoked=True)}
    if principal.key_id is not None and not principal.admin:
        visible = [principal.key_id]
    else:
        visible = [*names, *(k for k in totals if k not in names)]
    data = []
    for key_id in visible:
        key = names.get(key_id)
        data.append({"object": "usage", "key_id": key_id,
                     "name": key.name if key else ("anonymous" if key_id == ANONYMOUS_ID else None),
                     "revoked": bool(key and not key.active), **totals.get(key_id, _empty())})
    return {"object": "list", "data": data}
