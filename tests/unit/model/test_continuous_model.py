"""The pure rules of continuous points: the window, retention's trimming, what a restore
to an instant needs, pointInTime parsing; plus the WAL naming helpers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from snowvault.control.model import continuous as rules
from snowvault.core.errors import InvalidInput
from snowvault.plugins import postgresql_wal as pg

T0 = datetime(2026, 3, 1, tzinfo=UTC)
MB = 1 << 20


def base(n: int, day: float, begin: int) -> rules.Piece:
    start = T0 + timedelta(days=day)
    return rules.Piece(
        f"b{n}", rules.BASE, "base.tar", 1, begin, begin + MB, start, start + timedelta(minutes=1)
    )


def wal(n: int, kind: str = rules.WAL) -> rules.Piece:
    name = f"{1:08X}{0:08X}{n:08X}" + (".partial" if kind == rules.PARTIAL else "")
    return rules.Piece(f"w{n}{kind}", kind, name, 1, n * MB, (n + 1) * MB, None, None)


CHAIN = [base(1, 0, 1 * MB), base(2, 3, 5 * MB), base(3, 6, 9 * MB)] + [
    wal(n) for n in range(1, 12)
]


def test_the_window_starts_at_the_oldest_base_then_follows_retention() -> None:
    latest = T0 + timedelta(days=7)
    fresh = rules.window(CHAIN, latest=latest, now=latest, retention_days=35)
    assert fresh == rules.Window(T0 + timedelta(minutes=1), latest)
    week_later = rules.window(CHAIN, latest=latest, now=latest, retention_days=2)
    assert week_later is not None and week_later.earliest == latest - timedelta(days=2)
    assert rules.window(CHAIN, latest=None, now=latest, retention_days=2) is None
    assert rules.window([wal(1)], latest=latest, now=latest, retention_days=2) is None


def test_retention_drops_old_bases_but_the_newest_before_the_cutoff_and_their_wal() -> None:
    now = T0 + timedelta(days=8)  # cutoff day 6: bases 1 and 2 ended before it
    dropped = {p.engine_id for p in rules.expired(CHAIN, now=now, retention_days=2)}
    assert dropped == {"b1"} | {f"w{n}wal" for n in range(1, 5)}  # WAL before base 2 began
    assert rules.expired(CHAIN, now=T0 + timedelta(days=2), retention_days=35) == []
    later = rules.expired(CHAIN, now=T0 + timedelta(days=20), retention_days=2)
    assert {p.engine_id for p in later} >= {"b1", "b2"} and "b3" not in {p.engine_id for p in later}


def test_a_restore_takes_the_newest_base_before_the_instant_and_the_wal_after_it() -> None:
    chosen = rules.base_for(CHAIN, T0 + timedelta(days=4))
    assert chosen is not None and chosen.engine_id == "b2"
    assert rules.base_for(CHAIN, T0) is None  # before the first base ended
    needed = rules.wal_for([*CHAIN, wal(11, rules.PARTIAL), wal(12, rules.PARTIAL)], chosen)
    names = [p.name for p in needed]
    assert names[0] == f"{1:08X}{0:08X}{5:08X}"  # the segment the base began in
    assert names[-1].endswith(f"{12:08X}.partial")
    assert f"{1:08X}{0:08X}{11:08X}.partial" not in names  # completed since: the full one


def test_point_in_time_is_iso_8601_with_an_offset_and_inside_the_window() -> None:
    assert rules.parse_point_in_time("2026-03-02T10:00:00Z") == T0 + timedelta(days=1, hours=10)
    assert rules.parse_point_in_time("2026-03-02T12:00:00+02:00") == T0 + timedelta(
        days=1, hours=10
    )
    for bad in ("2026-03-02T10:00:00", "yesterday", "", None):
        with pytest.raises(InvalidInput):
            rules.parse_point_in_time(bad)
    win = rules.Window(T0, T0 + timedelta(days=1))
    rules.check_point_in_time(win, T0 + timedelta(hours=5))
    with pytest.raises(InvalidInput, match="2026-03-01T00:00:00Z to 2026-03-02T00:00:00Z"):
        rules.check_point_in_time(win, T0 + timedelta(days=2))
    with pytest.raises(InvalidInput, match="no restorable window"):
        rules.check_point_in_time(None, T0)


def test_delete_at_follows_the_last_restorable_instant() -> None:
    assert rules.delete_at(T0 + timedelta(days=3), T0, 7) == T0 + timedelta(days=10)
    assert rules.delete_at(None, T0, 7) == T0 + timedelta(days=7)


def test_wal_names_and_lsns() -> None:
    assert pg.parse_lsn("0/3000028") == 0x3000028
    assert pg.format_lsn(0x1_0000_0028) == "1/28"
    assert pg.segment_range("000000010000000000000003") == (1, 3 * 16 * MB, 4 * 16 * MB)
    assert pg.segment_range("000000020000000100000004.partial", MB) == (
        2,
        (1 << 32) + 4 * MB,
        (1 << 32) + 5 * MB,
    )
    assert pg.slot_name("ARN:recovery-point:ab-CD") == "snowvault_arn_recovery_point_ab_cd"
    with pytest.raises(ValueError):
        pg.segment_range("backup_label")


def test_a_target_never_shows_its_password() -> None:
    target = pg.target_of(
        "postgresql://backup@db.local:5433", {"password": "s3cret"}, ["127.0.0.1"]
    )
    assert "s3cret" not in target.conninfo() + repr(target)
    assert target.env()["PGPASSWORD"] == "s3cret"
    assert "hostaddr='127.0.0.1'" in target.conninfo()
