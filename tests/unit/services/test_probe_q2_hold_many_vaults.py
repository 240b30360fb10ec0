"""ListRecoveryPointsByLegalHold covers every vault of the account, not the first
thousand by name (helper Q: the service listed one page of vaults, so a point in the
1,001st vault of a hold over all vaults was missing from its answer)."""

from __future__ import annotations

from pathlib import Path

from helpers.access_world import World
from snowvault.control import catalog
from snowvault.control.model.legal_holds import Selection
from snowvault.control.services import legal_holds
from snowvault.core import arn as arns
from snowvault.testing import FakeClock


def test_a_hold_over_all_vaults_lists_points_past_the_first_thousand_vaults(
    tmp_path: Path, clock: FakeClock
) -> None:
    world = World(tmp_path, clock)
    world.vault("main")
    caller = world.root
    with catalog.db.transaction(world.deps.engine) as conn:
        for i in range(1000):  # empty vaults named before "main"
            name = f"a{i:04d}"
            catalog.vaults.create(
                conn,
                arn=arns.build("backup", caller.region, caller.account_id, f"backup-vault:{name}"),
                account_id=caller.account_id,
                region=caller.region,
                name=name,
                creation_date=clock.now(),
                storage_url=str(tmp_path / "unused"),
            )
    point = world.backup("main", None)
    hold = legal_holds.create(
        world.deps, caller, title="all", description="every vault", selection=Selection()
    )
    covered = legal_holds.recovery_points(world.deps, caller, str(hold["legal_hold_id"]))
    assert [rp.arn for rp in covered] == [point.arn]
