"""IAM policy parsing and evaluation, table by table, from AWS's documented behaviour."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from snowvault.control.model import iam
from snowvault.core.errors import InvalidInput

A = "111122223333"  # the vault owner's account
B = "444455556666"  # another account
VAULT = f"arn:aws:backup:us-east-1:{A}:backup-vault:main"
RP = f"arn:aws:backup:us-east-1:{A}:recovery-point:1EB3B5E7-9EB0-435A-A80B-108B488B0D45"
ALICE = iam.Principal(f"arn:aws:iam::{A}:user/alice", A)
BOB = iam.Principal(f"arn:aws:iam::{B}:user/bob", B)
ROOT_A = iam.Principal.root(A)
ROOT_B = iam.Principal.root(B)


def identity(*statements: dict[str, Any]) -> iam.Policy:
    return iam.parse_policy({"Version": "2012-10-17", "Statement": list(statements)})


def resource(*statements: dict[str, Any]) -> iam.Policy:
    doc = {"Version": "2012-10-17", "Statement": list(statements)}
    return iam.parse_policy(json.dumps(doc), kind="resource")


def allow(
    action: str | list[str] = "backup:*", res: str | list[str] = "*", **extra: Any
) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": res, **extra}


def deny(
    action: str | list[str] = "backup:*", res: str | list[str] = "*", **extra: Any
) -> dict[str, Any]:
    return {"Effect": "Deny", "Action": action, "Resource": res, **extra}


def request(
    principal: iam.Principal = ALICE,
    action: str = "backup:DeleteRecoveryPoint",
    res: str = RP,
    account: str = A,
    **context: Any,
) -> iam.Request:
    return iam.Request(principal, action, res, account, context)


# ------------------------------------------------------------------- policy evaluation


EVALUATION_CASES: list[
    tuple[str, iam.Request, list[iam.Policy], iam.Policy | None, str, str | None]
] = [
    ("no policy at all: implicit deny", request(), [], None, "implicit-deny", "identity"),
    ("same account, identity allow", request(), [identity(allow())], None, "allowed", "identity"),
    (
        "same account, resource policy naming the user allows without identity policy",
        request(),
        [],
        resource(allow(Principal={"AWS": ALICE.arn})),
        "allowed",
        "resource",
    ),
    (
        "same account, resource policy Principal * allows",
        request(),
        [],
        resource(allow(Principal="*")),
        "allowed",
        "resource",
    ),
    (
        "same account, resource policy naming only the account delegates: no grant alone",
        request(),
        [],
        resource(allow(Principal={"AWS": A})),
        "implicit-deny",
        "identity",
    ),
    (
        "cross account, identity allow alone is not enough",
        request(BOB),
        [identity(allow())],
        None,
        "implicit-deny",
        "resource",
    ),
    (
        "cross account, resource allow alone is not enough",
        request(BOB),
        [],
        resource(allow(Principal={"AWS": BOB.arn})),
        "implicit-deny",
        "identity",
    ),
    (
        "cross account, both sides allow",
        request(BOB),
        [identity(allow())],
        resource(allow(Principal={"AWS": BOB.arn})),
        "allowed",
        "resource",
    ),
    (
        "cross account, resource policy naming the account plus identity allow",
        request(BOB),
        [identity(allow())],
        resource(allow(Principal={"AWS": f"arn:aws:iam::{B}:root"})),
        "allowed",
        "resource",
    ),
    (
        "cross account, resource policy for a third account does not help",
        request(BOB),
        [identity(allow())],
        resource(allow(Principal={"AWS": "999999999999"})),
        "implicit-deny",
        "resource",
    ),
    (
        "explicit identity deny beats identity allow",
        request(),
        [identity(allow(), deny("backup:Delete*"))],
        None,
        "explicit-deny",
        "identity",
    ),
    (
        "explicit identity deny in another policy beats a resource allow",
        request(),
        [identity(allow()), identity(deny())],
        resource(allow(Principal="*")),
        "explicit-deny",
        "identity",
    ),
    (
        "explicit resource deny beats identity allow",
        request(),
        [identity(allow())],
        resource(deny(Principal="*")),
        "explicit-deny",
        "resource",
    ),
    (
        "root of the owning account needs no identity policy",
        request(ROOT_A),
        [],
        None,
        "allowed",
        "root",
    ),
    (
        "root is not restricted by identity policies",
        request(ROOT_A),
        [identity(deny())],
        None,
        "allowed",
        "root",
    ),
    (
        "classic pattern: vault policy denying DeleteRecoveryPoint to * stops even root",
        request(ROOT_A),
        [],
        resource(deny("backup:DeleteRecoveryPoint", Principal="*")),
        "explicit-deny",
        "resource",
    ),
    (
        "root of another account still needs the resource policy",
        request(ROOT_B),
        [],
        None,
        "implicit-deny",
        "resource",
    ),
    (
        "root of another account allowed by a resource policy naming its account",
        request(ROOT_B),
        [],
        resource(allow(Principal={"AWS": B})),
        "allowed",
        "resource",
    ),
    (
        "resource deny naming the account applies to its users",
        request(BOB),
        [identity(allow())],
        resource(allow(Principal="*"), deny(Principal={"AWS": B})),
        "explicit-deny",
        "resource",
    ),
    (
        "resource deny for another user does not apply",
        request(),
        [identity(allow())],
        resource(deny(Principal={"AWS": f"arn:aws:iam::{A}:user/mallory"})),
        "allowed",
        "identity",
    ),
    (
        "NotAction allow grants everything but the listed actions",
        request(action="backup:DescribeBackupVault"),
        [identity({"Effect": "Allow", "NotAction": "backup:Delete*", "Resource": "*"})],
        None,
        "allowed",
        "identity",
    ),
    (
        "NotAction allow does not grant the listed action",
        request(),
        [identity({"Effect": "Allow", "NotAction": "backup:Delete*", "Resource": "*"})],
        None,
        "implicit-deny",
        "identity",
    ),
    (
        "NotResource deny protects everything but the listed resource",
        request(),
        [identity(allow(), {"Effect": "Deny", "Action": "*", "NotResource": VAULT})],
        None,
        "explicit-deny",
        "identity",
    ),
    (
        "action match is case-insensitive",
        request(action="backup:deleterecoverypoint"),
        [identity(allow("BACKUP:DeleteRecoveryPoint"))],
        None,
        "allowed",
        "identity",
    ),
    (
        "action ? wildcard matches one character",
        request(action="backup:GetBackupPlan"),
        [identity(allow("backup:?etBackupPlan"))],
        None,
        "allowed",
        "identity",
    ),
    (
        "action * alone matches every service",
        request(),
        [identity(allow("*"))],
        None,
        "allowed",
        "identity",
    ),
    (
        "action of another service does not match",
        request(),
        [identity(allow("s3:*"))],
        None,
        "implicit-deny",
        "identity",
    ),
    (
        "resource wildcard matches",
        request(),
        [identity(allow(res=f"arn:aws:backup:*:{A}:recovery-point:*"))],
        None,
        "allowed",
        "identity",
    ),
    (
        "resource match is case-sensitive",
        request(),
        [identity(allow(res=RP.replace("recovery-point", "Recovery-Point")))],
        None,
        "implicit-deny",
        "identity",
    ),
    (
        "NotPrincipal deny exempts a listed user only with its account listed too",
        request(),
        [identity(allow())],
        resource(deny(NotPrincipal={"AWS": [ALICE.arn]})),
        "explicit-deny",
        "resource",
    ),
    (
        "NotPrincipal deny exempts the user and account listed",
        request(),
        [identity(allow())],
        resource(deny(NotPrincipal={"AWS": [ALICE.arn, A]})),
        "allowed",
        "identity",
    ),
    (
        "resource policy naming a role grants its assumed-role sessions",
        request(iam.Principal(f"arn:aws:sts::{A}:assumed-role/Ops/s1", A)),
        [],
        resource(allow(Principal={"AWS": f"arn:aws:iam::{A}:role/Ops"})),
        "allowed",
        "resource",
    ),
    (
        "resource policy for a service principal",
        request(iam.Principal("backup.amazonaws.com", A)),
        [],
        resource(allow(Principal={"Service": "backup.amazonaws.com"})),
        "allowed",
        "resource",
    ),
]


@pytest.mark.parametrize(
    ("req", "identities", "res_policy", "reason", "source"),
    [case[1:] for case in EVALUATION_CASES],
    ids=[case[0] for case in EVALUATION_CASES],
)
def test_evaluation(
    req: iam.Request,
    identities: list[iam.Policy],
    res_policy: iam.Policy | None,
    reason: str,
    source: str | None,
) -> None:
    decision = iam.evaluate(req, identities, res_policy)
    assert (decision.reason, decision.source) == (reason, source)
    assert decision.allowed == (reason == "allowed")


def test_decision_names_the_deciding_sid() -> None:
    policy = identity(allow(Sid="Everything"), deny("backup:Delete*", Sid="NoDeletes"))
    decision = iam.evaluate(request(), [policy], None)
    assert decision == iam.Decision(False, "explicit-deny", "NoDeletes", "identity")


# ------------------------------------------------------------------ access denied text


def test_access_denied_message_for_a_resource_policy_deny() -> None:
    req = request()
    decision = iam.evaluate(req, [identity(allow())], resource(deny(Principal="*")))
    assert iam.access_denied_message(req, decision) == (
        f"User: {ALICE.arn} is not authorized to perform: backup:DeleteRecoveryPoint "
        f"on resource: {RP} with an explicit deny in a resource-based policy"
    )


@pytest.mark.parametrize(
    ("decision", "suffix"),
    [
        (
            iam.Decision(False, "explicit-deny", None, "identity"),
            " with an explicit deny in an identity-based policy",
        ),
        (
            iam.Decision(False, "implicit-deny", None, "identity"),
            " because no identity-based policy allows the backup:DeleteRecoveryPoint action",
        ),
        (
            iam.Decision(False, "implicit-deny", None, "resource"),
            " because no resource-based policy allows the backup:DeleteRecoveryPoint action",
        ),
    ],
)
def test_access_denied_message_suffixes(decision: iam.Decision, suffix: str) -> None:
    text = iam.access_denied_message(request(), decision)
    assert text.startswith(f"User: {ALICE.arn} is not authorized to perform: ")
    assert text.endswith(suffix)


# --------------------------------------------------------------------------- conditions

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


def cond_allowed(condition: dict[str, Any], **context: Any) -> bool:
    policy = identity(allow(Condition=condition))
    req = iam.Request(
        ALICE, "backup:DeleteRecoveryPoint", RP, A, context, now=NOW, resource_tags={"env": "prod"}
    )
    return iam.evaluate(req, [policy], None).allowed


CONDITION_CASES: list[tuple[str, dict[str, Any], dict[str, Any], bool]] = [
    ("StringEquals hit", {"StringEquals": {"backup:Team": "ops"}}, {"backup:Team": "ops"}, True),
    (
        "StringEquals is case-sensitive",
        {"StringEquals": {"backup:Team": "ops"}},
        {"backup:Team": "OPS"},
        False,
    ),
    (
        "StringEquals values are ORed",
        {"StringEquals": {"backup:Team": ["dev", "ops"]}},
        {"backup:Team": "ops"},
        True,
    ),
    ("StringEquals missing key is false", {"StringEquals": {"backup:Team": "ops"}}, {}, False),
    (
        "key names are case-insensitive",
        {"StringEquals": {"BACKUP:team": "ops"}},
        {"backup:Team": "ops"},
        True,
    ),
    (
        "StringNotEquals hit",
        {"StringNotEquals": {"backup:Team": "ops"}},
        {"backup:Team": "dev"},
        True,
    ),
    (
        "StringNotEquals miss",
        {"StringNotEquals": {"backup:Team": ["dev", "ops"]}},
        {"backup:Team": "dev"},
        False,
    ),
    ("StringNotEquals missing key is true", {"StringNotEquals": {"backup:Team": "ops"}}, {}, True),
    (
        "StringEqualsIgnoreCase",
        {"StringEqualsIgnoreCase": {"backup:Team": "ops"}},
        {"backup:Team": "OPS"},
        True,
    ),
    (
        "StringNotEqualsIgnoreCase",
        {"StringNotEqualsIgnoreCase": {"backup:Team": "ops"}},
        {"backup:Team": "OpS"},
        False,
    ),
    ("StringLike *", {"StringLike": {"backup:Team": "o*"}}, {"backup:Team": "ops"}, True),
    ("StringLike ?", {"StringLike": {"backup:Team": "o?s"}}, {"backup:Team": "ops"}, True),
    (
        "StringLike ? is one char",
        {"StringLike": {"backup:Team": "o?"}},
        {"backup:Team": "ops"},
        False,
    ),
    (
        "StringEquals takes * literally",
        {"StringEquals": {"backup:Team": "o*"}},
        {"backup:Team": "ops"},
        False,
    ),
    ("StringNotLike", {"StringNotLike": {"backup:Team": "dev*"}}, {"backup:Team": "ops"}, True),
    ("StringNotLike missing key is true", {"StringNotLike": {"backup:Team": "dev*"}}, {}, True),
    (
        "StringEqualsIfExists missing key is true",
        {"StringEqualsIfExists": {"backup:Team": "ops"}},
        {},
        True,
    ),
    (
        "StringEqualsIfExists present key checked",
        {"StringEqualsIfExists": {"backup:Team": "ops"}},
        {"backup:Team": "x"},
        False,
    ),
    ("ArnEquals", {"ArnEquals": {"aws:SourceArn": VAULT}}, {"aws:SourceArn": VAULT}, True),
    (
        "ArnLike per segment",
        {"ArnLike": {"aws:SourceArn": "arn:aws:backup:*:*:backup-vault:*"}},
        {"aws:SourceArn": VAULT},
        True,
    ),
    (
        "ArnLike wrong service",
        {"ArnLike": {"aws:SourceArn": "arn:aws:s3:*:*:*"}},
        {"aws:SourceArn": VAULT},
        False,
    ),
    (
        "ArnLike on a non-ARN",
        {"ArnLike": {"aws:SourceArn": "arn:aws:*:*:*:*"}},
        {"aws:SourceArn": "nope"},
        False,
    ),
    (
        "ArnNotLike",
        {"ArnNotLike": {"aws:SourceArn": "arn:aws:s3:::*"}},
        {"aws:SourceArn": VAULT},
        True,
    ),
    (
        "ArnNotLike missing key is true",
        {"ArnNotLike": {"aws:SourceArn": "arn:aws:s3:::*"}},
        {},
        True,
    ),
    ("aws:PrincipalArn", {"ArnEquals": {"aws:PrincipalArn": ALICE.arn}}, {}, True),
    ("aws:PrincipalAccount", {"StringEquals": {"aws:PrincipalAccount": B}}, {}, False),
    (
        "caller cannot spoof aws:PrincipalAccount",
        {"StringEquals": {"aws:PrincipalAccount": B}},
        {"aws:PrincipalAccount": B},
        False,
    ),
    ("Bool true", {"Bool": {"aws:SecureTransport": "true"}}, {"aws:SecureTransport": True}, True),
    (
        "Bool false vs true",
        {"Bool": {"aws:SecureTransport": "false"}},
        {"aws:SecureTransport": True},
        False,
    ),
    (
        "Bool JSON boolean value",
        {"Bool": {"aws:SecureTransport": False}},
        {"aws:SecureTransport": False},
        True,
    ),
    ("Bool missing key is false", {"Bool": {"aws:SecureTransport": "false"}}, {}, False),
    (
        "BoolIfExists missing key is true",
        {"BoolIfExists": {"aws:SecureTransport": "true"}},
        {},
        True,
    ),
    ("NumericEquals", {"NumericEquals": {"backup:Days": "30"}}, {"backup:Days": 30}, True),
    (
        "NumericEquals decimal forms",
        {"NumericEquals": {"backup:Days": "30.0"}},
        {"backup:Days": "30"},
        True,
    ),
    ("NumericNotEquals", {"NumericNotEquals": {"backup:Days": 30}}, {"backup:Days": 31}, True),
    ("NumericNotEquals missing key is true", {"NumericNotEquals": {"backup:Days": 30}}, {}, True),
    ("NumericLessThan", {"NumericLessThan": {"backup:Days": 30}}, {"backup:Days": 29}, True),
    (
        "NumericLessThan boundary",
        {"NumericLessThan": {"backup:Days": 30}},
        {"backup:Days": 30},
        False,
    ),
    (
        "NumericLessThanEquals boundary",
        {"NumericLessThanEquals": {"backup:Days": 30}},
        {"backup:Days": 30},
        True,
    ),
    ("NumericGreaterThan", {"NumericGreaterThan": {"backup:Days": 30}}, {"backup:Days": 30}, False),
    (
        "NumericGreaterThanEquals",
        {"NumericGreaterThanEquals": {"backup:Days": 30}},
        {"backup:Days": 30},
        True,
    ),
    (
        "Numeric on a non-number is false",
        {"NumericLessThan": {"backup:Days": 30}},
        {"backup:Days": "many"},
        False,
    ),
    (
        "DateLessThan aws:CurrentTime",
        {"DateLessThan": {"aws:CurrentTime": "2026-03-01T12:00:01Z"}},
        {},
        True,
    ),
    (
        "DateLessThan boundary",
        {"DateLessThan": {"aws:CurrentTime": "2026-03-01T12:00:00Z"}},
        {},
        False,
    ),
    (
        "DateLessThanEquals boundary",
        {"DateLessThanEquals": {"aws:CurrentTime": "2026-03-01T12:00:00Z"}},
        {},
        True,
    ),
    ("DateGreaterThan", {"DateGreaterThan": {"aws:CurrentTime": "2026-01-01"}}, {}, True),
    (
        "DateGreaterThanEquals",
        {"DateGreaterThanEquals": {"aws:CurrentTime": "2026-03-02T00:00:00Z"}},
        {},
        False,
    ),
    (
        "DateEquals epoch vs ISO",
        {"DateEquals": {"aws:EpochTime": "2026-03-01T12:00:00Z"}},
        {},
        True,
    ),
    ("DateNotEquals", {"DateNotEquals": {"aws:CurrentTime": "2026-03-01T12:00:00Z"}}, {}, False),
    (
        "NumericLessThan aws:EpochTime",
        {"NumericLessThan": {"aws:EpochTime": int(NOW.timestamp()) + 1}},
        {},
        True,
    ),
    (
        "IpAddress in CIDR",
        {"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}},
        {"aws:SourceIp": "203.0.113.9"},
        True,
    ),
    (
        "IpAddress single address",
        {"IpAddress": {"aws:SourceIp": "203.0.113.9"}},
        {"aws:SourceIp": "203.0.113.9"},
        True,
    ),
    (
        "IpAddress outside",
        {"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}},
        {"aws:SourceIp": "198.51.100.1"},
        False,
    ),
    (
        "IpAddress IPv6",
        {"IpAddress": {"aws:SourceIp": "2001:db8::/32"}},
        {"aws:SourceIp": "2001:db8::1"},
        True,
    ),
    ("IpAddress missing key is false", {"IpAddress": {"aws:SourceIp": "0.0.0.0/0"}}, {}, False),
    (
        "NotIpAddress",
        {"NotIpAddress": {"aws:SourceIp": "203.0.113.0/24"}},
        {"aws:SourceIp": "198.51.100.1"},
        True,
    ),
    (
        "NotIpAddress inside",
        {"NotIpAddress": {"aws:SourceIp": "203.0.113.0/24"}},
        {"aws:SourceIp": "203.0.113.1"},
        False,
    ),
    (
        "NotIpAddress missing key is true",
        {"NotIpAddress": {"aws:SourceIp": "203.0.113.0/24"}},
        {},
        True,
    ),
    ("aws:ResourceTag", {"StringEquals": {"aws:ResourceTag/env": "prod"}}, {}, True),
    ("aws:ResourceTag other value", {"StringEquals": {"aws:ResourceTag/env": "dev"}}, {}, False),
    ("Null true: key absent", {"Null": {"backup:Team": "true"}}, {}, True),
    ("Null true: key present", {"Null": {"backup:Team": "true"}}, {"backup:Team": "ops"}, False),
    ("Null false: key present", {"Null": {"backup:Team": "false"}}, {"backup:Team": "ops"}, True),
    ("Null false: key absent", {"Null": {"backup:Team": "false"}}, {}, False),
    (
        "ForAnyValue one matches",
        {"ForAnyValue:StringEquals": {"aws:TagKeys": ["a", "b"]}},
        {"aws:TagKeys": ["b", "z"]},
        True,
    ),
    (
        "ForAnyValue none match",
        {"ForAnyValue:StringEquals": {"aws:TagKeys": ["a"]}},
        {"aws:TagKeys": ["z"]},
        False,
    ),
    (
        "ForAnyValue missing key is false",
        {"ForAnyValue:StringEquals": {"aws:TagKeys": ["a"]}},
        {},
        False,
    ),
    (
        "ForAnyValue empty set is false",
        {"ForAnyValue:StringEquals": {"aws:TagKeys": ["a"]}},
        {"aws:TagKeys": []},
        False,
    ),
    (
        "ForAllValues all match",
        {"ForAllValues:StringLike": {"aws:TagKeys": ["a*", "b"]}},
        {"aws:TagKeys": ["ab", "b"]},
        True,
    ),
    (
        "ForAllValues one strays",
        {"ForAllValues:StringLike": {"aws:TagKeys": ["a*"]}},
        {"aws:TagKeys": ["ab", "b"]},
        False,
    ),
    (
        "ForAllValues missing key is true",
        {"ForAllValues:StringEquals": {"aws:TagKeys": ["a"]}},
        {},
        True,
    ),
    (
        "ForAnyValue:StringNotEquals",
        {"ForAnyValue:StringNotEquals": {"aws:TagKeys": ["a"]}},
        {"aws:TagKeys": ["a", "b"]},
        True,
    ),
    (
        "ForAllValues:StringNotEquals",
        {"ForAllValues:StringNotEquals": {"aws:TagKeys": ["a"]}},
        {"aws:TagKeys": ["a", "b"]},
        False,
    ),
    (
        "ForAnyValue IfExists missing",
        {"ForAnyValue:StringEqualsIfExists": {"aws:TagKeys": ["a"]}},
        {},
        True,
    ),
    (
        "several keys are ANDed",
        {"StringEquals": {"backup:Team": "ops", "backup:Site": "eu"}},
        {"backup:Team": "ops", "backup:Site": "us"},
        False,
    ),
    (
        "several operators are ANDed",
        {"StringEquals": {"backup:Team": "ops"}, "Bool": {"aws:SecureTransport": "true"}},
        {"backup:Team": "ops", "aws:SecureTransport": True},
        True,
    ),
    (
        "operator names are case-insensitive",
        {"stringequals": {"backup:Team": "ops"}},
        {"backup:Team": "ops"},
        True,
    ),
]


@pytest.mark.parametrize(
    ("condition", "context", "expected"),
    [case[1:] for case in CONDITION_CASES],
    ids=[case[0] for case in CONDITION_CASES],
)
def test_condition(condition: dict[str, Any], context: dict[str, Any], expected: bool) -> None:
    assert cond_allowed(condition, **context) is expected


def test_deny_with_if_exists_still_denies_when_key_missing() -> None:
    # A Deny guarded by ...IfExists applies when the key is missing: the AWS pitfall.
    policy = identity(
        allow(), deny(Condition={"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}})
    )
    assert iam.evaluate(request(), [policy], None).reason == "explicit-deny"


def test_deny_unless_secure_transport() -> None:
    policy = resource(deny(Principal="*", Condition={"Bool": {"aws:SecureTransport": "false"}}))
    over_tls = iam.Request(
        ALICE, "backup:DeleteRecoveryPoint", RP, A, {"aws:SecureTransport": True}
    )
    assert iam.evaluate(over_tls, [identity(allow())], policy).allowed is True
    plain = iam.Request(ALICE, "backup:DeleteRecoveryPoint", RP, A, {"aws:SecureTransport": False})
    assert iam.evaluate(plain, [identity(allow())], policy).reason == "explicit-deny"


# ----------------------------------------------------------------------------- parsing


def test_single_statement_object_and_defaults() -> None:
    policy = iam.parse_policy(
        {"Statement": {"Effect": "Allow", "Action": "backup:*", "Resource": "*"}}
    )
    assert policy.version == "2008-10-17"
    assert policy.statements == (iam.Statement("Allow", None, ("backup:*",), False, ("*",), False),)


def test_principal_account_id_is_normalised_to_root_arn() -> None:
    policy = resource(allow(Principal={"AWS": [A, "*"]}))
    spec = policy.statements[0].principal
    assert spec == iam.PrincipalSpec(wildcard=True, aws=(f"arn:aws:iam::{A}:root", "*"))


MALFORMED: list[tuple[str, Any, str, str]] = [
    ("not JSON", "{nope", "identity", "not valid JSON"),
    ("not an object", "[]", "identity", "must be a JSON object"),
    (
        "unknown top-level field",
        {"Statement": [allow()], "Extra": 1},
        "identity",
        "unknown field Extra",
    ),
    ("bad version", {"Version": "2020-01-01", "Statement": [allow()]}, "identity", "valid version"),
    ("no Statement", {"Version": "2012-10-17"}, "identity", "missing required field Statement"),
    ("empty Statement list", {"Statement": []}, "identity", "non-empty list"),
    ("statement not an object", {"Statement": ["x"]}, "identity", "must be an object"),
    ("no Effect", {"Statement": [{"Action": "*", "Resource": "*"}]}, "identity", "Effect must be"),
    ("bad Effect", {"Statement": [{**allow(), "Effect": "allow"}]}, "identity", "Effect must be"),
    (
        "no Action",
        {"Statement": [{"Effect": "Allow", "Resource": "*"}]},
        "identity",
        "Action or NotAction",
    ),
    (
        "Action and NotAction",
        {"Statement": [{**allow(), "NotAction": "s3:*"}]},
        "identity",
        "Action or NotAction",
    ),
    ("bad action", {"Statement": [allow("DeleteEverything")]}, "identity", "invalid action"),
    ("empty action list", {"Statement": [allow([])]}, "identity", "non-empty string or list"),
    (
        "no Resource",
        {"Statement": [{"Effect": "Allow", "Action": "*"}]},
        "identity",
        "Resource or NotResource",
    ),
    ("bad resource", {"Statement": [allow(res="vault")]}, "identity", "ARN format"),
    (
        "principal in identity policy",
        {"Statement": [allow(Principal="*")]},
        "identity",
        "must not specify a principal",
    ),
    (
        "no principal in resource policy",
        {"Statement": [allow()]},
        "resource",
        "Principal or NotPrincipal",
    ),
    (
        "bad principal",
        {"Statement": [allow(Principal={"AWS": "bob"})]},
        "resource",
        "invalid principal",
    ),
    (
        "bad principal type",
        {"Statement": [allow(Principal={"Person": "x"})]},
        "resource",
        "principal type",
    ),
    ("identity Sid with spaces", {"Statement": [allow(Sid="no spaces")]}, "identity", "Sid"),
    ("duplicate Sid", {"Statement": [allow(Sid="A"), deny(Sid="A")]}, "identity", "unique"),
    (
        "unknown operator",
        {"Statement": [allow(Condition={"StringSortOf": {"k": "v"}})]},
        "identity",
        "operator",
    ),
    (
        "unknown qualifier",
        {"Statement": [allow(Condition={"ForSome:StringEquals": {"k": "v"}})]},
        "identity",
        "qualifier",
    ),
    (
        "bad numeric value",
        {"Statement": [allow(Condition={"NumericLessThan": {"k": "ten"}})]},
        "identity",
        "not a valid value",
    ),
    (
        "bad date value",
        {"Statement": [allow(Condition={"DateLessThan": {"k": "soon"}})]},
        "identity",
        "not a valid value",
    ),
    (
        "bad ip value",
        {"Statement": [allow(Condition={"IpAddress": {"k": "300.1.1.1"}})]},
        "identity",
        "not a valid value",
    ),
    (
        "bad bool value",
        {"Statement": [allow(Condition={"Bool": {"k": "yes"}})]},
        "identity",
        "not a valid value",
    ),
    (
        "bad Null value",
        {"Statement": [allow(Condition={"Null": {"k": "maybe"}})]},
        "identity",
        "not a valid value",
    ),
    (
        "Null with IfExists",
        {"Statement": [allow(Condition={"NullIfExists": {"k": "true"}})]},
        "identity",
        "Null",
    ),
    (
        "empty condition values",
        {"Statement": [allow(Condition={"StringEquals": {"k": []}})]},
        "identity",
        "at least one",
    ),
    (
        "object condition value",
        {"Statement": [allow(Condition={"StringEquals": {"k": {"a": 1}}})]},
        "identity",
        "values must",
    ),
]


@pytest.mark.parametrize(
    ("document", "kind", "problem"),
    [case[1:] for case in MALFORMED],
    ids=[case[0] for case in MALFORMED],
)
def test_malformed_documents_are_invalid_input(
    document: Any, kind: iam.PolicyKind, problem: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        iam.parse_policy(document, kind=kind)
    assert "MalformedPolicyDocument" in str(caught.value)
    assert problem in str(caught.value)


def test_resource_policy_sid_may_hold_spaces() -> None:
    policy = resource(deny(Principal="*", Sid="deny deletes"))
    assert policy.statements[0].sid == "deny deletes"
