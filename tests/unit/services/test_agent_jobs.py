"""The agent job protocol at the service layer (issue 13, docs/design/agents.md), with
FakeClock and the agent's own blob store wired to the services in-process:

- the server's workers never claim an agent's job, an agent claims only its own host's;
- an agent that claims again while a job is leased to it never heard of that job (a
  lost answer, a restart): the job is retried at once, not when its lease runs out;
- a point an agent writes restores like any other, and a second one uploads nothing;
- abuse: a blob whose id does not match its content, a blob sealed for another job, a
  call for another host's job, a HasBlobs probe of another resource's data, a manifest
  naming blobs the vault lacks, a group or a relative path registered on an agent host.

The same through real processes: tests/integration/test_agent_backup.py.
"""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from helpers import agent_world
from helpers.access_world import ACCOUNT, OTHER_ACCOUNT, ROLE, World
from snowvault.agent import runner, store
from snowvault.control import catalog
from snowvault.control.model import host_paths
from snowvault.control.services import agents, backup_jobs, resources, vaults
from snowvault.control.services.base import Caller
from snowvault.core.errors import InvalidInput, NotFound
from snowvault.engine import compression, prune, restorer
from snowvault.engine.chunker import ChunkerParams
from snowvault.engine.crypto import agent_blobs

InProcessApi = agent_world.InProcessApi
_agent = agent_world.agent


@pytest.fixture
def world(tmp_path: Path) -> World:
    return agent_world.make_world(tmp_path)


def _resource(world: World, name: str, source: Path, host: str | None) -> str:
    label = None if host is None else f"agent:{host}"
    row = resources.register(
        world.deps,
        world.root,
        resource_type="Directory",
        name=name,
        source=str(source),
        worker_label=label,
    )
    return str(row["arn"])


def _start(world: World, arn: str) -> str:
    job = backup_jobs.start(world.deps, world.root, backup_jobs.StartRequest("main", arn, ROLE))
    return job.job_id


def _claim(world: World, who: Caller) -> agents.ClaimedJob | None:
    return agents.claim(world.deps, world.caller(who.principal_arn), wait_seconds=0,
                        lease_seconds=60)  # fmt: skip


def _run(
    world: World, who: Caller, claimed: agents.ClaimedJob, source: Path
) -> store.RemoteBlobStore:
    job = {
        "JobId": claimed.job.job_id,
        "ResourceArn": claimed.resource["arn"],
        "ResourceType": claimed.resource["resource_type"],
        "Source": claimed.resource["source"],
        "LeaseSeconds": 60,
        "Keys": {
            "JobKey": base64.b64encode(claimed.keys.job_key).decode(),
            "IdKey": base64.b64encode(claimed.keys.id_key).decode(),
            "Chunker": claimed.keys.chunker,
        },
    }
    api = InProcessApi(world, who)
    options = runner.Options("in-process", "h1", "us-east-1", "k", "s", (str(source),))
    blobs = store.RemoteBlobStore(api, claimed.job.job_id, store.JobKeys.from_api(job["Keys"]))  # type: ignore[arg-type]
    state = runner.run_job(api, options, job, lambda _line: None, world.clock, blobs=blobs)  # type: ignore[arg-type]
    assert state == "COMPLETED", state
    return blobs


def test_only_the_hosts_agent_claims_its_jobs(world: World, tmp_path: Path) -> None:
    h1, h2 = _agent(world, "h1"), _agent(world, "h2")
    (tmp_path / "on-h1").mkdir()
    (tmp_path / "local").mkdir()
    remote = _start(world, _resource(world, "remote", tmp_path / "on-h1", "h1"))
    # the server's worker, even one configured with the agent's label, never takes it
    worker_labels = ["agent:h1", f"agent:{ACCOUNT}:h1"]
    assert backup_jobs.JOB_KIND.claim(world.deps, "w", worker_labels, 60) is None
    assert _claim(world, h2) is None  # another host's agent
    local = _start(world, _resource(world, "local", tmp_path / "local", None))
    claimed = _claim(world, h1)
    assert claimed is not None and claimed.job.job_id == remote  # not the local job
    assert _claim(world, h2) is None  # h2 claiming does not touch h1's lease
    shown = repr(claimed)  # keys never in a log line or a traceback's locals
    assert repr(claimed.keys.job_key) not in shown and repr(claimed.keys.id_key) not in shown
    with pytest.raises(NotFound):  # h2 cannot touch h1's job
        agents.heartbeat(world.deps, world.caller(h2.principal_arn), remote,
                         lease_seconds=60, progress={})  # fmt: skip
    worker_job = backup_jobs.JOB_KIND.claim(world.deps, "w", [], 60)
    assert worker_job is not None and worker_job.job_id == local


def test_an_agents_point_restores_and_a_second_uploads_nothing(
    world: World, tmp_path: Path
) -> None:
    h1 = _agent(world, "h1")
    source = tmp_path / "on-h1"
    (source / "sub").mkdir(parents=True)
    (source / "a.txt").write_bytes(b"alpha " * 5000)
    (source / "sub" / "b.bin").write_bytes(bytes(range(256)) * 300)
    arn = _resource(world, "remote", source, "h1")
    _start(world, arn)
    claimed = _claim(world, h1)
    assert claimed is not None
    first = _run(world, h1, claimed, source)
    assert first.uploaded_blobs > 0
    with catalog.db.read_transaction(world.deps.engine) as conn:
        job = catalog.jobs.get(conn, claimed.job.job_id)
        rp = catalog.recovery_points.get(conn, job.recovery_point_arn)
        vault = catalog.vaults.get_by_arn(conn, rp.backup_vault_arn)
    assert job.state == "COMPLETED"
    target = tmp_path / "restored"
    with vaults.open_repository(world.deps, vault) as repo:
        restorer.restore(repo, rp.engine_recovery_point_id, str(target))
        assert repo.load_manifest(rp.engine_recovery_point_id)["hostname"] == "h1"
    assert (target / "a.txt").read_bytes() == (source / "a.txt").read_bytes()
    assert (target / "sub" / "b.bin").read_bytes() == (source / "sub" / "b.bin").read_bytes()

    _start(world, arn)
    claimed = _claim(world, h1)
    assert claimed is not None
    second = _run(world, h1, claimed, source)
    assert (second.uploaded_blobs, second.skipped_blobs) == (0, first.uploaded_blobs)


def test_uploads_are_checked_against_the_job_and_the_content(world: World, tmp_path: Path) -> None:
    h1 = _agent(world, "h1")
    (tmp_path / "on-h1").mkdir()
    _start(world, _resource(world, "remote", tmp_path / "on-h1", "h1"))
    claimed = _claim(world, h1)
    assert claimed is not None
    job_id, keys = claimed.job.job_id, claimed.keys
    who = world.caller(h1.principal_arn)
    data = b"payload " * 100
    good_id = agent_blobs.blob_id(keys.id_key, data)

    def sealed(key: bytes, job: str, blob_id: bytes) -> agents.BlobPart:
        body = agent_blobs.seal_blob(key, job, "data", blob_id, compression.pack(data))
        return agents.BlobPart(blob_id, "data", body)

    wrong_id = bytes(32)
    with pytest.raises(InvalidInput, match="does not match its content"):
        agents.put_blobs(world.deps, who, job_id, [sealed(keys.job_key, job_id, wrong_id)])
    with pytest.raises(InvalidInput, match="not sealed for this job"):  # replayed elsewhere
        agents.put_blobs(world.deps, who, job_id, [sealed(keys.job_key, "other", good_id)])
    with pytest.raises(InvalidInput, match="not sealed for this job"):
        agents.put_blobs(world.deps, who, job_id, [sealed(bytes(32), job_id, good_id)])
    assert agents.put_blobs(world.deps, who, job_id, [sealed(keys.job_key, job_id, good_id)]) == 1
    # HasBlobs answers about this job's resource only, not the rest of the vault
    other = world.backup("main", None)  # a server-side point with its own blobs
    with catalog.db.read_transaction(world.deps.engine) as conn:
        vault = catalog.vaults.get_by_arn(conn, other.backup_vault_arn)
    with vaults.open_repository(world.deps, vault) as repo:
        foreign = prune.used_blobs(repo, [repo.load_manifest(other.engine_recovery_point_id)])
        assert foreign and all(repo.has_blob(b) for b in foreign)
    asked = [good_id.hex(), *(b.hex() for b in foreign)]
    assert agents.has_blobs(world.deps, who, job_id, asked) == [good_id.hex()]
    manifest = {
        "version": 1, "time": "2026-12-07T00:00:00Z", "hostname": "x", "paths": ["/x"],
        "kind": "directory", "tree": "cd" * 32, "parent": None, "tags": {}, "partial": False,
        "errors": [], "summary": {}, "metadata": {},
    }  # fmt: skip
    with pytest.raises(InvalidInput):
        agents.put_manifest(world.deps, who, job_id, manifest, 0)
    agents.fail(world.deps, who, job_id, "stopped by the test")
    with catalog.db.read_transaction(world.deps.engine) as conn:
        job = catalog.jobs.get(conn, job_id)
    assert job.state == "FAILED" and "stopped by the test" in (job.status_message or "")
    with pytest.raises(NotFound):  # an ended job takes no more uploads
        agents.put_blobs(world.deps, who, job_id, [sealed(keys.job_key, job_id, good_id)])


def test_agent_resources_have_absolute_paths_and_no_groups(world: World) -> None:
    with pytest.raises(InvalidInput, match="not Composite"):
        resources.register(world.deps, world.root, resource_type="Composite", name="g",
                           source="group:g", worker_label="agent:h1")  # fmt: skip
    db = resources.register(world.deps, world.root, resource_type="SQLite", name="db",
                            source="/var//db.sqlite", worker_label="agent:h1")  # fmt: skip
    assert db["source"] == "/var/db.sqlite"  # nothing looked up on the server's host
    with pytest.raises(host_paths.InvalidHostPath):
        resources.register(world.deps, world.root, resource_type="Directory", name="rel",
                           source="relative/path", worker_label="agent:h1")  # fmt: skip
    row = resources.register(world.deps, world.root, resource_type="Directory", name="far",
                             source="/srv//data/../www/", worker_label="agent:h1")  # fmt: skip
    assert row["source"] == "/srv/www"  # folded, never looked up on the server's host


def test_another_tenants_agent_of_the_same_host_name_gets_nothing(
    world: World, tmp_path: Path
) -> None:
    (tmp_path / "on-h1").mkdir()
    mine = _start(world, _resource(world, "remote", tmp_path / "on-h1", "h1"))
    other_root = world.other_account()
    theirs = agents.enroll(world.deps, other_root, world.box, "h1")
    assert agents.claim(world.deps, world.caller(theirs.principal_arn), wait_seconds=0,
                        lease_seconds=60) is None  # fmt: skip
    with pytest.raises(InvalidInput, match="your own account"):  # aiming at their agent
        resources.register(world.deps, world.root, resource_type="Directory", name="aimed",
                           source="/srv", worker_label=f"agent:{OTHER_ACCOUNT}:h1")  # fmt: skip
    h1 = _agent(world, "h1")
    claimed = _claim(world, h1)
    assert claimed is not None and claimed.job.job_id == mine


def test_revoking_an_agent_fails_its_running_job_at_once(world: World, tmp_path: Path) -> None:
    h1 = _agent(world, "h1")
    (tmp_path / "on-h1").mkdir()
    job_id = _start(world, _resource(world, "remote", tmp_path / "on-h1", "h1"))
    assert _claim(world, h1) is not None
    agents.revoke(world.deps, world.root, "h1")
    with catalog.db.read_transaction(world.deps.engine) as conn:
        job = catalog.jobs.get(conn, job_id)
    assert job.state == "FAILED" and "was revoked" in (job.status_message or "")
    assert job.lease_owner is None


def test_a_tree_that_would_escalate_on_restore_is_refused(world: World, tmp_path: Path) -> None:
    h1 = _agent(world, "h1")
    source = tmp_path / "on-h1"
    (source / "shared").mkdir(parents=True)
    (source / "shared").chmod(0o2775)  # a set-gid directory is ordinary
    tool = source / "shared" / "tool"
    tool.write_bytes(b"#!/bin/sh\n")
    tool.chmod(0o4755)
    job_id = _start(world, _resource(world, "remote", source, "h1"))
    claimed = _claim(world, h1)
    assert claimed is not None
    api = InProcessApi(world, h1)
    options = runner.Options("in-process", "h1", "us-east-1", "k", "s", (str(source),))
    job = {"JobId": job_id, "ResourceArn": claimed.resource["arn"], "ResourceType": "Directory",
           "Source": claimed.resource["source"], "LeaseSeconds": 60}  # fmt: skip
    blobs = store.RemoteBlobStore(
        api,
        job_id,
        store.JobKeys(
            claimed.keys.job_key, claimed.keys.id_key, ChunkerParams.from_dict(claimed.keys.chunker)
        ),
    )  # type: ignore[arg-type]
    state = runner.run_job(api, options, job, lambda _line: None, world.clock, blobs=blobs)  # type: ignore[arg-type]
    assert state == "FAILED"
    with catalog.db.read_transaction(world.deps.engine) as conn:
        ended = catalog.jobs.get(conn, job_id)
    assert ended.state == "FAILED" and "/shared/tool is a set-uid" in (ended.status_message or "")


def test_a_job_whose_claim_answer_was_lost_is_retried_by_the_next_claim(
    world: World, tmp_path: Path
) -> None:
    h1 = _agent(world, "h1")
    (tmp_path / "on-h1").mkdir()
    arn = _resource(world, "lost", tmp_path / "on-h1", "h1")
    job_id = _start(world, arn)
    first = _claim(world, h1)  # the answer that never reached the agent
    assert first is not None and first.job.job_id == job_id
    assert first.job.attempts == 1

    again = _claim(world, h1)  # the lease has not run out (the clock did not move)
    assert again is not None and again.job.job_id == job_id
    assert again.job.attempts == 2
    assert again.keys.job_key != first.keys.job_key  # a new attempt, a new data key
    with catalog.db.read_transaction(world.deps.engine) as conn:
        assert catalog.jobs.get(conn, job_id).state == "RUNNING"

    # attempts spent: the held job ends FAILED with the reason, and nothing else is leased
    with catalog.db.transaction(world.deps.engine) as conn:
        conn.execute(
            catalog.jobs.QUEUE.spec.table.update()
            .where(catalog.jobs.QUEUE.spec.id == job_id)
            .values(max_attempts=2)
        )
    assert _claim(world, h1) is None
    with catalog.db.read_transaction(world.deps.engine) as conn:
        ended = catalog.jobs.get(conn, job_id)
    assert ended.state == "FAILED"
    assert ended.status_message == agents.HELD_MESSAGE
