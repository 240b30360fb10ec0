"""Properties of IAM evaluation: denies never grant, allows never revoke, order is irrelevant."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from snowvault.control.model import iam

A, B = "111122223333", "444455556666"
PRINCIPALS = [
    iam.Principal(f"arn:aws:iam::{A}:user/alice", A),
    iam.Principal(f"arn:aws:iam::{B}:user/bob", B),
    iam.Principal.root(A),
    iam.Principal.root(B),
]
ACTIONS = ["backup:DeleteRecoveryPoint", "backup:DescribeBackupVault", "backup:StartBackupJob"]
RESOURCES = [
    f"arn:aws:backup:us-east-1:{A}:backup-vault:main",
    f"arn:aws:backup:us-east-1:{A}:recovery-point:rp1",
]

action_patterns = st.sampled_from(
    ["*", "backup:*", "backup:Delete*", "backup:Describe?ackupVault", *ACTIONS]
)
resource_patterns = st.sampled_from(["*", f"arn:aws:backup:*:{A}:*", *RESOURCES])
principal_elements = st.sampled_from(
    ["*", {"AWS": A}, {"AWS": B}, {"AWS": PRINCIPALS[0].arn}, {"AWS": [PRINCIPALS[1].arn, B]}]
)
conditions = st.sampled_from(
    [
        None,
        {"StringEquals": {"backup:Team": "ops"}},
        {"StringNotEquals": {"backup:Team": "ops"}},
        {"BoolIfExists": {"aws:SecureTransport": "true"}},
        {"ForAnyValue:StringLike": {"aws:TagKeys": ["a*"]}},
        {"Null": {"backup:Team": "true"}},
    ]
)
contexts = st.fixed_dictionaries(
    {},
    optional={
        "backup:Team": st.sampled_from(["ops", "dev"]),
        "aws:SecureTransport": st.booleans(),
        "aws:TagKeys": st.lists(st.sampled_from(["a1", "b1"]), max_size=2),
    },
)


@st.composite
def statements(
    draw: st.DrawFn, effect: str | None = None, with_principal: bool = False
) -> dict[str, Any]:
    statement: dict[str, Any] = {
        "Effect": effect or draw(st.sampled_from(["Allow", "Deny"])),
        "NotAction" if draw(st.booleans()) and not with_principal else "Action": draw(
            st.lists(action_patterns, min_size=1, max_size=2)
        ),
        "Resource": draw(resource_patterns),
    }
    if with_principal:
        statement["Principal"] = draw(principal_elements)
    condition = draw(conditions)
    if condition is not None:
        statement["Condition"] = condition
    return statement


requests = st.builds(
    lambda p, a, r, c: iam.Request(p, a, r, A, c),
    st.sampled_from(PRINCIPALS),
    st.sampled_from(ACTIONS),
    st.sampled_from(RESOURCES),
    contexts,
)
identity_lists = st.lists(st.lists(statements(), min_size=1, max_size=3), max_size=2)
resource_lists = st.none() | st.lists(statements(with_principal=True), min_size=1, max_size=3)


def build(
    identity: list[list[dict[str, Any]]], resource: list[dict[str, Any]] | None
) -> tuple[list[iam.Policy], iam.Policy | None]:
    policies = [iam.parse_policy({"Version": "2012-10-17", "Statement": s}) for s in identity]
    res = None if resource is None else iam.parse_policy({"Statement": resource}, kind="resource")
    return policies, res


def outcome(decision: iam.Decision) -> tuple[bool, str, str | None]:
    return decision.allowed, decision.reason, decision.source


@settings(max_examples=300, derandomize=True)
@given(requests, identity_lists, resource_lists, st.data())
def test_adding_a_deny_never_grants(
    request: iam.Request,
    identity: list[list[dict[str, Any]]],
    resource: list[dict[str, Any]] | None,
    data: st.DataObject,
) -> None:
    before = iam.evaluate(request, *build(identity, resource))
    if data.draw(st.booleans()) or resource is None:
        identity = [*identity, [data.draw(statements(effect="Deny"))]]
    else:
        resource = [*resource, data.draw(statements(effect="Deny", with_principal=True))]
    after = iam.evaluate(request, *build(identity, resource))
    assert before.allowed or not after.allowed


@settings(max_examples=300, derandomize=True)
@given(requests, identity_lists, resource_lists)
def test_a_matching_resource_deny_always_denies(
    request: iam.Request,
    identity: list[list[dict[str, Any]]],
    resource: list[dict[str, Any]] | None,
) -> None:
    blanket = {
        "Effect": "Deny",
        "Principal": "*",
        "Action": request.action,
        "Resource": request.resource_arn,
    }
    decision = iam.evaluate(request, *build(identity, [*(resource or []), blanket]))
    assert not decision.allowed
    assert decision.reason == "explicit-deny"


@settings(max_examples=300, derandomize=True)
@given(requests, identity_lists, resource_lists, st.data())
def test_adding_an_allow_never_denies(
    request: iam.Request,
    identity: list[list[dict[str, Any]]],
    resource: list[dict[str, Any]] | None,
    data: st.DataObject,
) -> None:
    before = iam.evaluate(request, *build(identity, resource))
    if data.draw(st.booleans()) or resource is None:
        identity = [*identity, [data.draw(statements(effect="Allow"))]]
    else:
        resource = [*resource, data.draw(statements(effect="Allow", with_principal=True))]
    after = iam.evaluate(request, *build(identity, resource))
    assert after.allowed or not before.allowed


@settings(max_examples=300, derandomize=True)
@given(requests, identity_lists, resource_lists, st.randoms(use_true_random=False))
def test_statement_and_policy_order_never_changes_the_decision(
    request: iam.Request,
    identity: list[list[dict[str, Any]]],
    resource: list[dict[str, Any]] | None,
    rnd: Any,
) -> None:
    before = iam.evaluate(request, *build(identity, resource))
    shuffled_identity = [rnd.sample(s, len(s)) for s in rnd.sample(identity, len(identity))]
    shuffled_resource = None if resource is None else rnd.sample(resource, len(resource))
    after = iam.evaluate(request, *build(shuffled_identity, shuffled_resource))
    assert outcome(after) == outcome(before)
