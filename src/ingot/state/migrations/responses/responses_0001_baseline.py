"""responses baseline: stored Responses API objects with their conversation context.

Revision ID: responses_0001
Revises:
Create Date: 2026-12-02
"""

import sqlalchemy as sa

from ingot.state.migrations.helpers import ensure_table

revision = "responses_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    ensure_table(
        "responses",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("owner", sa.Text),
        sa.Column("created_at", sa.Integer, nullable=False),
        sa.Column("response", sa.Text, nullable=False),
        sa.Column("input_items", sa.Text, nullable=False),
        sa.Column("context", sa.Text, nullable=False),
        indexes=(("responses_owner", ("owner", "created_at")),),
    )
