"""The audit trail's files: CloudTrail layout, signed digest chains, tamper detection,
lookup (issue 16)."""

from __future__ import annotations

import gzip
import json
from datetime import timedelta
from pathlib import Path

import pytest

from helpers import trail_records
from snowvault.control.services import trail
from snowvault.engine.crypto import message_signing
from snowvault.testing import FakeClock

ACCOUNT = "111122223333"


@pytest.fixture(scope="module")
def key() -> message_signing.SigningKey:
    return message_signing.SigningKey.generate("test", FakeClock().now())


def test_records_are_filed_digested_chained_and_found(
    tmp_path: Path, key: message_signing.SigningKey
) -> None:
    clock = FakeClock()
    writer = trail.Trail(tmp_path, key)
    writer.record(trail_records.api_call(clock, "CreateBackupVault"))
    writer.record(trail_records.api_call(clock, "DeleteRecoveryPoint", "AccessDeniedException"))
    first = writer.flush(clock.now())  # the first flush also signs a digest
    logs = [p for p in first if "/CloudTrail/" in str(p)]
    assert len(first) == 2 and len(logs) == 1
    rel = str(logs[0].relative_to(tmp_path))
    assert rel.startswith(f"AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/")
    records = json.loads(gzip.decompress(logs[0].read_bytes()))["Records"]
    assert [r["eventName"] for r in records] == ["CreateBackupVault", "DeleteRecoveryPoint"]
    assert records[1]["errorCode"] == "AccessDeniedException" and records[1]["readOnly"] is False
    assert records[0]["requestParameters"] is None  # none were given

    clock.advance(timedelta(minutes=10))
    writer.record(trail_records.api_call(clock, "ListBackupVaults"))
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
        writer.record(trail_records.api_call(clock, f"Op{hour}"))
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


def test_redaction_keeps_the_shape_and_drops_every_secret() -> None:
    sent = {
        "Source": "postgresql://alice:pw-in-url@db:5432/app?sslmode=require",
        "Dsn": "host=db user=alice password='pw in pair' dbname=app",
        "Properties": {"password": "p1", "SecretAccessKey": "s1", "region": "eu-west-1"},
        "Metadata": {"targetSecretAccessKey": "s2", "targetUrl": "s3://bucket/x"},
        "Passphrase": "p2",
        "Plaintext": b"key material",
        "CiphertextBlob": b"\x00" * 40,
        "Policy": '{"Statement": [{"Effect": "Deny"}]}',
        "NextToken": "page-2",
        "Tags": [{"Key": "team", "Value": "ops"}],
    }
    clean = trail.redact(sent)
    text = json.dumps(clean)
    for secret in ("pw-in-url", "pw in pair", "p1", "s1", "s2", "p2", "key material"):
        assert secret not in text
    assert clean["Source"] == f"postgresql://alice:{trail.HIDDEN}@db:5432/app?sslmode=require"
    assert clean["Properties"]["region"] == "eu-west-1"
    assert clean["CiphertextBlob"] == "<40 bytes>"
    assert clean["Policy"] == sent["Policy"] and clean["NextToken"] == "page-2"
    assert clean["Tags"] == sent["Tags"] and clean["Metadata"]["targetUrl"] == "s3://bucket/x"


def test_responses_are_kept_for_changes_only_and_large_documents_are_cut() -> None:
    clock = FakeClock()
    common: dict[str, object] = {
        "when": clock.now(),
        "service": "snowvault",
        "account_id": ACCOUNT,
        "region": "us-east-1",
        "principal_arn": f"arn:aws:iam::{ACCOUNT}:root",
        "access_key_id": "AKIA",
        "source_ip": "127.0.0.1",
        "user_agent": "ua",
        "request_id": "r",
        "error_message": None,
    }
    key = {"AccessKey": {"AccessKeyId": "AKIAX", "SecretAccessKey": "never"}}
    made = trail.api_call_record(
        operation="CreateAccessKey",
        error_code=None,
        request_parameters={"UserName": "bob"},
        response_elements=key,
        **common,  # type: ignore[arg-type]
    )
    assert made["responseElements"] == {
        "AccessKey": {"AccessKeyId": "AKIAX", "SecretAccessKey": trail.HIDDEN}
    }
    listed = trail.api_call_record(
        operation="ListUsers",
        error_code=None,
        response_elements={"Users": []},
        **common,  # type: ignore[arg-type]
    )
    assert listed["readOnly"] is True and listed["responseElements"] is None
    big = trail.api_call_record(
        operation="TagResource",
        error_code="ValidationException",
        request_parameters={"Tags": {f"k{i}": "v" * 1000 for i in range(100)}},
        response_elements={"x": 1},
        **common,  # type: ignore[arg-type]
    )
    assert set(big["requestParameters"]) == {"omitted"} and big["responseElements"] is None
    assert trail.redact({"Blob": "A" * (trail.MAX_STRING + 1)}) == {
        "Blob": f"<{trail.MAX_STRING + 1} characters>"
    }


def test_agent_data_fields_are_counted_not_scanned() -> None:
    """An agent's upload (sealed blobs as base64) or blob-id list is bulk data: the trail
    keeps how many, never the bytes, and does not run the password patterns over them."""
    sent = {
        "JobId": "job-1",
        "Blobs": [{"BlobId": "ab" * 32, "Kind": "data", "Data": "password=x" * 10}] * 3,
        "BlobIds": ["cd" * 32] * 5,
    }
    clean = trail.redact(sent)
    assert clean == {"JobId": "job-1", "Blobs": "<3 items>", "BlobIds": "<5 items>"}
    assert trail.redact({"Present": ["ef" * 32]}) == {"Present": "<1 items>"}
