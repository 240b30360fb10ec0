"""S3 resources through the services, a real worker and a vault repository (the engine
sink and source), against a moto server on loopback: a first point reads every object, a
second after one object changed reads only that one (the rest is the parent's content,
unread), a restore to another bucket brings bodies, content type, user metadata and tags
back, a single key restores alone, an existing key is not overwritten, and wrong
credentials, a missing bucket or an unreachable endpoint FAIL the job with one line."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import moto.settings
import pytest

from helpers import plugin_stories as story
from snowvault.control.services import resources
from snowvault.control.services.base import Caller, Deps
from snowvault.plugins.s3 import S3
from snowvault.testing import FakeClock

REGION = "us-east-1"
SECRET = "s3cr3t-never-shown"
BIG = bytes(range(251)) * 2000  # ~0.5 MB: several reads, one chunk or two


@pytest.fixture
def reads() -> list[str]:
    return []


@pytest.fixture
def deps(tmp_path: Path, clock: FakeClock, reads: list[str]) -> Iterator[Deps]:
    deps = story.make_deps(tmp_path, clock, [S3(on_read=reads.append)])
    yield deps
    deps.engine.dispose()


@pytest.fixture
def caller(deps: Deps) -> Caller:
    return story.make_caller(deps)  # with vault "v"


@pytest.fixture
def admin(s3_server: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=s3_server,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture
def bucket(request: pytest.FixtureRequest, admin: Any) -> str:
    name = "it-" + re.sub(r"[^a-z0-9]", "-", request.node.name.lower())[-40:].strip("-")
    admin.create_bucket(Bucket=name)
    admin.put_object(
        Bucket=name,
        Key="data/a.json",
        Body=b'{"a": 1}',
        ContentType="application/json",
        Metadata={"owner": "ana"},
        Tagging="class=gold",
    )
    admin.put_object(Bucket=name, Key="data/dir/b.bin", Body=BIG)
    admin.put_object(Bucket=name, Key="data/c.txt", Body=b"see", ContentType="text/plain")
    return name


def _register(deps: Deps, caller: Caller, name: str, source: str, **props: str) -> str:
    properties = {
        "endpoint": props.pop("endpoint"),
        "access_key_id": "testing",
        "secret_access_key": SECRET,
    }
    row = resources.register(
        deps,
        caller,
        resource_type="S3",
        name=name,
        source=source,
        properties=properties | props,
    )
    return str(row["arn"])


def _keys(admin: Any, bucket: str) -> set[str]:
    return {o["Key"] for o in admin.list_objects_v2(Bucket=bucket).get("Contents", [])}


def test_incremental_points_and_restores_through_the_engine(
    deps: Deps, caller: Caller, s3_server: str, admin: Any, bucket: str, reads: list[str]
) -> None:
    arn = _register(deps, caller, "data", f"s3://{bucket}/data", endpoint=s3_server)
    first = story.backup(deps, caller, arn)
    assert first.state == "COMPLETED", first.status_message
    assert sorted(reads) == ["data/a.json", "data/c.txt", "data/dir/b.bin"]
    assert first.backup_size_in_bytes == len(BIG) + 8 + 3

    admin.put_object(Bucket=bucket, Key="data/c.txt", Body=b"seen again", ContentType="x/y")
    reads.clear()
    second = story.backup(deps, caller, arn)
    assert second.state == "COMPLETED", second.status_message
    assert reads == ["data/c.txt"]  # a.json and dir/b.bin: the parent's content, unread

    admin.create_bucket(Bucket=f"{bucket}-to")
    done = story.restore(
        deps,
        caller,
        second.recovery_point_arn,
        {"targetBucket": f"{bucket}-to", "targetPrefix": "back"},
    )
    assert done.status == "COMPLETED", done.status_message
    assert _keys(admin, f"{bucket}-to") == {"back/a.json", "back/c.txt", "back/dir/b.bin"}
    got = admin.get_object(Bucket=f"{bucket}-to", Key="back/a.json")
    assert (got["Body"].read(), got["ContentType"], got["Metadata"]) == (
        b'{"a": 1}',
        "application/json",
        {"owner": "ana"},
    )
    tags = admin.get_object_tagging(Bucket=f"{bucket}-to", Key="back/a.json")["TagSet"]
    assert tags == [{"Key": "class", "Value": "gold"}]
    assert admin.get_object(Bucket=f"{bucket}-to", Key="back/dir/b.bin")["Body"].read() == BIG
    changed = admin.get_object(Bucket=f"{bucket}-to", Key="back/c.txt")
    assert (changed["Body"].read(), changed["ContentType"]) == (b"seen again", "x/y")

    # one key of the first point, back in place over the changed one only when asked
    one = {"targetBucket": bucket, "targetPrefix": "data/", "items": "c.txt"}
    refused = story.restore(deps, caller, first.recovery_point_arn, one)
    assert refused.status == "FAILED"
    assert refused.status_message == (
        f"1 key(s) exist in s3://{bucket}/data/ (first: 'data/c.txt'); "
        'set Metadata.overwrite to "true" to write over them'
    )
    assert admin.get_object(Bucket=bucket, Key="data/c.txt")["Body"].read() == b"seen again"
    done = story.restore(deps, caller, first.recovery_point_arn, one | {"overwrite": "true"})
    assert done.status == "COMPLETED", done.status_message
    assert admin.get_object(Bucket=bucket, Key="data/c.txt")["Body"].read() == b"see"


def test_failures_are_failed_jobs_with_one_line_and_no_secret(
    deps: Deps,
    caller: Caller,
    s3_server: str,
    bucket: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:

    def failed(arn: str) -> str:
        job = story.backup(deps, caller, arn)
        assert job.state == "FAILED"
        message = str(job.status_message)
        assert "\n" not in message and SECRET not in message
        return message

    missing = _register(deps, caller, "missing", f"s3://{bucket}-gone/", endpoint=s3_server)
    assert failed(missing) == f"S3 bucket not found: {bucket}-gone at {s3_server}"
    closed = _register(deps, caller, "closed", f"s3://{bucket}/", endpoint="http://127.0.0.1:9")
    assert failed(closed).startswith("unavailable: S3 endpoint http://127.0.0.1:9 cannot be")

    iam = boto3.client(
        "iam",
        endpoint_url=s3_server,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    iam.create_user(UserName=bucket)
    key = iam.create_access_key(UserName=bucket)["AccessKey"]["AccessKeyId"]
    wrong = _register(
        deps, caller, "wrong", f"s3://{bucket}/", endpoint=s3_server, access_key_id=key
    )
    monkeypatch.setattr(moto.settings, "INITIAL_NO_AUTH_ACTION_COUNT", 0)  # moto checks keys
    assert failed(wrong).startswith(f"S3 endpoint {s3_server} refused access key {key!r}")


def test_the_secret_is_never_shown(deps: Deps, caller: Caller, s3_server: str, bucket: str) -> None:
    arn = _register(deps, caller, "data", f"s3://{bucket}/data", endpoint=s3_server)
    [row] = resources.list_resources(deps, caller).items
    assert row["arn"] == arn and row["source"] == f"s3://{bucket}/data/"
    assert SECRET not in repr(row)
