"""`alembic upgrade head` on an empty database equals the models, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from catalog_helpers import pg_admin
from sqlalchemy.engine import Engine

from snowvault.control import catalog


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        engine = catalog.db.create_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
        yield engine
        engine.dispose()
        return
    request.getfixturevalue("pg_url")  # skips when PostgreSQL is absent
    name = f"snowvault_mig_{uuid.uuid4().hex[:12]}"
    pg_admin(f'CREATE DATABASE "{name}"')
    engine = catalog.db.create_engine(f"postgresql://postgres@127.0.0.1:5432/{name}")
    try:
        yield engine
    finally:
        engine.dispose()
        pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _diffs(engine: Engine) -> list[object]:
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "compare_server_default": True}
        )
        return list(compare_metadata(context, catalog.tables.metadata))


def test_upgrade_head_on_empty_database_equals_the_models(empty_engine: Engine) -> None:
    assert _diffs(empty_engine) != []  # the comparison sees a missing schema
    catalog.db.upgrade(empty_engine)
    assert _diffs(empty_engine) == []


def test_upgrade_lands_on_the_single_head(empty_engine: Engine) -> None:
    catalog.db.upgrade(empty_engine)
    heads = ScriptDirectory.from_config(catalog.db.alembic_config()).get_heads()
    assert len(heads) == 1  # one linear history: 0001, 0002, ...
    assert catalog.db.current_revision(empty_engine) == heads[0]


def test_upgrade_is_idempotent_and_downgrade_empties(empty_engine: Engine) -> None:
    from alembic import command

    catalog.db.upgrade(empty_engine)
    catalog.db.upgrade(empty_engine)
    with empty_engine.begin() as conn:
        command.downgrade(catalog.db.alembic_config(conn), "base")
    assert catalog.db.current_revision(empty_engine) is None
    catalog.db.upgrade(empty_engine)
    assert _diffs(empty_engine) == []


def test_upgrade_accepts_a_url(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'by-url.db'}"
    catalog.db.upgrade(url)
    engine = catalog.db.create_engine(url)
    try:
        head = ScriptDirectory.from_config(catalog.db.alembic_config()).get_heads()[0]
        assert catalog.db.current_revision(engine) == head
    finally:
        engine.dispose()
