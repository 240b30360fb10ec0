from datetime import UTC, datetime, timedelta

import pytest

from snowvault.core import arn, errors
from snowvault.testing import FakeClock


def test_arn_round_trip() -> None:
    text = "arn:aws:backup:us-east-1:123456789012:backup-vault:main"
    parsed = arn.Arn.parse(text)
    assert str(parsed) == text
    assert parsed.resource_type == "backup-vault"
    assert parsed.resource_id == "main"


def test_arn_rejects_garbage() -> None:
    with pytest.raises(errors.InvalidInput):
        arn.Arn.parse("not-an-arn")


def test_error_message_comes_from_docstring() -> None:
    err = errors.NotFound(kind="vault", name="x")
    assert str(err) == "vault not found: x"


def test_fake_clock_never_goes_back() -> None:
    clock = FakeClock(datetime(2026, 1, 1, tzinfo=UTC))
    clock.advance(timedelta(hours=1))
    assert clock.now() == datetime(2026, 1, 1, 1, tzinfo=UTC)
    with pytest.raises(ValueError):
        clock.advance(-1)
