"""Named sections held across a fleet (catalog/fleet_locks.py), on both catalogs: two
threads of one server take a name in turn (the second waits, or gives up after its
wait); on PostgreSQL another server's hold (another connection's advisory lock in the
same class and key) keeps this one out until it ends, and the section's end frees it."""

from __future__ import annotations

import threading

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from snowvault.control import catalog
from snowvault.control.catalog import fleet_locks


def test_two_threads_take_a_name_in_turn(engine: Engine) -> None:
    inside, leave = threading.Event(), threading.Event()
    seen: list[str] = []

    def first() -> None:
        with fleet_locks.hold(engine, "job-a", wait_seconds=5) as held:
            seen.append(f"first {held}")
            inside.set()
            assert leave.wait(30)

    thread = threading.Thread(target=first)
    thread.start()
    assert inside.wait(30)
    with fleet_locks.hold(engine, "job-a", wait_seconds=0.05) as held:
        assert not held  # the first still holds it
    with fleet_locks.hold(engine, "job-b", wait_seconds=0.05) as held:
        assert held  # names are independent
    leave.set()
    thread.join(30)
    with fleet_locks.hold(engine, "job-a", wait_seconds=0.05) as held:
        assert held
    assert seen == ["first True"] and "job-a" not in fleet_locks._LOCAL


def test_another_servers_hold_keeps_this_one_out(postgresql_engine: Engine) -> None:
    other = catalog.db.create_engine(postgresql_engine.url.render_as_string(hide_password=False))
    key = {"ns": fleet_locks.NAMESPACE, "key": fleet_locks._key("job-c")}
    try:
        with other.connect() as conn, conn.begin():
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:ns, :key)"), key)
            with fleet_locks.hold(postgresql_engine, "job-c", wait_seconds=0.2) as held:
                assert not held
        with fleet_locks.hold(postgresql_engine, "job-c", wait_seconds=0.2) as held:
            assert held
            with other.connect() as conn:
                taken = conn.execute(sa.text("SELECT pg_try_advisory_lock(:ns, :key)"), key)
                assert taken.scalar() is False  # this one holds it for the fleet
                conn.rollback()
        with other.connect() as conn:  # the section's end freed it
            taken = conn.execute(sa.text("SELECT pg_try_advisory_xact_lock(:ns, :key)"), key)
            assert taken.scalar() is True
            conn.rollback()
    finally:
        other.dispose()
