"""Table tests of AWS cron/rate semantics, DST handling, errors, speed and the golden file.

Regenerate the golden file after an intended behaviour change with
``SNOWVAULT_REGEN_GOLDEN=1 .venv/bin/python -m pytest tests/unit/model/test_schedule.py``
and review the diff before committing it.
"""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from snowvault.control.model import schedule
from snowvault.core.errors import InvalidInput

GOLDEN = Path(__file__).parent / "golden" / "schedules.json"


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def runs(expr: str, after: str, tz: str = "UTC", n: int = 3) -> list[str]:
    out = schedule.preview(schedule.parse_schedule(expr), utc(after), tz, n)
    return [d.strftime("%Y-%m-%dT%H:%M") for d in out]


@pytest.mark.parametrize(
    ("expr", "after", "tz", "expected"),
    [
        # AWS Backup default: 05:00 UTC daily; strictly after.
        ("cron(0 5 ? * * *)", "2026-01-01T05:00", "UTC", ["2026-01-02T05:00", "2026-01-03T05:00"]),
        ("cron(0 5 ? * * *)", "2026-01-01T04:59:59", "UTC", ["2026-01-01T05:00"]),
        ("cron(15 * ? * * *)", "2026-01-01T23:20", "UTC", ["2026-01-02T00:15", "2026-01-02T01:15"]),
        ("cron(0 12 * * ? *)", "2026-12-31T12:00", "UTC", ["2027-01-01T12:00"]),
        (
            "cron(0/15 * * * ? *)",
            "2026-01-01T00:50",
            "UTC",
            ["2026-01-01T01:00", "2026-01-01T01:15"],
        ),
        (
            "cron(1/20 * * * ? *)",
            "2026-01-01T00:50",
            "UTC",
            ["2026-01-01T01:01", "2026-01-01T01:21"],
        ),
        ("cron(0 18 ? * MON-FRI *)", "2026-01-02T18:00", "UTC", ["2026-01-05T18:00"]),  # Fri
        ("cron(0 18 ? * FRI-MON *)", "2026-01-05T18:00", "UTC", ["2026-01-09T18:00"]),  # wraps
        ("cron(0 8 1 * ? *)", "2026-01-15T00:00", "UTC", ["2026-02-01T08:00", "2026-03-01T08:00"]),
        ("cron(0 0 ? JAN,jul 2 2027)", "2026-01-01T00:00", "UTC", ["2027-01-04T00:00"]),
        ("cron(0 0 1 1 ? 2026-2027)", "2026-06-01T00:00", "UTC", ["2027-01-01T00:00"]),
        ("cron(0 0 1 1 ? 2026)", "2026-06-01T00:00", "UTC", []),  # schedule has ended
        # Month ends and leap days.
        ("cron(0 0 31 * ? *)", "2026-01-31T00:00", "UTC", ["2026-03-31T00:00", "2026-05-31T00:00"]),
        ("cron(0 0 L * ? *)", "2028-01-31T00:00", "UTC", ["2028-02-29T00:00", "2028-03-31T00:00"]),
        ("cron(0 0 L 2 ? *)", "2026-03-01T00:00", "UTC", ["2027-02-28T00:00", "2028-02-29T00:00"]),
        (
            "cron(0 0 29 FEB ? *)",
            "2026-01-01T00:00",
            "UTC",
            ["2028-02-29T00:00", "2032-02-29T00:00"],
        ),
        ("cron(0 0 30 2 ? *)", "2026-01-01T00:00", "UTC", []),  # never exists
        # W: nearest weekday within the month.
        ("cron(0 12 15W * ? *)", "2026-02-01T00:00", "UTC", ["2026-02-16T12:00"]),  # Sun -> Mon
        ("cron(0 12 14W * ? *)", "2026-02-01T00:00", "UTC", ["2026-02-13T12:00"]),  # Sat -> Fri
        (
            "cron(0 12 1W * ? *)",
            "2026-08-01T00:00",
            "UTC",
            ["2026-08-03T12:00"],
        ),  # Sat 1st -> Mon 3rd
        (
            "cron(0 12 31W * ? *)",
            "2026-05-01T00:00",
            "UTC",
            ["2026-05-29T12:00"],
        ),  # Sun 31 -> Fri 29
        (
            "cron(0 12 LW * ? *)",
            "2026-01-01T00:00",
            "UTC",
            ["2026-01-30T12:00", "2026-02-27T12:00"],
        ),
        # Day-of-week L and #.
        (
            "cron(0 12 ? * 5L *)",
            "2026-01-01T00:00",
            "UTC",
            ["2026-01-29T12:00", "2026-02-26T12:00"],
        ),
        ("cron(0 12 ? * FRIL *)", "2026-01-01T00:00", "UTC", ["2026-01-30T12:00"]),
        ("cron(0 12 ? * L *)", "2026-01-01T00:00", "UTC", ["2026-01-03T12:00", "2026-01-10T12:00"]),
        (
            "cron(0 12 ? * 3#2 *)",
            "2026-01-01T00:00",
            "UTC",
            ["2026-01-13T12:00", "2026-02-10T12:00"],
        ),
        (
            "cron(0 12 ? * 1#5 *)",
            "2026-01-01T00:00",
            "UTC",
            ["2026-03-29T12:00", "2026-05-31T12:00"],
        ),
        # America/New_York: 2026-03-08 02:00 -> 03:00, 2026-11-01 02:00 -> 01:00.
        (
            "cron(30 2 * * ? *)",
            "2026-03-07T12:00",
            "America/New_York",
            ["2026-03-09T06:30", "2026-03-10T06:30"],
        ),  # 02:30 on 03-08 does not exist: skipped
        (
            "cron(30 1 * * ? *)",
            "2026-10-31T12:00",
            "America/New_York",
            ["2026-11-01T05:30", "2026-11-02T06:30"],
        ),  # repeated 01:30 fires once (EDT)
        (
            "cron(0 * * * ? *)",
            "2026-11-01T03:30",
            "America/New_York",
            ["2026-11-01T04:00", "2026-11-01T05:00", "2026-11-01T07:00"],
        ),  # no second 01:00
        (
            "cron(0 3 * * ? *)",
            "2026-03-07T12:00",
            "America/New_York",
            ["2026-03-08T07:00", "2026-03-09T07:00"],
        ),
        # Europe/Berlin: 2026-03-29 02:00 -> 03:00, 2026-10-25 03:00 -> 02:00.
        (
            "cron(30 2 * * ? *)",
            "2026-03-28T12:00",
            "Europe/Berlin",
            ["2026-03-30T00:30", "2026-03-31T00:30"],
        ),
        (
            "cron(30 2 * * ? *)",
            "2026-10-24T12:00",
            "Europe/Berlin",
            ["2026-10-25T00:30", "2026-10-26T01:30"],
        ),
        # `after` inside the second pass of a repeated hour: the first pass is past.
        ("cron(30 2 * * ? *)", "2026-10-25T01:10", "Europe/Berlin", ["2026-10-26T01:30"]),
        # Half-hour zone and a 30-minute DST shift (Lord Howe, 2026-10-04 02:00 -> 02:30).
        ("cron(15 2 * * ? *)", "2026-10-03T00:00", "Australia/Lord_Howe", ["2026-10-04T15:15"]),
        ("cron(0 9 * * ? *)", "2026-01-01T00:00", "Asia/Kolkata", ["2026-01-01T03:30"]),
    ],
)
def test_cron_table(expr: str, after: str, tz: str, expected: list[str]) -> None:
    assert runs(expr, after, tz, n=len(expected) or 1) == expected


@pytest.mark.parametrize(
    ("expr", "after", "expected"),
    [
        ("rate(1 day)", "2026-01-01T00:00", ["2026-01-02T00:00", "2026-01-03T00:00"]),
        ("rate(7 hours)", "2026-01-01T00:00", ["2026-01-01T07:00", "2026-01-01T14:00"]),
        ("rate(1 hour)", "2026-01-01T10:30", ["2026-01-01T11:00", "2026-01-01T12:00"]),
        ("rate(90 minutes)", "1970-01-01T00:00", ["1970-01-01T01:30", "1970-01-01T03:00"]),
    ],
)
def test_rate_is_anchored_at_the_epoch(expr: str, after: str, expected: list[str]) -> None:
    assert runs(expr, after, "America/New_York", n=2) == expected


def test_rate_anchor_and_dst_independence() -> None:
    anchor = datetime(2026, 3, 7, 10, 17, tzinfo=UTC)
    s = schedule.parse_schedule("rate(1 day)", rate_anchor=anchor)
    got = schedule.preview(s, anchor, "America/New_York", 3)
    # 24-hour durations: the local time moves across the DST change, UTC does not.
    assert got == [anchor + timedelta(days=i) for i in (1, 2, 3)]
    assert schedule.next_run(s, anchor - timedelta(seconds=1), "UTC") == anchor


def test_runs_between_is_half_open() -> None:
    s = schedule.parse_schedule("cron(0 * * * ? *)")
    got = schedule.runs_between(s, utc("2026-01-01T00:00"), utc("2026-01-01T03:00"), "UTC")
    assert got == [utc("2026-01-01T01:00"), utc("2026-01-01T02:00"), utc("2026-01-01T03:00")]


@pytest.mark.parametrize(
    ("expr", "fragment"),
    [
        ("", "must be a cron() or rate() expression"),
        ("0 5 * * ? *", "must be a cron() or rate() expression"),
        ("cron(0 5 * * ?)", "needs 6 fields, got 5"),
        ("cron(0 0 5 * * ? *)", "needs 6 fields, got 7"),
        ("cron(0 5 * * * *)", "cannot both be specified"),
        ("cron(0 5 1 * MON *)", "cannot both be specified"),
        ("cron(0 5 ? * ? *)", "cannot both be '?'"),
        ("cron(60 5 * * ? *)", "minutes: value 60 out of range 0-59"),
        ("cron(0 24 * * ? *)", "hours: value 24 out of range"),
        ("cron(0 5 0 * ? *)", "day-of-month: value 0 out of range"),
        ("cron(0 5 32 * ? *)", "day-of-month: value 32 out of range"),
        ("cron(0 5 * 13 ? *)", "month: value 13 out of range"),
        ("cron(0 5 * FOO ? *)", "month: invalid value 'FOO'"),
        ("cron(0 5 ? * 8 *)", "day-of-week: value 8 out of range"),
        ("cron(0 5 ? * 0 *)", "day-of-week: value 0 out of range"),
        ("cron(0 5 * * ? 1969)", "year: value 1969 out of range"),
        ("cron(0 5 * * ? 2200)", "year: value 2200 out of range"),
        ("cron(0 5 * * ? 2030-2026)", "year: range start 2030 is after its end 2026"),
        ("cron(0/0 5 * * ? *)", "minutes step: value 0 out of range"),
        ("cron(0 5 ? * 3#1,6#3 *)", "only one expression is allowed with '#'"),
        ("cron(0 5 ? * 3#6 *)", "day-of-week '#': value 6 out of range"),
        ("cron(0 5 1,L * ? *)", "L and W cannot be combined"),
        ("cron(0 5 ? * 2,5L *)", "day-of-week: invalid value"),
        ("cron(0 5 1,,2 * ? *)", "empty list item"),
        ("rate(1 minutes)", "singular for 1 and plural otherwise"),
        ("rate(5 minute)", "singular for 1 and plural otherwise"),
        ("rate(0 minutes)", "positive integer"),
        ("rate(5 weeks)", "minute(s), hour(s) or day(s)"),
        ("rate(-5 minutes)", "rate(N unit)"),
    ],
)
def test_invalid_expressions_name_the_field(expr: str, fragment: str) -> None:
    with pytest.raises(InvalidInput) as err:
        schedule.parse_schedule(expr)
    assert str(err.value).startswith("ScheduleExpression: ")
    assert fragment in str(err.value)


@pytest.mark.parametrize(
    ("expr", "fragment"),
    [
        ("rate(99999999999999999 days)", "at most 100 years"),
        ("rate(36501 days)", "at most 100 years (52560000 minutes), got 36501 days"),
        ("rate(876001 hours)", "at most 100 years"),
        ("rate(52560001 minutes)", "at most 100 years"),
        ("rate(" + "9" * 5000 + " days)", "at most 100 years"),
        ("rate(\uff11 day)", "rate(N unit)"),  # a fullwidth digit is not a number here
        ("cron(0 5 \u00b2 * ? *)", "day-of-month: invalid value"),  # superscript two
        ("cron(0 5 ? * * " + "9" * 5000 + ")", "year: value 9999"),
        ("cron(0 5 ? * * 99999999999999999999)", "out of range 1970-2199"),
        ("cron(0/99999999999999999999 * * * ? *)", "minutes step"),
    ],
)
def test_absurd_values_are_refused_not_overflowed(expr: str, fragment: str) -> None:
    with pytest.raises(InvalidInput) as err:
        schedule.parse_schedule(expr)
    assert fragment in str(err.value)
    assert len(str(err.value)) < 200  # the caller's megabytes are not echoed back


@pytest.mark.parametrize(
    "expr", ["rate(36500 days)", "rate(876000 hours)", "rate(52560000 minutes)"]
)
def test_a_rate_of_exactly_100_years_is_accepted(expr: str) -> None:
    s = schedule.parse_schedule(expr)
    assert schedule.next_run(s, utc("2026-01-01T00:00")) == utc(
        "2069-12-07T00:00"
    )  # epoch + 36,500 days


def test_a_rate_whose_next_run_passes_year_9999_has_ended() -> None:
    s = schedule.parse_schedule("rate(36500 days)")
    assert schedule.next_run(s, datetime(9990, 1, 1, tzinfo=UTC)) is None
    assert schedule.preview(s, datetime(9990, 1, 1, tzinfo=UTC)) == []


@pytest.mark.parametrize(
    "tz", ["a" * 5000, "\x00", "UTC\x00", "../../../../etc/passwd", "/etc/localtime", "\ud800"]
)
def test_garbage_time_zones_are_refused(tz: str) -> None:
    s = schedule.parse_schedule("cron(0 5 * * ? *)")
    with pytest.raises(InvalidInput) as err:
        schedule.next_run(s, utc("2026-01-01T00:00"), tz)
    assert str(err.value).startswith("ScheduleExpressionTimezone: unknown time zone")
    assert len(str(err.value)) < 200


def test_unknown_time_zone_names_its_field() -> None:
    s = schedule.parse_schedule("cron(0 5 * * ? *)")
    with pytest.raises(InvalidInput, match=r"^ScheduleExpressionTimezone: unknown time zone"):
        schedule.next_run(s, utc("2026-01-01T00:00"), "Mars/Olympus_Mons")


def test_naive_after_is_refused() -> None:
    s = schedule.parse_schedule("cron(0 5 * * ? *)")
    with pytest.raises(InvalidInput, match="after: must be a timezone-aware"):
        schedule.next_run(s, datetime(2026, 1, 1), "UTC")


def test_fires_more_than_hourly() -> None:
    assert schedule.fires_more_than_hourly(schedule.parse_schedule("cron(0,30 * * * ? *)"))
    assert schedule.fires_more_than_hourly(schedule.parse_schedule("rate(59 minutes)"))
    assert not schedule.fires_more_than_hourly(schedule.parse_schedule("cron(5 * * * ? *)"))
    assert not schedule.fires_more_than_hourly(schedule.parse_schedule("rate(1 hour)"))


def test_a_tick_over_200_rules_is_fast() -> None:
    exprs = [
        "cron(0 5 ? * * *)",
        "cron(0 12 ? * 5L *)",
        "cron(0 0 29 FEB ? *)",
        "cron(30 2 ? * 1#1 *)",
        "cron(0 0 1 1 ? 2199)",
        "cron(0 0 31 2 ? *)",  # never fires: the worst case, scans to 2199
        "cron(15 */2 LW * ? *)",
        "rate(6 hours)",
    ]
    zones = ["UTC", "America/New_York", "Europe/Berlin", "Australia/Lord_Howe"]
    rules = [
        (schedule.parse_schedule(exprs[i % len(exprs)]), zones[i % len(zones)]) for i in range(200)
    ]
    now = utc("2026-03-08T06:59:30")
    began = time.perf_counter()
    for s, tz in rules:
        schedule.next_run(s, now, tz)
        schedule.runs_between(s, now - timedelta(minutes=1), now, tz)
    assert time.perf_counter() - began < 1.0


# --------------------------------------------------------------------------- golden file

GOLDEN_CASES = [
    (expr, tz, after)
    for expr in [
        "cron(0 5 ? * * *)",
        "cron(30 2 * * ? *)",
        "cron(30 1 * * ? *)",
        "cron(0 */4 * * ? *)",
        "cron(0 12 ? * MON-FRI *)",
        "cron(45 23 L * ? *)",
        "cron(0 6 LW * ? *)",
        "cron(0 6 15W * ? *)",
        "cron(0 3 ? * 1#1 *)",
        "cron(0 3 ? * 6L *)",
        "cron(0 0 29 2 ? *)",
        "cron(10 1-3 ? MAR,OCT,NOV SUN 2026-2030)",
        "rate(1 day)",
        "rate(12 hours)",
    ]
    for tz in ["UTC", "America/New_York", "Europe/Berlin", "Australia/Sydney"]
    for after in ["2026-03-07T23:59:00", "2026-10-24T12:00:00", "2026-12-31T23:59:59"]
]


def _golden_rows() -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for expr, tz, after in GOLDEN_CASES:
        out = schedule.preview(schedule.parse_schedule(expr), utc(after), tz, 5)
        rows.append(
            {
                "expression": expr,
                "tz": tz,
                "after": after + "Z",
                "next": [d.isoformat() for d in out],
            }
        )
    return rows


def test_golden_schedules() -> None:
    rows = _golden_rows()
    if os.environ.get("SNOWVAULT_REGEN_GOLDEN"):
        GOLDEN.write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
    expected = json.loads(GOLDEN.read_text(encoding="utf-8"))
    assert len(expected) == len(rows)
    for want, got in zip(expected, rows, strict=True):
        assert got == want
