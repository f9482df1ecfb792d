"""Embedding progress of a big document in the job table, so every replica shows it.

Revision ID: kb_0003
Revises: kb_0002
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "kb_0003"
down_revision = "kb_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("job_items", sa.Column("chunks_embedded", sa.Integer))
    op.add_column("job_items", sa.Column("chunks_total", sa.Integer))
