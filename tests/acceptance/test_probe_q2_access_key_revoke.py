"""A user's leaked access key cannot be revoked (helper Q's probe): the extension API has
CreateAccessKey but no ListAccessKeys, UpdateAccessKey or DeleteAccessKey, so the only
way to stop a key is to delete its user (with every other key and policy of it), and a
user may hold any number of keys (IAM: two). The catalog already has what they need
(catalog.accounts.list_access_keys, set_access_key_status, delete_access_key) and the
SigV4 lookup already refuses an Inactive key on the next request.

Not added here: a new extension action must also get its row in
tests/unit/services/test_security_authz_table.py (IAM_USER), a file of another helper.
"""

from __future__ import annotations

import json

import pytest

from helpers.sv_server import ServerProcess

POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "backup:List*", "Resource": "*"}],
}


@pytest.mark.xfail(
    strict=True,
    reason="no DeleteAccessKey/UpdateAccessKey/ListAccessKeys extension action "
    "(iam_actions.py, services/iam.py, the extension model; plus the authz table test)",
)
def test_a_users_key_can_be_deleted_and_then_stops_working(
    snowvault_server: ServerProcess,
) -> None:
    ext = snowvault_server.ext
    ext("CreateUser", {"UserName": "leaky"})
    policy = {"UserName": "leaky", "PolicyName": "ro", "PolicyDocument": json.dumps(POLICY)}
    ext("PutUserPolicy", policy)
    key = ext("CreateAccessKey", {"UserName": "leaky"})["AccessKey"]
    status, _ = snowvault_server.agent_call(key, "ListResources", {})
    assert status == 200
    deleted = snowvault_server.signed(  # as the account's root
        "POST",
        "/_snowvault/v1/DeleteAccessKey",
        json.dumps({"UserName": "leaky", "AccessKeyId": key["AccessKeyId"]}).encode(),
        **{"Content-Type": "application/json"},
    )
    assert deleted.status == 200, deleted.data
    status, answer = snowvault_server.agent_call(key, "ListResources", {})
    assert status == 403 and answer.get("__type", "").endswith("UnrecognizedClientException")
