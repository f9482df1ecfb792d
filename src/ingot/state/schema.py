"""The tables of every state area, as SQLAlchemy core metadata.

These are what the code reads and writes; the Alembic revisions in ``migrations/<area>``
create and evolve them (a revision never imports this module: it states the change it
makes, so an old revision stays true when the tables here move on).

Types are chosen to read the same on SQLite and PostgreSQL: JSON lists are TEXT (they
are only ever compared whole or expanded by ``acl_values``), times are float seconds.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Float, Index, Integer, MetaData, Table, Text

kb = MetaData()
auth = MetaData()
responses = MetaData()

collections = Table(
    "collections", kb,
    Column("name", Text, primary_key=True),
    Column("description", Text, nullable=False, server_default=""),
    Column("acl", Text, nullable=False, server_default="[]"),
    Column("created_at", Float, nullable=False),
    Column("embedding_model", Text),
    Column("dimensions", Integer),
)

documents = Table(
    "documents", kb,
    Column("collection", Text, primary_key=True),
    Column("id", Text, primary_key=True),
    Column("source", Text, nullable=False),
    Column("origin", Text),
    Column("content_hash", Text, nullable=False),
    Column("format", Text),
    Column("pages", Integer),
    Column("chunks", Integer, nullable=False),
    Column("acl", Text, nullable=False, server_default="[]"),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("writers", Text, nullable=False, server_default="[]"),  # owner scope; [] = admins only
)

jobs = Table(
    "jobs", kb,
    Column("id", Text, primary_key=True),
    Column("collection", Text, nullable=False),
    Column("origin", Text, nullable=False),  # 'upload' (any server or worker resumes it) or 'cli'
    Column("status", Text, nullable=False),  # queued | running | done
    Column("created_at", Float, nullable=False),
    Column("started_at", Float),
    Column("finished_at", Float),
    Column("owner_key", Text),  # the uploading key's id; NULL: the operator
    Column("owner_groups", Text),  # JSON list of that key's groups; NULL: the operator
    Index("jobs_by_collection", "collection", "created_at"),
)

job_items = Table(
    "job_items", kb,
    Column("job_id", Text, primary_key=True),
    Column("idx", Integer, primary_key=True),
    Column("filename", Text, nullable=False),
    Column("document_id", Text, nullable=False),
    Column("data_path", Text, nullable=False),  # a spool file of an upload, or the CLI's source path
    Column("origin", Text),  # absolute source path (CLI) for --sync; NULL for uploads
    Column("acl", Text, nullable=False, server_default="[]"),
    Column("status", Text, nullable=False),  # queued | running | done | failed
    Column("stage", Text),  # extract | chunk | embed | store while running
    Column("action", Text),  # added | replaced | unchanged
    Column("format", Text),
    Column("pages", Integer),
    Column("chunks", Integer),
    Column("error_reason", Text),
    Column("error_message", Text),
    Column("started_at", Float),
    Column("finished_at", Float),
    Column("writers", Text, nullable=False, server_default="[]"),
    # The queue (kb/queue.py): who holds the item and until when. A holder renews its
    # lease while it works; an expired lease is anyone's to take again.
    Column("size_bytes", BigInteger, nullable=False, server_default="0"),
    Column("lease_owner", Text),
    Column("lease_expires", Float),
    # a big document's embedding progress while it runs (every replica's job view reads it)
    Column("chunks_embedded", Integer),
    Column("chunks_total", Integer),
    Index("job_items_claimable", "status", "lease_expires"),
)

api_keys = Table(
    "api_keys", auth,
    Column("id", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("secret_sha256", Text, nullable=False),
    Column("groups", Text, nullable=False),  # JSON list
    Column("admin", Integer, nullable=False),
    Column("rpm", Integer),  # NULL: no limit
    Column("tpm", Integer),
    Column("created_at", Float, nullable=False),
    Column("revoked_at", Float),
)

usage = Table(
    "usage", auth,
    Column("key_id", Text, primary_key=True),  # an api_keys.id, or 'anonymous' while auth is off
    Column("requests", BigInteger, nullable=False, server_default="0"),
    Column("prompt_tokens", BigInteger, nullable=False, server_default="0"),
    Column("completion_tokens", BigInteger, nullable=False, server_default="0"),
    Column("embedding_tokens", BigInteger, nullable=False, server_default="0"),
    Column("first_at", Float),
    Column("last_at", Float),
)

stored_responses = Table(
    "responses", responses,
    Column("id", Text, primary_key=True),
    Column("owner", Text),
    Column("created_at", Integer, nullable=False),
    Column("response", Text, nullable=False),
    Column("input_items", Text, nullable=False),
    Column("context", Text, nullable=False),
    Index("responses_owner", "owner", "created_at"),
)
