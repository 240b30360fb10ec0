"""AWS Backup lifecycle rules: validation, calculated dates, storage class, expiry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from snowvault.control.model import lifecycle
from snowvault.core.errors import InvalidInput

CREATED = datetime(2026, 1, 1, 5, 0, tzinfo=UTC)
L = lifecycle.Lifecycle


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (L(), L()),
        (L(-1, -1), L(None, None)),  # AWS: -1 in both keeps recovery points forever
        (L(30, 120), L(30, 120)),  # exactly move + 90
        (L(30, None), L(30, None)),
        (L(None, 7), L(None, 7)),
        (L(None, 36_500), L(None, 36_500)),
        (L(30, 120, True), L(30, 120, True)),  # OptInToArchive accepted and kept, unused
    ],
)
def test_valid_lifecycles(given: lifecycle.Lifecycle, expected: lifecycle.Lifecycle) -> None:
    assert lifecycle.validate_lifecycle(given) == expected


@pytest.mark.parametrize(
    ("given", "message"),
    [
        (L(30, 119), "Lifecycle.DeleteAfterDays: must be at least 90 days after"),
        (L(1, 1), "Lifecycle.DeleteAfterDays: must be at least 90 days after"),
        (L(0, None), "Lifecycle.MoveToColdStorageAfterDays: must be between 1 and 36500"),
        (L(None, -2), "Lifecycle.DeleteAfterDays: must be between 1 and 36500"),
        (L(None, 36_501), "Lifecycle.DeleteAfterDays: must be between 1 and 36500"),
        (L(None, True), "Lifecycle.DeleteAfterDays: must be an integer"),  # type: ignore[arg-type]
    ],
)
def test_invalid_lifecycles_name_the_field(given: lifecycle.Lifecycle, message: str) -> None:
    with pytest.raises(InvalidInput) as err:
        lifecycle.validate_lifecycle(given)
    assert str(err.value).startswith(message)


def test_from_api_prefixes_the_field_and_refuses_output_only_fields() -> None:
    got = lifecycle.lifecycle_from_api({"MoveToColdStorageAfterDays": 10, "DeleteAfterDays": 100})
    assert got == L(10, 100)
    assert lifecycle.lifecycle_from_api(None) is None
    with pytest.raises(InvalidInput, match=r"^CopyActions\[0\]\.Lifecycle\.DeleteAfterDays"):
        lifecycle.lifecycle_from_api({"DeleteAfterDays": 0}, "CopyActions[0].Lifecycle")
    with pytest.raises(InvalidInput, match="DeleteAfterEvent: is not valid as an input"):
        lifecycle.lifecycle_from_api({"DeleteAfterEvent": "DELETE_AFTER_COPY"})


def test_calculated_lifecycle_counts_whole_days_from_creation() -> None:
    calc = lifecycle.calculated_lifecycle(L(30, 120), CREATED)
    assert calc.move_to_cold_storage_at == CREATED + timedelta(days=30)
    assert calc.delete_at == CREATED + timedelta(days=120)
    assert lifecycle.calculated_lifecycle(None, CREATED) == lifecycle.CalculatedLifecycle(
        None, None
    )
    assert lifecycle.calculated_lifecycle(L(-1, -1), CREATED).delete_at is None


def test_types_without_cold_storage_ignore_the_transition() -> None:
    calc = lifecycle.calculated_lifecycle(L(30, 120), CREATED, supports_cold_storage=False)
    assert calc.move_to_cold_storage_at is None
    assert calc.delete_at == CREATED + timedelta(days=120)


@pytest.mark.parametrize(
    ("days_after", "expected"),
    [
        (0, "WARM"),
        (29.99, "WARM"),
        (30, "COLD"),
        (119.99, "COLD"),
        (120, "DELETED"),
        (500, "DELETED"),
    ],
)
def test_storage_class_at(days_after: float, expected: str) -> None:
    calc = lifecycle.calculated_lifecycle(L(30, 120), CREATED)
    now = CREATED + timedelta(days=days_after)
    assert lifecycle.storage_class_at(calc, now).value == expected
    assert lifecycle.is_expired(calc, now) is (expected == "DELETED")


def test_never_expires_without_delete_after_days() -> None:
    calc = lifecycle.calculated_lifecycle(L(30, None), CREATED)
    far = CREATED + timedelta(days=36_500 * 2)
    assert lifecycle.storage_class_at(calc, far) is lifecycle.StorageClass.COLD
    assert not lifecycle.is_expired(calc, far)


def test_cold_transition_is_frozen_once_it_happened() -> None:
    current = lifecycle.calculated_lifecycle(L(30, 365), CREATED)
    changed = lifecycle.calculated_lifecycle(L(60, 365), CREATED)
    lifecycle.validate_lifecycle_update(current, changed, CREATED + timedelta(days=10))
    with pytest.raises(InvalidInput, match="MoveToColdStorageAfterDays: cannot be changed"):
        lifecycle.validate_lifecycle_update(current, changed, CREATED + timedelta(days=31))
    longer = lifecycle.calculated_lifecycle(L(30, 500), CREATED)
    lifecycle.validate_lifecycle_update(current, longer, CREATED + timedelta(days=31))


def test_naive_creation_date_is_refused() -> None:
    with pytest.raises(InvalidInput, match="CreationDate"):
        lifecycle.calculated_lifecycle(L(1, 91), datetime(2026, 1, 1))
