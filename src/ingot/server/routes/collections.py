"""Collections, documents and ingestion jobs (docs/api.md). Thin: validate, call the
knowledge base, serialize. Store and catalog calls run in worker threads.

Tenancy (docs/api.md, "Tenancy"): creating and deleting collections needs an admin key;
every other call passes the caller (``Principal.caller``) to the knowledge base, which
applies the read, write and job-ownership rules of ``security/acl.py``."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import JSONResponse
from pydantic import Field

from ingot.errors import PermissionDeniedError
from ingot.wire import WireModel
from ingot.kb.service import KnowledgeBase, document_dict
from ingot.server.auth import Principal, get_principal, require_admin
from ingot.server.state import get_kb
from ingot.security.keys import GROUP_RE
from ingot.security.acl import acl_groups
from ingot.server.uploads import checked_uploads

router = APIRouter(tags=["knowledge base"])

GroupName = Annotated[str, Field(pattern=GROUP_RE.pattern)]  # the same rule as key groups


class CreateCollection(WireModel):
    name: str = Field(min_length=1, max_length=63)
    description: str = Field("", max_length=4096)
    acl: list[GroupName] = Field(default_factory=list, max_length=256)


@router.post("/v1/collections", status_code=201)
async def create_collection(
    body: CreateCollection, kb: KnowledgeBase = Depends(get_kb), _: Principal = Depends(require_admin)
) -> JSONResponse:
    """Admin only: a collection is a namespace every tenant shares (its name, description
    and default ACL), so a tenant must not squat names or set another's defaults."""
    info = await asyncio.to_thread(kb.create_collection, body.name, body.description, list(body.acl))
    return JSONResponse(info.to_dict(), status_code=201)


@router.get("/v1/collections")
async def list_collections(
    kb: KnowledgeBase = Depends(get_kb), principal: Principal = Depends(get_principal)
) -> JSONResponse:
    infos = await asyncio.to_thread(kb.collections, principal.caller)
    return JSONResponse({"object": "list", "data": [i.to_dict() for i in infos]})


@router.get("/v1/collections/{name}")
async def get_collection(
    name: str, kb: KnowledgeBase = Depends(get_kb), principal: Principal = Depends(get_principal)
) -> JSONResponse:
    return JSONResponse((await asyncio.to_thread(kb.collection, name, principal.caller)).to_dict())


@router.delete("/v1/collections/{name}")
async def delete_collection(
    name: str, kb: KnowledgeBase = Depends(get_kb), _: Principal = Depends(require_admin)
) -> JSONResponse:
    await asyncio.to_thread(kb.drop_collection, name)
    return JSONResponse({"object": "collection.deleted", "name": name, "deleted": True})


@router.post("/v1/collections/{name}/documents", status_code=202)
async def upload_documents(
    name: str,
    request: Request,
    files: list[UploadFile] = File(..., description="One or more files (PDF, DOCX, PPTX, XLSX, CSV, HTML, text, images)."),
    acl: str | None = Form(None, description="Comma-separated ACL groups for these files; default: the collection's."),
    kb: KnowledgeBase = Depends(get_kb),
    principal: Principal = Depends(get_principal),
) -> JSONResponse:
    groups = acl_groups(acl)
    if groups and principal.groups is not None and not set(groups) <= set(principal.groups):
        outside = ", ".join(sorted(set(groups) - set(principal.groups)))
        raise PermissionDeniedError(f"this key may not share documents with group(s) it is not in: {outside}", "acl")
    uploads = checked_uploads(files, kb.settings)
    await asyncio.to_thread(kb.collection, name)
    # full (507) or read-only (503) volume: refused before a byte is spooled
    await asyncio.to_thread(kb.check_storage, sum(f.size or 0 for _, f in uploads))
    job = await kb.submit_upload(name, [(n, f.file) for n, f in uploads], groups, principal.caller)
    return JSONResponse(kb.job_json(job), status_code=202, headers={"Location": f"/v1/jobs/{job.id}"})


@router.get("/v1/jobs/{job_id}")
async def get_job(
    job_id: str, kb: KnowledgeBase = Depends(get_kb), principal: Principal = Depends(get_principal)
) -> JSONResponse:
    return JSONResponse(kb.job_json(await asyncio.to_thread(kb.job, job_id, principal.caller)))


@router.get("/v1/jobs")
async def list_jobs(
    collection: str | None = Query(None), limit: int = Query(20, ge=1, le=200), kb: KnowledgeBase = Depends(get_kb),
    principal: Principal = Depends(get_principal),
) -> JSONResponse:
    jobs = await asyncio.to_thread(kb.list_jobs, collection, limit, principal.caller)
    return JSONResponse({"object": "list", "data": [kb.job_json(j) for j in jobs]})


@router.get("/v1/collections/{name}/documents")
async def list_documents(
    name: str, kb: KnowledgeBase = Depends(get_kb), principal: Principal = Depends(get_principal)
) -> JSONResponse:
    rows = await asyncio.to_thread(kb.documents, name, principal.caller)
    return JSONResponse({"object": "list", "data": [document_dict(r) for r in rows]})


@router.get("/v1/collections/{name}/documents/{document_id}")
async def get_document(
    name: str, document_id: str, kb: KnowledgeBase = Depends(get_kb), principal: Principal = Depends(get_principal)
) -> JSONResponse:
    return JSONResponse(document_dict(await asyncio.to_thread(kb.document, name, document_id, principal.caller)))


@router.delete("/v1/collections/{name}/documents/{document_id}")
async def delete_document(
    name: str, document_id: str, kb: KnowledgeBase = Depends(get_kb), principal: Principal = Depends(get_principal)
) -> JSONResponse:
    await asyncio.to_thread(kb.delete_document, name, document_id, principal.caller)  # 404 unread, 403 not owned
    return JSONResponse({"object": "document.deleted", "id": document_id, "deleted": True})
