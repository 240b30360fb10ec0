"""AWS Backup legal holds: creation and cancellation rules, and which recovery points a
hold covers.

Pure rules on frozen dataclasses; ``now`` is always an argument. Depends on nothing but
:mod:`snowvault.core` and its sibling :mod:`vault_lock` (for :class:`Decision`).

A hold's ``RecoveryPointSelection`` is a predicate, not a snapshot: a recovery point
created *after* the hold that matches it is covered too. Each criterion given must match
(AND); within one criterion any value may match (OR); an empty selection covers every
recovery point of the account. ``DateRange`` bounds are inclusive and compared with the
recovery point's creation date.

A hold restrains while its status is CREATING, ACTIVE or CANCELING; only CANCELED
releases the recovery points.

>>> from datetime import UTC, datetime
>>> now = datetime(2026, 1, 1, tzinfo=UTC)
>>> hold = new_legal_hold("h1", "Audit", "SEC inquiry", Selection(vault_names=("main",)), now)
>>> is_held(RecoveryPointFacts("main", "arn:aws:ec2:us-east-1:111122223333:volume/v1", now), [hold])
True
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

from snowvault.control.model import vault_lock
from snowvault.core import arn
from snowvault.core.errors import InvalidInput

HoldStatus = Literal["CREATING", "ACTIVE", "CANCELING", "CANCELED"]
RESTRAINING: frozenset[HoldStatus] = frozenset({"CREATING", "ACTIVE", "CANCELING"})
VAULT_NAME_RE = re.compile(r"^[a-zA-Z0-9\-\_]{2,50}$")
RETAIN_RECORD_MAX_DAYS = 36500


@dataclass(frozen=True)
class DateRange:
    from_date: datetime
    to_date: datetime


@dataclass(frozen=True)
class Selection:
    """RecoveryPointSelection: VaultNames, ResourceIdentifiers, DateRange."""

    vault_names: tuple[str, ...] = ()
    resource_identifiers: tuple[str, ...] = ()
    date_range: DateRange | None = None


@dataclass(frozen=True)
class LegalHold:
    id: str
    title: str
    description: str
    status: HoldStatus
    creation_date: datetime
    selection: Selection = Selection()
    cancellation_date: datetime | None = None
    cancel_description: str | None = None
    retain_record_until: datetime | None = None


@dataclass(frozen=True)
class RecoveryPointFacts:
    vault_name: str
    resource_arn: str
    creation_date: datetime


# ------------------------------------------------------------------------------ creation


def _required_text(name: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(detail=f"{name} is required")
    return value


def validate_selection(selection: Selection, now: datetime) -> None:
    """Raise :class:`InvalidInput` unless ``selection`` is well-formed at ``now``."""
    for name in selection.vault_names:
        if not VAULT_NAME_RE.match(name):
            raise InvalidInput(detail=f"VaultNames: {name!r} is not a backup vault name")
    for identifier in selection.resource_identifiers:
        arn.Arn.parse(identifier)
    dates = selection.date_range
    if dates is None:
        return
    if dates.from_date > dates.to_date:
        raise InvalidInput(detail="DateRange: FromDate must not be after ToDate")
    if dates.to_date > now:
        raise InvalidInput(detail="DateRange: future dates are not permitted")


def new_legal_hold(
    hold_id: str, title: str, description: str, selection: Selection, now: datetime
) -> LegalHold:
    """A valid CreateLegalHold: Title and Description are required; the hold is ACTIVE."""
    _required_text("Title", title)
    _required_text("Description", description)
    validate_selection(selection, now)
    return LegalHold(hold_id, title, description, "ACTIVE", now, selection)


# ------------------------------------------------------------------------------ coverage


def covers(hold: LegalHold, rp: RecoveryPointFacts) -> bool:
    """Does the hold's selection match ``rp`` (whatever the hold's status)?"""
    sel = hold.selection
    if sel.vault_names and rp.vault_name not in sel.vault_names:
        return False
    if sel.resource_identifiers and rp.resource_arn not in sel.resource_identifiers:
        return False
    dates = sel.date_range
    return dates is None or dates.from_date <= rp.creation_date <= dates.to_date


def is_held(rp: RecoveryPointFacts, holds: Iterable[LegalHold]) -> bool:
    """Is ``rp`` restrained by at least one hold that is not CANCELED?"""
    return any(h.status in RESTRAINING and covers(h, rp) for h in holds)


def holding(rp: RecoveryPointFacts, holds: Iterable[LegalHold]) -> list[LegalHold]:
    """The holds restraining ``rp``, for messages and audit."""
    return [h for h in holds if h.status in RESTRAINING and covers(h, rp)]


# -------------------------------------------------------------------------- cancellation


def can_cancel(hold: LegalHold) -> vault_lock.Decision:
    if hold.status in ("CANCELING", "CANCELED"):
        return vault_lock.Decision(
            False,
            vault_lock.INVALID_RESOURCE_STATE,
            f"legal hold {hold.id} is already {hold.status}",
        )
    return vault_lock.ALLOWED


def cancel(
    hold: LegalHold, cancel_description: str, retain_record_in_days: int | None, now: datetime
) -> LegalHold:
    """The hold as CancelLegalHold leaves it: CANCELED, with ``retain_record_until`` =
    now + RetainRecordInDays (None: the record is kept indefinitely). Raise
    :class:`InvalidInput` for bad parameters; check :func:`can_cancel` first."""
    _required_text("CancelDescription", cancel_description)
    until = None
    if retain_record_in_days is not None:
        days = retain_record_in_days
        if (
            isinstance(days, bool)
            or not isinstance(days, int)
            or not 0 <= days <= RETAIN_RECORD_MAX_DAYS
        ):
            raise InvalidInput(
                detail=f"RetainRecordInDays must be 0 to {RETAIN_RECORD_MAX_DAYS}, not {days!r}"
            )
        until = now + timedelta(days=days)
    return replace(
        hold,
        status="CANCELED",
        cancellation_date=now,
        cancel_description=cancel_description,
        retain_record_until=until,
    )


def record_expired(hold: LegalHold, now: datetime) -> bool:
    """May the record of a canceled hold be purged? (from ``retain_record_until`` on)"""
    return (
        hold.status == "CANCELED"
        and hold.retain_record_until is not None
        and now >= hold.retain_record_until
    )
