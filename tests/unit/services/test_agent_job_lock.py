"""An agent's backup holds its vault's shared lock for the whole job (engine/locks.py,
"Job locks"; docs/design/agents.md, "Direct uploads to S3"), not per call: its packs are
indexed call by call but named by no point until its manifest, and a prune between
would delete them. The lock is taken at the claim, found by any server from the job id
alone, refreshed by heartbeats, and removed when the job ends; a lock whose job ended
without releasing it (its lease ran out) is removed by the next claim into the vault.

The first test runs a direct-upload backup to a moto S3 store through the API's own
handlers, every call answered as by another server (no memory of the job)."""

from __future__ import annotations

import dataclasses
import json
import random
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from helpers import agent_world, tree_state
from helpers.access_world import ROLE, World
from snowvault.agent import runner, store
from snowvault.control import catalog
from snowvault.control.services import agents, backup_jobs, resources, vaults
from snowvault.control.services.base import Caller
from snowvault.engine import check, locks, prune, restorer
from snowvault.interfaces.api import agent_actions
from snowvault.interfaces.api.asgi import RequestContext


class _App:
    def __init__(self, deps: Any) -> None:
        self.deps = deps


class HandlerApi:
    """The agent's calls through the extension API's handlers, each answered as by a
    server with no memory of the job; ``before``: called with each action first."""

    def __init__(self, world: World, who: Caller) -> None:
        self.world, self.who = world, who
        self.actions: list[str] = []
        self.before = lambda action, body: None

    def call(self, action: str, body: dict[str, Any], **_: Any) -> dict[str, Any]:
        self.actions.append(action)
        body = json.loads(json.dumps(body))
        self.before(action, body)
        agents.drop_caches()
        arn, now = self.who.principal_arn, self.world.clock.now()
        ctx = RequestContext(
            "r", arn.split(":")[4], "us-east-1", "snowvault", arn, "k", "", now, ""
        )
        out = agent_actions.ACTIONS[action](_App(self.world.deps), ctx, body)  # type: ignore[arg-type]
        return dict(json.loads(json.dumps(out)))


@pytest.fixture
def s3_world(tmp_path: Path, s3_server: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_server)
    bucket = f"sv-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1").create_bucket(Bucket=bucket)
    monkeypatch.setattr(store, "DEFAULT_PACK_SIZE", 64 * 1024)
    world = agent_world.make_world(tmp_path)
    world.deps.storage.regions["us-east-1"] = f"s3://{bucket}/vaults"
    world.vault("s3")
    yield world
    vaults.STORE_CACHE.clear()


def _vault(world: World, name: str) -> catalog.db.Record:
    with catalog.db.read_transaction(world.deps.engine) as conn:
        found = catalog.vaults.find(
            conn, account_id=world.root.account_id, region="us-east-1", name=name
        )
    assert found is not None
    return found


def _source(root: Path, seed: int, files: int = 12) -> Path:
    rng = random.Random(seed)
    (root / "sub").mkdir(parents=True)
    for n in range(files):
        where = root / "sub" if n % 3 else root
        where.joinpath(f"f{n}.bin").write_bytes(rng.randbytes(rng.randrange(20_000, 90_000)))
    return root


def _start(world: World, vault: str, source: Path, name: str = "r") -> str:
    row = resources.register(world.deps, world.root, resource_type="Directory", name=name,
                             source=str(source), worker_label="agent:h1")  # fmt: skip
    request = backup_jobs.StartRequest(vault, str(row["arn"]), ROLE)
    return backup_jobs.start(world.deps, world.root, request).job_id


def _run(world: World, api: Any, source: Path) -> tuple[str, dict[str, Any]]:
    job = api.call("AgentClaimJob", {})["Job"]
    options = runner.Options("in-process", "h1", "us-east-1", "k", "s", (str(source),))
    keys = store.JobKeys.from_api(job["Keys"])
    if keys.direct:
        keys = dataclasses.replace(keys, pack_size=64 * 1024)
    blobs = store.RemoteBlobStore(api, job["JobId"], keys)
    state = runner.run_job(api, options, job, lambda _l: None, world.clock, blobs=blobs)  # type: ignore[arg-type]
    return str(state), job


def _locks(world: World, vault: str) -> list[str]:
    with vaults.open_repository(world.deps, _vault(world, vault)) as repo:
        return sorted(info.name for info in repo.backend.list("locks/"))


def test_a_prune_between_an_agents_commits_and_its_manifest_deletes_nothing(
    s3_world: World, tmp_path: Path
) -> None:
    world = s3_world
    source = _source(tmp_path / "src", 7)
    api = HandlerApi(world, agent_world.agent(world, "h1"))
    refused: list[Exception] = []

    def prune_first(action: str, body: dict[str, Any]) -> None:
        if action != "AgentPutManifest" or refused:
            return
        with vaults.open_repository(world.deps, _vault(world, "s3")) as repo:
            assert repo.pack_keys()  # the job's packs are committed, named by no point
            try:
                prune.prune(repo, world.clock)
            except locks.RepositoryLocked as exc:
                refused.append(exc)

    api.before = prune_first
    job_id = _start(world, "s3", source)
    state, _job = _run(world, api, source)
    assert refused, "the prune ran under the agent's job"
    assert state == "COMPLETED"
    assert api.actions.count("AgentPutBlobs") >= 3  # several packs: commit + next presign
    assert _locks(world, "s3") == []  # released with the job
    with vaults.open_repository(world.deps, _vault(world, "s3")) as repo:
        report = prune.prune(repo, world.clock)  # now it may: nothing of the point goes
        assert report.packs_deleted == 0
        assert check.check(repo, read_data=True).problems == []
        with catalog.db.read_transaction(world.deps.engine) as conn:
            job = catalog.jobs.get(conn, job_id)
            rp = catalog.recovery_points.get(conn, job.recovery_point_arn or "")
        target = tmp_path / "restored"
        restorer.restore(repo, rp.engine_recovery_point_id or "", target)
    restored = {k: v[3] for k, v in tree_state.snapshot(target).items()}
    assert restored == {k: v[3] for k, v in tree_state.snapshot(source).items()}


def test_the_job_lock_is_found_by_its_job_refreshed_and_released(
    tmp_path: Path,
) -> None:
    world = agent_world.make_world(tmp_path)
    source = _source(tmp_path / "src", 3, files=3)
    h1 = agent_world.agent(world, "h1")
    api = agent_world.InProcessApi(world, h1)
    job_id = _start(world, "main", source)
    api.call("AgentClaimJob", {})
    first = _locks(world, "main")
    tag = locks.job_lock_tag(job_id)
    assert len(first) == 1 and first[0].startswith(f"{locks.JOB_LOCK_PREFIX}{tag}-")
    api.call("AgentHeartbeat", {"JobId": job_id})
    assert _locks(world, "main") == first  # fresh: nothing written
    world.clock.advance(locks.REFRESH_EVERY + timedelta(seconds=1))
    api.call("AgentHeartbeat", {"JobId": job_id})
    second = _locks(world, "main")
    assert len(second) == 1 and second != first  # a new one, the old one gone
    with (
        vaults.open_repository(world.deps, _vault(world, "main")) as repo,
        pytest.raises(locks.RepositoryLocked, match="lock is held"),
    ):
        prune.prune(repo, world.clock)
    api.call("AgentFailJob", {"JobId": job_id, "StatusMessage": "stopped"})
    assert _locks(world, "main") == []


def test_the_lock_of_a_job_that_ended_without_releasing_it_goes_at_the_next_claim(
    tmp_path: Path,
) -> None:
    world = agent_world.make_world(tmp_path)
    h1 = agent_world.agent(world, "h1")
    api = agent_world.InProcessApi(world, h1)
    lost = _start(world, "main", _source(tmp_path / "one", 1, files=2), name="one")
    api.call("AgentClaimJob", {})
    with catalog.db.read_transaction(world.deps.engine) as conn:
        job = catalog.jobs.get(conn, lost)
    # its lease ran out and the sweeper failed it: nobody released its lock
    backup_jobs.JOB_KIND.end(world.deps, job, str(job.lease_owner), "FAILED", status_message="x")
    assert len(_locks(world, "main")) == 1
    nxt = _start(world, "main", _source(tmp_path / "two", 2, files=2), name="two")
    assert api.call("AgentClaimJob", {})["Job"]["JobId"] == nxt
    left = _locks(world, "main")
    assert len(left) == 1 and locks.job_lock_tag(nxt) in left[0]


def test_a_stale_job_lock_is_taken_again_only_when_no_prune_holds_the_store(
    tmp_path: Path,
) -> None:
    world = agent_world.make_world(tmp_path)
    with vaults.open_repository(world.deps, _vault(world, "main")) as repo:
        backend, clock = repo.backend, world.clock
        locks.hold_job_lock(backend, clock, "job-1")
        clock.advance(locks.STALE_AFTER + timedelta(seconds=1))  # aged out: a prune may run
        prune_lock = locks.Lock(backend, clock, exclusive=True)
        prune_lock.acquire()
        with pytest.raises(locks.RepositoryLocked):
            locks.hold_job_lock(backend, clock, "job-1")  # not refreshed under the prune
        prune_lock.release()
        locks.hold_job_lock(backend, clock, "job-1")
        names = [i.name for i in backend.list("locks/")]
        assert len(names) == 1 and clock.now().strftime("%Y%m%dT%H%M%SZ") in names[0]
        assert locks.release_job_lock(backend, "job-1") == 1


def test_a_revocation_ends_the_job_and_its_lock(tmp_path: Path) -> None:
    world = agent_world.make_world(tmp_path)
    h1 = agent_world.agent(world, "h1")
    api = agent_world.InProcessApi(world, h1)
    _start(world, "main", _source(tmp_path / "src", 4, files=2))
    api.call("AgentClaimJob", {})
    assert len(_locks(world, "main")) == 1
    agents.revoke(world.deps, world.root, "h1")
    assert _locks(world, "main") == []


def test_a_job_whose_lease_ran_out_lets_go_of_its_lock_when_recovery_ends_it(
    tmp_path: Path,
) -> None:
    """The sweeper's lease recovery: a retried job keeps its lock (its next claim holds
    it), one that recovery ends FAILED releases it at once, so prunes of the vault need
    not wait for the next claim into it or for the lock to age out."""
    from snowvault.control.scheduler import sweepers

    world = agent_world.make_world(tmp_path)
    h1 = agent_world.agent(world, "h1")
    api = agent_world.InProcessApi(world, h1)
    job_id = _start(world, "main", _source(tmp_path / "src", 5, files=2))
    states = []
    for _ in range(10):
        claimed = api.call("AgentClaimJob", {}).get("Job")
        if claimed is None:
            break
        assert claimed["JobId"] == job_id
        assert len(_locks(world, "main")) == 1
        world.clock.advance(timedelta(hours=2))  # far past any lease
        sweepers._recover_leases(world.deps, world.clock.now())
        with catalog.db.read_transaction(world.deps.engine) as conn:
            states.append(str(catalog.jobs.get(conn, job_id).state))
        if states[-1] == "FAILED":
            break
        assert len(_locks(world, "main")) == 1, states  # retried: kept for the next claim
    assert states[-1] == "FAILED", states
    assert _locks(world, "main") == []
