"""Backup start and completion windows: deadlines of a job and its fate at ``now``.

Pure rules: no I/O, no wall clock. Depends only on ``snowvault.core.errors``.

>>> w = validate_windows(None, None)
>>> d = deadlines(datetime(2026, 1, 1, 5, 0, tzinfo=UTC), w)
>>> d.start_by.isoformat(), d.complete_by.isoformat()
('2026-01-01T13:00:00+00:00', '2026-01-08T05:00:00+00:00')
>>> job_fate(d, datetime(2026, 1, 1, 14, 0, tzinfo=UTC), started=False).value
'EXPIRE'

AWS rules (botocore BackupRuleInput / StartBackupJobInput):

- StartWindowMinutes: default 480 (8 h), at least 60, at most 52,560,000 (100 years).
  A job not started by ``scheduled + start window`` (StartBy) becomes EXPIRED.
- CompletionWindowMinutes: default 10080 (7 days), at most 52,560,000. The botocore
  text is ambiguous (BackupRule says "after a backup job is successfully started";
  StartBackupJob says it "begins counting down from when the backup was scheduled" and
  "does not add additional time for StartWindowMinutes"). We follow the latter, the
  more precise one: complete-by = scheduled + completion window. Hence snowvault also
  requires CompletionWindowMinutes > StartWindowMinutes, or a late-starting job would
  have no time at all. A running job past complete-by is aborted.
- Deadlines are inclusive of their instant: at exactly StartBy the job has expired.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from snowvault.core.errors import InvalidInput

DEFAULT_START_WINDOW_MINUTES = 480
MIN_START_WINDOW_MINUTES = 60
DEFAULT_COMPLETION_WINDOW_MINUTES = 10_080
MAX_WINDOW_MINUTES = 52_560_000


def _invalid(field: str, detail: str) -> InvalidInput:
    return InvalidInput(f"{field}: {detail}", field=field, detail=detail)


@dataclass(frozen=True)
class Windows:
    start_window_minutes: int = DEFAULT_START_WINDOW_MINUTES
    completion_window_minutes: int = DEFAULT_COMPLETION_WINDOW_MINUTES

    @property
    def start_window(self) -> timedelta:
        return timedelta(minutes=self.start_window_minutes)

    @property
    def completion_window(self) -> timedelta:
        return timedelta(minutes=self.completion_window_minutes)


@dataclass(frozen=True)
class JobDeadlines:
    scheduled_at: datetime
    start_by: datetime
    complete_by: datetime


class JobFate(StrEnum):
    """What the runner must do with a job at ``now``."""

    WAIT = "WAIT"  # not started, still inside the start window: may start
    EXPIRE = "EXPIRE"  # not started, start window over: mark EXPIRED
    CONTINUE = "CONTINUE"  # running, inside the completion window
    ABORT = "ABORT"  # running past the completion window: abort it


def _minutes(value: object, field: str, default: int, minimum: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise _invalid(field, f"must be an integer number of minutes, got {value!r}")
    if not minimum <= value <= MAX_WINDOW_MINUTES:
        raise _invalid(field, f"must be between {minimum} and {MAX_WINDOW_MINUTES}, got {value}")
    return value


def validate_windows(
    start_window_minutes: int | None,
    completion_window_minutes: int | None,
    *,
    completion_field: str = "CompletionWindowMinutes",
) -> Windows:
    """Apply defaults and AWS limits; raise InvalidInput naming the field."""
    start = _minutes(
        start_window_minutes,
        "StartWindowMinutes",
        DEFAULT_START_WINDOW_MINUTES,
        MIN_START_WINDOW_MINUTES,
    )
    completion = _minutes(
        completion_window_minutes, completion_field, DEFAULT_COMPLETION_WINDOW_MINUTES, 1
    )
    if completion <= start:
        raise _invalid(
            completion_field,
            f"must be greater than StartWindowMinutes ({start}), got {completion}",
        )
    return Windows(start, completion)


def deadlines(scheduled_at: datetime, windows: Windows) -> JobDeadlines:
    """StartBy and complete-by (ExpectedCompletionDate bound) of one occurrence."""
    if scheduled_at.tzinfo is None:
        raise InvalidInput("scheduled_at: must be a timezone-aware datetime", field="scheduled_at")
    at = scheduled_at.astimezone(UTC)
    return JobDeadlines(at, at + windows.start_window, at + windows.completion_window)


def job_fate(job: JobDeadlines, now: datetime, *, started: bool) -> JobFate:
    """Decide a job's fate at ``now``; ``started`` means it reached RUNNING."""
    if not started:
        return JobFate.EXPIRE if now >= job.start_by else JobFate.WAIT
    return JobFate.ABORT if now >= job.complete_by else JobFate.CONTINUE


def still_startable(scheduled_at: datetime, windows: Windows, now: datetime) -> bool:
    """True while an occurrence scheduled at ``scheduled_at`` may still start at ``now``."""
    return now < scheduled_at + windows.start_window
