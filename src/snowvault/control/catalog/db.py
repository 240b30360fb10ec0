"""Engines, transactions, migrations and reset for the catalog database.

SQLite (a file in the data dir, the embedded default) and PostgreSQL (via psycopg 3)
are both first-class. On SQLite every connection runs in WAL mode with foreign keys on
and a busy timeout, and every :func:`transaction` starts with ``BEGIN IMMEDIATE`` so two
writers queue on the busy timeout instead of failing on a lock upgrade. A
:func:`read_transaction` (describe, list, authorize) starts with ``BEGIN DEFERRED``: in WAL
mode it reads one consistent snapshot and takes no write lock, so reads neither wait for
a writer nor make writers wait. It must not write (SQLite could not upgrade its snapshot).

A SQLite catalog file is created mode 0600 before SQLite opens it (and an existing one
loses any group/other bits); SQLite gives its ``-wal``, ``-shm`` and ``-journal`` files
the database file's mode, so the whole catalog stays private to the server's user
whatever the process umask.

    >>> engine = create_engine("sqlite:///:memory:")
    >>> upgrade(engine)
    >>> with transaction(engine) as conn:
    ...     _ = conn.exec_driver_sql("SELECT 1").scalar()
    >>> with read_transaction(engine) as conn:
    ...     _ = conn.exec_driver_sql("SELECT 1").scalar()

Must not depend on services, the engine (data plane) or any interface.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from snowvault.control.catalog import tables
from snowvault.core.errors import InvalidInput

Record = dict[str, Any]
"""One catalog row as a plain dict of column name -> value."""

SQLITE_BUSY_TIMEOUT_MS = 30_000
SQLITE_FILE_MODE = 0o600
SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")
"""Files SQLite keeps beside the database (same mode as the database file)."""
READ_ONLY_OPTION = "snowvault_read_only"
"""Connection execution option set by :func:`read_transaction`."""


def create_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url`` (``sqlite:///path`` or ``postgresql+psycopg://...``).

    A bare ``postgresql://`` URL is given the psycopg 3 driver.
    """
    try:
        parsed = sa.make_url(url)
        if parsed.drivername in ("postgresql", "postgres"):
            parsed = parsed.set(drivername="postgresql+psycopg")
        if parsed.get_backend_name() == "sqlite":
            return _sqlite_engine(parsed, **kwargs)
        return sa.create_engine(parsed, pool_pre_ping=True, **kwargs)
    except sa.exc.ArgumentError as exc:  # not a URL, or no such dialect or driver here
        # the URL itself is not repeated: it may hold a password
        raise InvalidInput(detail=f"the catalog URL cannot be used: {exc}") from None


def sqlite_path(url: str | sa.URL) -> str | None:
    """The database file of a ``sqlite:///`` URL; None for memory or other databases."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    database = parsed.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        return None
    return database


def _private_file(path: str) -> None:
    """Create ``path`` empty with mode 0600 if missing; drop group/other bits if not."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, SQLITE_FILE_MODE)
    try:
        mode = os.fstat(fd).st_mode & 0o777
        if mode & 0o077:
            os.fchmod(fd, mode & 0o700)
    finally:
        os.close(fd)


def _sqlite_engine(url: sa.URL, **kwargs: Any) -> Engine:
    path = sqlite_path(url)
    if path is not None and os.path.isdir(os.path.dirname(os.path.abspath(path))):
        _private_file(path)
    connect_args = {"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
    engine = sa.create_engine(url, connect_args=connect_args, **kwargs)
    event.listen(engine, "connect", _sqlite_on_connect)
    event.listen(engine, "begin", _sqlite_on_begin)
    return engine


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy's "begin" event decide how transactions start (BEGIN IMMEDIATE).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


def _sqlite_on_begin(conn: Connection) -> None:
    read_only = conn.get_execution_options().get(READ_ONLY_OPTION, False)
    conn.exec_driver_sql("BEGIN DEFERRED" if read_only else "BEGIN IMMEDIATE")


def is_sqlite(conn: Connection | Engine) -> bool:
    return conn.dialect.name == "sqlite"


@contextmanager
def transaction(engine: Engine) -> Iterator[Connection]:
    """A connection inside one transaction: committed on success, rolled back on error."""
    with engine.begin() as conn:
        yield conn


@contextmanager
def read_transaction(engine: Engine) -> Iterator[Connection]:
    """A connection inside one transaction that only reads (no write lock on SQLite)."""
    with engine.connect() as conn:
        conn.execution_options(**{READ_ONLY_OPTION: True})
        with conn.begin():
            yield conn


def alembic_config(connection: Connection | None = None) -> Config:
    """The programmatic Alembic config; the migrations ship inside the package.

    Alembic asks ``access(2)`` whether they exist, and the kernel answers that with the
    real uid and no capabilities: a server running as a service user with only
    CAP_DAC_READ_SEARCH (deploy/snowvault.service) is told "no" for an install that user
    cannot read by mode. That is said here in one line instead of Alembic's advice to
    run ``alembic init``."""
    config = Config()
    script_location = resources.files("snowvault.control.catalog") / "migrations"
    if not os.access(str(script_location), os.R_OK | os.X_OK):
        raise InvalidInput(
            detail=f"the catalog migrations at {script_location} cannot be read by uid "
            f"{os.getuid()}: install snowvault where the service user can read it "
            "(e.g. under /opt or /usr with mode 755), not under a private directory"
        )
    config.set_main_option("script_location", str(script_location))
    config.attributes["connection"] = connection
    return config


def upgrade(engine_or_url: Engine | str, revision: str = "head") -> None:
    """Run the Alembic migrations up to ``revision`` (default: the newest)."""
    engine = create_engine(engine_or_url) if isinstance(engine_or_url, str) else engine_or_url
    try:
        with engine.begin() as conn:
            command.upgrade(alembic_config(conn), revision)
    finally:
        if isinstance(engine_or_url, str):
            engine.dispose()


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None before the first migration."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def reset(engine: Engine) -> None:
    """Delete every row of every catalog table (the test-mode reset endpoint).

    The schema and the Alembic version stay; children go before their parents.
    """
    with transaction(engine) as conn:
        for table in reversed(tables.metadata.sorted_tables):  # incl. later table modules
            conn.execute(table.delete())
