"""Redis resources through the services, a real worker and a vault repository, against
throwaway redis-servers (tests/helpers/redis_server.py): an RDB taken while a client
keeps running MULTI/EXEC transactions restores into an empty server as one point in
time (both counters of the transaction equal, every other key byte for byte); the next
point of a barely changed dataset stores little; a wrong password and an unreachable
server FAIL the job in one line without the password; a non-empty target is refused."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers import plugin_stories as story
from helpers.redis_server import RedisServer
from snowvault.control.services import resources
from snowvault.control.services.base import Caller, Deps
from snowvault.plugins import redis_tools
from snowvault.plugins.redis import Redis
from snowvault.testing import FakeClock

PASSWORD = "pw-of-the-source"
KEYS, SIZE = 4000, 2000  # 8 MB of incompressible values: chunks are ~1 MiB


@pytest.fixture
def deps(tmp_path: Path, clock: FakeClock) -> Iterator[Deps]:
    deps = story.make_deps(tmp_path, clock, [Redis()])
    yield deps
    deps.engine.dispose()


@pytest.fixture
def caller(deps: Deps) -> Caller:
    return story.make_caller(deps)


@pytest.fixture
def source() -> Iterator[RedisServer]:
    with RedisServer(password=PASSWORD) as srv:
        rng = random.Random(5)
        with redis_tools.Connection("127.0.0.1", srv.port, password=PASSWORD) as conn:
            for start in range(0, KEYS, 500):
                conn.pipeline(
                    [("SET", f"key:{i}", rng.randbytes(SIZE)) for i in range(start, start + 500)]
                )
            conn.pipeline([("SET", "a", 0), ("SET", "b", 0)])
        yield srv


def _everything(port: int, password: str | None = None) -> dict[bytes, bytes]:
    with redis_tools.Connection("127.0.0.1", port, password=password) as conn:
        keys = conn.call("KEYS", "*")
        return dict(zip(keys, conn.pipeline([("GET", k) for k in keys]), strict=True))


def test_an_rdb_under_transactions_restores_one_point_in_time_and_the_next_point_dedups(
    deps: Deps, caller: Caller, tmp_path: Path, source: RedisServer
) -> None:
    arn = resources.register(
        deps, caller, resource_type="Redis", name="cache",
        source=f"redis://127.0.0.1:{source.port}", properties={"password": PASSWORD},
    )["arn"]  # fmt: skip
    stop, started = threading.Event(), threading.Event()

    def transactions() -> None:  # a and b move together: a snapshot has a == b
        with redis_tools.Connection("127.0.0.1", source.port, password=PASSWORD) as conn:
            while not stop.is_set():
                conn.pipeline([("MULTI",), ("INCR", "a"), ("INCR", "b"), ("EXEC",)])
                started.set()

    thread = threading.Thread(target=transactions)
    thread.start()
    try:
        started.wait(10)
        first = story.backup(deps, caller, arn)
    finally:
        stop.set()
        thread.join()
    assert first.state == "COMPLETED", first.status_message
    assert first.backup_size_in_bytes > KEYS * SIZE and first.percent_done == 100.0
    full = story.stored(tmp_path)

    with RedisServer() as target:
        metadata = {"targetUrl": target.url}
        done = story.restore(deps, caller, first.recovery_point_arn, metadata)
        assert done.status == "COMPLETED", done.status_message
        restored, now = _everything(target.port), _everything(source.port, PASSWORD)
        assert restored[b"a"] == restored[b"b"] and 0 < int(restored[b"a"]) <= int(now[b"a"])
        del restored[b"a"], restored[b"b"], now[b"a"], now[b"b"]
        assert restored == now and len(restored) == KEYS

        done = story.restore(deps, caller, first.recovery_point_arn, metadata)
        assert done.status == "FAILED" and "is not empty" in done.status_message

    second = story.backup(deps, caller, arn)
    source.cli("SET", "key:7", "changed")
    before = story.stored(tmp_path)
    third = story.backup(deps, caller, arn)
    assert (second.state, third.state) == ("COMPLETED", "COMPLETED")
    # the header and the chunks around the one changed key: content-defined chunks of
    # this RDB vary in size, and a change that moves a boundary re-stores a neighbour
    # too (measured 2.2-2.8 MB of the first point's 8.05 MB); a backup that deduplicated
    # nothing would add about all of it
    assert story.stored(tmp_path) - before < full // 2


def test_wrong_password_and_unreachable_server_fail_the_job_in_one_line(
    deps: Deps, caller: Caller, source: RedisServer
) -> None:
    wrong = "not-the-password"
    arn = resources.register(
        deps, caller, resource_type="Redis", name="wrong",
        source=f"redis://:{wrong}@127.0.0.1:{source.port}",
    )["arn"]  # fmt: skip
    assert wrong not in str(dict(resources.get(deps, caller, arn)))
    failed = story.backup(deps, caller, arn)
    assert failed.state == "FAILED" and "WRONGPASS" in failed.status_message
    assert wrong not in failed.status_message and "\n" not in failed.status_message

    arn = resources.register(
        deps, caller, resource_type="Redis", name="gone", source="redis://127.0.0.1:1"
    )["arn"]
    failed = story.backup(deps, caller, arn)
    assert failed.state == "FAILED" and "cannot connect" in failed.status_message
    assert "\n" not in failed.status_message
