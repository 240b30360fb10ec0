"""A server that stops (catalog/leadership.py, ``Leadership.close``) frees its PostgreSQL
roles before close() returns, not when PostgreSQL's backend process later notices the
closed socket: another server that asks right after must get them. Here the connection's
own closing is held back (as a backend slow to exit on a loaded machine), so only an
explicit unlock can free the roles; the fleet test that once failed on CI
(test_leadership_roles) raced that exit."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.engine import Connection, Engine

from snowvault.control import catalog
from snowvault.control.catalog import leadership


def test_close_unlocks_before_the_connection_goes(
    postgresql_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = postgresql_engine.url.render_as_string(hide_password=False)
    other_engine = catalog.db.create_engine(url)
    first = leadership.Leadership(postgresql_engine, tmp_path)
    second = leadership.Leadership(other_engine, tmp_path)
    kept: list[Connection] = []
    try:
        assert first.hold("notification-delivery") and first.hold("continuous:r1 v1")
        assert not second.hold("notification-delivery")
        conn = first._conn
        assert conn is not None
        kept.append(conn)
        # the session lives on after close(): only what close() says to PostgreSQL frees
        monkeypatch.setattr(conn, "invalidate", lambda *a, **k: None)
        monkeypatch.setattr(conn, "close", lambda *a, **k: None)
        first.close()
        assert second.hold("notification-delivery")
        assert second.hold("continuous:r1 v1")
    finally:
        monkeypatch.undo()
        for conn in kept:
            conn.invalidate()
            conn.close()
        first.close()
        second.close()
        other_engine.dispose()
