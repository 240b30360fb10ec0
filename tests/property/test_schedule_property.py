"""next_run agrees with a brute-force, minute-by-minute evaluator written independently.

Expressions are generated from parts whose meaning the brute force knows directly (as
Python predicates), so the brute force never reuses the parser. It walks UTC minutes,
converts each to local time and accepts it when every field matches and the local wall
time is not the second pass of a repeated hour (``fold == 1``); nonexistent local
times never appear when converting from UTC, so they are skipped by construction.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from snowvault.control.model import schedule

HORIZON = timedelta(days=9)
ZONES = ["UTC", "America/New_York", "Europe/Berlin", "Australia/Lord_Howe", "Asia/Kolkata"]
BASES = [  # DST changes, month ends, a leap day
    datetime(2026, 3, 8, 6, 0, tzinfo=UTC),
    datetime(2026, 3, 29, 0, 30, tzinfo=UTC),
    datetime(2026, 10, 4, 15, 0, tzinfo=UTC),
    datetime(2026, 10, 25, 0, 30, tzinfo=UTC),
    datetime(2026, 11, 1, 5, 30, tzinfo=UTC),
    datetime(2028, 2, 28, 12, 0, tzinfo=UTC),
    datetime(2026, 12, 31, 23, 0, tzinfo=UTC),
]
DAY = Callable[[date], bool]
Part = tuple[str, Callable[[int], bool]]


def _aws_dow(d: date) -> int:
    return {6: 1, 0: 2, 1: 3, 2: 4, 3: 5, 4: 6, 5: 7}[d.weekday()]


def _last(d: date) -> int:
    return calendar.monthrange(d.year, d.month)[1]


def _nearest_weekday_is(n: int) -> DAY:
    def check(d: date) -> bool:
        if n > _last(d):
            return False
        weekdays = [x for x in range(1, _last(d) + 1) if date(d.year, d.month, x).weekday() < 5]
        return d.day == min(weekdays, key=lambda x: abs(x - n))

    return check


@st.composite
def numeric_field(draw: st.DrawFn, lo: int, hi: int) -> Part:
    kind = draw(st.sampled_from(["star", "one", "list", "range", "step"]))
    if kind == "star":
        return "*", lambda v: True
    if kind == "one":
        a = draw(st.integers(lo, hi))
        return str(a), lambda v: v == a
    if kind == "list":
        items = draw(st.lists(st.integers(lo, hi), min_size=1, max_size=4))
        return ",".join(map(str, items)), lambda v: v in items
    if kind == "range":
        a, b = sorted(draw(st.lists(st.integers(lo, hi), min_size=2, max_size=2)))
        return f"{a}-{b}", lambda v: a <= v <= b
    a, n = draw(st.integers(lo, hi)), draw(st.integers(1, hi - lo + 1))
    return f"{a}/{n}", lambda v: v >= a and (v - a) % n == 0


@st.composite
def day_fields(draw: st.DrawFn) -> tuple[str, str, DAY]:
    kind = draw(st.sampled_from(["dom", "L", "LW", "W", "dow", "nL", "nth"]))
    if kind == "dom":
        text, pred = draw(numeric_field(1, 31))
        return text, "?", lambda d: pred(d.day)
    if kind == "L":
        return "L", "?", lambda d: d.day == _last(d)
    if kind == "LW":
        return "LW", "?", lambda d: _nearest_weekday_is(_last(d))(d)
    if kind == "W":
        n = draw(st.integers(1, 31))
        return f"{n}W", "?", _nearest_weekday_is(n)
    if kind == "dow":
        text, pred = draw(numeric_field(1, 7))
        return "?", text, lambda d: pred(_aws_dow(d))
    n = draw(st.integers(1, 7))
    if kind == "nL":
        return "?", f"{n}L", lambda d: _aws_dow(d) == n and d.day + 7 > _last(d)
    k = draw(st.integers(1, 5))
    return "?", f"{n}#{k}", lambda d: _aws_dow(d) == n and (d.day - 1) // 7 + 1 == k


@st.composite
def cron_cases(draw: st.DrawFn) -> tuple[str, Callable[[datetime], bool]]:
    minute_text, minute = draw(numeric_field(0, 59).filter(lambda p: p[0] != "*"))
    hour_text, hour = draw(numeric_field(0, 23))
    dom_text, dow_text, day = draw(day_fields())
    month_text, month = draw(numeric_field(1, 12))
    year_text, year = draw(
        st.sampled_from([("*", lambda y: True), ("2026-2027", lambda y: y < 2028)])
    )
    expr = f"cron({minute_text} {hour_text} {dom_text} {month_text} {dow_text} {year_text})"

    def fires(local: datetime) -> bool:
        return (
            minute(local.minute)
            and hour(local.hour)
            and day(local.date())
            and month(local.month)
            and year(local.year)
        )

    return expr, fires


def brute_force(fires: Callable[[datetime], bool], after: datetime, tz: str) -> datetime | None:
    zone = ZoneInfo(tz)
    t = after.replace(second=0, microsecond=0) + timedelta(minutes=1)
    while t <= after + HORIZON:
        local = t.astimezone(zone)
        if local.fold == 0 and fires(local.replace(tzinfo=None)):
            return t
        t += timedelta(minutes=1)
    return None


@settings(max_examples=120, derandomize=True, deadline=None)
@given(
    case=cron_cases(),
    tz=st.sampled_from(ZONES),
    base=st.sampled_from(BASES),
    offset=st.integers(-3 * 24 * 60, 3 * 24 * 60),
    seconds=st.sampled_from([0, 0, 17]),
)
def test_next_run_matches_brute_force(
    case: tuple[str, Callable[[datetime], bool]], tz: str, base: datetime, offset: int, seconds: int
) -> None:
    expr, fires = case
    after = base + timedelta(minutes=offset, seconds=seconds)
    expected = brute_force(fires, after, tz)
    got = schedule.next_run(schedule.parse_schedule(expr), after, tz)
    if expected is None:
        assert got is None or got > after + HORIZON, expr
    else:
        assert got == expected, expr
