"""The one contract suite every store passes: the guarantees written in backends/base.py.

Kinds: memory, local, tiered (warm and cold local stores, every object moved to cold
as soon as it is written), s3 (moto server), s3-versioned (an Object Lock bucket, so deletes
go version by version), locking-memory, and retry over a faulty store that fails many
calls transiently (some after the call took effect). Retention tests run over the kinds
that enforce it. A few backend specifics (local files, S3 multipart) close the file.
"""

from __future__ import annotations

import os
import random
import stat
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock

import boto3
import pytest

from snowvault.engine import errors
from snowvault.engine.backends import base
from snowvault.engine.backends.local import LocalBackend
from snowvault.engine.backends.memory import MemoryBackend
from snowvault.engine.backends.retry import RetryBackend
from snowvault.engine.backends.s3 import S3Backend, bucket_has_object_lock
from snowvault.engine.backends.tiered import TieredBackend
from snowvault.testing import FakeClock, FaultyBackend, LockingMemoryBackend

KINDS = ["memory", "local", "s3", "s3-versioned", "locking-memory", "retry-faulty", "tiered"]
RETENTION_KINDS = ["s3-locked", "locking-memory"]
S3_KINDS = {"s3", "s3-versioned", "s3-locked"}
FAR = datetime(2099, 1, 1, tzinfo=UTC)  # moto judges retention on the real clock
FARTHER = datetime(2100, 1, 1, tzinfo=UTC)
TEN = b"0123456789"


def _s3_client(endpoint: str) -> object:
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")


def make_bucket(endpoint: str, *, object_lock: bool = False) -> str:
    bucket = f"sv-contract-{uuid.uuid4().hex[:16]}"
    client = _s3_client(endpoint)
    client.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=object_lock)  # type: ignore[attr-defined]
    return bucket


def make_s3(endpoint: str, bucket: str, **options: int) -> S3Backend:
    return S3Backend(
        bucket,
        "repo/main",
        endpoint_url=endpoint,
        region="us-east-1",
        access_key_id="testing",
        secret_access_key="testing",
        **options,  # type: ignore[arg-type]
    )


def make_retry_faulty() -> RetryBackend:
    faulty = FaultyBackend(MemoryBackend("faulty"))
    for op in ("put", "delete", "set_retention"):
        faulty.fail(op, every=2, after=True)  # landed, then reported as failed
    for op in ("get", "stat", "exists", "list", "get_retention"):
        faulty.fail(op, every=2)
    return RetryBackend(faulty, attempts=3, sleep=lambda _: None, rng=random.Random(7))


class ColdAtOnce(TieredBackend):
    """Warm and cold tiers where every object moves to cold as soon as it is written, so
    each read takes the cold path (the vault cold storage wrapper)."""

    def put(self, name: str, data: bytes | bytearray) -> None:
        super().put(name, data)
        self.move_to_cold(name)


def build(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock
) -> base.Backend:
    if kind == "tiered":
        return ColdAtOnce(LocalBackend(tmp_path / "warm"), LocalBackend(tmp_path / "cold"))
    if kind == "memory":
        return MemoryBackend()
    if kind == "local":
        return LocalBackend(tmp_path / "store")
    if kind == "locking-memory":
        return LockingMemoryBackend(clock)
    if kind == "retry-faulty":
        return make_retry_faulty()
    endpoint = request.getfixturevalue("s3_server")
    return make_s3(endpoint, make_bucket(endpoint, object_lock=kind != "s3"))


@pytest.fixture(params=KINDS)
def store(
    request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock
) -> Iterator[base.Backend]:
    backend = build(request.param, request, tmp_path, clock)
    yield backend
    backend.close()


@pytest.fixture(params=RETENTION_KINDS)
def locking(
    request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock
) -> Iterator[base.Backend]:
    backend = build(request.param, request, tmp_path, clock)
    yield backend
    backend.close()


def names(store: base.Backend, prefix: str = "") -> dict[str, int]:
    return {info.name: info.size for info in store.list(prefix)}


# -- the guarantees ------------------------------------------------------------------


def test_store_satisfies_the_protocol(store: base.Backend) -> None:
    assert isinstance(store, base.Backend)
    assert isinstance(store.capabilities, base.Capabilities)
    assert "://" in store.location
    assert "testing" not in store.location  # never a secret in a location


def test_read_after_write(store: base.Backend) -> None:
    store.put("data/ab/abcdef", TEN)
    assert store.get("data/ab/abcdef") == TEN
    assert type(store.get("data/ab/abcdef")) is bytes
    assert store.stat("data/ab/abcdef") == base.ObjectInfo("data/ab/abcdef", 10)
    assert store.exists("data/ab/abcdef")
    assert names(store) == {"data/ab/abcdef": 10}


def test_names_are_immutable(store: base.Backend) -> None:
    store.put("config", b"first")
    with pytest.raises(errors.ObjectExists):
        store.put("config", b"second")
    assert store.get("config") == b"first"


def test_missing_object(store: base.Backend) -> None:
    with pytest.raises(errors.ObjectNotFound):
        store.get("index/missing")
    with pytest.raises(errors.ObjectNotFound):
        store.get("index/missing", 2, 3)
    with pytest.raises(errors.ObjectNotFound):
        store.stat("index/missing")
    assert not store.exists("index/missing")


@pytest.mark.parametrize(
    ("offset", "length", "expected"),
    [
        (0, None, TEN),
        (0, 10, TEN),
        (3, 4, b"3456"),
        (9, 1, b"9"),
        (4, None, b"456789"),
        (10, None, b""),
        (5, 0, b""),
        (10, 0, b""),
    ],
)
def test_ranged_get(store: base.Backend, offset: int, length: int | None, expected: bytes) -> None:
    store.put("data/x", TEN)
    assert store.get("data/x", offset, length) == expected


@pytest.mark.parametrize(
    ("offset", "length"), [(0, 11), (5, 6), (9, 2), (10, 1), (11, None), (12, 0)]
)
def test_short_read_is_an_error(store: base.Backend, offset: int, length: int | None) -> None:
    store.put("data/x", TEN)
    with pytest.raises(errors.ShortRead):
        store.get("data/x", offset, length)


@pytest.mark.parametrize(("offset", "length"), [(-1, None), (0, -1)])
def test_negative_range_is_refused(store: base.Backend, offset: int, length: int | None) -> None:
    store.put("data/x", TEN)
    with pytest.raises(errors.PermanentBackendError):
        store.get("data/x", offset, length)


def test_empty_object(store: base.Backend) -> None:
    store.put("locks/empty", b"")
    assert store.get("locks/empty") == b""
    assert store.stat("locks/empty").size == 0
    with pytest.raises(errors.ShortRead):
        store.get("locks/empty", 0, 1)


def test_large_object_and_ranges_inside_it(store: base.Backend) -> None:
    blob = random.Random(42).randbytes(3 * 1024 * 1024 + 17)
    store.put("data/big", blob)
    assert store.get("data/big") == blob
    assert store.get("data/big", 1_000_000, 65_536) == blob[1_000_000:1_065_536]
    assert store.get("data/big", len(blob) - 5) == blob[-5:]


def test_list_by_prefix(store: base.Backend) -> None:
    for name, data in {
        "config": b"c",
        "data/ab/ab01": b"12",
        "data/ab/ab02": b"123",
        "data/cd/cd01": b"1234",
        "index/0001": b"12345",
        "datum": b"x",
    }.items():
        store.put(name, data)
    assert names(store, "data/") == {"data/ab/ab01": 2, "data/ab/ab02": 3, "data/cd/cd01": 4}
    assert names(store, "data/ab/") == {"data/ab/ab01": 2, "data/ab/ab02": 3}
    assert set(names(store, "data/a")) == {"data/ab/ab01", "data/ab/ab02"}
    assert set(names(store, "dat")) == {"data/ab/ab01", "data/ab/ab02", "data/cd/cd01", "datum"}
    assert set(names(store, "index/0001")) == {"index/0001"}
    assert names(store, "snapshots/") == {}
    assert len(names(store)) == 6


def test_delete(store: base.Backend) -> None:
    store.put("data/gone", b"bye")
    store.put("data/kept", b"hi")
    store.delete("data/gone")
    assert not store.exists("data/gone")
    with pytest.raises(errors.ObjectNotFound):
        store.get("data/gone")
    assert names(store, "data/") == {"data/kept": 2}


def test_delete_of_missing_name(store: base.Backend) -> None:
    with pytest.raises(errors.ObjectNotFound):
        store.delete("data/never")


def test_name_is_free_again_after_delete(store: base.Backend) -> None:
    store.put("locks/one", b"old")
    store.delete("locks/one")
    store.put("locks/one", b"new")
    assert store.get("locks/one") == b"new"


@pytest.mark.parametrize("name", ["", "/abs", "a//b", "../x", "a/./b", "dir/", "a\\b", "nul\0"])
def test_invalid_names_are_refused(store: base.Backend, name: str) -> None:
    with pytest.raises(errors.PermanentBackendError):
        store.put(name, b"x")
    with pytest.raises(errors.PermanentBackendError):
        store.get(name)


def test_retention_is_a_no_op_where_unsupported(store: base.Backend) -> None:
    if store.capabilities.retention:
        pytest.skip("this store enforces retention (see the retention tests)")
    store.put("data/x", TEN)
    store.set_retention("data/x", base.Retention("COMPLIANCE", FAR))
    assert store.get_retention("data/x") is None
    store.delete("data/x")
    assert not store.exists("data/x")


def test_racing_puts_of_one_name_have_one_winner(
    store: base.Backend, request: pytest.FixtureRequest
) -> None:
    if "s3" in request.node.callspec.id:
        pytest.skip("moto does not make If-None-Match atomic; AWS S3 and MinIO do")
    outcomes: list[str] = []
    barrier = threading.Barrier(8)

    def racer(i: int) -> None:
        barrier.wait()
        try:
            store.put("config", f"writer-{i}".encode())
            outcomes.append(f"writer-{i}")
        except errors.ObjectExists:
            outcomes.append("lost")

    threads = [threading.Thread(target=racer, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [o for o in outcomes if o != "lost"]
    assert len(winners) == 1
    assert store.get("config") == winners[0].encode()


# -- retention (stores that enforce it) ----------------------------------------------


def test_retention_capability(locking: base.Backend) -> None:
    assert locking.capabilities.retention is True


def test_no_retention_until_set(locking: base.Backend) -> None:
    locking.put("data/x", TEN)
    assert locking.get_retention("data/x") is None
    locking.delete("data/x")
    assert not locking.exists("data/x")


def test_compliance_refuses_every_delete(locking: base.Backend) -> None:
    locking.put("data/x", TEN)
    locking.set_retention("data/x", base.Retention("COMPLIANCE", FAR))
    with pytest.raises(errors.ObjectLocked):
        locking.delete("data/x")
    with pytest.raises(errors.ObjectLocked):
        locking.delete("data/x", bypass_governance=True)
    assert locking.get("data/x") == TEN


def test_governance_refuses_delete_unless_bypassed(locking: base.Backend) -> None:
    locking.put("data/x", TEN)
    locking.set_retention("data/x", base.Retention("GOVERNANCE", FAR))
    with pytest.raises(errors.ObjectLocked):
        locking.delete("data/x")
    assert locking.exists("data/x")
    locking.delete("data/x", bypass_governance=True)
    assert not locking.exists("data/x")


def test_retention_only_extends(locking: base.Backend) -> None:
    locking.put("data/x", TEN)
    locking.set_retention("data/x", base.Retention("GOVERNANCE", FARTHER))
    locking.set_retention("data/x", base.Retention("GOVERNANCE", FAR))
    assert locking.get_retention("data/x") == base.Retention("GOVERNANCE", FARTHER)


def test_compliance_is_never_downgraded(locking: base.Backend) -> None:
    locking.put("data/x", TEN)
    locking.set_retention("data/x", base.Retention("COMPLIANCE", FAR))
    locking.set_retention("data/x", base.Retention("GOVERNANCE", FARTHER))
    assert locking.get_retention("data/x") == base.Retention("COMPLIANCE", FARTHER)
    with pytest.raises(errors.ObjectLocked):
        locking.delete("data/x", bypass_governance=True)


def test_retention_of_missing_object(locking: base.Backend) -> None:
    with pytest.raises(errors.ObjectNotFound):
        locking.set_retention("data/none", base.Retention("GOVERNANCE", FAR))
    with pytest.raises(errors.ObjectNotFound):
        locking.get_retention("data/none")


def test_locking_memory_releases_when_the_clock_passes(clock: FakeClock) -> None:
    store = LockingMemoryBackend(clock)
    store.put("data/x", TEN)
    store.set_retention("data/x", base.Retention("COMPLIANCE", clock.now() + timedelta(days=30)))
    clock.advance(timedelta(days=29))
    with pytest.raises(errors.ObjectLocked):
        store.delete("data/x")
    clock.advance(timedelta(days=1))
    store.delete("data/x")
    assert not store.exists("data/x")


# -- local specifics -----------------------------------------------------------------


def test_local_objects_are_read_only_files(tmp_path: Path) -> None:
    store = LocalBackend(tmp_path)
    store.put("data/ab/abcd", TEN)
    path = tmp_path / "data" / "ab" / "abcd"
    assert path.read_bytes() == TEN
    assert stat.S_IMODE(path.stat().st_mode) == 0o400  # read-only, owner only
    assert store.location == f"file://{tmp_path}"
    assert [p.name for p in (tmp_path / "data" / "ab").iterdir()] == ["abcd"]  # no temp left


def test_local_put_never_replaces_a_file_that_appeared(tmp_path: Path) -> None:
    store = LocalBackend(tmp_path)
    store.put("data/first", b"1")  # creates and caches the directory
    (tmp_path / "data" / "racer").write_bytes(b"theirs")
    with pytest.raises(errors.ObjectExists):
        store.put("data/racer", b"ours")
    assert (tmp_path / "data" / "racer").read_bytes() == b"theirs"
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["first", "racer"]


def test_local_failed_put_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = LocalBackend(tmp_path)
    store.put("data/first", b"1")

    def broken_fsync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(errors.PermanentBackendError):
        store.put("data/second", b"2")
    monkeypatch.undo()
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["first"]
    assert not store.exists("data/second")


def test_local_list_ignores_temp_files_and_missing_root(tmp_path: Path) -> None:
    assert list(LocalBackend(tmp_path / "nowhere").list()) == []
    store = LocalBackend(tmp_path)
    store.put("data/a", b"1")
    (tmp_path / "data" / ".sv-tmp-abandoned").write_bytes(b"partial")
    assert names(store) == {"data/a": 1}


def test_local_ranged_get_reads_only_the_range(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = LocalBackend(tmp_path)
    store.put("data/big", bytes(1024 * 1024))
    asked: list[int] = []
    real_pread: Callable[[int, int, int], bytes] = os.pread

    def counting_pread(fd: int, length: int, offset: int) -> bytes:
        asked.append(length)
        return real_pread(fd, length, offset)

    monkeypatch.setattr(os, "pread", counting_pread)
    assert store.get("data/big", 4096, 100) == bytes(100)
    assert asked == [100]


# -- s3 specifics --------------------------------------------------------------------


def test_s3_multipart_put(s3_server: str) -> None:
    bucket = make_bucket(s3_server)
    store = make_s3(
        s3_server, bucket, multipart_threshold=5 * 1024 * 1024, part_size=5 * 1024 * 1024
    )
    blob = random.Random(1).randbytes(11 * 1024 * 1024)
    store.put("data/huge", blob)
    assert store.get("data/huge") == blob
    with pytest.raises(errors.ObjectExists):
        store.put("data/huge", blob[::-1])
    assert (
        store.get("data/huge", 10 * 1024 * 1024, 10)
        == blob[10 * 1024 * 1024 : 10 * 1024 * 1024 + 10]
    )
    uploads = _s3_client(s3_server).list_multipart_uploads(Bucket=bucket)  # type: ignore[attr-defined]
    assert uploads.get("Uploads", []) == []  # the refused upload was aborted


def test_s3_head_then_put_mode_still_refuses_overwrite(s3_server: str) -> None:
    store = make_s3(s3_server, make_bucket(s3_server), conditional_writes=False)
    store.put("config", b"first")
    with pytest.raises(errors.ObjectExists):
        store.put("config", b"second")
    assert store.get("config") == b"first"


def test_s3_prefixes_isolate_stores(s3_server: str) -> None:
    bucket = make_bucket(s3_server)
    one = make_s3(s3_server, bucket)
    other = S3Backend(bucket, "elsewhere", endpoint_url=s3_server, region="us-east-1")
    one.put("config", b"1")
    assert not other.exists("config")
    assert names(other) == {}
    keys = [o["Key"] for o in _s3_client(s3_server).list_objects_v2(Bucket=bucket)["Contents"]]  # type: ignore[attr-defined]
    assert keys == ["repo/main/config"]


def test_s3_versioned_delete_removes_every_version(s3_server: str) -> None:
    bucket = make_bucket(s3_server, object_lock=True)
    store = make_s3(s3_server, bucket)
    store.put("data/x", TEN)
    store.delete("data/x")
    versions = _s3_client(s3_server).list_object_versions(Bucket=bucket)  # type: ignore[attr-defined]
    assert versions.get("Versions", []) == []
    assert versions.get("DeleteMarkers", []) == []


def test_s3_missing_bucket_is_permanent(s3_server: str) -> None:
    store = make_s3(s3_server, f"sv-missing-{uuid.uuid4().hex[:12]}")
    with pytest.raises(errors.PermanentBackendError):
        store.put("config", b"x")
    with pytest.raises(errors.PermanentBackendError):
        list(store.list())


def test_s3_unreachable_endpoint_is_transient() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again at once: nothing listens
    store = S3Backend("bucket", endpoint_url=f"http://127.0.0.1:{port}", region="us-east-1")
    with pytest.raises(errors.TransientBackendError):
        store.get("config")


def test_bucket_has_object_lock(s3_server: str) -> None:
    opts = {"endpoint_url": s3_server, "region": "us-east-1"}
    assert bucket_has_object_lock(make_bucket(s3_server, object_lock=True), **opts)
    assert not bucket_has_object_lock(make_bucket(s3_server), **opts)
    assert make_s3(s3_server, make_bucket(s3_server)).capabilities.retention is False


def test_local_directories_are_not_objects(tmp_path: Path) -> None:
    store = LocalBackend(tmp_path)
    store.put("data/ab/abcd", TEN)
    for read in (
        lambda: store.get("data/ab"),
        lambda: store.get("data/ab", 0, 0),
        lambda: store.stat("data"),
    ):
        with pytest.raises(errors.ObjectNotFound):
            read()
    assert not store.exists("data/ab")


def test_local_list_skips_an_object_deleted_while_listing(tmp_path: Path) -> None:
    """A lock released between the directory read and its stat must not fail the list."""
    store = LocalBackend(str(tmp_path))
    store.put("locks/a", b"1")
    store.put("locks/b", b"2")
    real_scandir = os.scandir

    def scandir_then_delete(path: Any) -> Any:
        entries = list(real_scandir(path))
        if str(path).endswith("locks"):
            os.unlink(os.path.join(path, "a"))
        return iter(entries)

    with mock.patch("os.scandir", scandir_then_delete):
        names = [info.name for info in store.list("locks/")]
    assert names == ["locks/b"]
