"""A server's cache of its vaults (engine/index_cache.py, used by every agent call) never
makes it accept a manifest whose blobs are gone: when a job's vault lock was lost (it
aged out: engine/locks.py, "Job locks"), another server's prune between the job's
uploads and its AgentPutManifest deletes the packs the job uploaded (nothing referenced
them yet), and the manifest is refused though this server's cache had read the segments
that named those packs (docs/design/agents.md, "Costs of a job call"). While the lock is
held, that prune is refused (tests/unit/services/test_agent_job_lock.py)."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from helpers import agent_world
from helpers.access_world import ROLE, World
from snowvault.agent import runner, store
from snowvault.control import catalog
from snowvault.control.services import backup_jobs, resources, vaults
from snowvault.core.errors import InvalidInput
from snowvault.engine import check, locks, prune


@pytest.fixture
def world(tmp_path: Path) -> World:
    return agent_world.make_world(tmp_path)


class PruneBeforeManifest(agent_world.InProcessApi):
    """Before the job's AgentPutManifest reaches this server, another one (its own,
    uncached opening of the vault) prunes the vault."""

    refused: InvalidInput | None = None

    def call(self, action: str, body: dict[str, Any], **kw: Any) -> dict[str, Any]:
        if action == "AgentPutManifest" and self.refused is None:
            vault = _vault(self.world)
            with vaults.open_repository(self.world.deps, vault) as repo:
                with pytest.raises(locks.RepositoryLocked):  # the job holds its lock
                    prune.prune(repo, self.world.clock)
                assert locks.release_job_lock(repo.backend, body["JobId"]) == 1  # lost
                assert prune.prune(repo, self.world.clock).packs_deleted
            try:
                return super().call(action, body, **kw)
            except InvalidInput as exc:
                self.refused = exc
                raise
        return super().call(action, body, **kw)


def _vault(world: World) -> catalog.db.Record:
    with catalog.db.read_transaction(world.deps.engine) as conn:
        found = catalog.vaults.find(
            conn, account_id=world.root.account_id, region="us-east-1", name="main"
        )
    assert found is not None
    return found


def _job(world: World, api: agent_world.InProcessApi, source: Path) -> str:
    job = api.call("AgentClaimJob", {})["Job"]
    options = runner.Options("in-process", "h1", "us-east-1", "k", "s", (str(source),))
    blobs = store.RemoteBlobStore(api, job["JobId"], store.JobKeys.from_api(job["Keys"]))  # type: ignore[arg-type]
    return str(runner.run_job(api, options, job, lambda _l: None, world.clock, blobs=blobs))  # type: ignore[arg-type]


def test_a_prune_between_uploads_and_manifest_is_seen_through_the_cache(
    world: World, tmp_path: Path
) -> None:
    h1 = agent_world.agent(world, "h1")
    rng = random.Random(17)
    sources = []
    for name in ("one", "two"):
        source = tmp_path / name
        source.mkdir()
        for n in range(5):
            (source / f"f{n}.bin").write_bytes(rng.randbytes(20_000))
        sources.append(source)
    arns = [
        resources.register(
            world.deps, world.root, resource_type="Directory", name=s.name, source=str(s),
            worker_label="agent:h1",
        )["arn"]
        for s in sources
    ]  # fmt: skip
    backup_jobs.start(world.deps, world.root, backup_jobs.StartRequest("main", arns[0], ROLE))
    assert _job(world, agent_world.InProcessApi(world, h1), sources[0]) == "COMPLETED"
    location = vaults.open_backend(_vault(world)["storage_url"]).location
    warm = dict(vaults.STORE_CACHE.entry(location).stats)
    assert warm.get("bodies_reads", 0) > 0  # the first job's calls read through the cache

    backup_jobs.start(world.deps, world.root, backup_jobs.StartRequest("main", arns[1], ROLE))
    api = PruneBeforeManifest(world, h1)
    state = _job(world, api, sources[1])
    assert api.refused is not None and "lacks" in str(api.refused)
    assert state != "COMPLETED"
    stats = vaults.STORE_CACHE.entry(location).stats
    assert stats.get("bodies_hits", 0) > warm.get("bodies_hits", 0)  # the cache was used
    assert stats.get("index_built", 0) > warm.get("index_built", 0)  # and rebuilt
    with vaults.open_repository(world.deps, _vault(world)) as repo:
        assert len(repo.list_manifests()) == 1
        assert check.check(repo, read_data=True).problems == []
