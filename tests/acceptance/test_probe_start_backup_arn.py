"""StartBackupJob of a ResourceArn that is not an ARN answers
InvalidParameterValueException, as AWS does (botocore's backup model lists it for
StartBackupJob) and as every other operation taking a resource ARN here already does;
a well-formed ARN of nothing registered stays ResourceNotFoundException.

Found by a new user's walk (helper Q): it answered ResourceNotFoundException "register it
first" for "not-an-arn", which sent the user looking for a resource to register.
"""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from helpers.stories import ROLE


@pytest.fixture
def vault(backup: Any) -> str:
    try:
        backup.create_backup_vault(BackupVaultName="probe-arn")
    except ClientError as exc:  # made by an earlier test of this module's server
        assert exc.response["Error"]["Code"] == "AlreadyExistsException"
    return "probe-arn"


def _code(backup: Any, resource_arn: str) -> tuple[str, str]:
    with pytest.raises(ClientError) as err:
        backup.start_backup_job(
            BackupVaultName="probe-arn", ResourceArn=resource_arn, IamRoleArn=ROLE
        )
    return err.value.response["Error"]["Code"], err.value.response["Error"]["Message"]


@pytest.mark.parametrize("resource_arn", ["not-an-arn", "arn:aws", "arn::snowvault:x:y:z/w"])
def test_a_malformed_resource_arn_is_an_invalid_parameter(
    backup: Any, vault: str, resource_arn: str
) -> None:
    code, message = _code(backup, resource_arn)
    assert code == "InvalidParameterValueException", message
    assert "not an ARN" in message and "register it first" not in message


def test_a_well_formed_arn_of_nothing_is_not_found(backup: Any, vault: str) -> None:
    account = backup.describe_backup_vault(BackupVaultName=vault)["BackupVaultArn"].split(":")[4]
    code, message = _code(backup, f"arn:aws:snowvault:us-east-1:{account}:directory/nothing")
    assert code == "ResourceNotFoundException", message
    with pytest.raises(ClientError) as err:  # and the other operations agree
        backup.describe_protected_resource(ResourceArn="not-an-arn")
    assert err.value.response["Error"]["Code"] == "InvalidParameterValueException"
