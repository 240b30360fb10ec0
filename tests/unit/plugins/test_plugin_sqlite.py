"""The SQLite plugin on real database files in tmp_path, through MemorySink and
MemorySource: the host-path rule for source and target, an online copy while another
connection writes (WAL), a restore into a new file that passes integrity_check, never
over an existing file (nor its stale WAL) unless asked."""

from __future__ import annotations

import io
import os
import sqlite3
import threading
from pathlib import Path

import pytest

from snowvault.control.model import host_paths
from snowvault.core.errors import InvalidInput, PermissionDenied
from snowvault.plugins import host_files, sqlite
from snowvault.plugins.base import BackupRequest, Progress, Resource, RestoreRequest
from snowvault.plugins.errors import InvalidRestoreTarget
from snowvault.testing.plugins import MemorySink, MemorySource

PLUGIN = sqlite.SQLite()


@pytest.fixture
def allowed(tmp_path: Path) -> Path:
    (tmp_path / "allowed" / "storage").mkdir(parents=True)
    return tmp_path / "allowed"


@pytest.fixture
def policy(allowed: Path) -> host_paths.Policy:
    return host_paths.Policy.build([str(allowed)], [], [str(allowed / "storage")], os.path.realpath)


def _database(path: Path, rows: int = 200, wal: bool = True) -> None:
    conn = sqlite3.connect(path)
    if wal:
        conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT)")
    conn.executemany("INSERT INTO t (body) VALUES (?)", [(f"row {i}",) for i in range(rows)])
    conn.commit()
    conn.close()


def _backup(path: Path, policy: host_paths.Policy) -> tuple[MemorySink, list[Progress]]:
    reg = PLUGIN.check_source(str(path), policy, {})
    sink, progress = MemorySink(), list[Progress]()
    resource = Resource("arn:x", "SQLite", "app", reg.source)
    PLUGIN.backup(BackupRequest(resource, policy, sink, progress.append))
    return sink, progress


def _restore(sink: MemorySink, policy: host_paths.Policy, metadata: dict[str, str]) -> str | None:
    resource = Resource("arn:x", "SQLite", "app", "")
    request = RestoreRequest(resource, metadata, policy, MemorySource.of(sink), lambda p: None)
    PLUGIN.check_restore(metadata, policy)
    PLUGIN.restore(request)
    return PLUGIN.validate_restore(request)


def _rows(path: Path) -> list[tuple[int, str]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT id, body FROM t ORDER BY id").fetchall()
    finally:
        conn.close()


def test_registration_stores_the_resolved_database_file(
    allowed: Path, policy: host_paths.Policy
) -> None:
    _database(allowed / "app.db")
    (allowed / "link.db").symlink_to(allowed / "app.db")
    reg = PLUGIN.check_source(str(allowed / "link.db"), policy, {})
    assert (reg.source, dict(reg.properties), dict(reg.secrets)) == (
        str(allowed / "app.db"),
        {},
        {},
    )


def test_sources_outside_the_rule_or_not_databases_are_refused(
    allowed: Path, policy: host_paths.Policy
) -> None:
    (allowed / "notes.txt").write_text("not a database, long enough to have a header")
    (allowed / "storage" / "x.db").write_bytes(sqlite.HEADER)
    with pytest.raises(InvalidInput, match="not an SQLite 3 database"):
        PLUGIN.check_source(str(allowed / "notes.txt"), policy, {})
    with pytest.raises(InvalidInput, match="not an existing file"):
        PLUGIN.check_source(str(allowed / "missing.db"), policy, {})
    with pytest.raises(PermissionDenied):
        PLUGIN.check_source(str(allowed / "storage" / "x.db"), policy, {})
    with pytest.raises(PermissionDenied):
        PLUGIN.check_source("/etc/passwd", policy, {})
    with pytest.raises(InvalidInput, match="no properties"):
        PLUGIN.check_source(str(allowed / "notes.txt"), policy, {"password": "x"})


def test_backup_is_one_entry_and_restores_to_an_identical_database(
    allowed: Path, policy: host_paths.Policy
) -> None:
    _database(allowed / "app.db")
    sink, progress = _backup(allowed / "app.db", policy)
    assert list(sink.files) == ["app.sqlite"] and sink.kind == "entries"
    assert sink.files["app.sqlite"].startswith(sqlite.HEADER)
    assert progress[-1].bytes_done == progress[-1].bytes_total == len(sink.files["app.sqlite"])
    assert _restore(sink, policy, {"targetPath": str(allowed / "copy.db")}) is None
    assert _rows(allowed / "copy.db") == _rows(allowed / "app.db")
    assert os.stat(allowed / "copy.db").st_mode & 0o777 == 0o600


def test_the_copy_is_a_committed_state_while_another_process_writes(
    allowed: Path, policy: host_paths.Policy
) -> None:
    _database(allowed / "app.db", rows=0)
    stop = threading.Event()

    def writer() -> None:  # each transaction inserts 10 rows: a consistent copy has 10*n
        conn = sqlite3.connect(allowed / "app.db", timeout=10)
        while not stop.is_set():
            with conn:
                conn.executemany("INSERT INTO t (body) VALUES (?)", [("x" * 500,)] * 10)
        conn.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        while len(_rows(allowed / "app.db")) < 200:
            pass
        sink, _ = _backup(allowed / "app.db", policy)
    finally:
        stop.set()
        thread.join()
    assert _restore(sink, policy, {"targetPath": str(allowed / "copy.db")}) is None
    count = len(_rows(allowed / "copy.db"))
    assert count >= 200 and count % 10 == 0


def test_an_existing_target_is_refused_unless_overwrite_and_its_stale_wal_goes(
    allowed: Path, policy: host_paths.Policy
) -> None:
    _database(allowed / "app.db", rows=5)
    sink, _ = _backup(allowed / "app.db", policy)
    _database(allowed / "old.db", rows=50)
    (allowed / "old.db-wal").write_bytes(b"stale")
    with pytest.raises(InvalidRestoreTarget, match="exists"):
        _restore(sink, policy, {"targetPath": str(allowed / "old.db")})
    metadata = {"targetPath": str(allowed / "old.db"), "overwrite": "true"}
    assert _restore(sink, policy, metadata) is None
    assert len(_rows(allowed / "old.db")) == 5


def test_restore_targets_outside_the_rule_or_malformed_are_refused(
    allowed: Path, policy: host_paths.Policy
) -> None:
    (allowed / "sub").mkdir()
    for bad, error in [
        ({}, InvalidRestoreTarget),
        ({"targetPath": str(allowed / "sub")}, InvalidRestoreTarget),
        ({"targetPath": "relative.db"}, InvalidRestoreTarget),
        ({"targetPath": str(allowed / "no" / "dir.db")}, InvalidRestoreTarget),
        ({"targetPath": str(allowed / "storage" / "x.db")}, PermissionDenied),
        ({"targetPath": "/etc/x.db"}, PermissionDenied),
    ]:
        with pytest.raises(error):
            PLUGIN.check_restore(bad, policy)


def test_a_corrupt_restored_file_fails_the_check(allowed: Path, policy: host_paths.Policy) -> None:
    _database(allowed / "app.db", rows=2000, wal=False)
    sink, _ = _backup(allowed / "app.db", policy)
    data = bytearray(sink.files["app.sqlite"])
    data[4096 * 3 : 4096 * 3 + 64] = b"\xff" * 64  # a b-tree page overwritten
    sink.files["app.sqlite"] = bytes(data)
    problem = _restore(sink, policy, {"targetPath": str(allowed / "bad.db")})
    assert problem is not None and "bad.db" in problem


def test_a_missing_source_fails_the_backup_with_one_line(
    allowed: Path, policy: host_paths.Policy
) -> None:
    resource = Resource("arn:x", "SQLite", "app", str(allowed / "gone.db"))
    with pytest.raises(InvalidInput) as err:
        PLUGIN.backup(BackupRequest(resource, policy, MemorySink(), lambda p: None))
    assert "\n" not in str(err.value) and "gone.db" in str(err.value)


def test_describe_names_the_tables_and_defaults_put_the_file_back(
    allowed: Path, policy: host_paths.Policy
) -> None:
    _database(allowed / "app.db")
    resource = Resource("arn:x", "SQLite", "app", str(allowed / "app.db"))
    found = PLUGIN.describe(resource, policy)
    assert found["Tables"] == ["t"] and found["JournalMode"] == "wal"
    missing = Resource("arn:x", "SQLite", "app", str(allowed / "x.db"))
    assert "Error" in PLUGIN.describe(missing, policy)
    # the rule is judged again: a file it no longer allows is not opened
    assert "Error" in PLUGIN.describe(resource, host_paths.NOTHING_ALLOWED)
    assert PLUGIN.restore_defaults(resource) == {
        "targetPath": str(allowed / "app.db"),
        "overwrite": "false",
    }


def test_a_symlink_planted_after_the_check_is_not_followed(
    allowed: Path, policy: host_paths.Policy, tmp_path: Path
) -> None:
    _database(allowed / "app.db", rows=3)
    sink, _ = _backup(allowed / "app.db", policy)
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    target = allowed / "new.db"
    metadata = {"targetPath": str(target)}
    PLUGIN.check_restore(metadata, policy)
    target.symlink_to(victim)  # between StartRestoreJob and the worker's write
    resource = Resource("arn:x", "SQLite", "app", "")
    request = RestoreRequest(resource, metadata, policy, MemorySource.of(sink), lambda p: None)
    with pytest.raises(PermissionDenied):  # the worker's own check: it resolves elsewhere
        PLUGIN.restore(request)
    assert victim.read_bytes() == b"precious" and target.is_symlink()
    target.unlink()
    target.symlink_to(allowed / "app.db")  # planted after the worker's check too
    with pytest.raises(InvalidRestoreTarget, match="appeared"):
        host_files.write(str(target), io.BytesIO(b"x"), overwrite=False, on_bytes=print)
    assert len(_rows(allowed / "app.db")) == 3 and target.is_symlink()
    assert [p.name for p in allowed.iterdir() if p.name.startswith(".")] == []  # no leftovers
