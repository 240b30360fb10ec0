"""AWS schedule expressions: parse ``cron(...)`` / ``rate(...)`` and find when they fire.

Pure rules: no I/O, no wall clock (``after``/``now`` are arguments), only the standard
library (``zoneinfo`` for time zones). Depends on nothing but ``snowvault.core.errors``.

>>> s = parse_schedule("cron(0 5 ? * MON-FRI *)")
>>> next_run(s, datetime(2026, 1, 2, 5, 0, tzinfo=UTC), "UTC").isoformat()
'2026-01-05T05:00:00+00:00'

Cron syntax (EventBridge, which AWS Backup uses): six fields
``Minutes Hours Day-of-month Month Day-of-week Year``.

============  =================  ===================
field         values             wildcards
============  =================  ===================
Minutes       0-59               ``, - * /``
Hours         0-23               ``, - * /``
Day-of-month  1-31               ``, - * ? / L W``
Month         1-12 or JAN-DEC    ``, - * /``
Day-of-week   1-7 or SUN-SAT     ``, - * ? L #`` (1 = SUN)
Year          1970-2199          ``, - * /``
============  =================  ===================

Exactly one of Day-of-month / Day-of-week is ``?``. ``a/n`` means a, a+n, ... up to the
field maximum; ``*/n`` starts at the minimum. A range whose start exceeds its end wraps
around (``FRI-MON``), except in Year. Names are case-insensitive. Day-of-month takes
``L`` (last day), ``LW`` (last weekday) and ``nW`` (weekday nearest n, never leaving the
month; no match in months shorter than n). Day-of-week takes ``L`` alone (7 = Saturday,
the last day of the week), ``nL`` (last n-day of the month) and ``n#k`` (k-th n-day,
k 1-5; then it must be the only item of the field).

Time zones (``ScheduleExpressionTimezone``, IANA names): the cron fields are local
wall-clock times. As EventBridge Scheduler documents for DST: a local time that does
not exist (spring forward) is **skipped**, not shifted; a local time that occurs twice
(fall back) fires **once**, at its first occurrence (the earlier UTC instant).

``rate(N unit)`` with unit minute(s)/hour(s)/day(s) (singular exactly when N is 1) is a
fixed duration, independent of time zone and DST. N is written in ASCII digits and the
duration is at most 100 years (52,560,000 minutes: the bound the AWS Backup model gives
StartWindowMinutes); ``rate(99999999999999999 days)`` is refused, not overflowed. Whether
a plan may fire more often than hourly is the plans rule, not this one. Its occurrences are
``anchor + k * interval`` for every integer k; the anchor defaults to the Unix epoch
(1970-01-01T00:00Z) and callers may pass the rule's creation time instead, so results
never depend on when the question is asked.

Results are aware UTC datetimes on whole minutes. Search skips by field (year, month,
day, hour), never minute by minute.
"""

from __future__ import annotations

import bisect
import calendar
import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from snowvault.core.errors import InvalidInput

FIELD = "ScheduleExpression"
TZ_FIELD = "ScheduleExpressionTimezone"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MIN_YEAR, MAX_YEAR = 1970, 2199

MONTH_NAMES = {
    name: i + 1
    for i, name in enumerate(
        ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
    )
}
DAY_NAMES = {
    name: i + 1 for i, name in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"))
}

_CRON_RE = re.compile(r"^cron\((.*)\)$", re.DOTALL)
_RATE_RE = re.compile(r"^rate\(\s*([0-9]+)\s+([a-z]+)\s*\)$")
_RATE_UNITS = {"minute": 1, "hour": 60, "day": 1440}
MAX_RATE_MINUTES = 100 * 365 * 1440
_MAX_DIGITS = 10  # more is out of every range below; int() is not asked to parse it


def _invalid(detail: str, field: str = FIELD) -> InvalidInput:
    return InvalidInput(f"{field}: {detail}", field=field, detail=detail)


def _shorten(text: str, limit: int = 40) -> str:
    """``text`` cut for an error message (a caller's value may be megabytes long)."""
    return text if len(text) <= limit else text[:limit] + "..."


# --------------------------------------------------------------------------- model


@dataclass(frozen=True)
class DayOfMonth:
    """Day-of-month rule: plain ``days``, or ``last`` (L), ``last_weekday`` (LW),
    ``nearest_weekday`` (nW)."""

    days: tuple[int, ...] = ()
    last: bool = False
    last_weekday: bool = False
    nearest_weekday: int | None = None


@dataclass(frozen=True)
class DayOfWeek:
    """Day-of-week rule (1 = SUN .. 7 = SAT): plain ``days``, ``last_of`` (nL) or
    ``nth`` ((n, k) for n#k)."""

    days: tuple[int, ...] = ()
    last_of: int | None = None
    nth: tuple[int, int] | None = None


@dataclass(frozen=True)
class CronSchedule:
    expression: str
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    months: tuple[int, ...]
    years: tuple[int, ...]
    day_of_month: DayOfMonth | None
    day_of_week: DayOfWeek | None


@dataclass(frozen=True)
class RateSchedule:
    expression: str
    interval: timedelta
    anchor: datetime = EPOCH


Schedule = CronSchedule | RateSchedule


# --------------------------------------------------------------------------- parsing


def parse_schedule(expression: str, *, rate_anchor: datetime | None = None) -> Schedule:
    """Parse an AWS schedule expression; raise InvalidInput naming the field."""
    if not isinstance(expression, str) or not expression.strip():
        raise _invalid("must be a cron() or rate() expression")
    text = expression.strip()
    cron = _CRON_RE.match(text)
    if cron:
        return _parse_cron(text, cron.group(1))
    if text.startswith("rate("):
        return _parse_rate(text, rate_anchor)
    raise _invalid(f"must be a cron() or rate() expression, got {_shorten(expression)!r}")


def _parse_rate(text: str, anchor: datetime | None) -> RateSchedule:
    m = _RATE_RE.match(text)
    if not m:
        raise _invalid(f"rate expression must be rate(N unit), got {_shorten(text)!r}")
    digits, unit = m.group(1), m.group(2)
    base = unit[:-1] if unit.endswith("s") else unit
    if base not in _RATE_UNITS:
        raise _invalid(f"rate unit must be minute(s), hour(s) or day(s), got {_shorten(unit)!r}")
    value = int(digits) if len(digits) <= _MAX_DIGITS else MAX_RATE_MINUTES + 1
    if value < 1:
        raise _invalid("rate value must be a positive integer")
    if value * _RATE_UNITS[base] > MAX_RATE_MINUTES:
        raise _invalid(
            f"rate interval must be at most 100 years ({MAX_RATE_MINUTES} minutes), "
            f"got {_shorten(digits)} {unit}"
        )
    if (value == 1) != (unit == base):
        raise _invalid(f"rate unit must be singular for 1 and plural otherwise: {_shorten(text)!r}")
    if anchor is not None:
        _require_aware(anchor, "rate_anchor")
    return RateSchedule(
        text, timedelta(minutes=value * _RATE_UNITS[base]), (anchor or EPOCH).astimezone(UTC)
    )


def _parse_cron(text: str, body: str) -> CronSchedule:
    fields = body.split()
    if len(fields) != 6:
        raise _invalid(f"cron expression needs 6 fields, got {len(fields)}")
    minute, hour, dom, month, dow, year = (f.upper() for f in fields)
    if dom == "?" and dow == "?":
        raise _invalid("day-of-month and day-of-week cannot both be '?'; set one of them")
    if dom != "?" and dow != "?":
        raise _invalid(
            "day-of-month and day-of-week cannot both be specified; one of them must be '?'"
        )
    return CronSchedule(
        expression=text,
        minutes=_parse_list(minute, "minutes", 0, 59, {}),
        hours=_parse_list(hour, "hours", 0, 23, {}),
        months=_parse_list(month, "month", 1, 12, MONTH_NAMES),
        years=_parse_list(year, "year", MIN_YEAR, MAX_YEAR, {}, wrap=False),
        day_of_month=None if dom == "?" else _parse_dom(dom),
        day_of_week=None if dow == "?" else _parse_dow(dow),
    )


def _parse_dom(text: str) -> DayOfMonth:
    if text == "L":
        return DayOfMonth(last=True)
    if text == "LW":
        return DayOfMonth(last_weekday=True)
    if text.endswith("W"):
        day = _number(text[:-1], "day-of-month", 1, 31, {})
        return DayOfMonth(nearest_weekday=day)
    if "L" in text or "W" in text:
        raise _invalid(
            f"day-of-month: L and W cannot be combined with other values: {_shorten(text)!r}"
        )
    return DayOfMonth(days=_parse_list(text, "day-of-month", 1, 31, {}))


def _parse_dow(text: str) -> DayOfWeek:
    if text == "L":
        return DayOfWeek(days=(7,))
    if "#" in text:
        if "," in text:
            raise _invalid("day-of-week: only one expression is allowed with '#'")
        day_text, _, nth_text = text.partition("#")
        day = _number(day_text, "day-of-week", 1, 7, DAY_NAMES)
        nth = _number(nth_text, "day-of-week '#'", 1, 5, {})
        return DayOfWeek(nth=(day, nth))
    if text.endswith("L"):
        return DayOfWeek(last_of=_number(text[:-1], "day-of-week", 1, 7, DAY_NAMES))
    if "L" in text:
        raise _invalid(f"day-of-week: L cannot be combined with other values: {_shorten(text)!r}")
    return DayOfWeek(days=_parse_list(text, "day-of-week", 1, 7, DAY_NAMES))


def _number(text: str, name: str, lo: int, hi: int, names: dict[str, int]) -> int:
    if text in names:
        return names[text]
    if not (text.isascii() and text.isdigit()):
        raise _invalid(f"{name}: invalid value {_shorten(text)!r}")
    if len(text) > _MAX_DIGITS:
        raise _invalid(f"{name}: value {_shorten(text)} out of range {lo}-{hi}")
    value = int(text)
    if not lo <= value <= hi:
        raise _invalid(f"{name}: value {value} out of range {lo}-{hi}")
    return value


def _parse_list(
    text: str, name: str, lo: int, hi: int, names: dict[str, int], *, wrap: bool = True
) -> tuple[int, ...]:
    values: set[int] = set()
    for item in text.split(","):
        if not item:
            raise _invalid(f"{name}: empty list item in {_shorten(text)!r}")
        values.update(_parse_item(item, name, lo, hi, names, wrap))
    return tuple(sorted(values))


def _parse_item(
    item: str, name: str, lo: int, hi: int, names: dict[str, int], wrap: bool
) -> list[int]:
    base, slash, step_text = item.partition("/")
    step = _number(step_text, f"{name} step", 1, 10**6, {}) if slash else 1
    if base == "*":
        start, end = lo, hi
    elif "-" in base:
        a, _, b = base.partition("-")
        start, end = _number(a, name, lo, hi, names), _number(b, name, lo, hi, names)
    else:
        start = _number(base, name, lo, hi, names)
        end = hi if slash else start
    if start > end and not wrap:
        raise _invalid(f"{name}: range start {start} is after its end {end}")
    span = (
        list(range(start, end + 1))
        if start <= end
        else [*range(start, hi + 1), *range(lo, end + 1)]
    )
    return span[::step]


# --------------------------------------------------------------------------- days


def _aws_weekday(d: date) -> int:
    """1 = Sunday .. 7 = Saturday."""
    return (d.weekday() + 1) % 7 + 1


def _nearest_weekday(year: int, month: int, day: int) -> int | None:
    last = calendar.monthrange(year, month)[1]
    if day > last:
        return None
    wd = date(year, month, day).weekday()  # Mon=0 .. Sun=6
    if wd == 5:  # Saturday -> Friday, or Monday if that leaves the month
        return day - 1 if day > 1 else day + 2
    if wd == 6:  # Sunday -> Monday, or Friday if that leaves the month
        return day + 1 if day < last else day - 2
    return day


def _dom_days(rule: DayOfMonth, year: int, month: int) -> list[int]:
    last = calendar.monthrange(year, month)[1]
    if rule.last:
        return [last]
    if rule.last_weekday:
        return [d for d in [_nearest_weekday(year, month, last)] if d is not None]
    if rule.nearest_weekday is not None:
        return [d for d in [_nearest_weekday(year, month, rule.nearest_weekday)] if d is not None]
    return [d for d in rule.days if d <= last]


def _dow_days(rule: DayOfWeek, year: int, month: int) -> list[int]:
    last = calendar.monthrange(year, month)[1]
    first_wd = _aws_weekday(date(year, month, 1))
    if rule.nth is not None:
        wanted, nth = rule.nth
        day = 1 + (wanted - first_wd) % 7 + 7 * (nth - 1)
        return [day] if day <= last else []
    if rule.last_of is not None:
        last_wd = _aws_weekday(date(year, month, last))
        return [last - (last_wd - rule.last_of) % 7]
    wanted_set = set(rule.days)
    return [d for d in range(1, last + 1) if (first_wd - 1 + d - 1) % 7 + 1 in wanted_set]


@lru_cache(maxsize=4096)
def _days_in(schedule: CronSchedule, year: int, month: int) -> tuple[int, ...]:
    if schedule.day_of_month is not None:
        return tuple(_dom_days(schedule.day_of_month, year, month))
    assert schedule.day_of_week is not None
    return tuple(_dow_days(schedule.day_of_week, year, month))


# --------------------------------------------------------------------------- time zones


def zone(tz: str | None) -> ZoneInfo:
    """The IANA zone named ``tz`` (None or "" means UTC); InvalidInput if unknown."""
    name = tz or "UTC"
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
        raise _invalid(f"unknown time zone {_shorten(name)!r}", TZ_FIELD) from exc


def _require_aware(value: datetime, name: str) -> None:
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise InvalidInput(f"{name}: must be a timezone-aware datetime", field=name)


def _local_to_utc(naive: datetime, tzinfo: ZoneInfo) -> datetime | None:
    """UTC instant of a local wall time; None if it does not exist (spring forward).

    fold=0 picks the first of two repeated wall times (fall back), so it fires once.
    """
    aware = naive.replace(tzinfo=tzinfo, fold=0)
    utc = aware.astimezone(UTC)
    if utc.astimezone(tzinfo).replace(tzinfo=None) != naive:
        return None
    return utc


# --------------------------------------------------------------------------- evaluation


def next_run(schedule: Schedule, after: datetime, tz: str | None = "UTC") -> datetime | None:
    """First occurrence strictly after ``after`` (aware UTC), or None if there is none."""
    _require_aware(after, "after")
    if isinstance(schedule, RateSchedule):
        return _next_rate(schedule, after.astimezone(UTC))
    return _next_cron(schedule, after.astimezone(UTC), zone(tz))


def _next_rate(schedule: RateSchedule, after: datetime) -> datetime | None:
    steps = (after - schedule.anchor) // schedule.interval + 1
    try:
        return schedule.anchor + steps * schedule.interval
    except OverflowError:  # past datetime.max (year 9999): the schedule has ended
        return None


def _next_cron(schedule: CronSchedule, after: datetime, tzinfo: ZoneInfo) -> datetime | None:
    local_after = after.astimezone(tzinfo).replace(tzinfo=None)
    start_day = local_after.date()
    yi = bisect.bisect_left(schedule.years, start_day.year)
    for year in schedule.years[yi:]:
        first_month = start_day.month if year == start_day.year else 1
        for month in schedule.months[bisect.bisect_left(schedule.months, first_month) :]:
            first_day = start_day.day if (year, month) == (start_day.year, start_day.month) else 1
            for day in _days_in(schedule, year, month):
                if day < first_day:
                    continue
                found = _first_in_day(schedule, date(year, month, day), local_after, after, tzinfo)
                if found is not None:
                    return found
    return None


def _first_in_day(
    schedule: CronSchedule, day: date, local_after: datetime, after: datetime, tzinfo: ZoneInfo
) -> datetime | None:
    same_day = day == local_after.date()
    hi = bisect.bisect_left(schedule.hours, local_after.hour) if same_day else 0
    for hour in schedule.hours[hi:]:
        mi = 0
        if same_day and hour == local_after.hour:
            mi = bisect.bisect_right(schedule.minutes, local_after.minute)
        for minute in schedule.minutes[mi:]:
            naive = datetime(day.year, day.month, day.day, hour, minute)
            utc = _local_to_utc(naive, tzinfo)
            if utc is not None and utc > after:
                return utc
    return None


def iter_runs(schedule: Schedule, after: datetime, tz: str | None = "UTC") -> Iterator[datetime]:
    """Occurrences strictly after ``after``, in order, until the schedule ends."""
    current = next_run(schedule, after, tz)
    while current is not None:
        yield current
        current = next_run(schedule, current, tz)


def runs_between(
    schedule: Schedule, start: datetime, end: datetime, tz: str | None = "UTC"
) -> list[datetime]:
    """Occurrences in the half-open interval (start, end]."""
    _require_aware(end, "end")
    runs: list[datetime] = []
    for run in iter_runs(schedule, start, tz):
        if run > end:
            break
        runs.append(run)
    return runs


def preview(
    schedule: Schedule, now: datetime, tz: str | None = "UTC", n: int = 5
) -> list[datetime]:
    """The next ``n`` occurrences after ``now`` (fewer if the schedule ends)."""
    return list(itertools.islice(iter_runs(schedule, now, tz), max(n, 0)))


def fires_more_than_hourly(schedule: Schedule) -> bool:
    """True if two occurrences can be less than 60 minutes apart.

    For cron this is exact up to DST shifts of under an hour: more than one minute
    value means two runs within one hour.
    """
    if isinstance(schedule, RateSchedule):
        return schedule.interval < timedelta(hours=1)
    return len(schedule.minutes) > 1
