"""A repository in an S3 bucket (moto server on loopback), driven through the real CLI.

init, backup, restore byte for byte, check --read-data, a second backup, forget, prune,
and the objects really sit under the URL's prefix. A missing bucket and an unreachable
endpoint are one-line errors.
"""

from __future__ import annotations

import socket
import uuid
from pathlib import Path

import boto3
import pytest

from helpers.engine_cli import Cli, assert_clean_error, read_tree, sample_files, write_tree

DUMMY_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture
def s3_cli(cli: Cli) -> Cli:
    cli.env.update(DUMMY_AWS)
    return cli


@pytest.fixture
def bucket(s3_server: str) -> str:
    name = f"sv-{uuid.uuid4().hex[:12]}"
    client = boto3.client(
        "s3",
        endpoint_url=s3_server,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    client.create_bucket(Bucket=name)
    return name


def _keys(s3_server: str, bucket: str) -> list[str]:
    client = boto3.client(
        "s3",
        endpoint_url=s3_server,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


def test_s3_repository_round_trip(s3_server: str, bucket: str, s3_cli: Cli, tmp_path: Path) -> None:
    url = f"s3://{bucket}/vaults/one?endpoint_url={s3_server}&region=us-east-1"
    src = tmp_path / "src"
    files = sample_files(5)
    write_tree(src, files)

    s3_cli.json("repo", "init", "--repo", url)
    first = s3_cli.backup(url, str(src))
    assert first["files_new"] == len(files)
    keys = _keys(s3_server, bucket)
    assert all(k.startswith("vaults/one/") for k in keys)
    assert {k.split("/")[2] for k in keys} >= {"config", "keys", "data", "index", "recovery-points"}

    s3_cli.json("repo", "restore", "--repo", url, first["id"], str(tmp_path / "r1"))
    assert read_tree(tmp_path / "r1") == files

    # replace the big files: most of the first backup's data becomes garbage
    big = {k: f"replaced {k}\n".encode() for k in files if k.startswith("big/")}
    changed = {**files, **big}
    write_tree(src, big)
    second = s3_cli.backup(url, str(src))
    assert second["parent"] == first["id"] and second["files_changed"] == len(big)

    data_keys = {k for k in _keys(s3_server, bucket) if "/data/" in k}
    forgotten = s3_cli.json("repo", "forget", "--repo", url, first["id"], "--prune")
    assert forgotten["removed"] == [first["id"]]
    assert forgotten["prune"]["bytes_freed"] >= sum(len(files[k]) for k in big) // 2
    assert data_keys - {k for k in _keys(s3_server, bucket) if "/data/" in k}
    checked = s3_cli.json("repo", "check", "--repo", url, "--read-data")
    assert checked["ok"] is True and checked["packs_read"] == checked["packs"] > 0
    s3_cli.json("repo", "restore", "--repo", url, "latest", str(tmp_path / "r2"))
    assert read_tree(tmp_path / "r2") == changed
    assert not [k for k in _keys(s3_server, bucket) if "/locks/" in k]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_s3_errors_are_one_line(s3_server: str, s3_cli: Cli) -> None:
    missing = f"s3://sv-no-such-bucket-{uuid.uuid4().hex[:8]}/x?endpoint_url={s3_server}"
    failed = s3_cli.run("repo", "recovery-points", "--repo", missing, expect=None)
    assert_clean_error(failed)
    unreachable = (
        f"s3://sv-bucket/x?endpoint_url=http://127.0.0.1:{_closed_port()}&retry_attempts=1"
    )
    failed = s3_cli.run("repo", "recovery-points", "--repo", unreachable, expect=None)
    assert_clean_error(failed)
    assert failed.returncode == 7


def test_s3_endpoint_comes_from_aws_endpoint_url_s3_never_the_generic_one(
    s3_server: str, bucket: str, s3_cli: Cli, tmp_path: Path
) -> None:
    """The README exports AWS_ENDPOINT_URL for the snowvault server: a repository's
    traffic must not follow it (here it points at a closed port)."""
    s3_cli.env["AWS_ENDPOINT_URL"] = f"http://127.0.0.1:{_closed_port()}"
    s3_cli.env["AWS_ENDPOINT_URL_S3"] = s3_server
    url = f"s3://{bucket}/env-endpoint"
    src = tmp_path / "src"
    write_tree(src, {"a.txt": b"a"})
    s3_cli.json("repo", "init", "--repo", url)
    s3_cli.backup(url, str(src))
    assert any(k.startswith("env-endpoint/recovery-points/") for k in _keys(s3_server, bucket))


def test_s3_client_ignores_the_generic_endpoint_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    from snowvault.engine.backends import s3

    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:8")
    client = s3.make_client(region="us-east-1", access_key_id="a", secret_access_key="b")
    assert "127.0.0.1" not in client.meta.endpoint_url
    explicit = s3.make_client(endpoint_url="http://127.0.0.1:7", region="us-east-1")
    assert explicit.meta.endpoint_url == "http://127.0.0.1:7"
