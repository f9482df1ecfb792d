"""API keys over HTTP (admin only): the same store as ``ingot keys``."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import Field

from ingot.wire import WireModel
from ingot.security.keys import KeyExistsError, KeyStoreError
from ingot.server.auth import Security, get_security, require_admin
from ingot.server.errors import APIError

router = APIRouter(tags=["tenants"], dependencies=[Depends(require_admin)])


class CreateKeyRequest(WireModel):
    name: str = Field(..., description="Unique among active keys: letters, digits and _ . @ -.")
    groups: list[str] = Field(default_factory=list, description="ACL groups whose documents the key may read.")
    rpm: int | None = Field(None, ge=1, description="Requests per minute (none: unlimited).")
    tpm: int | None = Field(None, ge=1, description="Tokens per minute (none: unlimited).")
    admin: bool = False


@router.post("/v1/keys", status_code=201)
async def create_key(body: CreateKeyRequest, security: Security = Depends(get_security)) -> JSONResponse:
    """The answer's ``key`` is the only time the plaintext is shown."""
    try:
        record, plaintext = await asyncio.to_thread(security.keys.create, body.name, groups=body.groups,
                                                    admin=body.admin, rpm=body.rpm, tpm=body.tpm)
    except KeyStoreError as exc:
        raise APIError(409 if isinstance(exc, KeyExistsError) else 400, str(exc), param="name") from exc
    return JSONResponse({**record.public(), "key": plaintext}, status_code=201)


@router.get("/v1/keys")
async def list_keys(security: Security = Depends(get_security)) -> dict:
    keys = await asyncio.to_thread(security.keys.list, include_revoked=True)
    return {"object": "list", "data": [k.public() for k in keys]}


@router.delete("/v1/keys/{key_id}")
async def revoke_key(key_id: str, security: Security = Depends(get_security)) -> dict:
    """Revoke (kept for the usage history; never valid again)."""
    key = await asyncio.to_thread(security.keys.get, key_id)
    if key is None:
        raise APIError(404, f"no key with id or name {key_id!r}", type="not_found_error", param="key_id")
    revoked = await asyncio.to_thread(security.keys.revoke, key.id)
    return {**revoked.public(), "deleted": True}
