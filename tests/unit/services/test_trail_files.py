"""The audit trail's files: CloudTrail layout, signed digest chains, tamper detection,
lookup (issue 16)."""

from __future__ import annotations

import gzip
import json
from datetime import timedelta
from pathlib import Path

import pytest

from snowvault.control.services import trail
from snowvault.engine.crypto import message_signing
from snowvault.testing import FakeClock

ACCOUNT = "111122223333"


@pytest.fixture(scope="module")
def key() -> message_signing.SigningKey:
    return message_signing.SigningKey.generate("test", FakeClock().now())


def _call(clock: FakeClock, operation: str, error: str | None = None) -> dict[str, object]:
    return trail.api_call_record(
        when=clock.now(),
        service="backup",
        operation=operation,
        account_id=ACCOUNT,
        region="us-east-1",
        principal_arn=f"arn:aws:iam::{ACCOUNT}:user/alice",
        access_key_id="AKIAEXAMPLE",
        source_ip="127.0.0.1",
        user_agent="boto3",
        request_id="r",
        error_code=error,
        error_message="no" if error else None,
    )


def test_records_are_filed_digested_chained_and_found(
    tmp_path: Path, key: message_signing.SigningKey
) -> None:
    clock = FakeClock()
    writer = trail.Trail(tmp_path, key)
    writer.record(_call(clock, "CreateBackupVault"))
    writer.record(_call(clock, "DeleteRecoveryPoint", "AccessDeniedException"))
    first = writer.flush(clock.now())  # the first flush also signs a digest
    logs = [p for p in first if "/CloudTrail/" in str(p)]
    assert len(first) == 2 and len(logs) == 1
    rel = str(logs[0].relative_to(tmp_path))
    assert rel.startswith(f"AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/")
    records = json.loads(gzip.decompress(logs[0].read_bytes()))["Records"]
    assert [r["eventName"] for r in records] == ["CreateBackupVault", "DeleteRecoveryPoint"]
    assert records[1]["errorCode"] == "AccessDeniedException" and records[1]["readOnly"] is False
    assert records[0]["requestParameters"] is None  # parameters are never written

    clock.advance(timedelta(minutes=10))
    writer.record(_call(clock, "ListBackupVaults"))
    assert len(writer.flush(clock.now())) == 1  # a log file; the digest waits an hour
    clock.advance(timedelta(hours=1))
    writer.flush(clock.now())
    checked = trail.validate(tmp_path, key.cert_pem)
    assert (checked.digests, checked.log_files, checked.problems) == (2, 2, [])

    found = trail.lookup(tmp_path, event_name="DeleteRecoveryPoint", username="alice")
    assert [r["errorCode"] for r in found] == ["AccessDeniedException"]
    newest = trail.lookup(tmp_path, limit=2)
    assert len(newest) == 2 and newest[0]["eventName"] == "ListBackupVaults"


def test_validate_names_a_changed_log_file_and_a_removed_digest(
    tmp_path: Path, key: message_signing.SigningKey
) -> None:
    clock = FakeClock()
    writer = trail.Trail(tmp_path, key)
    for hour in range(3):
        writer.record(_call(clock, f"Op{hour}"))
        writer.flush(clock.now(), force_digest=True)
        clock.advance(timedelta(hours=1))
    assert trail.validate(tmp_path, key.cert_pem).problems == []

    log = sorted(tmp_path.glob("AWSLogs/*/CloudTrail/*/*/*/*/*.json.gz"))[0]
    doc = json.loads(gzip.decompress(log.read_bytes()))
    doc["Records"][0]["eventName"] = "Nothing"
    log.write_bytes(gzip.compress(json.dumps(doc).encode()))
    digests = sorted(tmp_path.glob("AWSLogs/*/CloudTrail-Digest/*/*/*/*/*.json.gz"))
    digests[1].unlink()
    problems = trail.validate(tmp_path, key.cert_pem).problems
    assert any("changed after" in p for p in problems)
    assert any("does not follow the previous digest" in p for p in problems)
