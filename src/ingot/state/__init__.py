"""Shared state: the databases behind the catalog, jobs, keys, usage and stored responses.

One node needs nothing: each area is a SQLite file under ``data_dir`` (today's layout).
Several replicas set ``INGOT_DATABASE_URL=postgresql://...`` and every area's tables live
side by side in that one database. Both go through SQLAlchemy core and Alembic
migrations (``database.py``), so no module above writes a dialect by hand.
"""
