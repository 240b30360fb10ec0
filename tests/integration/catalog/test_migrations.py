"""`alembic upgrade head` on an empty database equals the models, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

from helpers.catalog_db import pg_admin
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


def _filled(table: sa.Table, **values: object) -> dict[str, object]:
    """``values`` plus a placeholder for every other NOT NULL column without a default."""
    row = dict(values)
    for col in table.columns:
        if col.name in row or col.nullable or col.server_default is not None:
            continue
        if isinstance(col.type, sa.DateTime):
            row[col.name] = datetime(2026, 1, 1, tzinfo=UTC)
        elif isinstance(col.type, sa.Boolean):
            row[col.name] = False
        elif isinstance(col.type, sa.Integer | sa.Float | sa.Numeric):
            row[col.name] = 0
        elif isinstance(col.type, sa.LargeBinary):
            row[col.name] = b""
        else:
            row[col.name] = "x"
    return row


def test_revision_0005_counts_the_recovery_points_that_exist(empty_engine: Engine) -> None:
    catalog.db.upgrade(empty_engine, "0004")
    old = sa.MetaData()
    old.reflect(empty_engine, only=["accounts", "vaults", "recovery_points"])
    accounts, vaults, rps = (old.tables[n] for n in ("accounts", "vaults", "recovery_points"))
    with catalog.db.transaction(empty_engine) as conn:
        conn.execute(accounts.insert().values(_filled(accounts, account_id="111122223333")))
        for name in ("a", "b"):
            conn.execute(
                vaults.insert().values(
                    _filled(vaults, arn=f"arn:v:{name}", account_id="111122223333", name=name)
                )
            )
        for i in range(3):
            conn.execute(
                rps.insert().values(_filled(rps, arn=f"arn:rp:{i}", backup_vault_arn="arn:v:a"))
            )
    catalog.db.upgrade(empty_engine)
    with catalog.db.read_transaction(empty_engine) as conn:
        assert catalog.vaults.get_by_arn(conn, "arn:v:a")["number_of_recovery_points"] == 3
        assert catalog.vaults.get_by_arn(conn, "arn:v:b")["number_of_recovery_points"] == 0
