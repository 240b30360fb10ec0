"""Restores onto an agent's host at the service layer (issue 13, docs/design/agents.md),
FakeClock, the agent's restore wired to the services in-process:

- a restore of an agent resource's point is a job only that host's agent claims (the
  server's worker never does); the server checks only the target's form at the call;
- the agent writes the files from blobs it reads for its running job, byte for byte;
- abuse: another host's agent, a backup job's id, ids outside the job's point, and any
  read after the job ended are refused (NotFound); a killed agent's job is recovered by
  the lease as a backup's is.

The same through real processes: tests/integration/test_agent_backup.py.
"""

from __future__ import annotations

import base64
import hashlib
import random
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from helpers import agent_world
from helpers.access_world import ROLE, World
from snowvault.agent import restore as agent_restore
from snowvault.agent import runner, store
from snowvault.control import catalog
from snowvault.control.services import agents, backup_jobs, resources, restore_jobs
from snowvault.control.services.base import Caller
from snowvault.core.errors import InvalidInput, NotFound
from snowvault.engine import compression, tree
from snowvault.engine.crypto import agent_blobs

InProcessApi = agent_world.InProcessApi
_agent = agent_world.agent


@pytest.fixture
def world(tmp_path: Path) -> World:
    return agent_world.make_world(tmp_path)


def _claim(world: World, who: Caller) -> Any:
    return agents.claim(world.deps, world.caller(who.principal_arn), wait_seconds=0,
                        lease_seconds=60)  # fmt: skip


def _options(allowed: Path) -> runner.Options:
    return runner.Options("in-process", "h1", "us-east-1", "k", "s", (str(allowed),))


def _backed_up(world: World, who: Caller, source: Path) -> str:
    """A point of ``source`` on h1 written by h1's agent; its ARN."""
    row = resources.register(world.deps, world.root, resource_type="Directory", name="r",
                             source=str(source), worker_label="agent:h1")  # fmt: skip
    backup_jobs.start(world.deps, world.root, backup_jobs.StartRequest("main", row["arn"], ROLE))
    claimed = _claim(world, who)
    assert isinstance(claimed, agents.ClaimedJob)
    keys = claimed.keys
    job = {
        "JobId": claimed.job.job_id, "ResourceArn": row["arn"], "ResourceType": "Directory",
        "Source": str(source), "LeaseSeconds": 60,
        "Keys": {"JobKey": base64.b64encode(keys.job_key).decode(),
                 "IdKey": base64.b64encode(keys.id_key).decode(), "Chunker": keys.chunker},
    }  # fmt: skip
    api: Any = InProcessApi(world, who)
    blobs = store.RemoteBlobStore(api, claimed.job.job_id, store.JobKeys.from_api(job["Keys"]))
    assert runner.run_job(api, _options(source), job, print, world.clock, blobs=blobs) == (
        "COMPLETED"
    )
    return str(claimed.job.recovery_point_arn)


def _restore(world: World, rp_arn: str, target: Path) -> str:
    job = restore_jobs.start(world.deps, world.root, recovery_point_arn=rp_arn,
                             metadata={"targetPath": str(target)}, iam_role_arn=ROLE)  # fmt: skip
    return str(job.restore_job_id)


def _as_job(claimed: agents.ClaimedRestore) -> dict[str, Any]:
    return {
        "JobId": claimed.job.restore_job_id, "Kind": "RESTORE", "ResourceType": "Directory",
        "Metadata": dict(claimed.job.metadata or {}), "Manifest": claimed.manifest,
        "LeaseSeconds": 60, "Keys": {"JobKey": base64.b64encode(claimed.job_key).decode()},
    }  # fmt: skip


def _status(world: World, job_id: str) -> Any:
    with catalog.db.read_transaction(world.deps.engine) as conn:
        return catalog.restore_jobs.get(conn, job_id)


def test_the_hosts_agent_restores_onto_its_host_and_only_it_reads_the_data(
    world: World, tmp_path: Path
) -> None:
    h1, h2 = _agent(world, "h1"), _agent(world, "h2")
    source = tmp_path / "on-h1" / "src"
    (source / "sub").mkdir(parents=True)
    (source / "a.txt").write_bytes(b"alpha " * 5000)
    (source / "sub" / "b.bin").write_bytes(bytes(range(256)) * 300)
    rp_arn = _backed_up(world, h1, source)
    # the server judges only the form of a path it cannot see
    with pytest.raises(InvalidInput):
        _restore(world, rp_arn, Path("relative"))
    target = tmp_path / "on-h1" / "out"
    job_id = _restore(world, rp_arn, target)
    labels = ["agent:h1", _status(world, job_id).worker_label]
    assert restore_jobs.JOB_KIND.claim(world.deps, "w", labels, 60) is None  # never the server
    assert _claim(world, h2) is None  # another host's agent
    claimed = _claim(world, h1)
    assert isinstance(claimed, agents.ClaimedRestore)
    tree_id = bytes.fromhex(str(claimed.manifest["tree"]))

    who2 = world.caller(h2.principal_arn)
    with pytest.raises(NotFound):  # another agent asks for this job's data
        agents.read_blobs(world.deps, who2, job_id, [tree_id.hex()])
    who1 = world.caller(h1.principal_arn)
    with pytest.raises(NotFound):  # an id outside the job's point
        agents.read_blobs(world.deps, who1, job_id, ["ab" * 32])
    api: Any = InProcessApi(world, h1)
    state = runner.run_restore(api, _options(tmp_path / "on-h1"), _as_job(claimed), print)
    assert state == "COMPLETED"
    assert (target / "a.txt").read_bytes() == (source / "a.txt").read_bytes()
    assert (target / "sub" / "b.bin").read_bytes() == (source / "sub" / "b.bin").read_bytes()
    done = _status(world, job_id)
    assert done.status == "COMPLETED" and done.percent_done == 100.0
    with pytest.raises(NotFound):  # after the job ended
        agents.read_blobs(world.deps, who1, job_id, [tree_id.hex()])


def test_a_target_outside_the_agents_paths_fails_and_a_dead_agent_loses_the_job(
    world: World, tmp_path: Path
) -> None:
    h1 = _agent(world, "h1")
    source = tmp_path / "on-h1" / "src"
    source.mkdir(parents=True)
    (source / "a.txt").write_bytes(b"x" * 1000)
    rp_arn = _backed_up(world, h1, source)
    outside = tmp_path / "elsewhere" / "out"
    job_id = _restore(world, rp_arn, outside)
    claimed = _claim(world, h1)
    assert isinstance(claimed, agents.ClaimedRestore)
    api: Any = InProcessApi(world, h1)
    assert runner.run_restore(api, _options(tmp_path / "on-h1"), _as_job(claimed), print) == (
        "FAILED"
    )
    failed = _status(world, job_id)
    assert failed.status == "FAILED" and "\n" not in failed.status_message
    assert "not under an allowed path" in failed.status_message and not outside.exists()

    job_id = _restore(world, rp_arn, tmp_path / "on-h1" / "out")
    claimed = _claim(world, h1)
    assert isinstance(claimed, agents.ClaimedRestore)
    world.clock.advance(timedelta(seconds=120))  # the agent died: its lease runs out
    recovered = restore_jobs.JOB_KIND.recover(world.deps, world.clock.now())
    assert [r.job.restore_job_id for r in recovered] == [job_id]
    assert _status(world, job_id).status != "RUNNING"
    with pytest.raises(NotFound):  # the lost attempt's key reads nothing any more
        agents.read_blobs(world.deps, world.caller(h1.principal_arn), job_id,
                          [str(claimed.manifest["tree"])])  # fmt: skip
    again = _claim(world, h1)  # the retry goes to the (re-started) agent
    assert isinstance(again, agents.ClaimedRestore) and again.job.attempts == 2


class _PointServer:
    """AgentReadBlobs over a dict of blobs, sealed for one job as the server seals them;
    counts the calls."""

    def __init__(self, key: bytes, blobs: dict[bytes, bytes]) -> None:
        self.key, self.blobs = key, blobs
        self.asked: list[int] = []

    def call(self, action: str, body: dict[str, Any], **_: Any) -> dict[str, Any]:
        assert action == "AgentReadBlobs" and len(body["BlobIds"]) <= agents.MAX_READ_IDS
        self.asked.append(len(body["BlobIds"]))
        out = []
        for hexid in body["BlobIds"]:
            blob_id = bytes.fromhex(hexid)
            plain = compression.pack(self.blobs[blob_id])
            sealed = agent_blobs.seal_blob(self.key, "job-r", "data", blob_id, plain)
            out.append({"BlobId": hexid, "Data": base64.b64encode(sealed).decode()})
        return {"Blobs": out}


def test_a_streamed_entry_reads_its_blobs_in_batches_holes_as_zeros() -> None:
    key, rng = bytes(range(32)), random.Random(4)
    chunks = [rng.randbytes(100_000) for _ in range(40)]
    blobs = {hashlib.sha256(c).digest(): c for c in chunks}
    content: list[tuple[str | None, int]] = [(h.hex(), len(c)) for h, c in blobs.items()]
    content.insert(5, (None, 4096))  # a hole
    node = tree.Node(name=b"dump.sql", type="file", mode=0o600, size=sum(n for _, n in content),
                     content=tuple(content))  # fmt: skip
    root = tree.encode_tree([node])
    root_id = hashlib.sha256(root).digest()
    blobs[root_id] = root
    manifest = {
        "version": 1, "time": "2026-12-07T00:00:00Z", "hostname": "h1", "paths": ["dump.sql"],
        "kind": "stream", "tree": root_id.hex(), "parent": None, "tags": {}, "partial": False,
        "errors": [], "summary": {}, "metadata": {"plugin": {"server_version": "16"}},
    }  # fmt: skip
    api = _PointServer(key, blobs)
    source = agent_restore.RemoteSource(
        agent_restore.RemoteBlobs(api, "job-r", key, manifest)  # type: ignore[arg-type]
    )
    with source.open("dump.sql") as reader:
        body = reader.read()
    assert body == b"".join(chunks[:5]) + bytes(4096) + b"".join(chunks[5:])
    assert source.read_file("dump.sql") == body
    assert [e.path for e in source.entries()] == ["dump.sql"]
    assert source.info() == {"server_version": "16"}
    assert source.result.files == 2 and source.result.bytes == 2 * len(body)
    # 40 chunks of 100 kB: batches of PREFETCH_IDS, not one call per chunk
    per_read = [n for n in api.asked if n > 1]
    assert len(per_read) == 2 * -(-40 // agent_restore.PREFETCH_IDS)
