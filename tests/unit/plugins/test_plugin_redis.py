"""The Redis plugin: its URL and Metadata rules (no server), the RDB stream's end mark,
then backup and restore against throwaway redis-servers (tests/helpers/redis_server.py)
through MemorySink and MemorySource: values, types and TTLs across databases come back
in an empty server or as an RDB file a fresh server loads; refusals; one-line failures
without the password; the password never on a command line."""

from __future__ import annotations

import io
import os
import pwd
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from helpers.redis_server import RedisServer
from snowvault.control.model import host_paths
from snowvault.core.errors import InvalidInput, PermissionDenied, Unavailable
from snowvault.plugins import redis, redis_tools
from snowvault.plugins.base import BackupRequest, Resource, RestoreRequest
from snowvault.plugins.errors import InvalidRestoreTarget
from snowvault.testing.plugins import MemorySink, MemorySource

PLUGIN = redis.Redis()
PASSWORD = "s3cret-pass"


@pytest.fixture
def policy(tmp_path: Path) -> host_paths.Policy:
    return host_paths.Policy.build([str(tmp_path)], [], [], os.path.realpath)


@pytest.fixture(scope="module")
def source() -> Iterator[RedisServer]:
    """A password-protected server holding strings, a hash, a list, a set with a TTL
    and a key in database 3."""
    with RedisServer(password=PASSWORD) as srv:
        for i in range(50):
            srv.cli("SET", f"k{i}", f"value {i}")
        srv.cli("HSET", "h", "a", "1", "b", "2")
        srv.cli("RPUSH", "l", "x", "y", "z")
        srv.cli("SADD", "s", "m1", "m2")
        srv.cli("EXPIRE", "s", "5000")
        srv.cli("-n", "3", "SET", "elsewhere", "db3")
        yield srv


@pytest.fixture
def empty() -> Iterator[RedisServer]:
    with RedisServer() as srv:
        yield srv


def _resource(srv: RedisServer, password: str | None = PASSWORD) -> Resource:
    reg = PLUGIN.check_source(srv.url, host_paths.Policy(), {})
    return Resource(
        "arn:x", "Redis", "r", reg.source, {}, {"password": password} if password else {}
    )


def _backup(resource: Resource, policy: host_paths.Policy) -> MemorySink:
    sink = MemorySink()
    PLUGIN.backup(BackupRequest(resource, policy, sink, lambda p: None))
    return sink


def _restore(
    resource: Resource, sink: MemorySink, policy: host_paths.Policy, metadata: dict[str, str]
) -> str | None:
    request = RestoreRequest(resource, metadata, policy, MemorySource.of(sink), lambda p: None)
    PLUGIN.check_restore(metadata, policy)
    PLUGIN.restore(request)
    return PLUGIN.validate_restore(request)


def _value(conn: redis_tools.Connection, key: bytes) -> Any:
    kind = conn.call("TYPE", key)
    read = {
        "string": ("GET",),
        "hash": ("HGETALL",),
        "list": ("LRANGE", 0, -1),
        "set": ("SMEMBERS",),
        "zset": ("ZRANGE", 0, -1, "WITHSCORES"),
    }[kind]
    value = conn.call(read[0], key, *read[1:])
    if kind == "hash":
        return (kind, dict(zip(value[::2], value[1::2], strict=True)))
    return (kind, sorted(value) if kind == "set" else value)


def content(port: int, password: str | None = None) -> dict[tuple[int, bytes], Any]:
    """Every key of every database: (db, key) -> (type, value, has a TTL)."""
    out: dict[tuple[int, bytes], Any] = {}
    with redis_tools.Connection("127.0.0.1", port, password=password) as conn:
        for db in conn.keyspace():
            conn.call("SELECT", db)
            for key in conn.call("KEYS", "*"):
                out[(db, key)] = (*_value(conn, key), conn.call("PTTL", key) > 0)
    return out


def test_registration_splits_the_password_off_and_shows_a_clean_url() -> None:
    policy = host_paths.Policy()
    reg = PLUGIN.check_source("redis://:p%40ss@127.0.0.1:6380", policy, {})
    assert (reg.source, dict(reg.secrets)) == ("redis://127.0.0.1:6380", {"password": "p@ss"})
    reg = PLUGIN.check_source("redis://backup@localhost", policy, {"password": "x"})
    assert (reg.source, dict(reg.properties), dict(reg.secrets)) == (
        "redis://backup@localhost:6379",
        {},
        {"password": "x"},
    )
    for bad in ("", "\x00", "../../etc", "rediss://h", "redis://h/2", "redis://h:0x", "http://h"):
        with pytest.raises(InvalidInput):
            PLUGIN.check_source(bad, policy, {})
    with pytest.raises(InvalidInput, match="unknown"):
        PLUGIN.check_source("redis://h", policy, {"db": "1"})
    with pytest.raises(PermissionDenied, match="allowed_networks"):
        PLUGIN.check_source("redis://:pw@192.0.2.1:6379", policy, {})


def test_bad_restore_metadata_is_refused(tmp_path: Path, policy: host_paths.Policy) -> None:
    (tmp_path / "exists.rdb").write_bytes(b"x")
    for metadata, says in [
        ({}, "exactly one of"),
        ({"targetPath": str(tmp_path / "a"), "targetUrl": "redis://h"}, "exactly one of"),
        ({"targetUrl": "redis://:pw@127.0.0.1"}, "must not hold a password"),
        ({"targetUrl": "redis://127.0.0.1/1"}, "no database number"),
        ({"targetPath": "relative.rdb"}, "absolute"),
        ({"targetPath": str(tmp_path / "exists.rdb")}, "exists"),
    ]:
        with pytest.raises(InvalidRestoreTarget, match=says):
            PLUGIN.check_restore(metadata, policy)
    with pytest.raises(PermissionDenied):
        PLUGIN.check_restore({"targetUrl": "redis://192.0.2.1"}, policy)
    with pytest.raises(PermissionDenied):
        PLUGIN.check_restore({"targetPath": "/etc/dump.rdb"}, policy)


def test_redis_clis_end_mark_is_dropped_and_an_rdb_end_is_kept() -> None:
    rdb = b"REDIS0010" + b"\x00" * 3000 + b"\xff" + b"\x01" * 8
    mark = b"0123456789abcdef0123456789abcdef01234567"

    def drain(data: bytes, size: int) -> bytes:
        reader, out = redis._WithoutEndMark(io.BytesIO(data)), b""
        while chunk := reader.read(size):
            out += chunk
        return out

    for size in (1, 7, 40, 4096):
        assert drain(rdb + mark, size) == rdb
        assert drain(rdb, size) == rdb


def test_backup_then_restore_into_an_empty_server_gives_every_key_back(
    source: RedisServer, empty: RedisServer, policy: host_paths.Policy
) -> None:
    resource = _resource(source)
    sink = _backup(resource, policy)
    rdb = sink.files[redis.ENTRY]
    assert list(sink.files) == [redis.ENTRY] and rdb.startswith(b"REDIS")
    assert rdb[-9] == 0xFF  # the RDB's own end: opcode EOF and checksum, no end mark
    assert sink.info["keys_at_start"] == {"0": 53, "3": 1}
    assert _restore(resource, sink, policy, {"targetUrl": empty.url}) is None
    assert content(empty.port) == content(source.port, PASSWORD)
    with pytest.raises(InvalidRestoreTarget, match="is not empty"):
        _restore(resource, sink, policy, {"targetUrl": empty.url})


def test_the_check_after_restore_compares_key_counts(
    source: RedisServer, empty: RedisServer, policy: host_paths.Policy
) -> None:
    resource = _resource(source)
    sink = _backup(resource, policy)
    metadata = {"targetUrl": empty.url}
    request = RestoreRequest(resource, metadata, policy, MemorySource.of(sink), lambda p: None)
    PLUGIN.restore(request)
    empty.cli("DEL", "s")  # a key with a TTL may expire before the check: no difference
    assert PLUGIN.validate_restore(request) is None
    empty.cli("SET", "intruder", "1")
    empty.cli("SET", "another", "1")
    problem = PLUGIN.validate_restore(request)  # counted again from the point's RDB
    assert problem == (
        f"redis://127.0.0.1:{empty.port} holds keys per database {{0: 54, 3: 1}}, "
        "the backup {0: 53, 3: 1} (1 of them with a TTL)"
    )


def test_restore_to_a_file_that_a_fresh_server_loads(
    source: RedisServer, tmp_path: Path, policy: host_paths.Policy
) -> None:
    resource = _resource(source)
    sink = _backup(resource, policy)
    target = tmp_path / "restored.rdb"
    assert _restore(resource, sink, policy, {"targetPath": str(target)}) is None
    assert target.read_bytes() == sink.files[redis.ENTRY]
    broken = tmp_path / "broken.rdb"
    sink.files[redis.ENTRY] = b"REDIS0010 but not really"
    assert _restore(resource, sink, policy, {"targetPath": str(broken)}) == (
        f"{broken} does not load in a fresh redis-server"
    )


def test_the_shared_diskless_server_is_backed_up_too(policy: host_paths.Policy) -> None:
    resource = Resource("arn:x", "Redis", "r", "redis://127.0.0.1:6379")
    sink = _backup(resource, policy)
    assert sink.files[redis.ENTRY].startswith(b"REDIS") and sink.files[redis.ENTRY][-9] == 0xFF


def test_wrong_password_and_unreachable_server_fail_in_one_line_without_the_secret(
    source: RedisServer, policy: host_paths.Policy
) -> None:
    wrong = "wr0ng-pass"
    with pytest.raises(Unavailable) as err:
        _backup(_resource(source, wrong), policy)
    assert "WRONGPASS" in str(err.value) and wrong not in str(err.value)
    assert "\n" not in str(err.value)
    with pytest.raises(Unavailable, match="cannot connect") as err:
        _backup(Resource("arn:x", "Redis", "r", "redis://127.0.0.1:1"), policy)
    assert "\n" not in str(err.value)
    assert "Error" in PLUGIN.describe(_resource(source, wrong), policy)
    assert PLUGIN.describe(_resource(source), policy)["Keys"] == {"db0": 53, "db3": 1}


def test_the_password_goes_to_redis_cli_in_its_environment_only(
    source: RedisServer, policy: host_paths.Policy, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[list[str], dict[str, str]]] = []
    real_popen = subprocess.Popen

    def spy(argv: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append((list(argv), dict(kwargs.get("env") or {})))
        return real_popen(argv, *args, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", spy)
    _backup(_resource(source), policy)
    [(argv, env)] = [s for s in seen if "--rdb" in s[0]]
    assert PASSWORD not in " ".join(argv) and env["REDISCLI_AUTH"] == PASSWORD


def test_an_acl_user_with_only_replication_rights_can_back_up(
    source: RedisServer, policy: host_paths.Policy
) -> None:
    source.cli("ACL", "SETUSER", "bk", "on", ">bk-pass", "+psync", "+sync", "+replconf", "+info")
    reg = PLUGIN.check_source(f"redis://bk:bk-pass@127.0.0.1:{source.port}", policy, {})
    assert reg.source == f"redis://bk@127.0.0.1:{source.port}"
    resource = Resource("arn:x", "Redis", "r", reg.source, {}, reg.secrets)
    sink = _backup(resource, policy)
    assert sink.files[redis.ENTRY].startswith(b"REDIS")
    with pytest.raises(Unavailable, match="WRONGPASS"):
        _backup(Resource("arn:x", "Redis", "r", reg.source, {}, {"password": "x"}), policy)


def test_the_temporary_server_runs_unprivileged_on_a_private_socket_only(
    source: RedisServer, policy: host_paths.Policy
) -> None:
    rdb = _backup(_resource(source), policy).files[redis.ENTRY]
    with redis_tools.TempServer.loading(io.BytesIO(rdb), lambda n: None) as tmp:
        with tmp.connection() as conn:
            assert conn.call("CONFIG", "GET", "port") == [b"port", b"0"]
            assert conn.call("DBSIZE") == 53
        info = os.stat(tmp.socket)
        assert info.st_mode & 0o777 == 0o700 and os.stat(tmp.directory).st_mode & 0o777 == 0o700
        if os.geteuid() == 0:
            assert info.st_uid == pwd.getpwnam("nobody").pw_uid
        directory = tmp.directory
    assert not os.path.exists(directory)  # removed, the server stopped
