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


# -- limits AWS enforces beyond the model (limits.py) and numbers that overflow ------------

_VAULT = {"BackupVaultName": "ok-vault"}


def _vault_error(tags: object) -> shapes.InputError:
    with pytest.raises(shapes.InputError) as err:
        shapes.parse_input(_op("CreateBackupVault").input, _VAULT, {"BackupVaultTags": tags})
    return err.value


def test_tags_at_the_limits_are_accepted() -> None:
    tags = {f"{i:03d}" + "k" * 125: "v" * 256 for i in range(50)}  # 50 x (128, 256)
    parsed = shapes.parse_input(_op("CreateBackupVault").input, _VAULT, {"BackupVaultTags": tags})
    assert parsed["BackupVaultTags"] == tags
    shapes.parse_input(_op("CreateBackupVault").input, _VAULT, {"BackupVaultTags": {"k": ""}})


@pytest.mark.parametrize(
    ("tags", "field", "needle"),
    [
        ({"k": "v" * 257}, "BackupVaultTags.k", "length less than or equal to 256"),
        ({"k": "v" * 300}, "BackupVaultTags.k", "length less than or equal to 256"),
        ({"k" * 129: "v"}, "BackupVaultTags." + "k" * 129, "length less than or equal to 128"),
        ({"": "v"}, "BackupVaultTags.", "length greater than or equal to 1"),
        ({"aws:owner": "v"}, "BackupVaultTags.aws:owner", "reserved prefix 'aws:'"),
        ({"AWS:owner": "v"}, "BackupVaultTags.AWS:owner", "reserved prefix 'aws:'"),
        ({str(i): "v" for i in range(51)}, "BackupVaultTags", "length less than or equal to 50"),
    ],
)
def test_tag_limits_name_member_and_rule(tags: dict[str, str], field: str, needle: str) -> None:
    err = _vault_error(tags)
    assert err.kind == "invalid" and err.field == field
    assert err.message.startswith("1 validation error detected: Value ")
    assert f"at '{field}' failed to satisfy constraint: " in err.message
    assert needle in err.message
    assert len(err.message) < 400  # a long value is cut, not echoed whole


def test_every_backup_tags_member_has_the_limits() -> None:
    plan = {
        "BackupPlan": {
            "BackupPlanName": "p",
            "Rules": [
                {
                    "RuleName": "r",
                    "TargetBackupVaultName": "vv",
                    "RecoveryPointTags": {"k": "x" * 257},
                }
            ],
        }
    }
    with pytest.raises(shapes.InputError, match="256") as err:
        shapes.parse_input(_op("CreateBackupPlan").input, {}, plan)
    assert err.value.field == "BackupPlan.Rules[0].RecoveryPointTags.k"
    with pytest.raises(shapes.InputError, match="aws:"):
        shapes.parse_input(
            _op("TagResource").input,
            {"ResourceArn": "arn:aws:backup:r:1:backup-vault:v"},
            {"Tags": {"aws:x": "1"}},
        )
    with pytest.raises(shapes.InputError, match="50"):
        shapes.parse_input(
            _op("UntagResource").input,
            {
                "ResourceArn": "arn:aws:backup:r:1:backup-vault:v",
                "TagKeyList": [str(i) for i in range(51)],
            },
            {},
        )


def _selection(**members: object) -> dict[str, object]:
    return {
        "BackupSelection": {"SelectionName": "s", "IamRoleArn": "arn:aws:iam::1:role/r", **members}
    }


@pytest.mark.parametrize(
    ("members", "field"),
    [
        (
            {"Resources": [f"arn:aws:ec2:r:1:volume/{i}" for i in range(501)]},
            "BackupSelection.Resources",
        ),
        (
            {"NotResources": [f"arn:aws:ec2:r:1:volume/{i}" for i in range(501)]},
            "BackupSelection.NotResources",
        ),
        (
            {
                "ListOfTags": [
                    {"ConditionType": "STRINGEQUALS", "ConditionKey": "k", "ConditionValue": "v"}
                ]
                * 31
            },
            "BackupSelection.ListOfTags",
        ),
        (
            {"Conditions": {"StringEquals": [{"ConditionKey": "k", "ConditionValue": "v"}] * 31}},
            "BackupSelection.Conditions.StringEquals",
        ),
    ],
)
def test_selection_lists_are_bounded(members: dict[str, object], field: str) -> None:
    op = _op("CreateBackupSelection")
    with pytest.raises(shapes.InputError) as err:
        shapes.parse_input(op.input, {"BackupPlanId": "p"}, _selection(**members))
    assert err.value.field == field and "less than or equal to" in err.value.message
    at_limit = {
        k: v[:500] if isinstance(v, list) and len(v) == 501 else v for k, v in members.items()
    }
    if "Resources" in members or "NotResources" in members:
        shapes.parse_input(op.input, {"BackupPlanId": "p"}, _selection(**at_limit))


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        (2**63, "less than or equal to 9223372036854775807"),
        (-(2**63) - 1, "greater than or equal to -9223372036854775808"),
        (10**30, "less than or equal to"),
    ],
)
def test_longs_must_fit_64_bits(value: int, needle: str) -> None:
    op = _op("StartBackupJob")
    base = {"BackupVaultName": "vault", "ResourceArn": "arn:aws:ec2:r:1:x", "IamRoleArn": "r"}
    with pytest.raises(shapes.InputError, match=needle) as err:
        shapes.parse_input(op.input, {}, {**base, "StartWindowMinutes": value})
    assert err.value.field == "StartWindowMinutes"
    parsed = shapes.parse_input(op.input, {}, {**base, "CompleteWindowMinutes": 2**63 - 1})
    assert parsed["CompleteWindowMinutes"] == 2**63 - 1


def test_integers_must_fit_32_bits_and_floats_be_finite() -> None:
    number = KMS.shapes["NumberOfBytesType"]  # integer, min 1 max 1024 in the model
    with pytest.raises(shapes.InputError, match="less than or equal to 1024"):
        shapes.validate(number, 2**40, "NumberOfBytes")
    plain = model.Shape("n", "integer")
    shapes.validate(plain, 2**31 - 1, "n")
    with pytest.raises(shapes.InputError, match="less than or equal to 2147483647"):
        shapes.validate(plain, 2**31, "n")
    with pytest.raises(shapes.InputError, match="finite"):
        shapes.validate(model.Shape("d", "double"), float("inf"), "d")
    with pytest.raises(shapes.InputError, match="finite"):
        shapes.validate(model.Shape("d", "double"), float("nan"), "d")


@pytest.mark.parametrize("raw", ["\u0661\u0662", "1_000", " 5", "5 ", "\u00b2", "9" * 31, "0x10"])
def test_integers_in_the_query_string_are_plain_ascii(raw: str) -> None:
    with pytest.raises(shapes.InputError, match="Member must be an integer"):
        shapes.parse_input(_op("ListBackupJobs").input, {"MaxResults": raw}, {})


@pytest.mark.parametrize("bad", ["a\x00b", "\ud800", "x\udfff"])
def test_strings_with_nul_or_lone_surrogates_are_refused(bad: str) -> None:
    with pytest.raises(shapes.InputError, match="NUL or unpaired surrogate") as err:
        shapes.parse_input(_op("CreateBackupVault").input, _VAULT, {"CreatorRequestId": bad})
    assert err.value.field == "CreatorRequestId"


def test_kms_members_the_model_leaves_optional_are_required() -> None:
    for op, member in (
        ("Decrypt", "CiphertextBlob"),
        ("ReEncrypt", "CiphertextBlob"),
        ("CreateGrant", "GranteePrincipal"),
        ("ListRetirableGrants", "RetiringPrincipal"),
    ):
        body = {"DestinationKeyId": "k", "KeyId": "k", "Operations": ["Decrypt"]}
        with pytest.raises(shapes.InputError) as err:
            shapes.parse_input(_op(op, KMS).input, {}, body)
        assert err.value.kind == "missing" and err.value.field == member, op


def test_patterns_are_java_like_ascii() -> None:
    policy_name = KMS.shapes["PolicyNameType"]  # [\w]+ : Java's \w is [a-zA-Z_0-9]
    shapes.validate(policy_name, "default_1", "PolicyName")
    with pytest.raises(shapes.InputError, match="pattern"):
        shapes.validate(policy_name, "d\u00e9faut", "PolicyName")
