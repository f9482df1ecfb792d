"""auth baseline: API keys (hashed) and per-key usage counters.

Revision ID: auth_0001
Revises:
Create Date: 2026-12-02
"""

import sqlalchemy as sa

from ingot.state.migrations.helpers import ensure_table

revision = "auth_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    ensure_table(
        "api_keys",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("secret_sha256", sa.Text, nullable=False),
        sa.Column("groups", sa.Text, nullable=False),
        sa.Column("admin", sa.Integer, nullable=False),
        sa.Column("rpm", sa.Integer),
        sa.Column("tpm", sa.Integer),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("revoked_at", sa.Float),
    )
    ensure_table(
        "usage",
        sa.Column("key_id", sa.Text, primary_key=True),
        sa.Column("requests", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("prompt_tokens", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("completion_tokens", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("embedding_tokens", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("first_at", sa.Float),
        sa.Column("last_at", sa.Float),
    )
