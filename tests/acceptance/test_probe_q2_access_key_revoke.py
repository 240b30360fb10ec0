"""A user's leaked access key can be revoked without deleting the user (helper Q's probe,
made to pass by helper K): ListAccessKeys, UpdateAccessKey (Active/Inactive) and
DeleteAccessKey as AWS IAM has them, at most two keys per user (LimitExceeded), through
boto3 with the shipped ``snowvault`` model against a server on the wall clock (no test
mode), and through ``snowvault iam access-key``.

Found: the extension API had CreateAccessKey only, so the one way to stop a key was to
delete its user with every other key and policy of it, and a user could hold any number
of keys. A key set Inactive or deleted must be refused on its very next request with the
same answer as an unknown key (UnrecognizedClientException): SigV4 reads the key's row
from the catalog on every request, so every server of a fleet refuses it at once.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

import snowvault
from helpers.stories import sv, sv_json
from helpers.sv_server import ServerProcess, user_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    yield from user_server(tmp_path_factory)  # wall-clock SigV4, no 5xx


def client(server: ServerProcess, key_id: str, secret: str) -> Any:
    return snowvault.client(
        endpoint_url=server.endpoint,
        region_name=server.creds["region"],
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        config=Config(retries={"max_attempts": 1, "mode": "standard"}),
    )


def as_key(server: ServerProcess, key: dict[str, str]) -> Any:
    return client(server, key["AccessKeyId"], key["SecretAccessKey"])


def refused_as_unknown(sv_client: Any) -> bool:
    try:
        sv_client.list_resources()
    except ClientError as exc:
        error = exc.response["Error"]["Code"]
        status = exc.response["ResponseMetadata"]["HTTPStatusCode"]
        assert (error, status) == ("UnrecognizedClientException", 403), exc.response
        return True
    return False


def own_keys_policy(account: str, user: str) -> str:
    """backup:List* anywhere, and the access-key calls on the user's own ARN only."""
    own = f"arn:aws:iam::{account}:user/{user}"
    actions = ["iam:ListAccessKeys", "iam:CreateAccessKey", "iam:UpdateAccessKey"]
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": "backup:List*", "Resource": "*"},
                {"Effect": "Allow", "Action": [*actions, "iam:DeleteAccessKey"], "Resource": own},
            ],
        }
    )


def test_a_key_deactivated_reactivated_and_deleted(server: ServerProcess) -> None:
    root = client(server, server.creds["access_key_id"], server.creds["secret_access_key"])
    account = server.creds["account_id"]
    root.create_user(UserName="leaky")
    root.put_user_policy(
        UserName="leaky", PolicyName="own", PolicyDocument=own_keys_policy(account, "leaky")
    )
    key = root.create_access_key(UserName="leaky")["AccessKey"]
    user = as_key(server, key)
    assert not refused_as_unknown(user)

    root.update_access_key(UserName="leaky", AccessKeyId=key["AccessKeyId"], Status="Inactive")
    assert refused_as_unknown(user)  # at once, the next request
    listed = root.list_access_keys(UserName="leaky")["AccessKeyMetadata"]
    assert [(k["AccessKeyId"], k["Status"], k["UserName"]) for k in listed] == [
        (key["AccessKeyId"], "Inactive", "leaky")
    ]
    assert all("SecretAccessKey" not in k for k in listed)

    root.update_access_key(UserName="leaky", AccessKeyId=key["AccessKeyId"], Status="Active")
    assert not refused_as_unknown(user)

    root.delete_access_key(UserName="leaky", AccessKeyId=key["AccessKeyId"])
    assert refused_as_unknown(user)
    assert root.list_access_keys(UserName="leaky")["AccessKeyMetadata"] == []
    with pytest.raises(root.exceptions.ResourceNotFoundException):
        root.delete_access_key(UserName="leaky", AccessKeyId=key["AccessKeyId"])

    records = trail(server)  # each call, with who made it, and never a secret
    for name in ("CreateAccessKey", "UpdateAccessKey", "DeleteAccessKey", "ListAccessKeys"):
        found = [r for r in records if r["eventName"] == name]
        assert found, name
        assert {r["userIdentity"]["accountId"] for r in found} == {account}
    updates = [
        r
        for r in records
        if r["eventName"] == "UpdateAccessKey"
        and (r["requestParameters"] or {}).get("UserName") == "leaky"
    ]
    assert len(updates) == 2
    assert key["SecretAccessKey"] not in json.dumps(records)


def trail(server: ServerProcess, event_name: str | None = None) -> list[dict[str, Any]]:
    """The trail's records (filed first), newest first."""
    data_dir = str(server.data_dir)
    sv(server, "trail", "flush", "--data-dir", data_dir)
    args = ["trail", "lookup", "--data-dir", data_dir, "--max-results", "10000"]
    found: list[dict[str, Any]] = sv_json(
        server, *args, *(["--event-name", event_name] if event_name else [])
    )
    return found


def test_the_trail_names_an_extension_call_by_its_action(server: ServerProcess) -> None:
    root = client(server, server.creds["access_key_id"], server.creds["secret_access_key"])
    root.create_user(UserName="named")
    key = root.create_access_key(UserName="named")["AccessKey"]
    root.update_access_key(UserName="named", AccessKeyId=key["AccessKeyId"], Status="Inactive")
    (record,) = [
        r
        for r in trail(server, "UpdateAccessKey")
        if (r["requestParameters"] or {}).get("UserName") == "named"
    ]
    assert record["eventSource"] == "extension.snowvault"
    assert record["readOnly"] is False
    root.list_users()
    listed = trail(server, "ListUsers")
    assert listed
    assert {r["readOnly"] for r in listed} == {True}  # named by its action: a List reads
    assert {r["responseElements"] is None for r in listed} == {True}


def test_a_user_rotates_its_own_keys_but_not_anothers(server: ServerProcess) -> None:
    root = client(server, server.creds["access_key_id"], server.creds["secret_access_key"])
    account = server.creds["account_id"]
    for name in ("rotor", "bystander"):
        root.create_user(UserName=name)
        root.put_user_policy(
            UserName=name, PolicyName="own", PolicyDocument=own_keys_policy(account, name)
        )
    old = root.create_access_key(UserName="rotor")["AccessKey"]
    theirs = root.create_access_key(UserName="bystander")["AccessKey"]
    rotor = as_key(server, old)

    new = rotor.create_access_key(UserName="rotor")["AccessKey"]  # its own: allowed
    with pytest.raises(rotor.exceptions.LimitExceededException):
        rotor.create_access_key(UserName="rotor")  # a third: IAM's quota is two
    mine = rotor.list_access_keys()["AccessKeyMetadata"]  # no UserName: its own user
    assert {k["AccessKeyId"] for k in mine} == {old["AccessKeyId"], new["AccessKeyId"]}
    assert {k["UserName"] for k in mine} == {"rotor"}

    with pytest.raises(rotor.exceptions.AccessDeniedException):
        rotor.list_access_keys(UserName="bystander")
    with pytest.raises(rotor.exceptions.AccessDeniedException):
        rotor.delete_access_key(UserName="bystander", AccessKeyId=theirs["AccessKeyId"])
    with pytest.raises(rotor.exceptions.ResourceNotFoundException):  # not its own key
        rotor.update_access_key(AccessKeyId=theirs["AccessKeyId"], Status="Inactive")
    assert not refused_as_unknown(as_key(server, theirs))

    for bad in ({"Status": "Disabled"}, {"Status": ""}, {"UserName": 7}):
        body = {"AccessKeyId": new["AccessKeyId"], "Status": "Active", "UserName": "rotor"}
        answer = server.signed(  # as the root: the input is checked, not the permission
            "POST",
            "/_snowvault/v1/UpdateAccessKey",
            json.dumps(body | bad).encode(),
            **{"Content-Type": "application/json"},
        )
        assert answer.status == 400, (bad, answer.status, answer.data)
    as_new = as_key(server, new)
    as_new.delete_access_key(AccessKeyId=old["AccessKeyId"])  # the rotation ends
    assert refused_as_unknown(rotor)
    assert not refused_as_unknown(as_new)


def test_the_cli_lists_deactivates_activates_and_deletes(server: ServerProcess) -> None:
    sv(server, "iam", "user", "create", "clia")
    key = sv_json(server, "iam", "access-key", "create", "clia")["AccessKey"]
    key_id = key["AccessKeyId"]
    listed = sv_json(server, "iam", "access-key", "list", "clia")
    assert [(k["AccessKeyId"], k["Status"]) for k in listed] == [(key_id, "Active")]
    sv(server, "iam", "access-key", "deactivate", "clia", key_id)
    assert refused_as_unknown(as_key(server, key))
    assert sv_json(server, "iam", "access-key", "list", "clia")[0]["Status"] == "Inactive"
    sv(server, "iam", "access-key", "activate", "clia", key_id)
    assert sv_json(server, "iam", "access-key", "list", "clia")[0]["Status"] == "Active"
    sv(server, "iam", "access-key", "delete", "clia", key_id)
    assert sv_json(server, "iam", "access-key", "list", "clia") == []
    assert refused_as_unknown(as_key(server, key))
    missing = sv(server, "iam", "access-key", "delete", "clia", key_id, ok=False)
    assert missing.returncode != 0 and key_id in missing.stderr
    for _ in range(2):
        sv(server, "iam", "access-key", "create", "clia")
    third = sv(server, "iam", "access-key", "create", "clia", ok=False)
    assert third.returncode == 5, third  # a conflict (a quota), not "unavailable, retry"
    assert "LimitExceededException" in third.stderr or "2 access keys" in third.stderr
