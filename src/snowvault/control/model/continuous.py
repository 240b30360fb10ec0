"""Continuous recovery points: the pure rules of a chain of base backups and WAL.

A continuous point (RecoveryPointType CONTINUOUS) is one recovery point per resource and
vault, made of *pieces*: base backups and the WAL shipped after them (see
docs/design/continuous.md). These rules decide, from the pieces and ``now`` alone:

- the restorable window (:func:`window`): from the end of the oldest base backup still
  kept (or ``now - retention``, whichever is later) to the last instant the shipped WAL
  is known to cover;
- which pieces retention drops (:func:`expired`): base backups that ended before
  ``now - retention`` except the newest of them (it is the start of the window), and the
  WAL no kept base backup needs;
- what a restore to an instant needs (:func:`base_for`, :func:`wal_for`), and whether an
  instant may be asked for at all (:func:`check_point_in_time`).

LSNs are plain integers here; times are aware UTC. No I/O, no clock.

>>> from datetime import UTC, datetime, timedelta
>>> t = datetime(2026, 1, 10, tzinfo=UTC)
>>> base = Piece("b1", BASE, "base", 1, 100, 200, t, t + timedelta(minutes=1))
>>> wal = Piece("w1", WAL, "000000010000000000000001", 1, 0, 1000, None, None)
>>> window([base, wal], latest=t + timedelta(hours=1), now=t + timedelta(hours=1),
...        retention_days=7).earliest == t + timedelta(minutes=1)
True
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from snowvault.core.errors import InvalidInput

BASE = "base"
WAL = "wal"
PARTIAL = "partial"
KINDS = (BASE, WAL, PARTIAL)
METADATA_KEY = "pointInTime"
"""StartRestoreJob's Metadata key naming the instant to restore (ISO 8601, UTC)."""


@dataclass(frozen=True)
class Piece:
    """One engine recovery point of a continuous chain (a ``continuous_pieces`` row).

    ``begin_lsn``/``end_lsn``: the WAL range a WAL piece holds, or for a base backup the
    server's WAL position before it started and after it ended; ``begin_time``/
    ``end_time``: for a base backup, the source server's clock around it (restorable
    from ``end_time`` on)."""

    engine_id: str
    kind: str
    name: str
    timeline: int
    begin_lsn: int
    end_lsn: int
    begin_time: datetime | None
    end_time: datetime | None
    size: int = 0


@dataclass(frozen=True)
class Window:
    """The instants a continuous point can be restored to, both ends included."""

    earliest: datetime
    latest: datetime

    def covers(self, when: datetime) -> bool:
        return self.earliest <= when <= self.latest

    def describe(self) -> str:
        return f"{_iso(self.earliest)} to {_iso(self.latest)}"


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


def bases(pieces: Iterable[Piece]) -> list[Piece]:
    """The base backups, oldest end first (those without an end time are unfinished)."""
    found = [p for p in pieces if p.kind == BASE and p.end_time is not None]
    return sorted(found, key=lambda p: (p.end_time, p.engine_id))


def cutoff(now: datetime, retention_days: int) -> datetime:
    """The oldest instant retention keeps restorable."""
    return now - timedelta(days=retention_days)


def window(
    pieces: Sequence[Piece], *, latest: datetime | None, now: datetime, retention_days: int
) -> Window | None:
    """The restorable window, or None while nothing is restorable (no base backup yet,
    or no WAL shipped after it)."""
    kept = bases(pieces)
    if not kept or latest is None:
        return None
    first_end = kept[0].end_time
    assert first_end is not None
    earliest = max(first_end, cutoff(now, retention_days))
    if earliest > latest:
        return None
    return Window(earliest, latest)


def expired(pieces: Sequence[Piece], *, now: datetime, retention_days: int) -> list[Piece]:
    """The pieces retention no longer needs: base backups that ended before the cutoff
    but the newest of them, and WAL that ends at or before the oldest kept base began."""
    all_bases = bases(pieces)
    old = [
        b for b in all_bases if b.end_time is not None and b.end_time < cutoff(now, retention_days)
    ]
    drop = old[:-1]
    if not drop:
        return []
    oldest_kept = all_bases[len(drop)]
    wal = [p for p in pieces if p.kind in (WAL, PARTIAL) and p.end_lsn <= oldest_kept.begin_lsn]
    return [*drop, *wal]


def base_for(pieces: Sequence[Piece], when: datetime) -> Piece | None:
    """The newest base backup restorable at ``when`` (ended at or before it)."""
    fitting = [b for b in bases(pieces) if b.end_time is not None and b.end_time <= when]
    return fitting[-1] if fitting else None


def wal_for(pieces: Sequence[Piece], base: Piece) -> list[Piece]:
    """The WAL pieces a restore from ``base`` replays (in LSN order): every completed or
    partial WAL piece that ends after the base began. A partial piece whose segment was
    shipped completed since is left out."""
    wal = [p for p in pieces if p.kind in (WAL, PARTIAL) and p.end_lsn > base.begin_lsn]
    completed = {p.name for p in wal if p.kind == WAL}
    wal = [p for p in wal if p.kind == WAL or p.name.removesuffix(".partial") not in completed]
    return sorted(wal, key=lambda p: (p.timeline, p.begin_lsn, p.kind))


def parse_point_in_time(text: object) -> datetime:
    """``pointInTime`` as given to StartRestoreJob: ISO 8601 with an offset or ``Z``
    (``2026-12-07T03:30:27Z``); a time without one is refused (it would be ambiguous)."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput(detail="pointInTime must be an ISO 8601 time, e.g. 2026-01-01T00:00:00Z")
    raw = text.strip()
    try:
        when = datetime.fromisoformat(raw[:-1] + "+00:00" if raw.endswith(("Z", "z")) else raw)
    except ValueError as exc:
        raise InvalidInput(detail=f"pointInTime {raw!r} is not an ISO 8601 time") from exc
    if when.tzinfo is None:
        raise InvalidInput(detail=f"pointInTime {raw!r} needs a UTC offset or Z")
    return when.astimezone(UTC)


def check_point_in_time(win: Window | None, when: datetime) -> None:
    """InvalidInput naming the window when ``when`` is outside it (or nothing is
    restorable yet)."""
    if win is None:
        raise InvalidInput(
            detail="the continuous recovery point has no restorable window yet "
            "(no base backup with WAL after it has been shipped)"
        )
    if not win.covers(when):
        raise InvalidInput(
            detail=f"pointInTime {_iso(when)} is outside the restorable window {win.describe()}"
        )


def delete_at(latest: datetime | None, created: datetime, retention_days: int) -> datetime:
    """The continuous point's DeleteAt: retention after the last restorable instant, so
    it moves on while the rule keeps shipping and comes once it stopped (the window is
    empty by then)."""
    return (latest or created) + timedelta(days=retention_days)
