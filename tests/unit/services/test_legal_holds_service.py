"""Legal holds through the services: create/get/list/cancel, coverage of later points,
deletion refused with InvalidResourceStateException, expiry waits, release on cancel."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from helpers.access_world import World
from snowvault.control.model.legal_holds import DateRange, Selection
from snowvault.control.services import expiry, legal_holds, recovery_points, vault_lock
from snowvault.core.errors import InvalidInput, NotFound
from snowvault.testing import FakeClock


@pytest.fixture
def world(tmp_path: Path, clock: FakeClock) -> World:
    w = World(tmp_path, clock)
    w.vault("main")
    w.vault("other")
    return w


MAIN_ONLY = Selection(("main",))


def _hold(world: World, selection: Selection = MAIN_ONLY) -> str:
    row = legal_holds.create(
        world.deps, world.root, title="Audit", description="SEC", selection=selection
    )
    return str(row["legal_hold_id"])


def test_create_get_list_cancel(world: World) -> None:
    hold_id = _hold(world)
    row = legal_holds.get(world.deps, world.root, hold_id)
    assert row["status"] == "ACTIVE"
    assert row["legal_hold_arn"].endswith(f":legal-hold:{hold_id}")
    assert legal_holds.selection_to_api(row) == {"VaultNames": ["main"]}
    assert [h["legal_hold_id"] for h in legal_holds.list_holds(world.deps, world.root).items] == [
        hold_id
    ]
    legal_holds.cancel(world.deps, world.root, hold_id, "closed", 0)
    row = legal_holds.get(world.deps, world.root, hold_id)
    assert row["status"] == "CANCELED" and row["cancel_description"] == "closed"
    with pytest.raises(legal_holds.HoldNotCancelable):
        legal_holds.cancel(world.deps, world.root, hold_id, "again", None)
    world.clock.advance(timedelta(seconds=1))
    assert legal_holds.purge_records(world.deps, world.clock.now()) == 1
    with pytest.raises(NotFound):
        legal_holds.get(world.deps, world.root, hold_id)


def test_validation_and_idempotency(world: World) -> None:
    with pytest.raises(InvalidInput, match="Title"):
        legal_holds.create(world.deps, world.root, title="", description="d", selection=Selection())
    with pytest.raises(InvalidInput, match="CancelDescription"):
        legal_holds.cancel(world.deps, world.root, _hold(world), "", None)
    first = legal_holds.create(
        world.deps,
        world.root,
        title="t",
        description="d",
        selection=Selection(),
        idempotency_token="tok",
    )
    again = legal_holds.create(
        world.deps,
        world.root,
        title="t",
        description="d",
        selection=Selection(),
        idempotency_token="tok",
    )
    assert again["legal_hold_id"] == first["legal_hold_id"]


def test_held_points_cannot_be_deleted_and_later_points_are_covered(world: World) -> None:
    before = world.backup("main", 1)
    elsewhere = world.backup("other", 1)
    hold_id = _hold(world)
    after = world.backup("main", 1)  # created after the hold: covered too
    covered = {rp.arn for rp in legal_holds.recovery_points(world.deps, world.root, hold_id)}
    assert covered == {before.arn, after.arn}
    for rp in (before, after):
        with pytest.raises(vault_lock.LegalHoldActive, match=hold_id):
            recovery_points.delete(world.deps, world.root, "main", rp.arn)
    world.clock.advance(timedelta(days=2))
    deleted, waiting = expiry.expire_due(world.deps, world.clock.now())
    assert deleted == [elsewhere.arn]
    assert set(waiting) == {before.arn, after.arn}
    world.assert_intact("main", [before, after])
    legal_holds.cancel(world.deps, world.root, hold_id, "closed", None)
    deleted, waiting = expiry.expire_due(world.deps, world.clock.now())
    assert set(deleted) == {before.arn, after.arn} and waiting == []


def test_date_range_and_resource_selection(world: World) -> None:
    old = world.backup("main", None)
    world.clock.advance(timedelta(days=1))
    new = world.backup("main", None)
    window = DateRange(old.creation_date, old.creation_date + timedelta(hours=1))
    hold_id = _hold(world, Selection(date_range=window))
    covered = [rp.arn for rp in legal_holds.recovery_points(world.deps, world.root, hold_id)]
    assert covered == [old.arn]
    recovery_points.delete(world.deps, world.root, "main", new.arn)  # not covered
    by_resource = _hold(world, Selection(resource_identifiers=(old.resource_arn,)))
    assert [rp.arn for rp in legal_holds.recovery_points(world.deps, world.root, by_resource)] == [
        old.arn
    ]
    with pytest.raises(InvalidInput, match="future"):
        _hold(
            world,
            Selection(
                date_range=DateRange(world.clock.now(), world.clock.now() + timedelta(days=1))
            ),
        )


def test_the_schedulers_tick_also_waits_for_holds(world: World) -> None:
    from snowvault.control.scheduler import planner

    rp = world.backup("main", 1)
    hold_id = _hold(world)
    world.clock.advance(timedelta(days=2))
    result = planner.tick(world.deps)
    assert result.recovery_points_expired == [] and world.points("main") == {rp.arn}
    world.assert_intact("main", [rp])
    legal_holds.cancel(world.deps, world.root, hold_id, "closed", None)
    result = planner.tick(world.deps)
    assert result.recovery_points_expired == [rp.arn] and world.points("main") == set()
