"""JSON inside a string member, nested past Python's recursion limit, is bad input (4xx),
never a 500 (helper Q's probe). The request body parser refuses nesting deeper than 32,
but a policy document, a plan template, a NextToken or a Properties value is a string
the server parses again, and each of these answered 500 InternalFailure with a
RecursionError traceback: PutBackupVaultAccessPolicy, GetBackupPlanFromJSON, NextToken
of any paginated list, KMS CreateKey / PutKeyPolicy, PutUserPolicy, RegisterResource of
a Composite's members. (The fixture's teardown also fails on any 5xx in the log.)"""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import Callable
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from helpers.sv_server import ServerProcess

DEEP = "[" * 3000
TOKEN = base64.urlsafe_b64encode(b"[" * 3000).decode()


def _status(call: Callable[[], Any]) -> tuple[int, str]:
    with pytest.raises(ClientError) as err:
        call()
    doc = err.value.response
    return doc["ResponseMetadata"]["HTTPStatusCode"], doc["Error"]["Code"]


@pytest.fixture(scope="module")
def clients(snowvault_server: ServerProcess) -> dict[str, Any]:
    import boto3

    options: dict[str, Any] = {
        "endpoint_url": snowvault_server.endpoint,
        "region_name": snowvault_server.creds["region"],
        "aws_access_key_id": snowvault_server.creds["access_key_id"],
        "aws_secret_access_key": snowvault_server.creds["secret_access_key"],
        "config": Config(retries={"max_attempts": 1}, parameter_validation=False),
    }
    backup = boto3.client("backup", **options)
    backup.create_backup_vault(BackupVaultName="probe-deep")
    return {"backup": backup, "kms": boto3.client("kms", **options)}


CALLS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "PutBackupVaultAccessPolicy": lambda c: c["backup"].put_backup_vault_access_policy(
        BackupVaultName="probe-deep", Policy=DEEP
    ),
    "GetBackupPlanFromJSON": lambda c: c["backup"].get_backup_plan_from_json(
        BackupPlanTemplateJson=DEEP
    ),
    "ListBackupVaults-NextToken": lambda c: c["backup"].list_backup_vaults(NextToken=TOKEN),
    "ListBackupJobs-NextToken": lambda c: c["backup"].list_backup_jobs(NextToken=TOKEN),
    "CreateKey-Policy": lambda c: c["kms"].create_key(Policy=DEEP),
    "PutKeyPolicy": lambda c: c["kms"].put_key_policy(
        KeyId=c["kms"].create_key()["KeyMetadata"]["KeyId"], PolicyName="default", Policy=DEEP
    ),
}


@pytest.mark.parametrize("name", sorted(CALLS))
def test_deep_json_in_a_string_is_a_4xx(clients: dict[str, Any], name: str) -> None:
    status, code = _status(lambda: CALLS[name](clients))
    assert 400 <= status < 500, (status, code)


@pytest.mark.parametrize(
    ("action", "body"),
    [
        ("PutUserPolicy", {"UserName": "probe-deep", "PolicyName": "p", "PolicyDocument": DEEP}),
        ("ListResources", {"NextToken": TOKEN}),
        (
            "RegisterResource",
            {
                "ResourceType": "Composite",
                "Name": "probe-deep",
                "Source": "group:probe-deep",
                "Properties": {"members": DEEP},
            },
        ),
    ],
    ids=["PutUserPolicy", "ListResources-NextToken", "RegisterResource-members"],
)
def test_deep_json_in_an_extension_string_is_a_4xx(
    snowvault_server: ServerProcess, action: str, body: dict[str, Any]
) -> None:
    if action == "PutUserPolicy":
        with contextlib.suppress(AssertionError):  # made by an earlier run on this server
            snowvault_server.ext("CreateUser", {"UserName": "probe-deep"})
    resp = snowvault_server.signed(
        "POST",
        f"/_snowvault/v1/{action}",
        json.dumps(body).encode(),
        **{"Content-Type": "application/json"},
    )
    assert 400 <= resp.status < 500, (resp.status, resp.data[:200])
