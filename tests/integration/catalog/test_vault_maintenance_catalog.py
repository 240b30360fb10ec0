"""The sweeps' per-vault bookkeeping (catalog.maintenance) and revision 0007, which moved
it out of string keys of the settings table; on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from snowvault.control import catalog

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
A = "arn:aws:backup:us-east-1:111122223333:backup-vault:a"
B = "arn:aws:backup:us-east-1:111122223333:backup-vault:b"
PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"


def _rows(conn: Connection) -> list[tuple[object, ...]]:
    table = catalog.tables.vault_maintenance
    return [tuple(r) for r in conn.execute(sa.select(table).order_by(table.c.vault_arn))]


# --- the named functions ------------------------------------------------------------------


def test_a_prune_mark_keeps_its_latest_time_and_any_bypass_until_cleared(conn: Connection) -> None:
    m = catalog.maintenance
    m.mark_prune_pending(conn, B, T0)
    m.mark_prune_pending(conn, A, T0, bypass_governance=True)
    m.mark_prune_pending(conn, A, T0 + timedelta(seconds=5))  # a later plain delete
    assert m.due_prunes(conn) == [
        m.PendingPrune(A, T0 + timedelta(seconds=5), True),  # the bypass asked for stays
        m.PendingPrune(B, T0, False),
    ]
    stale = m.PendingPrune(A, T0, True)
    assert m.clear_prune(conn, stale) is False  # marked again since: kept
    assert [p.vault_arn for p in m.due_prunes(conn)] == [A, B]
    for pending in m.due_prunes(conn):
        assert m.clear_prune(conn, pending) is True
    assert m.due_prunes(conn) == []
    assert _rows(conn) == []  # nothing owed: no row left


def test_orphan_marks_move_on_and_clear_only_the_mark_read(conn: Connection) -> None:
    m = catalog.maintenance
    m.mark_orphans(conn, A, T0)
    m.mark_orphans(conn, A, T0 + timedelta(hours=1))  # a later failure moves it on
    assert m.orphan_prunes(conn) == [m.OrphanPrune(A, T0 + timedelta(hours=1))]
    assert m.clear_orphans(conn, m.OrphanPrune(A, T0)) is False
    assert m.clear_orphans(conn, m.OrphanPrune(A, T0 + timedelta(hours=1))) is True
    assert m.orphan_prunes(conn) == []


def test_one_row_per_vault_holds_every_mark_and_the_vault_delete_drops_it(
    conn: Connection,
) -> None:
    m = catalog.maintenance
    assert m.retention_record(conn, A) is None
    m.put_retention_record(conn, A, m.RetentionRecord("f" * 64, None))
    m.put_retention_record(conn, A, m.RetentionRecord("e" * 64, T0))
    m.mark_orphans(conn, A, T0)
    m.mark_prune_pending(conn, A, T0)
    assert m.retention_record(conn, A) == m.RetentionRecord("e" * 64, T0)
    assert len(_rows(conn)) == 1
    m.clear_prune(conn, m.due_prunes(conn)[0])
    m.clear_orphans(conn, m.orphan_prunes(conn)[0])
    assert m.retention_record(conn, A) == m.RetentionRecord("e" * 64, T0)  # kept
    m.forget_vault(conn, A)
    assert _rows(conn) == [] and m.retention_record(conn, A) is None


# --- revision 0007 --------------------------------------------------------------------------


def _pg_admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3) as c:
        c.execute(sql)


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        engine = catalog.db.create_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
        yield engine
        engine.dispose()
        return
    name = f"snowvault_mig7_{uuid.uuid4().hex[:12]}"
    try:
        _pg_admin(f'CREATE DATABASE "{name}"')
    except Exception as exc:  # pragma: no cover - depends on the machine
        pytest.skip(f"PostgreSQL unavailable: {exc}")
    engine = catalog.db.create_engine(f"postgresql://postgres@127.0.0.1:5432/{name}")
    try:
        yield engine
    finally:
        engine.dispose()
        _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


OLD_SETTINGS = {
    f"prune-pending:{A}": "2026-03-01T12:00:00+00:00",
    f"prune-bypass-governance:{A}": "2026-03-01T12:00:00+00:00",
    f"orphan-prune:{A}": "2026-03-01T13:00:00+00:00",
    f"store-retention:{B}": {"fingerprint": "ab" * 32, "renew_at": "2027-01-30T12:00:00+00:00"},
    f"prune-bypass-governance:{B}": "2026-03-01T12:00:00+00:00",  # no prune asked: dropped
    "home_region": "us-east-1",  # not a sweep's: stays
}


def test_revision_0007_moves_the_settings_markers_and_back(fresh_engine: Engine) -> None:
    from alembic import command

    catalog.db.upgrade(fresh_engine, "0006")
    settings = sa.table("settings", sa.column("key", sa.String), sa.column("value", sa.JSON))
    with catalog.db.transaction(fresh_engine) as c:
        c.execute(settings.insert(), [{"key": k, "value": v} for k, v in OLD_SETTINGS.items()])
    catalog.db.upgrade(fresh_engine)
    m = catalog.maintenance
    with catalog.db.read_transaction(fresh_engine) as c:
        assert m.due_prunes(c) == [m.PendingPrune(A, T0, True)]
        assert m.orphan_prunes(c) == [m.OrphanPrune(A, T0 + timedelta(hours=1))]
        assert m.retention_record(c, B) == m.RetentionRecord(
            "ab" * 32, datetime(2027, 1, 30, 12, 0, tzinfo=UTC)
        )
        assert m.retention_record(c, A) is None
        assert catalog.settings.all_settings(c) == {"home_region": "us-east-1"}
    with fresh_engine.begin() as c:
        command.downgrade(catalog.db.alembic_config(c), "0006")
    with catalog.db.read_transaction(fresh_engine) as c:
        back = catalog.settings.all_settings(c)
    expected = {k: v for k, v in OLD_SETTINGS.items() if not k.endswith(B) or "retention" in k}
    assert back == expected
