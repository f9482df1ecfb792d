"""The shared job queue: an item's size (small files first) and its lease.

Workers in any process claim items from the database and hold them by a lease they
renew; an item whose holder died is claimable again once the lease expires.

Revision ID: kb_0002
Revises: kb_0001
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "kb_0002"
down_revision = "kb_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("job_items", sa.Column("size_bytes", sa.BigInteger, nullable=False, server_default="0"))
    op.add_column("job_items", sa.Column("lease_owner", sa.Text))
    op.add_column("job_items", sa.Column("lease_expires", sa.Float))
    op.create_index("job_items_claimable", "job_items", ["status", "lease_expires"])
