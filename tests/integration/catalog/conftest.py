"""Catalog fixtures: one migrated database per kind (SQLite file, PostgreSQL), reset per test.

PostgreSQL gets a uniquely named database per test session (safe under xdist), dropped
at the end; if no server answers on 127.0.0.1:5432 the PostgreSQL cases are skipped.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy.engine import Connection, Engine

from helpers.catalog_db import ACCOUNT, T0, pg_admin
from snowvault.control import catalog


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    name = f"snowvault_catalog_{uuid.uuid4().hex[:12]}"
    try:
        pg_admin(f'CREATE DATABASE "{name}"')
    except Exception as exc:  # pragma: no cover - depends on the machine
        pytest.skip(f"PostgreSQL unavailable: {exc}")
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def postgresql_engine(pg_url: str) -> Iterator[Engine]:
    engine = catalog.db.create_engine(pg_url)
    catalog.db.upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def sqlite_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    path = tmp_path_factory.mktemp("catalog") / "catalog.db"
    engine = catalog.db.create_engine(f"sqlite:///{path}")
    catalog.db.upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    """A migrated, empty catalog of each kind."""
    eng: Engine = request.getfixturevalue(f"{request.param}_engine")
    catalog.db.reset(eng)
    yield eng


@pytest.fixture
def conn(engine: Engine) -> Iterator[Connection]:
    """One transaction on a catalog with an account, committed at the end of the test."""
    with catalog.db.transaction(engine) as c:
        catalog.accounts.create_account(c, account_id=ACCOUNT, name="main", created_at=T0)
        yield c
