"""Input parsing and validation from the model; output serialization back to HTTP."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from snowvault.interfaces.api import model, shapes

BACKUP = model.load("backup")
KMS = model.load("kms")


def _op(name: str, service: model.ServiceModel = BACKUP) -> model.Operation:
    return service.operations[name]


def test_query_strings_become_typed_values() -> None:
    op = _op("ListBackupJobs")
    parsed = shapes.parse_input(
        op.input,
        {"MaxResults": "10", "ByCreatedAfter": "2026-01-02T03:04:05Z", "ByState": "RUNNING"},
        {},
    )
    assert parsed == {
        "MaxResults": 10,
        "ByCreatedAfter": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        "ByState": "RUNNING",
    }


def test_booleans_and_epoch_timestamps_from_strings() -> None:
    parsed = shapes.parse_input(_op("ListBackupVaults").input, {"ByShared": "TRUE"}, {})
    assert parsed == {"ByShared": True}
    stamp = shapes.parse_timestamp("1767225600", "x")
    assert stamp == datetime(2026, 1, 1, tzinfo=UTC)


def test_body_members_are_type_checked_and_nested() -> None:
    op = _op("CreateBackupPlan")
    body = {
        "BackupPlan": {
            "BackupPlanName": "daily",
            "Rules": [
                {
                    "RuleName": "r1",
                    "TargetBackupVaultName": "main",
                    "StartWindowMinutes": 60,
                    "Lifecycle": {"DeleteAfterDays": 35},
                }
            ],
        },
        "BackupPlanTags": {"team": "ops"},
        "UnknownMember": 1,
    }
    parsed = shapes.parse_input(op.input, {}, body)
    assert parsed["BackupPlan"]["Rules"][0]["Lifecycle"] == {"DeleteAfterDays": 35}
    assert parsed["BackupPlanTags"] == {"team": "ops"}
    assert "UnknownMember" not in parsed


def test_missing_required_member_names_it() -> None:
    with pytest.raises(shapes.InputError) as err:
        shapes.parse_input(_op("CreateBackupPlan").input, {}, {"BackupPlan": {"Rules": []}})
    assert err.value.kind == "missing"
    assert err.value.field == "BackupPlan.BackupPlanName"
    assert "BackupPlan.BackupPlanName" in err.value.message


def test_nested_path_is_named_for_list_items() -> None:
    body = {"BackupPlan": {"BackupPlanName": "p", "Rules": [{"RuleName": "bad name!"}]}}
    with pytest.raises(shapes.InputError) as err:
        shapes.parse_input(_op("CreateBackupPlan").input, {}, body)
    # RuleName violates its pattern before the missing vault name is reported.
    assert err.value.field in {
        "BackupPlan.Rules[0].RuleName",
        "BackupPlan.Rules[0].TargetBackupVaultName",
    }


@pytest.mark.parametrize(
    ("located", "body", "field", "needle"),
    [
        ({"BackupVaultName": "a"}, {}, "BackupVaultName", "pattern"),  # pattern {2,50}
        ({"BackupVaultName": "bad name"}, {}, "BackupVaultName", "pattern"),
        ({"BackupVaultName": "ok-name"}, {"BackupVaultTags": "x"}, "BackupVaultTags", "map"),
    ],
)
def test_constraint_violations_are_invalid(
    located: dict[str, object], body: dict[str, object], field: str, needle: str
) -> None:
    with pytest.raises(shapes.InputError) as err:
        shapes.parse_input(_op("CreateBackupVault").input, located, body)
    assert err.value.kind == "invalid"
    assert err.value.field == field
    assert needle in err.value.message


def test_string_length_limits() -> None:
    shape = BACKUP.shapes["FrameworkName"]  # min 1, max 256
    shapes.validate(shape, "f" * 256, "FrameworkName")
    with pytest.raises(shapes.InputError, match="length less than or equal to 256"):
        shapes.validate(shape, "f" * 257, "FrameworkName")
    with pytest.raises(shapes.InputError, match="length greater than or equal to 1"):
        shapes.validate(shape, "", "FrameworkName")


def test_integer_range_enum_and_bad_number() -> None:
    op = _op("ListBackupJobs")
    for located, needle in (
        ({"MaxResults": "0"}, "greater than or equal to 1"),
        ({"MaxResults": "1001"}, "less than or equal to 1000"),
        ({"MaxResults": "ten"}, "integer"),
        ({"ByState": "SLEEPING"}, "enum value set"),
        ({"ByCreatedAfter": "yesterday"}, "timestamp"),
    ):
        with pytest.raises(shapes.InputError) as err:
            shapes.parse_input(op.input, located, {})
        assert needle in err.value.message, located


def test_json_types_are_strict() -> None:
    op = _op("StartBackupJob")
    base = {"BackupVaultName": "vault", "ResourceArn": "arn:aws:ec2:r:1:x", "IamRoleArn": "r"}
    with pytest.raises(shapes.InputError, match="Member must be a long"):
        shapes.parse_input(op.input, {}, {**base, "StartWindowMinutes": "60"})
    with pytest.raises(shapes.InputError, match="Member must be a long"):
        shapes.parse_input(op.input, {}, {**base, "StartWindowMinutes": True})
    parsed = shapes.parse_input(op.input, {}, {**base, "StartWindowMinutes": 60})
    assert parsed["StartWindowMinutes"] == 60


def test_unanchored_patterns_must_match_the_whole_value() -> None:
    shape = BACKUP.shapes["FrameworkName"]  # [a-zA-Z][_a-zA-Z0-9]*
    shapes.validate(shape, "My_framework1", "FrameworkName")
    with pytest.raises(shapes.InputError, match="pattern"):
        shapes.validate(shape, "my framework", "FrameworkName")


def test_lookbehind_pattern_from_the_model_works() -> None:
    shape = BACKUP.shapes["AccessPointName"]
    shapes.validate(shape, "my-point", "Name")
    with pytest.raises(shapes.InputError):
        shapes.validate(shape, "my-point-s3alias", "Name")


def test_blobs_are_base64_in_and_out() -> None:
    parsed = shapes.parse_input(
        _op("Encrypt", KMS).input, {}, {"KeyId": "k", "Plaintext": "aGVsbG8="}
    )
    assert parsed["Plaintext"] == b"hello"
    with pytest.raises(shapes.InputError, match="base64"):
        shapes.parse_input(_op("Encrypt", KMS).input, {}, {"KeyId": "k", "Plaintext": "***"})
    out = shapes.serialize_output(_op("Encrypt", KMS), {"CiphertextBlob": b"\x00\x01"}, "json")
    assert json.loads(out.body) == {"CiphertextBlob": "AAE="}


def test_output_timestamps_are_epoch_floats_and_extras_are_dropped() -> None:
    op = _op("DescribeBackupVault")
    result = {
        "BackupVaultName": "v",
        "CreationDate": datetime(2026, 1, 1, 0, 0, 0, 500000, tzinfo=UTC),
        "NumberOfRecoveryPoints": 3,
        "NotInTheModel": "secret",
    }
    out = shapes.serialize_output(op, result, "rest-json")
    assert out.status == 200
    assert json.loads(out.body) == {
        "BackupVaultName": "v",
        "CreationDate": 1767225600.5,
        "NumberOfRecoveryPoints": 3,
    }


def test_status_code_comes_from_the_model() -> None:
    deleted = shapes.serialize_output(_op("DeleteRestoreTestingPlan"), None, "rest-json")
    assert (deleted.status, deleted.body) == (204, b"")
    vault = shapes.serialize_output(_op("DeleteBackupVault"), None, "rest-json")
    assert (vault.status, vault.body) == (200, b"")  # no output shape: empty body
    created = shapes.serialize_output(
        _op("CreateRestoreTestingPlan"), {"RestoreTestingPlanName": "p"}, "rest-json"
    )
    assert (created.status, json.loads(created.body)) == (201, {"RestoreTestingPlanName": "p"})


def test_json_protocol_answers_an_object_even_when_empty() -> None:
    out = shapes.serialize_output(_op("EnableKeyRotation", KMS), None, "json")
    assert (out.status, out.body) == (200, b"{}")
