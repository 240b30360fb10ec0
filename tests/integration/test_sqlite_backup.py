"""SQLite resources through the services, a real worker and a vault repository: a
backup taken while another connection keeps committing restores to a committed state
that passes integrity_check, a second point of a barely changed database stores little,
a missing file FAILS the job in one line, an existing target is refused."""

from __future__ import annotations

import hashlib
import random
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers import plugin_stories as story
from snowvault.control.services import resources, restore_jobs
from snowvault.control.services.base import Caller, Deps
from snowvault.core.errors import InvalidInput
from snowvault.plugins.sqlite import SQLite
from snowvault.testing import FakeClock

BATCH = 10
ROWS = 12_000  # 12 MB: chunks are ~1 MiB, so one changed page must cost a small part


@pytest.fixture
def deps(tmp_path: Path, clock: FakeClock) -> Iterator[Deps]:
    deps = story.make_deps(tmp_path, clock, [SQLite()])
    yield deps
    deps.engine.dispose()


@pytest.fixture
def caller(deps: Deps) -> Caller:
    return story.make_caller(deps)


def _database(path: Path) -> None:
    rng = random.Random(7)
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, body BLOB)")
        conn.executemany(
            "INSERT INTO t (body) VALUES (?)", [(rng.randbytes(1000),) for _ in range(ROWS)]
        )
    conn.close()


def _digest(path: Path, upto: int | None = None) -> tuple[int, str]:
    conn = sqlite3.connect(path)
    try:
        query = "SELECT id, body FROM t" + (f" WHERE id <= {upto}" if upto else "") + " ORDER BY id"
        digest, count = hashlib.sha256(), 0
        for row_id, body in conn.execute(query):
            digest.update(row_id.to_bytes(8, "big") + body)
            count += 1
        return count, digest.hexdigest()
    finally:
        conn.close()


def test_a_backup_under_writes_restores_a_committed_state_and_the_next_point_dedups(
    deps: Deps, caller: Caller, tmp_path: Path
) -> None:
    source = tmp_path / "app.db"
    _database(source)
    arn = resources.register(deps, caller, resource_type="SQLite", name="app", source=str(source))[
        "arn"
    ]
    stop, started = threading.Event(), threading.Event()

    def writer() -> None:  # BATCH rows per transaction: a committed state has ROWS + k*BATCH
        conn = sqlite3.connect(source, timeout=30)
        while not stop.is_set():
            with conn:
                conn.executemany("INSERT INTO t (body) VALUES (?)", [(b"w" * 200,)] * BATCH)
            started.set()
        conn.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        started.wait(10)
        before = story.stored(tmp_path)
        first = story.backup(deps, caller, arn)
    finally:
        stop.set()
        thread.join()
    assert first.state == "COMPLETED", first.status_message
    assert first.percent_done == 100.0 and first.backup_size_in_bytes > ROWS * 1000
    full = story.stored(tmp_path) - before

    target = tmp_path / "restored.db"
    done = story.restore(deps, caller, first.recovery_point_arn, {"targetPath": str(target)})
    assert done.status == "COMPLETED", done.status_message
    count, digest = _digest(target)
    assert count >= ROWS and (count - ROWS) % BATCH == 0
    assert (count, digest) == _digest(source, upto=count)  # the source's rows, as committed

    assert story.backup(deps, caller, arn).state == "COMPLETED"  # with the writer's rows
    with sqlite3.connect(source) as conn:
        conn.execute("UPDATE t SET body = x'00' WHERE id = 5")
    conn.close()
    before = story.stored(tmp_path)
    third = story.backup(deps, caller, arn)
    assert third.state == "COMPLETED", third.status_message
    assert story.stored(tmp_path) - before < full // 4  # a page and the header: 2-3 chunks


def test_a_missing_file_fails_the_job_in_one_line_and_a_target_is_never_overwritten(
    deps: Deps, caller: Caller, tmp_path: Path
) -> None:
    source = tmp_path / "app.db"
    _database(source)
    arn = resources.register(deps, caller, resource_type="SQLite", name="app", source=str(source))[
        "arn"
    ]
    first = story.backup(deps, caller, arn)
    with pytest.raises(InvalidInput, match="exists"):
        restore_jobs.start(
            deps, caller, recovery_point_arn=first.recovery_point_arn,
            metadata={"targetPath": str(source)},
        )  # fmt: skip
    source.unlink()
    failed = story.backup(deps, caller, arn)
    assert failed.state == "FAILED"
    assert "app.db" in failed.status_message and "\n" not in failed.status_message
