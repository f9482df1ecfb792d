"""kb baseline: collections, documents, jobs and job items as of the SQLite-only releases.

Revision ID: kb_0001
Revises:
Create Date: 2026-12-02
"""

import sqlalchemy as sa

from ingot.state.migrations.helpers import ensure_table

revision = "kb_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    ensure_table(
        "collections",
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("description", sa.Text, nullable=False, server_default=""),
        sa.Column("acl", sa.Text, nullable=False, server_default="[]"),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("embedding_model", sa.Text),
        sa.Column("dimensions", sa.Integer),
    )
    ensure_table(
        "documents",
        sa.Column("collection", sa.Text, primary_key=True),
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("origin", sa.Text),
        sa.Column("content_hash", sa.Text, nullable=False),
        sa.Column("format", sa.Text),
        sa.Column("pages", sa.Integer),
        sa.Column("chunks", sa.Integer, nullable=False),
        sa.Column("acl", sa.Text, nullable=False, server_default="[]"),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.Column("writers", sa.Text, nullable=False, server_default="[]"),
    )
    ensure_table(
        "jobs",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("collection", sa.Text, nullable=False),
        sa.Column("origin", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("started_at", sa.Float),
        sa.Column("finished_at", sa.Float),
        sa.Column("owner_key", sa.Text),
        sa.Column("owner_groups", sa.Text),
        indexes=(("jobs_by_collection", ("collection", "created_at")),),
    )
    ensure_table(
        "job_items",
        sa.Column("job_id", sa.Text, primary_key=True),
        sa.Column("idx", sa.Integer, primary_key=True),
        sa.Column("filename", sa.Text, nullable=False),
        sa.Column("document_id", sa.Text, nullable=False),
        sa.Column("data_path", sa.Text, nullable=False),
        sa.Column("origin", sa.Text),
        sa.Column("acl", sa.Text, nullable=False, server_default="[]"),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("stage", sa.Text),
        sa.Column("action", sa.Text),
        sa.Column("format", sa.Text),
        sa.Column("pages", sa.Integer),
        sa.Column("chunks", sa.Integer),
        sa.Column("error_reason", sa.Text),
        sa.Column("error_message", sa.Text),
        sa.Column("started_at", sa.Float),
        sa.Column("finished_at", sa.Float),
        sa.Column("writers", sa.Text, nullable=False, server_default="[]"),
    )
