"""Vault Lock rules, with fixed datetimes and boundaries to the second."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from snowvault.control.model import decisions, legal_holds, vault_lock
from snowvault.control.model.vault_lock import LockConfig, RecoveryPointRetention
from snowvault.core.errors import InvalidInput

T0 = datetime(2022, 1, 1, 20, 0, 0, tzinfo=UTC)  # AWS's own example: Jan 1, 2022, 8pm UTC
SECOND = timedelta(seconds=1)
DAY = timedelta(days=1)


def compliance(
    min_days: int | None = 7, max_days: int | None = None, changeable: int = 30
) -> LockConfig:
    return vault_lock.new_lock(min_days, max_days, changeable, T0)


def governance(min_days: int | None = 7, max_days: int | None = None) -> LockConfig:
    return vault_lock.new_lock(min_days, max_days, None, T0)


# --------------------------------------------------------------------------- parameters


@pytest.mark.parametrize(
    ("min_days", "max_days", "changeable"),
    [(1, 36500, 3), (None, None, None), (7, 7, 36500), (None, 1, None), (2555, None, 3)],
)
def test_valid_parameters(
    min_days: int | None, max_days: int | None, changeable: int | None
) -> None:
    vault_lock.validate_lock_parameters(min_days, max_days, changeable)


@pytest.mark.parametrize(
    ("min_days", "max_days", "changeable", "problem"),
    [
        (0, None, None, "MinRetentionDays must be between 1 and 36500"),
        (36501, None, None, "MinRetentionDays"),
        (None, 36501, None, "MaxRetentionDays must be between 1 and 36500"),
        (None, 0, None, "MaxRetentionDays"),
        (10, 9, None, "MinRetentionDays (10) must not exceed MaxRetentionDays (9)"),
        (None, None, 2, "ChangeableForDays must be between 3 and 36500"),
        (None, None, 36501, "ChangeableForDays"),
        (True, None, None, "must be an integer"),
    ],
)
def test_invalid_parameters(
    min_days: int | None, max_days: int | None, changeable: int | None, problem: str
) -> None:
    with pytest.raises(InvalidInput, match=problem.replace("(", r"\(").replace(")", r"\)")):
        vault_lock.validate_lock_parameters(min_days, max_days, changeable)


def test_lock_date_is_aws_example() -> None:
    lock = compliance(changeable=30)
    assert lock.mode == "compliance"
    assert lock.lock_date == datetime(2022, 1, 31, 20, 0, 0, tzinfo=UTC)
    assert lock.created_at == T0


def test_governance_has_no_lock_date() -> None:
    lock = governance()
    assert (lock.mode, lock.lock_date, lock.is_immutable(T0 + 36500 * DAY)) == (
        "governance",
        None,
        False,
    )


# ---------------------------------------------------------------- changing / deleting it


def test_compliance_lock_is_changeable_until_one_second_before_lock_date() -> None:
    lock = compliance(changeable=3)
    lock_date = T0 + 3 * DAY
    assert vault_lock.can_change_lock(lock, lock_date - SECOND, True).allowed
    assert vault_lock.can_delete_lock(lock, lock_date - SECOND, True).allowed


def test_compliance_lock_is_immutable_at_lock_date_exactly() -> None:
    lock = compliance(changeable=3)
    lock_date = T0 + 3 * DAY
    for decide in (vault_lock.can_change_lock, vault_lock.can_delete_lock):
        decision = decide(lock, lock_date, True)
        assert decision.allowed is False
        assert decision.code == "InvalidRequestException"
        assert "2022-01-04T20:00:00Z" in decision.message
    assert not vault_lock.can_delete_lock(lock, lock_date + 1000 * DAY, True).allowed


def test_governance_lock_needs_the_iam_permission() -> None:
    lock = governance()
    late = T0 + 1000 * DAY
    assert vault_lock.can_delete_lock(lock, late, True).allowed
    refused = vault_lock.can_delete_lock(lock, late, False)
    assert (refused.allowed, refused.code) == (False, "AccessDeniedException")


def test_no_lock_can_be_created() -> None:
    assert vault_lock.can_change_lock(None, T0, True).allowed


# ----------------------------------------------------------------------- job retention


@pytest.mark.parametrize(
    ("retention", "ok"),
    [(6, False), (7, True), (30, True), (31, False), (None, False)],
)
def test_check_retention_min_and_max(retention: int | None, ok: bool) -> None:
    reason = vault_lock.check_retention(compliance(min_days=7, max_days=30), retention)
    assert (reason is None) is ok


def test_check_retention_forever_is_fine_without_max() -> None:
    assert vault_lock.check_retention(governance(min_days=7), None) is None
    assert vault_lock.check_retention(None, 1) is None
    reason = vault_lock.check_retention(governance(min_days=7), 1)
    assert reason is not None and "MinRetentionDays (7)" in reason


# ----------------------------------------------------------------- deleting recovery points

CREATED = T0 + DAY  # after the lock
RP = RecoveryPointRetention(CREATED, CREATED + 10 * DAY)


def test_compliance_refuses_everyone_before_retention_ends_even_with_bypass() -> None:
    lock = compliance(min_days=7, changeable=3)
    after_lock_date = CREATED + 5 * DAY
    decision = vault_lock.can_delete_recovery_point(lock, RP, after_lock_date, False, True)
    assert (decision.allowed, decision.code) == (False, "InvalidRequestException")
    assert "compliance" in decision.message


def test_retention_end_boundary_to_the_second() -> None:
    lock = compliance(min_days=7, changeable=3)
    end = CREATED + 10 * DAY
    assert not vault_lock.can_delete_recovery_point(lock, RP, end - SECOND, False).allowed
    assert vault_lock.can_delete_recovery_point(lock, RP, end, False).allowed


def test_min_retention_floor_beats_an_earlier_delete_at() -> None:
    lock = compliance(min_days=30, changeable=3)
    rp = RecoveryPointRetention(CREATED, CREATED + 10 * DAY)
    floor = CREATED + 30 * DAY
    assert vault_lock.retention_end(lock, rp) == floor
    assert not vault_lock.can_delete_recovery_point(lock, rp, floor - SECOND, False).allowed
    assert vault_lock.can_delete_recovery_point(lock, rp, floor, False).allowed


def test_points_saved_before_the_lock_keep_their_own_retention() -> None:
    lock = compliance(min_days=30, changeable=3)
    old = RecoveryPointRetention(T0 - 5 * DAY, T0 + 2 * DAY)
    assert vault_lock.retention_end(lock, old) == T0 + 2 * DAY


def test_a_point_kept_forever_can_never_be_deleted_under_lock() -> None:
    lock = compliance(min_days=1, changeable=3)
    forever = RecoveryPointRetention(CREATED, None)
    assert not vault_lock.can_delete_recovery_point(
        lock, forever, CREATED + 99999 * DAY, False
    ).allowed


def test_governance_refuses_unless_bypass() -> None:
    lock = governance()
    now = CREATED + DAY
    refused = vault_lock.can_delete_recovery_point(lock, RP, now, False, False)
    assert (refused.allowed, refused.code) == (False, "InvalidRequestException")
    assert "governance" in refused.message
    assert vault_lock.can_delete_recovery_point(lock, RP, now, False, True).allowed


def test_compliance_in_grace_time_behaves_like_governance() -> None:
    lock = compliance(changeable=30)
    now = CREATED + DAY  # before LockDate
    assert not vault_lock.can_delete_recovery_point(lock, RP, now, False, False).allowed
    assert vault_lock.can_delete_recovery_point(lock, RP, now, False, True).allowed


def test_legal_hold_refuses_even_without_a_lock() -> None:
    decision = vault_lock.can_delete_recovery_point(None, RP, CREATED + 100 * DAY, True, True)
    assert (decision.allowed, decision.code) == (False, "InvalidResourceStateException")


def test_no_lock_no_hold_allows() -> None:
    assert vault_lock.can_delete_recovery_point(None, RP, CREATED, False).allowed


# ---------------------------------------------------------------------------- lifecycle


@pytest.mark.parametrize(
    ("new_delete_at", "allowed"),
    [
        (CREATED + 9 * DAY, False),  # shorter
        (CREATED + 10 * DAY, True),  # unchanged
        (CREATED + 20 * DAY, True),  # longer, within Max
        (CREATED + 30 * DAY, True),  # exactly Max
        (CREATED + 30 * DAY + SECOND, False),  # beyond Max
        (None, False),  # forever exceeds Max
    ],
)
def test_can_shorten_lifecycle(new_delete_at: datetime | None, allowed: bool) -> None:
    lock = compliance(min_days=7, max_days=30, changeable=3)
    decision = vault_lock.can_shorten_lifecycle(lock, RP, new_delete_at, CREATED + 5 * DAY)
    assert decision.allowed is allowed
    assert decision.code == (None if allowed else "InvalidRequestException")


def test_lifecycle_below_min_is_refused_even_when_longer() -> None:
    lock = governance(min_days=30)
    rp = RecoveryPointRetention(CREATED, CREATED + 5 * DAY)
    decision = vault_lock.can_shorten_lifecycle(lock, rp, CREATED + 6 * DAY, CREATED)
    assert not decision.allowed
    assert vault_lock.can_shorten_lifecycle(lock, rp, CREATED + 6 * DAY, CREATED, True).allowed


def test_lifecycle_from_forever_to_a_date_is_shortening() -> None:
    lock = governance(min_days=None)
    forever = RecoveryPointRetention(CREATED, None)
    assert not vault_lock.can_shorten_lifecycle(lock, forever, CREATED + 99 * DAY, CREATED).allowed
    assert vault_lock.can_shorten_lifecycle(None, forever, CREATED + DAY, CREATED).allowed


# --------------------------------------------------------------- object store retention


def test_store_retention_is_governance_during_grace_and_compliance_after() -> None:
    lock = compliance(min_days=7, changeable=3)
    refs = [RecoveryPointRetention(CREATED, CREATED + 10 * DAY)]
    assert (
        vault_lock.required_store_retention(lock, refs, T0 + 3 * DAY - SECOND).mode == "GOVERNANCE"
    )
    assert vault_lock.required_store_retention(lock, refs, T0 + 3 * DAY).mode == "COMPLIANCE"
    assert (
        vault_lock.required_store_retention(governance(), refs, T0 + 99 * DAY).mode == "GOVERNANCE"
    )


def test_store_retention_until_is_latest_delete_at_or_min_floor() -> None:
    lock = governance(min_days=20)
    refs = [
        RecoveryPointRetention(CREATED, CREATED + 10 * DAY),
        RecoveryPointRetention(CREATED + DAY, CREATED + 15 * DAY),
    ]
    got = vault_lock.required_store_retention(lock, refs, CREATED)
    assert got == vault_lock.StoreRetention("GOVERNANCE", CREATED + 21 * DAY, False)
    refs.append(RecoveryPointRetention(CREATED, CREATED + 40 * DAY))
    assert vault_lock.required_store_retention(lock, refs, CREATED).until == CREATED + 40 * DAY


def test_store_retention_open_ended_and_empty() -> None:
    lock = governance(min_days=20)
    got = vault_lock.required_store_retention(
        lock, [RecoveryPointRetention(CREATED, None)], CREATED
    )
    assert (got.until, got.open_ended) == (CREATED + 20 * DAY, True)
    assert vault_lock.required_store_retention(None, [], CREATED).until is None


# -------------------------------------------------------------------- combined decisions

POINT = decisions.RecoveryPoint(
    "main", "arn:aws:ec2:us-east-1:111122223333:volume/vol-1", CREATED, CREATED + 10 * DAY
)


def hold(status: legal_holds.HoldStatus = "ACTIVE") -> legal_holds.LegalHold:
    return legal_holds.LegalHold(
        "lh-1", "Audit", "SEC", status, T0, legal_holds.Selection(vault_names=("main",))
    )


def test_may_delete_checks_holds_before_lock() -> None:
    decision = decisions.may_delete_recovery_point(
        compliance(), [hold()], POINT, CREATED + 99 * DAY
    )
    assert (decision.allowed, decision.code) == (False, "InvalidResourceStateException")
    assert "lh-1" in decision.message
    assert decisions.may_delete_recovery_point(
        compliance(), [hold("CANCELED")], POINT, CREATED + 99 * DAY
    ).allowed


def test_may_delete_refuses_by_lock() -> None:
    decision = decisions.may_delete_recovery_point(
        compliance(changeable=3), [], POINT, CREATED + 5 * DAY, True
    )
    assert decision.code == "InvalidRequestException"


def test_may_expire_waits_for_due_date_hold_and_min_retention() -> None:
    due = CREATED + 10 * DAY
    assert decisions.may_expire(None, [], POINT, due - SECOND).code is None
    assert not decisions.may_expire(None, [], POINT, due - SECOND).allowed
    assert decisions.may_expire(None, [], POINT, due).allowed
    assert decisions.may_expire(None, [hold()], POINT, due).code == "InvalidResourceStateException"
    assert decisions.may_expire(None, [hold("CANCELED")], POINT, due).allowed
    locked = compliance(min_days=12, changeable=3)
    assert decisions.may_expire(locked, [], POINT, due).code == "InvalidRequestException"
    assert decisions.may_expire(locked, [], POINT, CREATED + 12 * DAY).allowed


def test_may_expire_never_for_points_kept_forever() -> None:
    forever = decisions.RecoveryPoint("main", POINT.resource_arn, CREATED, None)
    assert not decisions.may_expire(None, [], forever, CREATED + 99999 * DAY).allowed
