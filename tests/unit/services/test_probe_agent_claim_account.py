"""An agent claims only jobs of its own account (helper Q's probe; defence in depth
behind the restore_jobs fix of 49a0543).

The claim matches a job by its worker label alone. A restore job in another account that
carries this account's agent label (as StartRestoreJob made for a copy of an agent's
point in another account, before 49a0543) was handed to this account's agent: the claim
answered the other account's Metadata, the point's manifest and a job key, and the agent
created the other account's targetPath on its host. The claim now ends such a job
FAILED (services/agents.py NOT_THIS_ACCOUNT) instead of handing it over.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import agent_world
from helpers.access_world import ACCOUNT, World
from snowvault.control import catalog
from snowvault.control.services import agents

from .test_agent_restore_jobs import _backed_up, _claim, _restore  # the same world and steps

OTHER_ACCOUNT = "999999999999"


@pytest.fixture
def world(tmp_path: Path) -> World:
    return agent_world.make_world(tmp_path)


def test_an_agent_never_claims_another_accounts_job(world: World, tmp_path: Path) -> None:
    h1 = agent_world.agent(world, "h1")
    source = tmp_path / "on-h1" / "src"
    source.mkdir(parents=True)
    (source / "a.txt").write_bytes(b"alpha " * 100)
    rp_arn = _backed_up(world, h1, source)
    job_id = _restore(world, rp_arn, tmp_path / "on-h1" / "out")
    with catalog.db.transaction(world.deps.engine) as conn:  # as if another account's job
        job = catalog.restore_jobs.update(conn, job_id, account_id=OTHER_ACCOUNT)
    assert job.account_id == OTHER_ACCOUNT and job.worker_label == f"agent:{ACCOUNT}:h1"
    claimed = _claim(world, h1)
    assert not isinstance(claimed, agents.ClaimedRestore), "claimed another account's job"
    with catalog.db.read_transaction(world.deps.engine) as conn:
        ended = catalog.restore_jobs.get(conn, job_id)
    assert ended.status == "FAILED" and ended.status_message == agents.NOT_THIS_ACCOUNT
