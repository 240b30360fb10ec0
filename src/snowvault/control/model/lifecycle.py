"""AWS Backup recovery-point lifecycle: validation, calculated dates, storage class.

Pure rules: no I/O, no wall clock (``now`` is an argument). Depends only on
``snowvault.core.errors``.

>>> lc = validate_lifecycle(Lifecycle(move_to_cold_storage_after_days=30, delete_after_days=120))
>>> calc = calculated_lifecycle(lc, datetime(2026, 1, 1, tzinfo=UTC))
>>> calc.move_to_cold_storage_at.date().isoformat(), calc.delete_at.date().isoformat()
('2026-01-31', '2026-05-01')
>>> storage_class_at(calc, datetime(2026, 2, 1, tzinfo=UTC)).value
'COLD'

Semantics (botocore ``Lifecycle``): each setting counts whole days (24 h) from the
recovery point's creation date. ``None`` (absent) and ``-1`` both mean "never": AWS uses
-1 in both fields to remove a lifecycle and keep recovery points indefinitely. When both
are set, DeleteAfterDays must be at least MoveToColdStorageAfterDays + 90 (the 90-day
cold-storage minimum). Values run 1..36500 (100 years). Resource types that cannot go
cold ignore MoveToColdStorageAfterDays (``supports_cold_storage=False``).
OptInToArchiveForSupportedResources is accepted and ignored; DeleteAfterEvent is
output-only and refused as input.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from snowvault.core.errors import InvalidInput

FIELD = "Lifecycle"
NEVER = -1
MAX_DAYS = 36_500
COLD_MINIMUM_DAYS = 90


def _invalid(field: str, detail: str) -> InvalidInput:
    return InvalidInput(f"{field}: {detail}", field=field, detail=detail)


class StorageClass(StrEnum):
    WARM = "WARM"
    COLD = "COLD"
    DELETED = "DELETED"


@dataclass(frozen=True)
class Lifecycle:
    """As the API gives it; normalize with :func:`validate_lifecycle`."""

    move_to_cold_storage_after_days: int | None = None
    delete_after_days: int | None = None
    opt_in_to_archive_for_supported_resources: bool | None = None


@dataclass(frozen=True)
class CalculatedLifecycle:
    """AWS ``CalculatedLifecycle``: None means the transition never happens."""

    move_to_cold_storage_at: datetime | None
    delete_at: datetime | None


class HasDeleteAt(Protocol):
    @property
    def delete_at(self) -> datetime | None: ...


def lifecycle_from_api(data: Mapping[str, Any] | None, field: str = FIELD) -> Lifecycle | None:
    """Build a validated Lifecycle from its API dict (None stays None)."""
    if data is None:
        return None
    if not isinstance(data, Mapping):
        raise _invalid(field, "must be an object")
    if "DeleteAfterEvent" in data:
        raise _invalid(f"{field}.DeleteAfterEvent", "is not valid as an input")
    lifecycle = Lifecycle(
        move_to_cold_storage_after_days=data.get("MoveToColdStorageAfterDays"),
        delete_after_days=data.get("DeleteAfterDays"),
        opt_in_to_archive_for_supported_resources=data.get("OptInToArchiveForSupportedResources"),
    )
    return validate_lifecycle(lifecycle, field)


def _days(value: object, field: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _invalid(field, f"must be an integer number of days, got {value!r}")
    if value == NEVER:
        return None
    if not 1 <= value <= MAX_DAYS:
        raise _invalid(field, f"must be between 1 and {MAX_DAYS} days, or -1 for never")
    return value


def validate_lifecycle(lifecycle: Lifecycle, field: str = FIELD) -> Lifecycle:
    """Check AWS's rules; return the lifecycle with -1 normalized to None."""
    move = _days(lifecycle.move_to_cold_storage_after_days, f"{field}.MoveToColdStorageAfterDays")
    delete = _days(lifecycle.delete_after_days, f"{field}.DeleteAfterDays")
    if move is not None and delete is not None and delete < move + COLD_MINIMUM_DAYS:
        raise _invalid(
            f"{field}.DeleteAfterDays",
            f"must be at least {COLD_MINIMUM_DAYS} days after MoveToColdStorageAfterDays "
            f"({move} + {COLD_MINIMUM_DAYS} = {move + COLD_MINIMUM_DAYS}), got {delete}",
        )
    return Lifecycle(move, delete, lifecycle.opt_in_to_archive_for_supported_resources)


def calculated_lifecycle(
    lifecycle: Lifecycle | None, creation_date: datetime, *, supports_cold_storage: bool = True
) -> CalculatedLifecycle:
    """MoveToColdStorageAt / DeleteAt for a recovery point created at ``creation_date``."""
    if creation_date.tzinfo is None:
        raise InvalidInput("CreationDate: must be a timezone-aware datetime", field="CreationDate")
    if lifecycle is None:
        return CalculatedLifecycle(None, None)
    lc = validate_lifecycle(lifecycle)
    created = creation_date.astimezone(UTC)
    move = lc.move_to_cold_storage_after_days if supports_cold_storage else None
    return CalculatedLifecycle(
        move_to_cold_storage_at=None if move is None else created + timedelta(days=move),
        delete_at=(
            None if lc.delete_after_days is None else created + timedelta(days=lc.delete_after_days)
        ),
    )


def storage_class_at(calculated: CalculatedLifecycle, now: datetime) -> StorageClass:
    """Where the recovery point lives at ``now``: a transition takes effect at its instant."""
    if calculated.delete_at is not None and now >= calculated.delete_at:
        return StorageClass.DELETED
    if calculated.move_to_cold_storage_at is not None and now >= calculated.move_to_cold_storage_at:
        return StorageClass.COLD
    return StorageClass.WARM


def is_expired(rp: HasDeleteAt, now: datetime) -> bool:
    """True once the recovery point's DeleteAt has been reached."""
    return rp.delete_at is not None and now >= rp.delete_at


def validate_lifecycle_update(
    current: CalculatedLifecycle, new: CalculatedLifecycle, now: datetime
) -> None:
    """UpdateRecoveryPointLifecycle rule: the cold transition cannot change once it happened."""
    if (
        storage_class_at(current, now) is StorageClass.COLD
        and new.move_to_cold_storage_at != current.move_to_cold_storage_at
    ):
        raise _invalid(
            f"{FIELD}.MoveToColdStorageAfterDays",
            "cannot be changed after the recovery point has moved to cold storage",
        )
