"""MySQL resources through the services, a real worker and a vault repository, against
the MariaDB at 127.0.0.1:3306: a backup taken while another session keeps committing
restores (under a new name) to a committed state, row for row; the next point of an
unchanged database stores next to nothing; a wrong password and an unreachable server
FAIL the job in one line without the password. Databases and users are named after the
process, so tests on other workers never meet them."""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers import plugin_stories as story
from snowvault.control.services import resources
from snowvault.control.services.base import Caller, Deps
from snowvault.plugins.mysql import MySQL
from snowvault.testing import FakeClock

SERVER = "mysql://root@127.0.0.1:3306"
ROWS, BATCH = 4000, 10


def sql(statement: str) -> str:
    argv = ["mariadb", "-h127.0.0.1", "-P3306", "-uroot", "-N", "-B"]
    done = subprocess.run(argv, input=statement.encode(), capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.decode()


@pytest.fixture
def deps(tmp_path: Path, clock: FakeClock) -> Iterator[Deps]:
    deps = story.make_deps(tmp_path, clock, [MySQL()])
    yield deps
    deps.engine.dispose()


@pytest.fixture
def caller(deps: Deps) -> Caller:
    return story.make_caller(deps)


@pytest.fixture
def db() -> Iterator[str]:
    name = f"svi_{os.getpid()}"
    sql(f"DROP DATABASE IF EXISTS {name}; DROP DATABASE IF EXISTS {name}_r")
    sql(
        f"CREATE DATABASE {name};"
        f" CREATE TABLE {name}.t (id INT AUTO_INCREMENT PRIMARY KEY, body VARBINARY(1000))"
    )
    rng = random.Random(3)
    for _ in range(ROWS // 500):
        values = ",".join(f"(x'{rng.randbytes(1000).hex()}')" for _row in range(500))
        sql(f"INSERT INTO {name}.t (body) VALUES {values}")
    yield name
    sql(f"DROP DATABASE IF EXISTS {name}; DROP DATABASE IF EXISTS {name}_r")


def _rows(database: str, upto: int | None = None) -> tuple[int, str]:
    where = f" WHERE id <= {upto}" if upto is not None else ""
    out = sql(f"SELECT id, SHA2(body, 256) FROM {database}.t{where} ORDER BY id")
    return len(out.splitlines()), hashlib.sha256(out.encode()).hexdigest()


def test_a_backup_under_writes_restores_a_committed_state_and_the_next_point_dedups(
    deps: Deps, caller: Caller, tmp_path: Path, db: str
) -> None:
    arn = resources.register(
        deps, caller, resource_type="MySQL", name="m", source=SERVER,
        properties={"databases": db},
    )["arn"]  # fmt: skip
    writer = subprocess.Popen(
        ["mariadb", "-h127.0.0.1", "-P3306", "-uroot", db],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
    )
    assert writer.stdin is not None
    stop = threading.Event()

    def write() -> None:  # BATCH rows per transaction: a committed state has ROWS + k*BATCH
        assert writer.stdin is not None
        batch = ",".join(["(x'77')"] * BATCH)
        while not stop.is_set():
            writer.stdin.write(f"BEGIN; INSERT INTO t (body) VALUES {batch}; COMMIT;\n".encode())
            writer.stdin.flush()
            stop.wait(0.002)  # a steady writer, not a flood the restore then has to replay

    thread = threading.Thread(target=write)
    thread.start()
    try:
        first = story.backup(deps, caller, arn)
    finally:
        stop.set()
        thread.join()
        writer.stdin.close()
        writer.wait(30)
    assert first.state == "COMPLETED", first.status_message
    assert first.percent_done == 100.0 and first.backup_size_in_bytes > ROWS * 2000  # hex

    metadata = {"targetDsn": SERVER, "databases": db, "renameTo": f"{db}_r"}
    done = story.restore(deps, caller, first.recovery_point_arn, metadata)
    assert done.status == "COMPLETED", done.status_message
    count, digest = _rows(f"{db}_r")
    assert count >= ROWS and (count - ROWS) % BATCH == 0
    last = int(sql(f"SELECT MAX(id) FROM {db}_r.t"))
    assert (count, digest) == _rows(db, upto=last)  # the source's rows as committed then

    full = story.stored(tmp_path)
    second = story.backup(deps, caller, arn)  # the writer's rows are in this one
    sql(f"UPDATE {db}.t SET body = x'00' WHERE id = 7")
    before = story.stored(tmp_path)
    third = story.backup(deps, caller, arn)
    assert (second.state, third.state) == ("COMPLETED", "COMPLETED")
    assert story.stored(tmp_path) - before < full // 3  # one row: a chunk or two


@pytest.fixture
def user() -> Iterator[str]:
    name = f"svi_{os.getpid()}"
    sql(f"DROP USER IF EXISTS '{name}'@'127.0.0.1'; CREATE USER '{name}'@'127.0.0.1' "
        "IDENTIFIED BY 'the-right-one'")  # fmt: skip
    yield name
    sql(f"DROP USER IF EXISTS '{name}'@'127.0.0.1'")


def test_wrong_password_and_unreachable_server_fail_the_job_in_one_line(
    deps: Deps, caller: Caller, user: str
) -> None:
    wrong = "not-the-password"
    arn = resources.register(
        deps, caller, resource_type="MySQL", name="wrong",
        source=f"mysql://{user}:{wrong}@127.0.0.1:3306",
    )["arn"]  # fmt: skip
    row = resources.get(deps, caller, arn)
    assert wrong not in str(dict(row))
    failed = story.backup(deps, caller, arn)
    assert failed.state == "FAILED"
    assert "Access denied" in failed.status_message
    assert wrong not in failed.status_message and "\n" not in failed.status_message

    arn = resources.register(
        deps, caller, resource_type="MySQL", name="gone", source="mysql://root@127.0.0.1:1"
    )["arn"]
    failed = story.backup(deps, caller, arn)
    assert failed.state == "FAILED" and "Can't connect" in failed.status_message
    assert "\n" not in failed.status_message
