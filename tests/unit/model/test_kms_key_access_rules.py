"""KMS's decision from key policy, identity policies and grants (model/kms.py
``key_access`` and ``grant_allows``), pure."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from snowvault.control.model import iam
from snowvault.control.model import kms as rules

NOW = datetime(2031, 3, 1, 12, tzinfo=UTC)
ACCOUNT = "111122223333"
USER = f"arn:aws:iam::{ACCOUNT}:user/alice"
KEY = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234"
ALICE = iam.Principal(USER, ACCOUNT)
ROOT = iam.Principal.root(ACCOUNT)


def _policy(kind: iam.PolicyKind, *statements: dict[str, Any]) -> iam.Policy:
    doc = json.dumps({"Version": "2012-10-17", "Statement": list(statements)})
    return iam.parse_policy(doc, kind)


ROOT_ALL = {
    "Effect": "Allow",
    "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
    "Action": "kms:*",
    "Resource": "*",
}
ALICE_DECRYPT = {"Effect": "Allow", "Principal": {"AWS": USER}, "Action": "kms:Decrypt"}
IDENTITY_ALL = _policy("identity", {"Effect": "Allow", "Action": "kms:*", "Resource": "*"})


def _decide(
    who: iam.Principal,
    action: str,
    key_policy: iam.Policy,
    identity: tuple[iam.Policy, ...] = (),
    grants: tuple[rules.Grant, ...] = (),
    context: dict[str, str] | None = None,
) -> tuple[bool, str]:
    request = iam.Request(who, f"kms:{action}", KEY, ACCOUNT, {}, NOW)
    return rules.key_access(request, identity, key_policy, grants, context)


def test_a_key_policy_naming_the_user_needs_no_identity_policy() -> None:
    policy = _policy("resource", ROOT_ALL, ALICE_DECRYPT | {"Resource": "*"})
    assert _decide(ALICE, "Decrypt", policy) == (True, "")
    allowed, why = _decide(ALICE, "Encrypt", policy)
    assert not allowed and "no identity-based policy allows the kms:Encrypt" in why


def test_delegation_to_the_account_needs_an_identity_allow() -> None:
    policy = _policy("resource", ROOT_ALL)
    assert _decide(ALICE, "Encrypt", policy, (IDENTITY_ALL,)) == (True, "")
    assert not _decide(ALICE, "Encrypt", policy)[0]
    assert _decide(ROOT, "Encrypt", policy) == (True, "")  # root: no identity policies


def test_without_the_account_in_the_key_policy_identity_policies_do_nothing() -> None:
    policy = _policy("resource", ALICE_DECRYPT | {"Resource": "*"})
    allowed, why = _decide(ALICE, "Encrypt", policy, (IDENTITY_ALL,))
    assert not allowed and "no resource-based policy" in why
    assert not _decide(ROOT, "Decrypt", policy)[0]  # no root shortcut


def test_an_explicit_deny_anywhere_wins() -> None:
    deny = {"Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "kms:Decrypt", "Resource": "*"}
    grant = rules.Grant(USER, frozenset({"Decrypt"}))
    policy = _policy("resource", ROOT_ALL, deny)
    allowed, why = _decide(ALICE, "Decrypt", policy, (IDENTITY_ALL,), (grant,), {})
    assert not allowed and "explicit deny in a resource-based policy" in why
    identity_deny = _policy("identity", {"Effect": "Deny", "Action": "kms:*", "Resource": "*"})
    allowed, why = _decide(ALICE, "Decrypt", _policy("resource", ROOT_ALL), (identity_deny,))
    assert not allowed and "explicit deny in an identity-based policy" in why


def test_a_grant_gives_only_its_operations_to_its_grantee() -> None:
    policy = _policy("resource", ROOT_ALL)
    grant = rules.Grant(USER, frozenset({"Decrypt"}))
    assert _decide(ALICE, "Decrypt", policy, grants=(grant,), context={}) == (True, "")
    assert not _decide(ALICE, "Encrypt", policy, grants=(grant,), context={})[0]
    bob = iam.Principal(f"arn:aws:iam::{ACCOUNT}:user/bob", ACCOUNT)
    assert not _decide(bob, "Decrypt", policy, grants=(grant,), context={})[0]


@pytest.mark.parametrize(
    ("constraints", "context", "expected"),
    [
        ({"EncryptionContextSubset": {"a": "1"}}, {"a": "1", "b": "2"}, True),
        ({"EncryptionContextSubset": {"a": "1"}}, {"a": "2"}, False),
        ({"EncryptionContextSubset": {"a": "1"}}, {}, False),
        ({"EncryptionContextEquals": {"a": "1"}}, {"a": "1"}, True),
        ({"EncryptionContextEquals": {"a": "1"}}, {"a": "1", "b": "2"}, False),
        ({"EncryptionContextEquals": {"a": "1"}}, None, True),  # no context: not applied
    ],
)
def test_grant_constraints(
    constraints: dict[str, dict[str, str]], context: dict[str, str] | None, expected: bool
) -> None:
    grant = rules.Grant(USER, frozenset({"Decrypt"}), constraints)
    assert rules.grant_allows(grant, ALICE, "Decrypt", context) is expected


def test_a_grant_to_a_role_covers_its_sessions() -> None:
    role = f"arn:aws:iam::{ACCOUNT}:role/backup"
    session = iam.Principal(f"arn:aws:sts::{ACCOUNT}:assumed-role/backup/s1", ACCOUNT)
    grant = rules.Grant(role, frozenset({"Encrypt"}))
    assert rules.grant_allows(grant, session, "Encrypt", {})
