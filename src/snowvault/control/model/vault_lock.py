"""AWS Backup Vault Lock: the parameters, the two modes, and what a lock forbids.

Pure rules on frozen dataclasses; ``now`` is always an argument; decisions are returned
as :class:`Decision` values carrying the AWS error code a service should raise. Depends
on nothing but :mod:`snowvault.core`.

Modes (AWS): a lock put *without* ``ChangeableForDays`` is in **governance** mode: it can be
changed or removed at any time by a principal with the IAM permission. A lock put *with*
``ChangeableForDays`` is in **compliance** mode: ``LockDate = now + ChangeableForDays * 24 h``
(the request's instant, at full precision, no rounding). Strictly before ``LockDate`` (the
"grace time") it can still be changed or deleted; from ``LockDate`` itself on it is
immutable for everyone, the root user included:

    >>> from datetime import UTC, datetime, timedelta
    >>> lock = new_lock(1, None, 3, datetime(2026, 1, 1, 20, tzinfo=UTC))
    >>> lock.lock_date
    datetime.datetime(2026, 1, 4, 20, 0, tzinfo=datetime.timezone.utc)
    >>> lock.is_immutable(lock.lock_date - timedelta(seconds=1)), lock.is_immutable(lock.lock_date)
    (False, True)

What a lock protects: a recovery point in a locked vault cannot be deleted, nor its
lifecycle shortened, before its retention ends: its ``DeleteAt`` (none = kept forever),
and never before ``creation + MinRetentionDays`` for points created after the lock.
Points saved before the lock keep their own retention ("not affected" by Min/Max).

**Bypass** (our choice, documented): AWS lets a principal with sufficient IAM permissions
remove a governance lock (or a compliance lock in grace time) and then delete. The rules
here accept ``principal_may_bypass``: the service passes True only when IAM allows the
caller ``backup:DeleteBackupVaultLockConfiguration`` on the vault, so such a caller may
delete directly instead of removing the lock first. It never helps once a compliance lock
is immutable, and it never overrides a legal hold. The services pass False for deletes
and lifecycle changes (AWS's behaviour: remove the lock first) and use the flag only for
managing the lock itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from snowvault.core.errors import InvalidInput

MIN_RETENTION_DAYS_FLOOR = 1
MAX_RETENTION_DAYS_CEILING = 36500
CHANGEABLE_FOR_DAYS_MIN = 3  # AWS's 72-hour cooling-off period
CHANGEABLE_FOR_DAYS_MAX = 36500

LockMode = Literal["governance", "compliance"]
StoreMode = Literal["GOVERNANCE", "COMPLIANCE"]

INVALID_REQUEST = "InvalidRequestException"
INVALID_RESOURCE_STATE = "InvalidResourceStateException"
ACCESS_DENIED = "AccessDeniedException"


@dataclass(frozen=True)
class Decision:
    """``allowed``, or why not: ``code`` is the AWS error code to raise, ``message`` its text."""

    allowed: bool
    code: str | None = None
    message: str = ""


ALLOWED = Decision(True)


@dataclass(frozen=True)
class LockConfig:
    min_days: int | None
    max_days: int | None
    changeable_for_days: int | None
    lock_date: datetime | None
    created_at: datetime

    @property
    def mode(self) -> LockMode:
        return "governance" if self.lock_date is None else "compliance"

    def is_immutable(self, now: datetime) -> bool:
        """True from ``lock_date`` itself on (compliance mode only)."""
        return self.lock_date is not None and now >= self.lock_date


@dataclass(frozen=True)
class RecoveryPointRetention:
    """What the lock needs to know of a recovery point. ``delete_at`` None = kept forever."""

    creation_date: datetime
    delete_at: datetime | None = None


# --------------------------------------------------------------------------- parameters


def _check_days(name: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(detail=f"{name} must be an integer, not {value!r}")
    if not low <= value <= high:
        raise InvalidInput(detail=f"{name} must be between {low} and {high} days, not {value}")


def validate_lock_parameters(
    min_days: int | None, max_days: int | None, changeable_for_days: int | None
) -> None:
    """PutBackupVaultLockConfiguration's rules; raise :class:`InvalidInput` when broken."""
    if min_days is not None:
        _check_days(
            "MinRetentionDays", min_days, MIN_RETENTION_DAYS_FLOOR, MAX_RETENTION_DAYS_CEILING
        )
    if max_days is not None:
        _check_days(
            "MaxRetentionDays", max_days, MIN_RETENTION_DAYS_FLOOR, MAX_RETENTION_DAYS_CEILING
        )
    if min_days is not None and max_days is not None and min_days > max_days:
        raise InvalidInput(
            detail=f"MinRetentionDays ({min_days}) must not exceed MaxRetentionDays ({max_days})"
        )
    if changeable_for_days is not None:
        _check_days(
            "ChangeableForDays",
            changeable_for_days,
            CHANGEABLE_FOR_DAYS_MIN,
            CHANGEABLE_FOR_DAYS_MAX,
        )


def new_lock(
    min_days: int | None, max_days: int | None, changeable_for_days: int | None, now: datetime
) -> LockConfig:
    """The configuration a valid Put creates (or replaces a changeable one with)."""
    validate_lock_parameters(min_days, max_days, changeable_for_days)
    lock_date = None if changeable_for_days is None else now + timedelta(days=changeable_for_days)
    return LockConfig(min_days, max_days, changeable_for_days, lock_date, now)


# ---------------------------------------------------------------- changing the lock itself


def _manage_lock(config: LockConfig | None, now: datetime, may: bool, verb: str) -> Decision:
    if not may:
        return Decision(False, ACCESS_DENIED, f"not authorized to {verb} the Vault Lock")
    if config is not None and config.is_immutable(now):
        return Decision(
            False,
            INVALID_REQUEST,
            f"Vault Lock is immutable since {config.lock_date:%Y-%m-%dT%H:%M:%SZ} "
            f"and cannot be {verb}d",
        )
    return ALLOWED


def can_change_lock(
    config: LockConfig | None, now: datetime, principal_may_bypass: bool
) -> Decision:
    """May a Put replace ``config``? ``principal_may_bypass``: IAM allows the caller
    ``backup:PutBackupVaultLockConfiguration`` on the vault."""
    return _manage_lock(config, now, principal_may_bypass, "change")


def can_delete_lock(
    config: LockConfig | None, now: datetime, principal_may_bypass: bool
) -> Decision:
    """May DeleteBackupVaultLockConfiguration remove ``config``? ``principal_may_bypass``:
    IAM allows the caller ``backup:DeleteBackupVaultLockConfiguration`` on the vault."""
    return _manage_lock(config, now, principal_may_bypass, "delete")


# ----------------------------------------------------------------------------- retention


def check_retention(config: LockConfig | None, retention_days: int | None) -> str | None:
    """None when a new backup/copy job's retention (``DeleteAfterDays``; None = forever)
    fits the lock's [Min, Max]; otherwise the reason the job fails."""
    if config is None:
        return None
    if retention_days is None:
        if config.max_days is not None:
            return (
                "a recovery point kept indefinitely exceeds the vault's "
                f"MaxRetentionDays ({config.max_days})"
            )
        return None
    if config.min_days is not None and retention_days < config.min_days:
        return (
            f"retention of {retention_days} days is shorter than the vault's "
            f"MinRetentionDays ({config.min_days})"
        )
    if config.max_days is not None and retention_days > config.max_days:
        return (
            f"retention of {retention_days} days is longer than the vault's "
            f"MaxRetentionDays ({config.max_days})"
        )
    return None


def _floor(config: LockConfig, rp: RecoveryPointRetention) -> datetime | None:
    """creation + MinRetentionDays, for points created once the lock was in place."""
    if config.min_days is None or rp.creation_date < config.created_at:
        return None
    return rp.creation_date + timedelta(days=config.min_days)


def retention_end(config: LockConfig, rp: RecoveryPointRetention) -> datetime | None:
    """When the lock stops protecting ``rp``; None = never (kept forever)."""
    if rp.delete_at is None:
        return None
    floor = _floor(config, rp)
    return rp.delete_at if floor is None else max(rp.delete_at, floor)


def _refuse_unless_bypass(
    config: LockConfig, now: datetime, principal_may_bypass: bool, what: str
) -> Decision:
    if principal_may_bypass and not config.is_immutable(now):
        return ALLOWED
    mode = "compliance" if config.is_immutable(now) else config.mode
    return Decision(False, INVALID_REQUEST, f"{what}: the backup vault is locked ({mode} mode)")


def can_delete_recovery_point(
    config: LockConfig | None,
    rp: RecoveryPointRetention,
    now: datetime,
    legal_holds_active: bool,
    principal_may_bypass: bool = False,
) -> Decision:
    """May ``rp`` be deleted now? A legal hold refuses always; a lock refuses before the
    point's retention ends (compliance from LockDate on: everyone, root included)."""
    if legal_holds_active:
        return Decision(
            False,
            INVALID_RESOURCE_STATE,
            "the recovery point is under one or more active legal holds",
        )
    if config is None:
        return ALLOWED
    end = retention_end(config, rp)
    if end is not None and now >= end:
        return ALLOWED
    return _refuse_unless_bypass(
        config,
        now,
        principal_may_bypass,
        "the recovery point cannot be deleted before its retention ends",
    )


def can_shorten_lifecycle(
    config: LockConfig | None,
    rp: RecoveryPointRetention,
    new_delete_at: datetime | None,
    now: datetime,
    principal_may_bypass: bool = False,
) -> Decision:
    """May UpdateRecoveryPointLifecycle set ``rp``'s DeleteAt to ``new_delete_at``?

    In a locked vault a shorter retention (or one below creation + MinRetentionDays) is
    refused like a delete. A longer one is accepted while within creation +
    MaxRetentionDays (for points created under the lock; None = forever exceeds any Max).
    """
    if config is None:
        return ALLOWED
    shorter = new_delete_at is not None and (rp.delete_at is None or new_delete_at < rp.delete_at)
    floor = _floor(config, rp)
    below_min = new_delete_at is not None and floor is not None and new_delete_at < floor
    if shorter or below_min:
        return _refuse_unless_bypass(
            config, now, principal_may_bypass, "the recovery point's retention cannot be shortened"
        )
    if config.max_days is not None and rp.creation_date >= config.created_at:
        ceiling = rp.creation_date + timedelta(days=config.max_days)
        if new_delete_at is None or new_delete_at > ceiling:
            return Decision(
                False,
                INVALID_REQUEST,
                f"retention beyond the vault's MaxRetentionDays ({config.max_days})",
            )
    return ALLOWED


# ------------------------------------------------------------------- object store retention


@dataclass(frozen=True)
class StoreRetention:
    """The retention an object referenced by recovery points needs on the object store.

    ``until`` None: nothing to retain. ``open_ended``: some referencing point is kept
    forever, so ``until`` is only a floor and the service must extend it periodically.
    """

    mode: StoreMode
    until: datetime | None
    open_ended: bool = False


def required_store_retention(
    config: LockConfig | None, refs: Sequence[RecoveryPointRetention], now: datetime
) -> StoreRetention:
    """COMPLIANCE once a compliance lock is immutable (S3 compliance retention can never be
    shortened, so it must not start during grace time, when the lock is still removable);
    GOVERNANCE otherwise. ``until`` = the latest of each point's DeleteAt and creation +
    MinRetentionDays."""
    mode: StoreMode = (
        "COMPLIANCE" if config is not None and config.is_immutable(now) else "GOVERNANCE"
    )
    candidates: list[datetime] = []
    for rp in refs:
        if rp.delete_at is not None:
            candidates.append(rp.delete_at)
        floor = None if config is None else _floor(config, rp)
        if floor is not None:
            candidates.append(floor)
    until = max(candidates) if candidates else None
    return StoreRetention(mode, until, any(rp.delete_at is None for rp in refs))
