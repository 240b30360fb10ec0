"""Key policies evaluated with IAM policies and grants as KMS does, through boto3 over
HTTP against a real `snowvault server` subprocess (signed with the wall clock).

A user with no identity policy is let in by a key policy naming them or by a grant; the
default key policy delegates to IAM; a key-policy Deny wins over an identity Allow; grant
constraints hold against the encryption context; retiring or revoking a grant takes the
permission away; the lockout safety check still refuses a policy that shuts the caller out.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from helpers.sv_server import ServerProcess, new_server


def _doc(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def _kms_client(server: ServerProcess, key: str, secret: str) -> Any:
    return boto3.client(
        "kms",
        endpoint_url=server.endpoint,
        region_name=server.creds["region"],
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        config=Config(retries={"max_attempts": 1, "mode": "standard"}),
    )


def _code(call: Any, **params: Any) -> str:
    try:
        call(**params)
    except ClientError as exc:
        return str(exc.response["Error"]["Code"])
    return "OK"


class Story:
    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        creds = server.creds
        self.account = creds["account_id"]
        self.root = _kms_client(server, creds["access_key_id"], creds["secret_access_key"])

    def user(self, name: str, policy: str | None = None) -> tuple[str, Any]:
        """(ARN, kms client) of a new IAM user, with ``policy`` as its only identity
        policy (None: no identity policy at all)."""
        self.server.ext("CreateUser", {"UserName": name})
        if policy is not None:
            body = {"UserName": name, "PolicyName": "p", "PolicyDocument": policy}
            self.server.ext("PutUserPolicy", body)
        key = self.server.ext("CreateAccessKey", {"UserName": name})["AccessKey"]
        return key["PrincipalArn"], _kms_client(
            self.server, key["AccessKeyId"], key["SecretAccessKey"]
        )

    def root_all(self) -> dict[str, Any]:
        return {
            "Sid": "Enable IAM User Permissions",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{self.account}:root"},
            "Action": "kms:*",
            "Resource": "*",
        }


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Story]:
    server = new_server(tmp_path_factory)
    server.init(lease_seconds=10, sweep_seconds=1, poll_seconds=0.2)
    server.start()
    try:
        yield Story(server)
    finally:
        server.stop()
    failures = [line for line in server.log.read_text().splitlines() if " status=5" in line]
    assert not failures, f"the server answered 5xx: {failures}"


def test_a_key_policy_naming_a_user_lets_them_use_that_key_only(story: Story) -> None:
    arn, carol = story.user("carol")
    allow_carol = {
        "Sid": "Carol",
        "Effect": "Allow",
        "Principal": {"AWS": arn},
        "Action": ["kms:Encrypt", "kms:Decrypt"],
        "Resource": "*",
    }
    key = story.root.create_key(Policy=_doc(story.root_all(), allow_carol))["KeyMetadata"]
    other = story.root.create_key()["KeyMetadata"]
    blob = carol.encrypt(KeyId=key["Arn"], Plaintext=b"s3cret")["CiphertextBlob"]
    assert carol.decrypt(CiphertextBlob=blob)["Plaintext"] == b"s3cret"
    assert _code(carol.encrypt, KeyId=other["Arn"], Plaintext=b"x") == "AccessDeniedException"
    other_blob = story.root.encrypt(KeyId=other["Arn"], Plaintext=b"x")["CiphertextBlob"]
    assert _code(carol.decrypt, CiphertextBlob=other_blob) == "AccessDeniedException"
    assert _code(carol.describe_key, KeyId=key["Arn"]) == "AccessDeniedException"


def test_the_default_policy_delegates_to_identity_policies(story: Story) -> None:
    kms_all = _doc({"Effect": "Allow", "Action": "kms:*", "Resource": "*"})
    _, dave = story.user("dave", kms_all)
    _, erin = story.user("erin")
    key = story.root.create_key()["KeyMetadata"]
    blob = dave.encrypt(KeyId=key["KeyId"], Plaintext=b"d")["CiphertextBlob"]
    assert dave.decrypt(CiphertextBlob=blob)["Plaintext"] == b"d"
    assert _code(erin.decrypt, CiphertextBlob=blob) == "AccessDeniedException"


def test_a_key_policy_deny_wins_over_an_identity_allow(story: Story) -> None:
    kms_all = _doc({"Effect": "Allow", "Action": "kms:*", "Resource": "*"})
    arn, frank = story.user("frank", kms_all)
    deny = {
        "Effect": "Deny",
        "Principal": {"AWS": arn},
        "Action": "kms:Decrypt",
        "Resource": "*",
    }
    key = story.root.create_key(Policy=_doc(story.root_all(), deny))["KeyMetadata"]
    blob = frank.encrypt(KeyId=key["Arn"], Plaintext=b"f")["CiphertextBlob"]
    try:
        frank.decrypt(CiphertextBlob=blob)
    except ClientError as exc:
        assert exc.response["Error"]["Code"] == "AccessDeniedException"
        assert "explicit deny" in exc.response["Error"]["Message"]
    else:
        pytest.fail("a key-policy Deny did not hold")


def test_grants_give_what_they_list_until_retired_or_revoked(story: Story) -> None:
    arn, gina = story.user("gina")
    key = story.root.create_key()["KeyMetadata"]
    blob = story.root.encrypt(KeyId=key["Arn"], Plaintext=b"g")["CiphertextBlob"]
    assert _code(gina.decrypt, CiphertextBlob=blob) == "AccessDeniedException"

    grant = story.root.create_grant(KeyId=key["Arn"], GranteePrincipal=arn, Operations=["Decrypt"])
    assert gina.decrypt(CiphertextBlob=blob)["Plaintext"] == b"g"
    assert _code(gina.encrypt, KeyId=key["Arn"], Plaintext=b"x") == "AccessDeniedException"
    story.root.retire_grant(GrantToken=grant["GrantToken"])
    assert _code(gina.decrypt, CiphertextBlob=blob) == "AccessDeniedException"

    again = story.root.create_grant(KeyId=key["Arn"], GranteePrincipal=arn, Operations=["Decrypt"])
    assert gina.decrypt(CiphertextBlob=blob)["Plaintext"] == b"g"
    story.root.revoke_grant(KeyId=key["Arn"], GrantId=again["GrantId"])
    assert _code(gina.decrypt, CiphertextBlob=blob) == "AccessDeniedException"


def test_a_grant_constraint_refuses_another_encryption_context(story: Story) -> None:
    arn, hank = story.user("hank")
    key = story.root.create_key()["KeyMetadata"]
    story.root.create_grant(
        KeyId=key["Arn"],
        GranteePrincipal=arn,
        Operations=["Decrypt"],
        Constraints={"EncryptionContextSubset": {"vault": "v1"}},
    )
    good = story.root.encrypt(
        KeyId=key["Arn"], Plaintext=b"1", EncryptionContext={"vault": "v1", "rp": "a"}
    )["CiphertextBlob"]
    bad = story.root.encrypt(KeyId=key["Arn"], Plaintext=b"2", EncryptionContext={"vault": "v2"})[
        "CiphertextBlob"
    ]
    decrypted = hank.decrypt(CiphertextBlob=good, EncryptionContext={"vault": "v1", "rp": "a"})
    assert decrypted["Plaintext"] == b"1"
    assert (
        _code(hank.decrypt, CiphertextBlob=bad, EncryptionContext={"vault": "v2"})
        == "AccessDeniedException"
    )


def test_the_lockout_check_refuses_a_policy_that_shuts_the_caller_out(story: Story) -> None:
    arn, ivy = story.user("ivy")
    allow_ivy = {"Effect": "Allow", "Principal": {"AWS": arn}, "Action": "kms:*", "Resource": "*"}
    key = story.root.create_key(Policy=_doc(allow_ivy), BypassPolicyLockoutSafetyCheck=True)[
        "KeyMetadata"
    ]
    # the root user has no shortcut: this key policy names neither it nor its account
    assert _code(story.root.describe_key, KeyId=key["Arn"]) == "AccessDeniedException"
    only_bob = _doc(dict(allow_ivy, Principal={"AWS": f"arn:aws:iam::{story.account}:user/bob"}))
    assert (
        _code(ivy.put_key_policy, KeyId=key["Arn"], PolicyName="default", Policy=only_bob)
        == "MalformedPolicyDocumentException"
    )
    ivy.put_key_policy(KeyId=key["Arn"], PolicyName="default", Policy=_doc(story.root_all()))
    assert story.root.describe_key(KeyId=key["Arn"])["KeyMetadata"]["Arn"] == key["Arn"]
    assert _code(ivy.describe_key, KeyId=key["Arn"]) == "AccessDeniedException"
