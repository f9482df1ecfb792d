"""Alembic environment for every state area.

``state/database.py`` runs it with the connection it already holds (inside the
transaction that took the migration lock) and names the area's version table; the
area's revisions come from ``version_locations`` (``migrations/<area>``). There is no
offline (SQL script) mode: ingot migrates the database it opens.
"""

from alembic import context

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=None,
    version_table=context.config.attributes["version_table"],
    transaction_per_migration=False,
)
with context.begin_transaction():
    context.run_migrations()
