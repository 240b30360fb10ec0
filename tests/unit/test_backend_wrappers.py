"""The store wrappers (retry, faulty, read-only), URL parsing and S3 error translation."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest
from botocore.exceptions import ClientError as BotoClientError
from botocore.exceptions import (
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)

from snowvault.core import errors as core_errors
from snowvault.engine import errors
from snowvault.engine.backends import base
from snowvault.engine.backends.local import LocalBackend
from snowvault.engine.backends.memory import MemoryBackend
from snowvault.engine.backends.readonly import ReadOnlyBackend
from snowvault.engine.backends.retry import RetryBackend
from snowvault.engine.backends.s3 import S3Backend, translate
from snowvault.engine.backends.url import open_backend, parse_s3_url
from snowvault.testing import FaultyBackend

BOOM = errors.TransientBackendError(detail="boom")


def retrying(inner: base.Backend, attempts: int = 4) -> tuple[RetryBackend, list[float]]:
    sleeps: list[float] = []
    return RetryBackend(inner, attempts, 0.5, sleep=sleeps.append, rng=random.Random(3)), sleeps


# -- FaultyBackend -------------------------------------------------------------------


def test_faulty_fails_exactly_the_nth_call() -> None:
    faulty = FaultyBackend(MemoryBackend()).fail("put", nth=2, error=BOOM)
    faulty.put("a", b"1")
    with pytest.raises(errors.TransientBackendError):
        faulty.put("b", b"2")
    faulty.put("c", b"3")
    assert not faulty.inner.exists("b")
    assert faulty.calls["put"] == 3
    assert faulty.rules[0].fired == 1


def test_faulty_times_and_every() -> None:
    faulty = FaultyBackend(MemoryBackend())
    faulty.fail("exists", nth=2, times=2).fail("stat", every=3)
    assert [_raises(lambda: faulty.exists("x")) for _ in range(5)] == [
        False,
        True,
        True,
        False,
        False,
    ]
    faulty.inner.put("x", b"")
    assert [_raises(lambda: faulty.stat("x")) for _ in range(7)] == [
        False, False, True, False, False, True, False,
    ]  # fmt: skip


def test_faulty_after_lets_the_call_land_first() -> None:
    faulty = FaultyBackend(MemoryBackend()).fail("put", nth=1, after=True)
    with pytest.raises(errors.TransientBackendError):
        faulty.put("a", b"1")
    assert faulty.inner.get("a") == b"1"


def test_faulty_with_a_permanent_error_and_unknown_op() -> None:
    faulty = FaultyBackend(MemoryBackend()).fail(
        "list", error=errors.PermanentBackendError(detail="x")
    )
    with pytest.raises(errors.PermanentBackendError):
        faulty.list()
    with pytest.raises(ValueError, match="unknown operation"):
        faulty.fail("rename")


def _raises(call: object) -> bool:
    try:
        call()  # type: ignore[operator]
    except errors.BackendError:
        return True
    return False


# -- RetryBackend --------------------------------------------------------------------


def test_retry_rides_out_transient_errors() -> None:
    faulty = FaultyBackend(MemoryBackend()).fail("get", nth=1, times=3, error=BOOM)
    faulty.inner.put("a", b"1")
    store, sleeps = retrying(faulty)
    assert store.get("a") == b"1"
    assert faulty.calls["get"] == 4
    assert len(sleeps) == 3
    assert sleeps[0] < sleeps[1] < sleeps[2]


def test_retry_gives_up_after_the_last_attempt() -> None:
    faulty = FaultyBackend(MemoryBackend()).fail("stat", every=1, error=BOOM)
    store, sleeps = retrying(faulty, attempts=3)
    with pytest.raises(errors.TransientBackendError, match="boom"):
        store.stat("a")
    assert faulty.calls["stat"] == 3
    assert len(sleeps) == 2


def test_retry_fails_fast_on_permanent_errors() -> None:
    faulty = FaultyBackend(MemoryBackend())
    store, sleeps = retrying(faulty)
    with pytest.raises(errors.ObjectNotFound):
        store.get("missing")
    faulty.fail("put", error=errors.PermanentBackendError(detail="denied"))
    with pytest.raises(errors.PermanentBackendError):
        store.put("a", b"1")
    assert faulty.calls == {"get": 1, "put": 1}
    assert sleeps == []


def test_retry_accepts_a_put_that_landed_before_failing() -> None:
    faulty = FaultyBackend(MemoryBackend()).fail("put", nth=1, after=True)
    store, _ = retrying(faulty)
    store.put("a", b"payload")
    assert faulty.calls["put"] == 2
    assert faulty.inner.get("a") == b"payload"


def test_retry_still_refuses_a_put_over_different_bytes() -> None:
    faulty = FaultyBackend(MemoryBackend()).fail("put", nth=2)
    faulty.inner.put("a", b"theirs")
    store, _ = retrying(faulty)
    faulty.put("b", b"x")  # call 1
    with pytest.raises(errors.ObjectExists):
        store.put("a", b"mine!!")  # call 2 fails transiently, the retry meets "theirs"
    assert faulty.inner.get("a") == b"theirs"


def test_retry_refuses_a_plain_duplicate_put_without_reading_back() -> None:
    faulty = FaultyBackend(MemoryBackend())
    faulty.inner.put("a", b"same")
    store, _ = retrying(faulty)
    with pytest.raises(errors.ObjectExists):
        store.put("a", b"same")  # no earlier attempt failed: a real duplicate
    assert faulty.calls["get"] == 0


def test_retry_accepts_a_delete_that_landed_before_failing() -> None:
    faulty = FaultyBackend(MemoryBackend()).fail("delete", nth=1, after=True)
    faulty.inner.put("a", b"1")
    store, _ = retrying(faulty)
    store.delete("a")
    assert not faulty.inner.exists("a")
    with pytest.raises(errors.ObjectNotFound):
        store.delete("a")


def test_retry_lists_without_duplicates() -> None:
    faulty = FaultyBackend(MemoryBackend()).fail("list", nth=1)
    for name in ("a", "b", "c"):
        faulty.inner.put(name, b"")
    store, _ = retrying(faulty)
    assert sorted(info.name for info in store.list()) == ["a", "b", "c"]


def test_retry_delay_is_bounded_jittered_and_seeded() -> None:
    make = lambda: RetryBackend(MemoryBackend(), 10, 1.0, max_delay=8.0, rng=random.Random(5))  # noqa: E731
    one, two = make(), make()
    delays = [one.delay(n) for n in range(1, 8)]
    assert delays == [two.delay(n) for n in range(1, 8)]
    for n, delay in enumerate(delays, start=1):
        ceiling = min(8.0, 2.0 ** (n - 1))
        assert ceiling / 2 <= delay <= ceiling


def test_retry_reports_each_retry() -> None:
    seen: list[tuple[str, int]] = []
    faulty = FaultyBackend(MemoryBackend()).fail("exists", nth=1, times=2)
    store = RetryBackend(
        faulty, 3, 0.0, sleep=lambda _: None, on_retry=lambda op, n, e, d: seen.append((op, n))
    )
    assert store.exists("a") is False
    assert seen == [("exists", 1), ("exists", 2)]


def test_retry_needs_an_attempt() -> None:
    with pytest.raises(core_errors.InvalidInput):
        RetryBackend(MemoryBackend(), attempts=0)


# -- ReadOnlyBackend -----------------------------------------------------------------


def test_read_only_refuses_writes_and_passes_reads() -> None:
    inner = MemoryBackend()
    inner.put("a", b"1")
    store = ReadOnlyBackend(inner)
    until = datetime(2030, 1, 1, tzinfo=UTC)
    for write in (
        lambda: store.put("b", b"2"),
        lambda: store.delete("a"),
        lambda: store.set_retention("a", base.Retention("COMPLIANCE", until)),
    ):
        with pytest.raises(errors.PermanentBackendError, match="read-only"):
            write()
    assert store.get("a") == b"1"
    assert [i.name for i in store.list()] == ["a"]
    assert store.exists("a") and not inner.exists("b")
    assert store.location == inner.location


# -- URLs ----------------------------------------------------------------------------


def test_paths_and_file_urls_open_local_stores(tmp_path: object) -> None:
    plain = open_backend(str(tmp_path))
    assert isinstance(plain, LocalBackend) and plain.root == str(tmp_path)
    from_url = open_backend(f"file://{tmp_path}/repo")
    assert isinstance(from_url, LocalBackend) and from_url.root == f"{tmp_path}/repo"


def test_memory_url_opens_a_fresh_memory_store() -> None:
    one, two = open_backend("memory://"), open_backend("memory://")
    assert isinstance(one, MemoryBackend)
    one.put("a", b"1")
    assert not two.exists("a")


def test_s3_url_opens_a_retrying_s3_store() -> None:
    store = open_backend(
        "s3://my-bucket/vaults/main?endpoint_url=http://127.0.0.1:9&region=eu-west-1", env={}
    )
    assert isinstance(store, RetryBackend)
    assert isinstance(store.inner, S3Backend)
    assert store.location == "s3://my-bucket/vaults/main/"
    bare = open_backend("s3://my-bucket?retry_attempts=1&endpoint_url=http://127.0.0.1:9", env={})
    assert isinstance(bare, S3Backend)


def test_s3_url_options_beat_the_environment() -> None:
    env = {
        "AWS_ENDPOINT_URL": "http://generic:1",
        "AWS_ENDPOINT_URL_S3": "http://s3-specific:2",
        "AWS_DEFAULT_REGION": "us-east-2",
        "AWS_REGION": "eu-central-1",
        "AWS_ACCESS_KEY_ID": "AKIDENV",
        "AWS_SECRET_ACCESS_KEY": "secretenv",
    }
    from_env = parse_s3_url("s3://bkt/p/q/", env)
    assert (from_env.endpoint_url, from_env.region) == ("http://s3-specific:2", "eu-central-1")
    assert (from_env.access_key_id, from_env.secret_access_key) == ("AKIDENV", "secretenv")
    assert from_env.prefix == "p/q"
    url = "s3://bkt?endpoint_url=http://mine:3&region=ap-south-1&part_size=6000000&conditional_writes=false"
    explicit = parse_s3_url(url, env)
    assert (explicit.endpoint_url, explicit.region) == ("http://mine:3", "ap-south-1")
    assert explicit.part_size == 6_000_000
    assert explicit.conditional_writes is False
    assert explicit.retry_attempts == 5
    # the generic variable points the AWS tools at snowvault, never a repository's store
    assert parse_s3_url("s3://bkt", {"AWS_ENDPOINT_URL": "http://generic:1"}).endpoint_url is None


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("", "empty"),
        ("gs://bucket/x", "unsupported scheme 'gs'"),
        ("file://", "needs a path"),
        ("s3://", "valid bucket name"),
        ("s3://Bad_Bucket!/x", "valid bucket name"),
        ("s3://bkt?colour=blue", "unknown option 'colour'"),
        ("s3://bkt?region=a&region=b", "given twice"),
        ("s3://bkt?part_size=big", "positive integer"),
        ("s3://bkt?endpoint_url=localhost:9000", "http:// or https://"),
        ("s3://bkt?conditional_writes=maybe", "true or false"),
    ],
)
def test_bad_urls_are_invalid_input(url: str, why: str) -> None:
    with pytest.raises(core_errors.InvalidInput, match=why) as caught:
        open_backend(url, env={})
    assert "\n" not in str(caught.value)


def test_secrets_never_reach_the_error_message() -> None:
    with pytest.raises(core_errors.InvalidInput) as caught:
        open_backend("s3://bkt?secret_access_key=hunter2&colour=x", env={})
    assert "hunter2" not in str(caught.value)


def test_too_small_parts_are_invalid_input() -> None:
    with pytest.raises(core_errors.InvalidInput, match="part_size"):
        open_backend("s3://bkt?part_size=1024&endpoint_url=http://127.0.0.1:9", env={})


# -- S3 error translation ------------------------------------------------------------


def _client_error(code: str, status: int) -> BotoClientError:
    response = {
        "Error": {"Code": code, "Message": "msg"},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return BotoClientError(response, "GetObject")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("NoSuchKey", 404, errors.ObjectNotFound),
        ("404", 404, errors.ObjectNotFound),
        ("PreconditionFailed", 412, errors.ObjectExists),
        ("SlowDown", 503, errors.TransientBackendError),
        ("InternalError", 500, errors.TransientBackendError),
        ("RequestTimeout", 400, errors.TransientBackendError),
        ("", 502, errors.TransientBackendError),
        ("TooManyRequests", 429, errors.TransientBackendError),
        ("AccessDenied", 403, errors.PermanentBackendError),
        ("InvalidAccessKeyId", 403, errors.PermanentBackendError),
        ("SignatureDoesNotMatch", 403, errors.PermanentBackendError),
        ("NoSuchBucket", 404, errors.PermanentBackendError),
    ],
)
def test_s3_client_errors_translate(
    code: str, status: int, expected: type[errors.BackendError]
) -> None:
    error = translate(_client_error(code, status), "data/x")
    assert type(error) is expected


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), errors.TransientBackendError),
        (ConnectTimeoutError(endpoint_url="http://127.0.0.1:1"), errors.TransientBackendError),
        (ReadTimeoutError(endpoint_url="http://127.0.0.1:1"), errors.TransientBackendError),
        (NoCredentialsError(), errors.PermanentBackendError),
    ],
)
def test_s3_transport_errors_translate(exc: Exception, expected: type[errors.BackendError]) -> None:
    assert type(translate(exc, "data/x")) is expected
