"""The compact-index sweep: a vault with many index segments gets one merged segment,
and the replaced ones are deleted only at a pass after the grace period (readers on
other servers may have listed them); vaults are taken in turn."""

from __future__ import annotations

import os
from pathlib import Path

from helpers import service_world
from snowvault.control.catalog import leadership
from snowvault.control.scheduler import sweepers
from snowvault.control.services import vaults
from snowvault.engine import index
from snowvault.testing import FakeClock

COMPACT = [s for s in sweepers.SWEEPS if s.name == "compact-index"]


def _segments(deps: object, vault: dict[str, object]) -> list[str]:
    with vaults.open_repository(deps, vault) as repo:  # type: ignore[arg-type]
        return repo.index_segments()


def test_merged_now_deleted_after_the_grace(tmp_path: Path, clock: FakeClock) -> None:
    deps = service_world.make_deps(str(tmp_path), clock)
    caller = service_world.root_caller(deps)
    busy = vaults.create(deps, caller, "busy")
    quiet = vaults.create(deps, caller, "quiet")
    with vaults.open_repository(deps, busy) as repo:
        for _ in range(20):  # twenty writers' flushes
            repo.write_segment(index.Segment(packs={os.urandom(32).hex(): []}))
    before = _segments(deps, busy)
    quiet_before = _segments(deps, quiet)

    report = sweepers.run(deps, clock.now(), COMPACT)
    assert report.get("compact-index") == [busy["arn"]]
    after_merge = _segments(deps, busy)
    assert set(before) < set(after_merge) and len(after_merge) == len(before) + 1

    clock.advance(sweepers.COMPACT_GRACE_SECONDS / 2)  # too early: nothing deleted
    assert sweepers.run(deps, clock.now(), COMPACT).get("compact-index") == []
    assert _segments(deps, busy) == after_merge

    clock.advance(sweepers.COMPACT_GRACE_SECONDS)
    sweepers.run(deps, clock.now(), COMPACT)
    (merged,) = _segments(deps, busy)
    assert merged not in before
    assert _segments(deps, quiet) == quiet_before  # too few segments: left alone


def test_in_a_fleet_only_the_role_holder_compacts(tmp_path: Path, clock: FakeClock) -> None:
    deps = service_world.make_deps(str(tmp_path), clock)
    busy = vaults.create(deps, service_world.root_caller(deps), "busy")
    with vaults.open_repository(deps, busy) as repo:
        for _ in range(20):
            repo.write_segment(index.Segment(packs={os.urandom(32).hex(): []}))
    before = _segments(deps, busy)
    holder = leadership.Leadership(deps.engine, tmp_path / "roles")  # another server
    mine = leadership.Leadership(deps.engine, tmp_path / "roles")
    try:
        assert holder.hold("index-compaction")
        report = sweepers.run(deps, clock.now(), COMPACT, roles=mine)
        assert "compact-index" not in report.done
        assert _segments(deps, busy) == before
        holder.close()  # that server stopped: this one takes the role
        report = sweepers.run(deps, clock.now(), COMPACT, roles=mine)
        assert report.get("compact-index") == [busy["arn"]]
    finally:
        holder.close()
        mine.close()
