"""What the baseline revisions share: create a table only where an older ingot has not
already made it, and add the columns such an older table lacks.

Before Alembic, each store ran ``CREATE TABLE IF NOT EXISTS`` and added columns by hand;
a ``data_dir`` from then has the tables but no version table. The baselines therefore
look before they create, so they are right for a fresh database and for those files.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


def existing_columns(table: str) -> set[str] | None:
    """The table's column names, or None when it does not exist."""
    inspector = sa.inspect(op.get_bind())
    if not inspector.has_table(table):
        return None
    return {c["name"] for c in inspector.get_columns(table)}


def ensure_table(name: str, *columns: sa.Column, indexes: tuple[tuple[str, tuple[str, ...]], ...] = ()) -> None:
    """Create ``name`` with ``columns`` (and ``indexes``), or add the missing columns."""
    present = existing_columns(name)
    if present is None:
        op.create_table(name, *columns)
        for index_name, index_columns in indexes:
            op.create_index(index_name, name, list(index_columns))
        return
    for column in columns:
        if column.name not in present:
            op.add_column(name, column)
