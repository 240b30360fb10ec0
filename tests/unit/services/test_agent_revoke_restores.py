"""RevokeAgent ends the host's running restore jobs at once (FAILED, saying why), as it
does its backup jobs, instead of leaving them RUNNING until their leases run out; and
the revoked agent's key for that job reads nothing more (docs/design/agents.md)."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from helpers import agent_world
from helpers.access_world import ROLE, World
from snowvault.agent import runner, store
from snowvault.control import catalog
from snowvault.control.services import agents, backup_jobs, resources, restore_jobs
from snowvault.core.errors import NotFound


@pytest.fixture
def world(tmp_path: Path) -> World:
    return agent_world.make_world(tmp_path)


def test_revoking_an_agent_fails_its_running_restore_at_once(world: World, tmp_path: Path) -> None:
    h1 = agent_world.agent(world, "h1")
    source = tmp_path / "on-h1" / "src"
    source.mkdir(parents=True)
    (source / "a.txt").write_bytes(b"restore me " * 300)
    row = resources.register(world.deps, world.root, resource_type="Directory", name="r",
                             source=str(source), worker_label="agent:h1")  # fmt: skip
    backup_jobs.start(world.deps, world.root, backup_jobs.StartRequest("main", row["arn"], ROLE))
    who = world.caller(h1.principal_arn)
    claimed = agents.claim(world.deps, who, wait_seconds=0, lease_seconds=60)
    assert isinstance(claimed, agents.ClaimedJob)
    keys = {"JobKey": base64.b64encode(claimed.keys.job_key).decode(),
            "IdKey": base64.b64encode(claimed.keys.id_key).decode(),
            "Chunker": claimed.keys.chunker}  # fmt: skip
    job = {"JobId": claimed.job.job_id, "ResourceArn": row["arn"], "ResourceType": "Directory",
           "Source": str(source), "LeaseSeconds": 60, "Keys": keys}  # fmt: skip
    api: Any = agent_world.InProcessApi(world, h1)
    options = runner.Options("in-process", "h1", "us-east-1", "k", "s", (str(source),))
    blobs = store.RemoteBlobStore(api, claimed.job.job_id, store.JobKeys.from_api(keys))
    assert runner.run_job(api, options, job, print, world.clock, blobs=blobs) == "COMPLETED"

    restore = restore_jobs.start(world.deps, world.root,
                                 recovery_point_arn=str(claimed.job.recovery_point_arn),
                                 metadata={"targetPath": str(tmp_path / "on-h1" / "out")},
                                 iam_role_arn=ROLE)  # fmt: skip
    running = agents.claim(world.deps, who, wait_seconds=0, lease_seconds=60)
    assert isinstance(running, agents.ClaimedRestore)
    tree_id = str(running.manifest["tree"])
    assert agents.read_blobs(world.deps, who, restore.restore_job_id, [tree_id])

    agents.revoke(world.deps, world.root, "h1")
    with catalog.db.read_transaction(world.deps.engine) as conn:
        ended = catalog.restore_jobs.get(conn, restore.restore_job_id)
    assert ended.status == "FAILED"
    assert ended.status_message == "the agent of host h1 was revoked"
    with pytest.raises((NotFound, agents.AccessDenied)):  # its key reads nothing more
        agents.read_blobs(world.deps, who, restore.restore_job_id, [tree_id])
