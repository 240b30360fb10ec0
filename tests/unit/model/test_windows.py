"""Start and completion windows: defaults, limits, deadlines and a job's fate."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from snowvault.control.model import windows
from snowvault.core.errors import InvalidInput

SCHEDULED = datetime(2026, 1, 1, 5, 0, tzinfo=UTC)


def test_defaults_are_aws_defaults() -> None:
    w = windows.validate_windows(None, None)
    assert (w.start_window_minutes, w.completion_window_minutes) == (480, 10_080)


@pytest.mark.parametrize(
    ("start", "completion", "message"),
    [
        (59, None, "StartWindowMinutes: must be between 60 and 52560000, got 59"),
        (52_560_001, None, "StartWindowMinutes: must be between 60"),
        (60, 0, "CompletionWindowMinutes: must be between 1 and 52560000, got 0"),
        (60, 60, "CompletionWindowMinutes: must be greater than StartWindowMinutes (60)"),
        (None, 120, "CompletionWindowMinutes: must be greater than StartWindowMinutes (480)"),
        ("60", None, "StartWindowMinutes: must be an integer"),
    ],
)
def test_invalid_windows_name_the_field(start: object, completion: object, message: str) -> None:
    with pytest.raises(InvalidInput) as err:
        windows.validate_windows(start, completion)  # type: ignore[arg-type]
    assert str(err.value).startswith(message)


def test_minimums_are_accepted() -> None:
    assert windows.validate_windows(60, 61) == windows.Windows(60, 61)


def test_deadlines_count_from_the_scheduled_time() -> None:
    d = windows.deadlines(SCHEDULED, windows.Windows(60, 120))
    assert d.start_by == SCHEDULED + timedelta(minutes=60)
    assert d.complete_by == SCHEDULED + timedelta(minutes=120)


@pytest.mark.parametrize(
    ("minutes_after", "started", "fate"),
    [
        (0, False, "WAIT"),
        (59, False, "WAIT"),
        (60, False, "EXPIRE"),  # the deadline instant is already too late
        (61, False, "EXPIRE"),
        (30, True, "CONTINUE"),
        (119, True, "CONTINUE"),
        (120, True, "ABORT"),
        (500, True, "ABORT"),
    ],
)
def test_job_fate(minutes_after: int, started: bool, fate: str) -> None:
    d = windows.deadlines(SCHEDULED, windows.Windows(60, 120))
    now = SCHEDULED + timedelta(minutes=minutes_after)
    assert windows.job_fate(d, now, started=started).value == fate
    if not started:
        assert windows.still_startable(SCHEDULED, windows.Windows(60, 120), now) is (fate == "WAIT")
