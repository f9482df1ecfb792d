"""Opening an area's database: SQLite under ``data_dir`` or PostgreSQL by URL, migrated.

Three areas keep state: ``kb`` (collections, documents, jobs), ``auth`` (keys, usage) and
``responses`` (the Responses API's stored responses). On one node each is its own SQLite
file (the layout since the first release, so an existing ``data_dir`` opens unchanged);
with ``INGOT_DATABASE_URL`` all three share one PostgreSQL database, which is what lets
several replicas and workers see the same catalog, keys and jobs.

Opening migrates: every area has its own Alembic history (``migrations/<area>``) and
version table (``alembic_version_<area>``), and ``open_database`` upgrades it to head
inside one transaction, under a lock that makes concurrent openers (two replicas
starting, a CLI next to a server) wait for each other instead of racing the DDL:
``BEGIN IMMEDIATE`` on SQLite, a transaction-scoped advisory lock on PostgreSQL.

SQLite specifics, set on every connection: WAL (readers never wait for the writer), the
area's ``synchronous`` level (``FULL`` for the catalog: an acknowledged job is on disk),
a busy timeout, and ``BEGIN IMMEDIATE`` for write transactions (``Database.write``) so
two writers queue on the lock rather than fail half-way with "database is locked".

Usage::

    db = open_database("kb", data_dir=settings.data_dir, url=settings.database_url)
    with db.write() as conn:
        conn.execute(insert(collections).values(...))
    with db.read() as conn:
        rows = conn.execute(select(collections)).all()
"""

from __future__ import annotations

import logging
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, MetaData, create_engine, event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError
from sqlalchemy.sql.expression import Insert

from ingot.state import schema

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 30_000


@dataclass(frozen=True)
class Area:
    """One area of state: its tables, its SQLite file name and how hard SQLite syncs it."""

    name: str
    sqlite_file: str
    metadata: MetaData
    synchronous: str  # SQLite PRAGMA synchronous: FULL where an acknowledgement promises durability


AREAS = {
    "kb": Area("kb", "kb.sqlite", schema.kb, "FULL"),
    "auth": Area("auth", "auth.sqlite3", schema.auth, "NORMAL"),
    "responses": Area("responses", "responses.sqlite", schema.responses, "NORMAL"),
}


class DatabaseConfigError(ValueError):
    """``INGOT_DATABASE_URL`` names no database ingot can use; the message says why."""


def engine_url(area: Area, data_dir: Path, url: str | None) -> str:
    """The SQLAlchemy URL for ``area``: the configured database, else its SQLite file.
    ``postgresql://`` (what operators and libpq write) is read as psycopg 3, the driver
    ingot ships; SQLAlchemy's default for that scheme would be psycopg2."""
    if not url:
        return f"sqlite:///{Path(data_dir) / area.sqlite_file}"
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


class Database:
    """An area's engine plus the two ways code uses it: a read and a write transaction."""

    def __init__(self, engine: Engine, area: Area) -> None:
        self.engine = engine
        self.area = area

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``: the one place above that may branch on it is a
        JSON function (``kb/catalog.py``); everything else is plain SQLAlchemy core."""
        return self.engine.dialect.name

    @property
    def shared(self) -> bool:
        """True when other processes on other machines may use this database too."""
        return self.dialect != "sqlite"

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            yield conn
            conn.rollback()

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A transaction that commits on success and rolls back on any exception."""
        with self.engine.connect().execution_options(ingot_write=True) as conn, conn.begin():
            yield conn

    def insert(self, table: Any) -> Insert:
        """The dialect's INSERT, which has ``on_conflict_do_update``/``do_nothing`` on both
        backends (the same API), so an upsert is written once."""
        module = postgresql if self.dialect == "postgresql" else sqlite
        return module.insert(table)

    def close(self) -> None:
        self.engine.dispose()


def open_database(area_name: str, *, data_dir: Path, url: str | None = None) -> Database:
    """The migrated database of ``area_name`` (``kb``, ``auth`` or ``responses``)."""
    area = AREAS[area_name]
    target = engine_url(area, data_dir, url)
    try:
        parsed = make_url(target)
    except ArgumentError as exc:
        raise DatabaseConfigError(f"INGOT_DATABASE_URL is not a database URL: {exc}") from None
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise DatabaseConfigError(
            f"INGOT_DATABASE_URL must be postgresql://... (or unset for SQLite), not {parsed.get_backend_name()}://")
    if parsed.get_backend_name() == "sqlite":
        Path(data_dir).mkdir(parents=True, exist_ok=True)
        engine = create_engine(target)
        _sqlite_pragmas(engine, area)
    else:
        try:
            engine = create_engine(target, pool_pre_ping=True, pool_size=5, max_overflow=10)
        except NoSuchModuleError as exc:
            raise DatabaseConfigError(f"INGOT_DATABASE_URL: {exc}") from None
    database = Database(engine, area)
    _migrate(database)
    return database


def _sqlite_pragmas(engine: Engine, area: Area) -> None:
    """WAL, the area's durability and explicit transactions on every new connection."""

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # pysqlite's own implicit BEGIN off; SQLAlchemy's "begin" below
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={area.synchronous}")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        writing = conn.get_execution_options().get("ingot_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if writing else "BEGIN")


_MIGRATE_LOCK = threading.Lock()  # Alembic's command API keeps module-level state
logging.getLogger("alembic").setLevel(logging.WARNING)  # an up-to-date area is not news at every start


def _migrate(database: Database) -> None:
    """Upgrade the area to its newest revision, one opener at a time."""
    area = database.area
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("version_locations", str(MIGRATIONS / area.name))
    config.set_main_option("path_separator", "os")
    with _MIGRATE_LOCK, database.write() as conn:
        if database.dialect == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _lock_key(area)})
        config.attributes["connection"] = conn
        config.attributes["version_table"] = f"alembic_version_{area.name}"
        command.upgrade(config, "head")


def _lock_key(area: Area) -> int:
    """A stable 32-bit advisory-lock number per area (the same in every process)."""
    return zlib.crc32(f"ingot-migrate-{area.name}".encode())
