"""Legal hold creation, coverage and cancellation rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from snowvault.control.model import legal_holds as lh
from snowvault.core.errors import InvalidInput

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
DAY = timedelta(days=1)
VOL = "arn:aws:ec2:us-east-1:111122223333:volume/vol-1"
DB = "arn:aws:rds:us-east-1:111122223333:db:orders"


EVERYTHING = lh.Selection()


def make(selection: lh.Selection = EVERYTHING, status: lh.HoldStatus = "ACTIVE") -> lh.LegalHold:
    hold = lh.new_legal_hold("lh-1", "Audit", "SEC inquiry", selection, NOW)
    return (
        hold
        if status == "ACTIVE"
        else lh.LegalHold(hold.id, hold.title, hold.description, status, NOW, selection)
    )


def point(
    vault: str = "main", resource: str = VOL, created: datetime = NOW
) -> lh.RecoveryPointFacts:
    return lh.RecoveryPointFacts(vault, resource, created)


# ------------------------------------------------------------------------------ creation


def test_new_hold_is_active() -> None:
    hold = lh.new_legal_hold(
        "lh-1", "Audit", "SEC inquiry", lh.Selection(vault_names=("main",)), NOW
    )
    assert (hold.status, hold.creation_date, hold.cancellation_date) == ("ACTIVE", NOW, None)


@pytest.mark.parametrize(
    ("title", "description", "selection", "problem"),
    [
        ("", "d", lh.Selection(), "Title is required"),
        ("   ", "d", lh.Selection(), "Title is required"),
        ("t", "", lh.Selection(), "Description is required"),
        ("t", "d", lh.Selection(vault_names=("x",)), "not a backup vault name"),
        ("t", "d", lh.Selection(vault_names=("bad name",)), "not a backup vault name"),
        ("t", "d", lh.Selection(resource_identifiers=("vol-1",)), "not an ARN"),
        (
            "t",
            "d",
            lh.Selection(date_range=lh.DateRange(NOW, NOW - DAY)),
            "FromDate must not be after",
        ),
        ("t", "d", lh.Selection(date_range=lh.DateRange(NOW - DAY, NOW + DAY)), "future dates"),
    ],
)
def test_invalid_holds(title: str, description: str, selection: lh.Selection, problem: str) -> None:
    with pytest.raises(InvalidInput, match=problem):
        lh.new_legal_hold("lh-1", title, description, selection, NOW)


def test_date_range_up_to_now_is_fine() -> None:
    hold = lh.new_legal_hold(
        "lh-1", "t", "d", lh.Selection(date_range=lh.DateRange(NOW - DAY, NOW)), NOW
    )
    assert hold.selection.date_range == lh.DateRange(NOW - DAY, NOW)


# ------------------------------------------------------------------------------ coverage

RANGE = lh.DateRange(NOW - 10 * DAY, NOW - 5 * DAY)

COVERAGE: list[tuple[str, lh.Selection, lh.RecoveryPointFacts, bool]] = [
    ("empty selection covers everything", lh.Selection(), point(), True),
    ("vault listed", lh.Selection(vault_names=("other", "main")), point(), True),
    ("vault not listed", lh.Selection(vault_names=("other",)), point(), False),
    ("resource listed", lh.Selection(resource_identifiers=(VOL,)), point(), True),
    ("resource not listed", lh.Selection(resource_identifiers=(DB,)), point(), False),
    (
        "both criteria must match",
        lh.Selection(vault_names=("main",), resource_identifiers=(DB,)),
        point(),
        False,
    ),
    (
        "date range start is inclusive",
        lh.Selection(date_range=RANGE),
        point(created=RANGE.from_date),
        True,
    ),
    (
        "date range end is inclusive",
        lh.Selection(date_range=RANGE),
        point(created=RANGE.to_date),
        True,
    ),
    (
        "one second after the range",
        lh.Selection(date_range=RANGE),
        point(created=RANGE.to_date + timedelta(seconds=1)),
        False,
    ),
    (
        "before the range",
        lh.Selection(date_range=RANGE),
        point(created=RANGE.from_date - DAY),
        False,
    ),
    (
        "points created after the hold match too",
        lh.Selection(vault_names=("main",)),
        point(created=NOW + 30 * DAY),
        True,
    ),
]


@pytest.mark.parametrize(
    ("selection", "rp", "expected"), [c[1:] for c in COVERAGE], ids=[c[0] for c in COVERAGE]
)
def test_covers(selection: lh.Selection, rp: lh.RecoveryPointFacts, expected: bool) -> None:
    assert lh.covers(make(selection), rp) is expected


@pytest.mark.parametrize(
    ("status", "held"),
    [("CREATING", True), ("ACTIVE", True), ("CANCELING", True), ("CANCELED", False)],
)
def test_is_held_by_status(status: lh.HoldStatus, held: bool) -> None:
    assert lh.is_held(point(), [make(status=status)]) is held


def test_is_held_by_any_of_several() -> None:
    holds = [
        make(lh.Selection(vault_names=("other",))),
        make(lh.Selection(resource_identifiers=(VOL,))),
    ]
    assert lh.is_held(point(), holds)
    assert not lh.is_held(point(resource=DB), holds)
    assert lh.holding(point(), holds) == [holds[1]]


# -------------------------------------------------------------------------- cancellation


def test_cancel_sets_dates() -> None:
    later = NOW + 3 * DAY
    canceled = lh.cancel(make(), "case closed", 30, later)
    assert canceled.status == "CANCELED"
    assert canceled.cancellation_date == later
    assert canceled.cancel_description == "case closed"
    assert canceled.retain_record_until == later + 30 * DAY
    assert not lh.is_held(point(), [canceled])


def test_cancel_without_retain_days_keeps_record() -> None:
    canceled = lh.cancel(make(), "case closed", None, NOW)
    assert canceled.retain_record_until is None
    assert not lh.record_expired(canceled, NOW + 99999 * DAY)


def test_record_expires_at_retain_record_until() -> None:
    canceled = lh.cancel(make(), "done", 1, NOW)
    assert not lh.record_expired(canceled, NOW + DAY - timedelta(seconds=1))
    assert lh.record_expired(canceled, NOW + DAY)
    assert not lh.record_expired(make(), NOW + 99 * DAY)


@pytest.mark.parametrize(
    ("description", "days", "problem"),
    [
        ("", 1, "CancelDescription is required"),
        ("x", -1, "RetainRecordInDays"),
        ("x", 36501, "RetainRecordInDays"),
    ],
)
def test_cancel_invalid(description: str, days: int, problem: str) -> None:
    with pytest.raises(InvalidInput, match=problem):
        lh.cancel(make(), description, days, NOW)


@pytest.mark.parametrize(
    ("status", "ok"), [("ACTIVE", True), ("CANCELING", False), ("CANCELED", False)]
)
def test_can_cancel(status: lh.HoldStatus, ok: bool) -> None:
    decision = lh.can_cancel(make(status=status))
    assert decision.allowed is ok
    assert decision.code == (None if ok else "InvalidResourceStateException")
