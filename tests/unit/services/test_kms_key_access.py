"""KMS decides a request from the key policy, the caller's identity policies and the
key's grants together (services.authorization.authorize_key, model.kms.key_access)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from helpers.access_world import ACCOUNT, World
from snowvault.control.services import authorization
from snowvault.control.services import errors as err
from snowvault.control.services.base import Caller
from snowvault.control.services.kms import Kms
from snowvault.core.errors import PermissionDenied
from snowvault.testing import FakeClock

ROOT_ALL = {
    "Sid": "Enable IAM User Permissions",
    "Effect": "Allow",
    "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
    "Action": "kms:*",
    "Resource": "*",
}


def _document(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def _allow_user(arn: str, *actions: str) -> dict[str, Any]:
    return {"Effect": "Allow", "Principal": {"AWS": arn}, "Action": list(actions), "Resource": "*"}


KMS_ALL = _document({"Effect": "Allow", "Action": "kms:*", "Resource": "*"})


class KeyWorld(World):
    def __init__(self, tmp_path: Path, clock: FakeClock) -> None:
        super().__init__(tmp_path, clock)
        self.kms = Kms(self.deps.engine, b"k" * 32, clock)


@pytest.fixture
def w(tmp_path: Path, clock: FakeClock) -> KeyWorld:
    return KeyWorld(tmp_path, clock)


def test_a_key_policy_naming_a_user_without_identity_policy_lets_them_in(w: KeyWorld) -> None:
    carol = w.user("carol")
    policy = _document(ROOT_ALL, _allow_user(carol.principal_arn, "kms:Encrypt", "kms:Decrypt"))
    key = w.kms.create_key(w.root, policy=policy)
    other = w.kms.create_key(w.root)
    blob, arn = w.kms.encrypt(carol, key["arn"], b"secret", {"app": "a"})
    assert arn == key["arn"]
    assert w.kms.decrypt(carol, blob, {"app": "a"})[0] == b"secret"
    with pytest.raises(PermissionDenied, match="no identity-based policy allows the kms:Encrypt"):
        w.kms.encrypt(carol, other["arn"], b"x")
    with pytest.raises(PermissionDenied, match="kms:DescribeKey"):
        w.kms.describe_key(carol, key["arn"])  # the policy names only Encrypt and Decrypt


def test_the_default_policy_and_an_identity_allow_let_a_user_in(w: KeyWorld) -> None:
    dave = w.user("dave", KMS_ALL)
    key = w.kms.create_key(w.root)
    blob, _ = w.kms.encrypt(dave, key["arn"], b"x")
    assert w.kms.decrypt(dave, blob)[0] == b"x"
    with pytest.raises(PermissionDenied, match="no identity-based policy"):
        w.kms.encrypt(w.user("frank"), key["arn"], b"x")


def test_a_key_policy_deny_wins_over_an_identity_allow(w: KeyWorld) -> None:
    dave = w.user("dave", KMS_ALL)
    deny = {
        "Effect": "Deny",
        "Principal": {"AWS": dave.principal_arn},
        "Action": "kms:Decrypt",
        "Resource": "*",
    }
    key = w.kms.create_key(w.root, policy=_document(ROOT_ALL, deny))
    blob, _ = w.kms.encrypt(dave, key["arn"], b"x")
    with pytest.raises(PermissionDenied, match="explicit deny in a resource-based policy"):
        w.kms.decrypt(dave, blob)


def test_an_identity_deny_wins_over_a_key_policy_allow(w: KeyWorld) -> None:
    deny = _document({"Effect": "Deny", "Action": "kms:Encrypt", "Resource": "*"})
    gina = w.user("gina", deny)
    key = w.kms.create_key(
        w.root, policy=_document(ROOT_ALL, _allow_user(gina.principal_arn, "kms:*"))
    )
    with pytest.raises(PermissionDenied, match="explicit deny in an identity-based policy"):
        w.kms.encrypt(gina, key["arn"], b"x")


def test_a_grant_gives_only_the_operations_it_lists_until_retired(w: KeyWorld) -> None:
    grantee = w.user("grantee")
    key = w.kms.create_key(w.root)
    blob, _ = w.kms.encrypt(w.root, key["arn"], b"x")
    with pytest.raises(PermissionDenied, match="kms:Decrypt"):
        w.kms.decrypt(grantee, blob)
    grant = w.kms.create_grant(w.root, key["arn"], grantee.principal_arn, ["Decrypt"])
    assert w.kms.decrypt(grantee, blob)[0] == b"x"
    with pytest.raises(PermissionDenied, match="kms:Encrypt"):
        w.kms.encrypt(grantee, key["arn"], b"y")
    w.kms.retire_grant(w.root, grant_token=grant["grant_token"])
    with pytest.raises(PermissionDenied, match="kms:Decrypt"):
        w.kms.decrypt(grantee, blob)


def test_a_revoked_grant_gives_nothing(w: KeyWorld) -> None:
    grantee = w.user("grantee")
    key = w.kms.create_key(w.root)
    grant = w.kms.create_grant(w.root, key["arn"], grantee.principal_arn, ["Encrypt"])
    w.kms.encrypt(grantee, key["arn"], b"y")
    w.kms.revoke_grant(w.root, key["arn"], grant["grant_id"])
    with pytest.raises(PermissionDenied, match="kms:Encrypt"):
        w.kms.encrypt(grantee, key["arn"], b"y")


def test_grant_constraints_hold_against_the_encryption_context(w: KeyWorld) -> None:
    grantee = w.user("grantee")
    key = w.kms.create_key(w.root)
    w.kms.create_grant(
        w.root,
        key["arn"],
        grantee.principal_arn,
        ["Decrypt", "DescribeKey"],
        constraints={"EncryptionContextSubset": {"vault": "v1"}},
    )
    good, _ = w.kms.encrypt(w.root, key["arn"], b"a", {"vault": "v1", "rp": "r"})
    bad, _ = w.kms.encrypt(w.root, key["arn"], b"b", {"vault": "v2"})
    assert w.kms.decrypt(grantee, good, {"vault": "v1", "rp": "r"})[0] == b"a"
    with pytest.raises(PermissionDenied, match="kms:Decrypt"):
        w.kms.decrypt(grantee, bad, {"vault": "v2"})
    plain, _ = w.kms.encrypt(w.root, key["arn"], b"c")
    with pytest.raises(PermissionDenied, match="kms:Decrypt"):
        w.kms.decrypt(grantee, plain)  # no context: the subset is missing
    # DescribeKey takes no encryption context: the constraint does not apply to it
    assert w.kms.describe_key(grantee, key["arn"])["arn"] == key["arn"]


def test_encryption_context_equals_needs_the_exact_context(w: KeyWorld) -> None:
    grantee = w.user("grantee")
    key = w.kms.create_key(w.root)
    w.kms.create_grant(
        w.root,
        key["arn"],
        grantee.principal_arn,
        ["Encrypt"],
        constraints={"EncryptionContextEquals": {"a": "1"}},
    )
    w.kms.encrypt(grantee, key["arn"], b"x", {"a": "1"})
    with pytest.raises(PermissionDenied):
        w.kms.encrypt(grantee, key["arn"], b"x", {"a": "1", "b": "2"})


def test_the_root_user_needs_the_key_policy(w: KeyWorld) -> None:
    alice = w.user("alice")
    only_alice = _document(_allow_user(alice.principal_arn, "kms:*"))
    key = w.kms.create_key(w.root, policy=only_alice, bypass_lockout_check=True)
    with pytest.raises(PermissionDenied, match="no resource-based policy"):
        w.kms.encrypt(w.root, key["arn"], b"x")
    assert w.kms.encrypt(alice, key["arn"], b"x")[1] == key["arn"]


def test_the_lockout_check_still_refuses_a_policy_that_shuts_the_caller_out(w: KeyWorld) -> None:
    alice = w.user("alice")
    key = w.kms.create_key(
        w.root, policy=_document(ROOT_ALL, _allow_user(alice.principal_arn, "kms:*"))
    )
    only_bob = _document(_allow_user(f"arn:aws:iam::{ACCOUNT}:user/bob", "kms:*"))
    with pytest.raises(err.MalformedPolicy, match="will not allow you to update"):
        w.kms.put_key_policy(alice, key["arn"], only_bob)


def test_the_api_leaves_key_operations_to_the_key_service(w: KeyWorld) -> None:
    nobody: Caller = w.user("nobody")
    # no identity policy, yet the API's first check lets Encrypt through to the key service
    authorization.authorize_operation(w.deps, nobody, "Encrypt", {"KeyId": "k"}, service="kms")
    with pytest.raises(PermissionDenied, match="kms:ListKeys"):
        authorization.authorize_operation(w.deps, nobody, "ListKeys", {}, service="kms")
