"""What an agent backup asks the server (docs/design/agents.md, "Costs of a job call"):
a resource's first backup asks no AgentHasBlobs (the claim says nothing could be
present: no point of the resource in the vault, a first attempt), the next one does and
uploads nothing unchanged; a retried attempt asks again (an earlier attempt may have
stored blobs)."""

from __future__ import annotations

import random
from pathlib import Path

from helpers import agent_world
from helpers.access_world import ROLE
from snowvault.agent import runner, store
from snowvault.control import catalog
from snowvault.control.services import backup_jobs, resources


def _job(world: agent_world.World, api: agent_world.InProcessApi, source: Path) -> str:
    job = api.call("AgentClaimJob", {})["Job"]
    options = runner.Options("in-process", "h1", "us-east-1", "k", "s", (str(source),))
    blobs = store.RemoteBlobStore(api, job["JobId"], store.JobKeys.from_api(job["Keys"]))  # type: ignore[arg-type]
    return str(runner.run_job(api, options, job, lambda _l: None, world.clock, blobs=blobs))  # type: ignore[arg-type]


def test_a_first_backup_asks_no_has_blobs_and_the_next_one_does(tmp_path: Path) -> None:
    world = agent_world.make_world(tmp_path)
    source = tmp_path / "src"
    source.mkdir()
    rng = random.Random(5)
    for n in range(6):
        (source / f"f{n}.bin").write_bytes(rng.randbytes(30_000))
    arn = resources.register(world.deps, world.root, resource_type="Directory", name="r",
                             source=str(source), worker_label="agent:h1")["arn"]  # fmt: skip
    api = agent_world.InProcessApi(world, agent_world.agent(world, "h1"))
    request = backup_jobs.StartRequest("main", str(arn), ROLE)
    backup_jobs.start(world.deps, world.root, request)
    assert _job(world, api, source) == "COMPLETED"
    first = [action for action, _size in api.calls]
    assert "AgentHasBlobs" not in first and "AgentPutBlobs" in first
    api.calls.clear()
    backup_jobs.start(world.deps, world.root, request)
    assert _job(world, api, source) == "COMPLETED"
    second = [action for action, _size in api.calls]
    assert "AgentHasBlobs" in second and "AgentPutBlobs" not in second  # all present


def test_a_retried_first_attempt_asks(tmp_path: Path) -> None:
    world = agent_world.make_world(tmp_path)
    source = tmp_path / "src"
    source.mkdir()
    (source / "a.bin").write_bytes(b"a" * 50_000)
    arn = resources.register(world.deps, world.root, resource_type="Directory", name="r",
                             source=str(source), worker_label="agent:h1")["arn"]  # fmt: skip
    api = agent_world.InProcessApi(world, agent_world.agent(world, "h1"))
    backup_jobs.start(world.deps, world.root, backup_jobs.StartRequest("main", str(arn), ROLE))
    assert api.call("AgentClaimJob", {})["Job"]["Keys"].get("AskHasBlobs") is False
    again = api.call("AgentClaimJob", {})  # the held attempt is ended and retried
    assert again["Job"]["Attempt"] == 2 and "AskHasBlobs" not in again["Job"]["Keys"]
    with catalog.db.read_transaction(world.deps.engine) as conn:
        assert catalog.jobs.get(conn, again["Job"]["JobId"]).attempts == 2
