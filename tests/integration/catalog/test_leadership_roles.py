"""Roles one server of a fleet holds at a time (catalog/leadership.py), on both catalogs:
two servers (two Leadership objects, each with its own engine as two processes have)
never hold one role together; the holder's end frees it at once; on PostgreSQL a broken
connection (the database restarted, a network cut) shows in check() and frees every
role; the migration lock lets one migration run at a time."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from sqlalchemy.engine import Engine

from helpers.catalog_db import pg_admin
from snowvault.control import catalog
from snowvault.control.catalog import leadership


def _second_engine(engine: Engine) -> Engine:
    """Another server's engine on the same catalog (its own pool and connections)."""
    return catalog.db.create_engine(engine.url.render_as_string(hide_password=False))


def test_one_holder_at_a_time_and_the_next_takes_over(engine: Engine, tmp_path: Path) -> None:
    other_engine = _second_engine(engine)
    first = leadership.Leadership(engine, tmp_path / "roles")
    second = leadership.Leadership(other_engine, tmp_path / "roles")
    try:
        assert first.hold("continuous:r1 v1")
        assert first.hold("continuous:r1 v1")  # held already: still ours
        assert not second.hold("continuous:r1 v1")
        assert second.hold("continuous:r2 v1")  # roles are independent
        assert not first.hold("continuous:r2 v1")
        assert first.check() and second.check()
        assert first.held() == {"continuous:r1 v1"}

        first.release("continuous:r1 v1")
        assert second.hold("continuous:r1 v1")
        assert not first.hold("continuous:r1 v1")

        second.close()  # the holder ends (a killed process ends the same way)
        assert first.hold("continuous:r1 v1") and first.hold("continuous:r2 v1")
    finally:
        first.close()
        second.close()
        other_engine.dispose()


def test_a_broken_connection_loses_every_role(postgresql_engine: Engine, tmp_path: Path) -> None:
    """PostgreSQL ends the session (as on a restart or a cut): check() says so, nothing
    is held any more, another server takes the roles, and this one can hold again."""
    first = leadership.Leadership(postgresql_engine, tmp_path)
    other_engine = _second_engine(postgresql_engine)
    second = leadership.Leadership(other_engine, tmp_path)
    try:
        assert first.hold("notification-delivery")
        database = postgresql_engine.url.database
        pg_admin(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            f"WHERE datname = '{database}' AND pid IN (SELECT pid FROM pg_locks "
            "WHERE locktype = 'advisory')"
        )
        deadline = time.monotonic() + 10
        while second.hold("notification-delivery") is False:
            assert time.monotonic() < deadline, "the role was not freed"
            time.sleep(0.05)
        assert first.check() is False
        assert first.held() == frozenset()
        second.close()
        assert first.hold("notification-delivery")  # a new connection, the role again
        assert first.check()
    finally:
        first.close()
        second.close()
        other_engine.dispose()


def test_migrations_of_servers_starting_together_run_one_at_a_time(
    postgresql_engine: Engine,
) -> None:
    inside: list[int] = []
    overlap: list[bool] = []
    lock = threading.Lock()

    def migrate(n: int) -> None:
        with leadership.migration_lock(postgresql_engine):
            with lock:
                overlap.append(bool(inside))
                inside.append(n)
            time.sleep(0.2)
            with lock:
                inside.remove(n)

    threads = [threading.Thread(target=migrate, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert overlap == [False, False, False]
