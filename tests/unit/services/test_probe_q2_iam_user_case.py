"""IAM user names are unique regardless of case, as in AWS IAM (helper Q's probe: ``Alice``
could be created beside ``alice`` and escape a policy written for ``user/alice``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers.access_world import World
from snowvault.control.services import iam
from snowvault.core.errors import AlreadyExists
from snowvault.testing import FakeClock


@pytest.mark.parametrize("twin", ["alice", "Alice", "ALICE", "aLiCe"])
def test_a_user_name_differing_only_in_case_is_taken(
    tmp_path: Path, clock: FakeClock, twin: str
) -> None:
    world = World(tmp_path, clock)
    iam.create_user(world.deps, world.root, "alice")
    with pytest.raises(AlreadyExists, match=twin):
        iam.create_user(world.deps, world.root, twin)
    assert [u["name"] for u in iam.list_users(world.deps, world.root)] == ["alice"]
    iam.create_user(world.deps, world.root, "alice2")  # another name still goes
