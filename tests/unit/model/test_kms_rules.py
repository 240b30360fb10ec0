"""The key service's pure rules (control/model/kms.py), at their boundaries."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from snowvault.control.model import iam
from snowvault.control.model import kms as rules
from snowvault.control.model.kms import KeyState, Needs, Refusal

NOW = datetime(2031, 3, 1, 12, tzinfo=UTC)
ACCOUNT = "111122223333"
USER = f"arn:aws:iam::{ACCOUNT}:user/alice"
KEY = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234"
ANY_KEY = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/*"


@pytest.mark.parametrize(
    ("needs", "state", "expected"),
    [
        (Needs.NOT_PENDING, "Enabled", None),
        (Needs.NOT_PENDING, "Disabled", None),
        (Needs.NOT_PENDING, "PendingDeletion", Refusal.INVALID_STATE),
        (Needs.USABLE, "Enabled", None),
        (Needs.USABLE, "Disabled", Refusal.DISABLED),
        (Needs.USABLE, "PendingDeletion", Refusal.INVALID_STATE),
        (Needs.PENDING, "Enabled", Refusal.INVALID_STATE),
        (Needs.PENDING, "Disabled", Refusal.INVALID_STATE),
        (Needs.PENDING, "PendingDeletion", None),
        (Needs.USABLE, "Deleted", Refusal.INVALID_STATE),  # unknown states refuse
    ],
)
def test_which_state_refuses_which_need_and_how(
    needs: Needs, state: str, expected: Refusal | None
) -> None:
    assert rules.refusal(needs, state) is expected


def test_state_changes_follow_aws() -> None:
    assert dict(rules.NEXT_STATE) == {
        "EnableKey": KeyState.ENABLED,
        "DisableKey": KeyState.DISABLED,
        "ScheduleKeyDeletion": KeyState.PENDING_DELETION,
        "CancelKeyDeletion": KeyState.DISABLED,
    }
    # every state-changing action is allowed from some state and lands somewhere else
    for action, needs in rules.ACTION_NEEDS.items():
        allowed = [s for s in KeyState if rules.refusal(needs, s) is None]
        assert allowed, action
    assert rules.refusal(rules.ACTION_NEEDS["CancelKeyDeletion"], "PendingDeletion") is None


@pytest.mark.parametrize(("days", "ok"), [(89, False), (90, True), (2560, True), (2561, False)])
def test_rotation_period_bounds(days: int, ok: bool) -> None:
    problem = rules.rotation_period_problem(days)
    assert (problem is None) is ok
    if not ok:
        assert problem == f"RotationPeriodInDays must be 90..2560, got {days}"


@pytest.mark.parametrize(("days", "ok"), [(6, False), (7, True), (30, True), (31, False)])
def test_pending_window_bounds(days: int, ok: bool) -> None:
    problem = rules.pending_window_problem(days)
    assert (problem is None) is ok
    if not ok:
        assert problem == f"PendingWindowInDays must be 7..30, got {days}"


def test_the_next_rotation_is_one_period_on_and_past_now() -> None:
    due = NOW - timedelta(days=1)
    assert rules.next_rotation(due, 90, NOW) == due + timedelta(days=90)
    slept = NOW - timedelta(days=200)  # two periods missed: one rotation, the next ahead
    assert rules.next_rotation(slept, 90, NOW) == slept + timedelta(days=270)
    assert rules.next_rotation(due, None, NOW) == due + timedelta(days=365)
    exactly = NOW - timedelta(days=90)  # the following date == now is not in the future
    assert rules.next_rotation(exactly, 90, NOW) == NOW + timedelta(days=90)


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("alias/backup-key_1/x", None),
        ("alias/" + "a" * 250, None),  # 256 characters
        ("alias/" + "a" * 251, rules.AliasProblem.INVALID),
        ("alias/aws/backup", rules.AliasProblem.RESERVED),
        ("alias/", rules.AliasProblem.INVALID),
        ("backup", rules.AliasProblem.INVALID),
        ("alias/with space", rules.AliasProblem.INVALID),
        ("alias/dot.ted", rules.AliasProblem.INVALID),
    ],
)
def test_alias_names(name: str, problem: rules.AliasProblem | None) -> None:
    assert rules.alias_problem(name) is problem


def _policy(*statements: dict[str, object]) -> iam.Policy:
    doc = json.dumps({"Version": "2012-10-17", "Statement": list(statements)})
    return iam.parse_policy(doc, "resource")


ROOT_ALL = {
    "Effect": "Allow",
    "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
    "Action": "kms:*",
    "Resource": "*",
}
ALICE = rules.Asker(USER, ACCOUNT, NOW)


def test_the_account_delegation_allows_and_an_explicit_deny_wins() -> None:
    assert rules.key_policy_decision(_policy(ROOT_ALL), ALICE, "Encrypt", KEY) == (True, "")
    deny = {"Effect": "Deny", "Principal": {"AWS": USER}, "Action": "kms:Encrypt", "Resource": "*"}
    allowed, why = rules.key_policy_decision(_policy(ROOT_ALL, deny), ALICE, "Encrypt", KEY)
    assert not allowed and "explicit deny" in why
    other = {"Effect": "Allow", "Principal": {"AWS": USER}, "Action": "kms:Decrypt"}
    allowed, why = rules.key_policy_decision(
        _policy(other | {"Resource": "*"}), ALICE, "Encrypt", KEY
    )
    assert not allowed and why == "because no resource-based policy allows the kms:Encrypt action"


def test_a_policy_that_takes_put_key_policy_away_locks_the_caller_out() -> None:
    assert not rules.locks_out(_policy(ROOT_ALL), ALICE, ANY_KEY)
    only_use = {
        "Effect": "Allow",
        "Principal": {"AWS": USER},
        "Action": ["kms:Encrypt", "kms:Decrypt"],
        "Resource": "*",
    }
    assert rules.locks_out(_policy(only_use), ALICE, ANY_KEY)
    put_too = dict(only_use, Action=["kms:Encrypt", "kms:PutKeyPolicy"])
    assert not rules.locks_out(_policy(put_too), ALICE, ANY_KEY)
