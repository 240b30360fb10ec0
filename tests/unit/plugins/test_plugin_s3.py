"""The S3 plugin against a moto S3 server on loopback, through snowvault.testing's
MemorySink/MemorySource (no engine, no catalog): registration splits the secret off and
judges the endpoint, objects round trip with content type, user metadata and tags, an
incremental point reads only what changed, restores go to another bucket or take single
keys, refuse to write over keys, and every failure is one line without the secret."""

from __future__ import annotations

import doctest
import io
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, BinaryIO

import boto3
import moto.settings
import pytest

from snowvault.control.model import host_paths, net_reach
from snowvault.core.errors import InvalidInput, NotFound, PermissionDenied, Unavailable
from snowvault.plugins import s3
from snowvault.plugins.base import (
    BackupRequest,
    Entry,
    Progress,
    ProgressCallback,
    Resource,
    RestoreRequest,
)
from snowvault.plugins.errors import InvalidRestoreTarget
from snowvault.testing.plugins import MemorySink, MemorySource

POLICY = host_paths.Policy()  # loopback networks only
SECRET = "s3cr3t-never-shown"


def _admin(endpoint: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture
def names(request: pytest.FixtureRequest) -> Iterator[str]:
    """A bucket-name stem unique to the test (the moto server is shared per process)."""
    yield re.sub(r"[^a-z0-9]", "-", request.node.name.lower())[:40].strip("-")


@pytest.fixture
def admin(s3_server: str) -> Any:
    return _admin(s3_server)


def _resource(endpoint: str, source: str, **props: str) -> Resource:
    properties = {"endpoint": endpoint, "region": "us-east-1", "access_key_id": "AKID"}
    return Resource(
        "arn:aws:snowvault:us-east-1:111122223333:s3/r",
        "S3",
        "r",
        source,
        properties | props,
        {"secret_access_key": SECRET},
    )


def _fill(admin: Any, bucket: str) -> None:
    admin.create_bucket(Bucket=bucket)
    admin.put_object(
        Bucket=bucket,
        Key="data/a.json",
        Body=b'{"a": 1}',
        ContentType="application/json",
        Metadata={"owner": "ana", "colour": "blue"},
        Tagging="class=gold&team=red%20x",
    )
    admin.put_object(Bucket=bucket, Key="data/dir/b.bin", Body=bytes(range(256)) * 40)
    admin.put_object(Bucket=bucket, Key="data/weird//../c", Body=b"odd key")
    admin.put_object(Bucket=bucket, Key="other/not-in-prefix", Body=b"x")
    admin.put_object(Bucket=bucket, Key="data/", Body=b"")  # a console's "folder" marker


@dataclass
class IncrementalSink(MemorySink):
    """A MemorySink that honours Entry.fingerprint as an engine sink does: an entry whose
    fingerprint equals the parent point's entry at the same path takes its body unread."""

    parent: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    fingerprints: dict[str, str] = field(default_factory=dict)

    def entries(self, entries: Iterable[Entry], progress: ProgressCallback) -> None:
        super().entries((self._reuse(e) for e in entries), progress)

    def _reuse(self, entry: Entry) -> Entry:
        if entry.fingerprint is not None:
            self.fingerprints[entry.path] = entry.fingerprint
        old = self.parent.get(entry.path)
        if old is None or entry.fingerprint is None or old[0] != entry.fingerprint:
            return entry

        @contextmanager
        def reused() -> Iterator[BinaryIO]:
            yield io.BytesIO(old[1])

        return replace(entry, open=reused)

    def child(self) -> IncrementalSink:
        return IncrementalSink(parent={p: (f, self.files[p]) for p, f in self.fingerprints.items()})


def _backup(plugin: s3.S3, resource: Resource, sink: MemorySink) -> list[Progress]:
    seen: list[Progress] = []
    plugin.backup(BackupRequest(resource, POLICY, sink, seen.append))
    return seen


def _restore(
    plugin: s3.S3, resource: Resource, sink: MemorySink, metadata: dict[str, str]
) -> RestoreRequest:
    request = RestoreRequest(resource, metadata, POLICY, MemorySource.of(sink), lambda p: None)
    plugin.check_restore(metadata, POLICY)
    plugin.restore(request)
    return request


def test_module_doctests() -> None:
    assert doctest.testmod(s3).failed == 0


def test_registration_keeps_the_secret_apart_and_judges_the_endpoint_first() -> None:
    plugin = s3.S3()
    props = {
        "endpoint": "http://127.0.0.1:9/",
        "access_key_id": "AKID",
        "secret_access_key": SECRET,
        "versions": "TRUE",
    }
    reg = plugin.check_source("s3://photos/2024", POLICY, props)
    assert reg.source == "s3://photos/2024/"
    assert reg.properties == {
        "endpoint": "http://127.0.0.1:9",
        "region": "us-east-1",
        "access_key_id": "AKID",
        "versions": "true",
    }
    assert reg.secrets == {"secret_access_key": SECRET}
    with pytest.raises(net_reach.NetworkRefused):  # refused before anything is contacted
        plugin.check_source("s3://photos", POLICY, props | {"endpoint": "http://10.9.9.9:9000"})
    bad = [
        ("s3://photos", props | {"color": "x"}),
        ("s3://photos", {k: v for k, v in props.items() if k != "secret_access_key"}),
        ("s3://Not_A_Bucket", props),
        ("https://photos", props),
        ("s3://photos", props | {"endpoint": "ftp://127.0.0.1"}),
        ("s3://photos", props | {"endpoint": "http://u:p@127.0.0.1"}),
    ]
    for source, properties in bad:
        with pytest.raises(InvalidInput) as caught:
            plugin.check_source(source, POLICY, properties)
        assert SECRET not in str(caught.value)


def test_objects_round_trip_with_content_type_metadata_and_tags(
    s3_server: str, admin: Any, names: str
) -> None:
    src, dst = f"{names}-src", f"{names}-dst"
    _fill(admin, src)
    admin.create_bucket(Bucket=dst)
    plugin = s3.S3()
    resource = _resource(s3_server, f"s3://{src}/data")
    sink = MemorySink()
    seen = _backup(plugin, resource, sink)
    assert sink.kind == "entries"
    assert sorted(sink.files) == ["%", "a.json", "dir/b.bin", "weird/%/%2E%2E/c"]
    assert sink.info["objects"] == 4 and sink.info["bucket"] == src
    assert seen[0] == Progress(0, 8 + 10240 + 7) and seen[-1].bytes_done == 8 + 10240 + 7
    meta = sink.meta["a.json"]
    assert meta["content_type"] == "application/json"
    assert meta["tags"] == '{"class": "gold", "team": "red x"}'
    assert meta["key"] == "a.json" and meta["etag"].strip('"')

    request = _restore(plugin, resource, sink, {"targetBucket": dst, "targetPrefix": "copy"})
    assert plugin.validate_restore(request) is None
    got = admin.get_object(Bucket=dst, Key="copy/a.json")
    assert got["Body"].read() == b'{"a": 1}'
    assert got["ContentType"] == "application/json"
    assert got["Metadata"] == {"owner": "ana", "colour": "blue"}
    tags = admin.get_object_tagging(Bucket=dst, Key="copy/a.json")["TagSet"]
    assert {t["Key"]: t["Value"] for t in tags} == {"class": "gold", "team": "red x"}
    assert admin.get_object(Bucket=dst, Key="copy/weird//../c")["Body"].read() == b"odd key"
    keys = {o["Key"] for o in admin.list_objects_v2(Bucket=dst)["Contents"]}
    assert keys == {"copy/", "copy/a.json", "copy/dir/b.bin", "copy/weird//../c"}


def test_a_second_point_reads_only_the_changed_object(
    s3_server: str, admin: Any, names: str
) -> None:
    _fill(admin, names)
    reads: list[str] = []
    plugin = s3.S3(on_read=reads.append)
    resource = _resource(s3_server, f"s3://{names}/data/")
    first = IncrementalSink()
    _backup(plugin, resource, first)
    assert sorted(reads) == ["data/", "data/a.json", "data/dir/b.bin", "data/weird//../c"]
    admin.put_object(Bucket=names, Key="data/dir/b.bin", Body=b"changed")
    reads.clear()
    second = first.child()
    _backup(plugin, resource, second)
    assert reads == ["data/dir/b.bin"]
    assert second.files["dir/b.bin"] == b"changed"
    assert second.files["a.json"] == b'{"a": 1}'  # taken from the parent, unread
    assert second.meta["a.json"]["content_type"] == "application/json"


def test_single_items_restore_and_existing_keys_are_not_overwritten_unless_asked(
    s3_server: str, admin: Any, names: str
) -> None:
    _fill(admin, names)
    plugin = s3.S3()
    resource = _resource(s3_server, f"s3://{names}/data")
    sink = MemorySink()
    _backup(plugin, resource, sink)
    admin.put_object(Bucket=names, Key="data/dir/b.bin", Body=b"damaged")
    defaults = plugin.restore_defaults(resource)
    assert defaults == {"targetBucket": names, "targetPrefix": "data/", "overwrite": "false"}
    one = defaults | {"items": '["dir/b.bin"]'}
    with pytest.raises(InvalidRestoreTarget, match=r"1 key\(s\) exist .*overwrite"):
        _restore(plugin, resource, sink, one)
    assert admin.get_object(Bucket=names, Key="data/dir/b.bin")["Body"].read() == b"damaged"
    request = _restore(plugin, resource, sink, one | {"overwrite": "true"})
    assert plugin.validate_restore(request) is None
    body = admin.get_object(Bucket=names, Key="data/dir/b.bin")["Body"].read()
    assert body == bytes(range(256)) * 40
    with pytest.raises(InvalidRestoreTarget, match="names no object"):
        _restore(plugin, resource, sink, one | {"items": "nope", "overwrite": "true"})
    with pytest.raises(InvalidRestoreTarget, match="targetBucket is required"):
        plugin.check_restore({"targetPrefix": "x"}, POLICY)
    with pytest.raises(InvalidRestoreTarget, match="not accepted"):
        plugin.check_restore({"targetBucket": names, "targetSecretAccessKey": "x"}, POLICY)
    with pytest.raises(net_reach.NetworkRefused):
        plugin.check_restore({"targetBucket": names, "targetEndpoint": "http://10.0.0.1"}, POLICY)


def test_validate_restore_finds_a_missing_or_different_object(
    s3_server: str, admin: Any, names: str
) -> None:
    _fill(admin, names)
    admin.create_bucket(Bucket=f"{names}-t")
    plugin = s3.S3()
    resource = _resource(s3_server, f"s3://{names}/data")
    sink = MemorySink()
    _backup(plugin, resource, sink)
    request = _restore(plugin, resource, sink, {"targetBucket": f"{names}-t"})
    admin.put_object(Bucket=f"{names}-t", Key="a.json", Body=b'{"a": 2}')
    assert "has ETag" in (plugin.validate_restore(request) or "")
    admin.delete_object(Bucket=f"{names}-t", Key="a.json")
    assert plugin.validate_restore(request) == "1 of 3 object(s) missing (first: 'a.json')"
    assert admin.list_objects_v2(Bucket=f"{names}-t", Prefix="")["KeyCount"] == 2  # no "" key


def test_versions_are_kept_when_asked(s3_server: str, admin: Any, names: str) -> None:
    admin.create_bucket(Bucket=names)
    admin.put_bucket_versioning(Bucket=names, VersioningConfiguration={"Status": "Enabled"})
    for body in (b"v1", b"v2", b"v3"):
        admin.put_object(Bucket=names, Key="k", Body=body)
    plugin = s3.S3()
    sink = MemorySink()
    _backup(plugin, _resource(s3_server, f"s3://{names}", versions="true"), sink)
    assert sink.files["k"] == b"v3"
    old = sorted(p for p in sink.files if p.startswith("%versions/k%v/"))
    assert sorted(sink.files[p] for p in old) == [b"v1", b"v2"]
    assert sink.info["versions"] == 2


def test_failures_are_one_line_without_the_secret(
    s3_server: str, admin: Any, names: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    plugin = s3.S3()

    def fails(resource: Resource) -> str:
        with pytest.raises((NotFound, Unavailable, PermissionDenied)) as caught:
            _backup(plugin, resource, MemorySink())
        message = str(caught.value)
        assert "\n" not in message and SECRET not in message
        return message

    missing = fails(_resource(s3_server, f"s3://{names}-none/"))
    assert missing == f"S3 bucket not found: {names}-none at {s3_server}"
    closed = fails(_resource("http://127.0.0.1:9", f"s3://{names}/"))
    assert closed.startswith("unavailable: S3 endpoint http://127.0.0.1:9 cannot be reached")

    admin.create_bucket(Bucket=names)
    iam = boto3.client(
        "iam",
        endpoint_url=s3_server,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    iam.create_user(UserName=names)
    key = iam.create_access_key(UserName=names)["AccessKey"]["AccessKeyId"]
    monkeypatch.setattr(moto.settings, "INITIAL_NO_AUTH_ACTION_COUNT", 0)  # moto checks keys
    wrong = fails(_resource(s3_server, f"s3://{names}/", access_key_id=key))
    assert wrong.startswith(f"S3 endpoint {s3_server} refused access key {key!r}")
    assert re.search(r"\((403|SignatureDoesNotMatch)\): check the access key id, secret", wrong)
    describe = plugin.describe(_resource(s3_server, f"s3://{names}/", access_key_id=key), POLICY)
    assert set(describe) == {"Error"} and SECRET not in describe["Error"]


def test_describe_counts_objects_only_with_the_secret_at_hand(
    s3_server: str, admin: Any, names: str
) -> None:
    _fill(admin, names)
    resource = _resource(s3_server, f"s3://{names}/data/")
    shown = {"Bucket": names, "Prefix": "data/", "Endpoint": s3_server}
    assert s3.S3().describe(resource, POLICY) == shown | {"Objects": "4"}
    assert (
        s3.S3().describe(replace(resource, secrets={}), POLICY) == shown
    )  # no secret: nothing listed
    assert set(s3.S3().describe(replace(resource, source="s3://x"), POLICY)) == {"Error"}


def test_a_large_object_is_restored_as_a_streamed_multipart_upload(
    s3_server: str, admin: Any, names: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(s3, "SINGLE_PUT_LIMIT", 5 * 1024 * 1024)  # S3's smallest part
    body = bytes(range(256)) * (6 * 4096)  # 6 MiB: two parts
    admin.create_bucket(Bucket=names)
    admin.put_object(Bucket=names, Key="big", Body=body, Metadata={"k": "v"})
    plugin = s3.S3()
    resource = _resource(s3_server, f"s3://{names}")
    sink = MemorySink()
    _backup(plugin, resource, sink)
    request = _restore(plugin, resource, sink, {"targetBucket": names, "targetPrefix": "r"})
    source = request.source
    assert isinstance(source, MemorySource) and max(source.reads) <= 64 * 1024  # streamed
    got = admin.get_object(Bucket=names, Key="r/big")
    assert got["ETag"].endswith('-2"') and got["Metadata"] == {"k": "v"}
    assert got["Body"].read() == body
    assert plugin.validate_restore(request) is None  # multipart: sizes compared


def test_http_endpoints_are_reached_at_the_address_the_rule_resolved() -> None:
    """No second lookup (DNS rebinding); https keeps the name its certificate must match."""
    by_name = s3._reach(s3.parse_endpoint("http://localhost:9000"), POLICY)
    assert by_name in ("http://127.0.0.1:9000", "http://[::1]:9000")
    secure = s3._reach(s3.parse_endpoint("https://localhost"), POLICY)
    assert secure == "https://localhost:443"
