"""The audit trail's S3 location (issue 16): every file the trail files locally is also
PUT under the same CloudTrail keys in an Object Lock bucket with a retention; a locked
version cannot be deleted; an upload that failed is retried by the next flush; and
``snowvault trail validate --location`` checks the bucket copy and names an object
overwritten there (a new version)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from click.testing import CliRunner, Result

from helpers import trail_records
from snowvault.control.scheduler import delivery
from snowvault.control.services import trail
from snowvault.interfaces.cli import main
from snowvault.testing import FakeClock

BUCKET = "trail-locked"
PREFIX = "audit"


def _client(endpoint: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def _validate(data_dir: Path, location: str) -> Result:
    args = ["trail", "validate", "--data-dir", str(data_dir), "--location", location, "--json"]
    return CliRunner().invoke(main.cli, args)


def test_flushed_files_land_locked_under_the_cloudtrail_layout_and_validate_names_an_overwrite(
    tmp_path: Path, s3_server: str
) -> None:
    s3 = _client(s3_server)
    url = (
        f"s3://{BUCKET}/{PREFIX}?endpoint_url={s3_server}&region=us-east-1"
        "&access_key_id=testing&secret_access_key=testing&retry_attempts=1"
    )
    where = trail.TrailLocation(url, retention_days=30)
    now = datetime.now(UTC)  # Object Lock dates are checked against the wall clock
    writer = trail.Trail(tmp_path / "trail", delivery.signing_key(tmp_path, now), where)

    # The bucket does not exist yet: the flush files locally and does not raise.
    writer.record(trail_records.api_call(FakeClock(now), "CreateBackupVault"))
    written = writer.flush(now, force_digest=True)
    assert len(written) == 2 and all(p.exists() for p in written)

    s3.create_bucket(Bucket=BUCKET, ObjectLockEnabledForBucket=True)
    later = now + timedelta(minutes=1)
    writer.record(trail_records.api_call(FakeClock(later), "DeleteRecoveryPoint"))
    writer.flush(later, force_digest=True)  # delivers the earlier files too

    local = trail.LocalReader(tmp_path / "trail").names()
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=f"{PREFIX}/")["Contents"]
    keys = sorted(o["Key"] for o in listed)
    assert keys == sorted(f"{PREFIX}/{k}" for k in local)
    assert len(keys) == 6  # two log files, two digests, two signatures
    account = trail_records.ACCOUNT
    assert any(k.startswith(f"{PREFIX}/AWSLogs/{account}/CloudTrail/us-east-1/") for k in keys)
    digest = next(k for k in keys if "/CloudTrail-Digest/" in k and k.endswith(".json.gz"))
    assert digest.startswith(f"{PREFIX}/AWSLogs/{account}/CloudTrail-Digest/us-east-1/")
    for key in keys:
        head = s3.head_object(Bucket=BUCKET, Key=key)
        assert head["ObjectLockMode"] == "GOVERNANCE", key
        assert head["ObjectLockRetainUntilDate"] > now
    assert json.loads((tmp_path / "trail" / trail.UPLOADED).read_text())["keys"] == local

    # A locked version cannot be deleted (without bypassing governance).
    version = s3.head_object(Bucket=BUCKET, Key=digest)["VersionId"]
    with pytest.raises(ClientError) as refused:
        s3.delete_object(Bucket=BUCKET, Key=digest, VersionId=version)
    assert refused.value.response["Error"]["Code"] == "AccessDenied"

    clean = _validate(tmp_path, url)
    assert clean.exit_code == 0, clean.output
    checked = json.loads(clean.stdout)
    assert (checked["digests"], checked["log_files"], checked["problems"]) == (2, 2, [])

    # Rewriting history in the bucket: a new version of a log file is named.
    log_key = next(k for k in keys if "/CloudTrail/" in k)
    s3.put_object(Bucket=BUCKET, Key=log_key, Body=b"rewritten")
    config = {"catalog_url": "sqlite://", "regions": {}, "default_region": "us-east-1"}
    config["trail_location"] = url  # --location config: the bucket config.json names
    (tmp_path / "config.json").write_text(json.dumps(config))
    tampered = _validate(tmp_path, "config")
    assert tampered.exit_code == 1
    problems = json.loads(tampered.stdout)["problems"]
    assert any(
        p.startswith(log_key.removeprefix(f"{PREFIX}/") + ": changed after") for p in problems
    )


def test_config_keys_round_trip_and_bad_values_are_refused(tmp_path: Path) -> None:
    from snowvault.app import ServerConfig
    from snowvault.core.errors import InvalidInput

    doc: dict[str, Any] = {"catalog_url": "sqlite://", "regions": {}, "default_region": "r"}
    assert ServerConfig.from_dict(tmp_path, doc).trail_location is None  # local only
    doc.update(
        trail_location="s3://bucket-a/p?endpoint_url=http://127.0.0.1:9",
        trail_retention_days=7,
        trail_retention_mode="COMPLIANCE",
    )
    config = ServerConfig.from_dict(tmp_path, doc)
    assert ServerConfig.from_dict(tmp_path, config.to_dict()) == config
    where = trail.location_from(
        config.trail_location, config.trail_retention_days, config.trail_retention_mode
    )
    assert where == trail.TrailLocation(str(doc["trail_location"]), 7, "COMPLIANCE")
    for key, bad in (
        ("trail_retention_mode", "LEGAL"),
        ("trail_retention_days", 0),
        ("trail_location", "/srv/trail"),
        ("trail_location", "s3://bucket-a/p?endpoint_url=ftp://x"),
    ):
        with pytest.raises(InvalidInput):
            ServerConfig.from_dict(tmp_path, {**doc, key: bad})
