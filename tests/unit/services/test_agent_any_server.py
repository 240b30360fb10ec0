"""Any server answers any agent call (issue 13's scale-out, docs/design/agents.md "Any
server answers"): two service instances on one catalog and one vault store, as two
`snowvault server` processes behind a round-robin endpoint, take a job's calls in turn,
each forgetting the other's memory first (stored ids, parent and readable sets). A
backup completes, the next uploads nothing (what the vault holds is known from the
catalog, not from a server's memory), a restore through the agent puts every byte
back, and no upload request is over the server's request limit (no blob is ever split
over calls, which only one server could put together).
"""

from __future__ import annotations

import base64
import dataclasses
import random
from pathlib import Path
from typing import Any

import pytest

from helpers import agent_world
from helpers.access_world import ROLE, World
from snowvault.agent import runner, store
from snowvault.control import catalog
from snowvault.control.services import agents, backup_jobs, resources, restore_jobs
from snowvault.control.services.base import Deps
from snowvault.core.errors import InvalidInput
from snowvault.engine.chunker import ChunkerParams
from snowvault.interfaces.api.asgi import DEFAULT_MAX_BODY_BYTES


@pytest.fixture
def world(tmp_path: Path) -> World:
    return agent_world.make_world(tmp_path)


def _second_server(world: World) -> Deps:
    """Another server on the same catalog (its own connection pool) and store."""
    engine = catalog.db.create_engine(f"sqlite:///{world.tmp / 'catalog.db'}")
    return dataclasses.replace(world.deps, engine=engine)


def _run(
    world: World, api: agent_world.InProcessApi, host_dir: Path
) -> tuple[str, dict[str, object], store.RemoteBlobStore | None]:
    doc = api.call("AgentClaimJob", {})
    job = doc["Job"]
    options = runner.Options("in-process", "h1", "us-east-1", "k", "s", (str(host_dir),))
    blobs = None
    if job["Kind"] == "BACKUP":
        blobs = store.RemoteBlobStore(api, job["JobId"], store.JobKeys.from_api(job["Keys"]))  # type: ignore[arg-type]
    state = runner.run_job(api, options, job, lambda _l: None, world.clock, blobs=blobs)  # type: ignore[arg-type]
    return str(state), job, blobs


def test_a_jobs_calls_alternate_between_two_servers(world: World, tmp_path: Path) -> None:
    b = _second_server(world)
    servers = [world.deps, b, b]  # round robin over three answers: no call kind sticks to one

    def which(api: agent_world.InProcessApi, action: str) -> set[str]:
        return {
            "a" if servers[api.answered_by[i]] is world.deps else "b"
            for i, (called, _n) in enumerate(api.calls)
            if called == action
        }

    h1 = agent_world.agent(world, "h1")
    source = tmp_path / "on-h1"
    (source / "sub").mkdir(parents=True)
    rng = random.Random(11)
    (source / "big.bin").write_bytes(rng.randbytes(7 * 1024 * 1024))  # chunks up to the cap
    for n in range(40):
        (source / "sub" / f"f{n}.txt").write_bytes(rng.randbytes(3000))
    arn = resources.register(
        world.deps, world.root, resource_type="Directory", name="d", source=str(source),
        worker_label="agent:h1",
    )["arn"]  # fmt: skip

    backup_jobs.start(world.deps, world.root, backup_jobs.StartRequest("main", arn, ROLE))
    api = agent_world.InProcessApi(world, h1, servers)
    state, job, first = _run(world, api, source)
    assert state == "COMPLETED" and first is not None and first.uploaded_blobs > 0
    assert job["Keys"]["Chunker"]["max_size"] <= agents.AGENT_MAX_CHUNK  # type: ignore[index]
    puts = [n for i, (action, n) in enumerate(api.calls) if action == "AgentPutBlobs"]
    assert puts and max(puts) < DEFAULT_MAX_BODY_BYTES
    assert which(api, "AgentPutBlobs") == {"a", "b"}  # both stored blobs of the one job

    backup_jobs.start(world.deps, world.root, backup_jobs.StartRequest("main", arn, ROLE))
    again = agent_world.InProcessApi(world, h1, servers[::-1])
    state, _job, second = _run(world, again, source)
    assert state == "COMPLETED" and second is not None
    assert (second.uploaded_blobs, second.skipped_blobs) == (0, first.uploaded_blobs)

    with catalog.db.read_transaction(world.deps.engine) as conn:
        done = catalog.jobs.get(conn, str(job["JobId"]))
    target = tmp_path / "restored"
    restore = restore_jobs.start(
        world.deps, world.root, recovery_point_arn=done.recovery_point_arn,
        metadata={"targetPath": str(target)},
    )  # fmt: skip
    reader = agent_world.InProcessApi(world, h1, servers)
    state, _job, _none = _run(world, reader, tmp_path)
    assert state == "COMPLETED"
    assert which(reader, "AgentReadBlobs") == {"a", "b"}
    assert (target / "big.bin").read_bytes() == (source / "big.bin").read_bytes()
    for n in range(40):
        name = f"sub/f{n}.txt"
        assert (target / name).read_bytes() == (source / name).read_bytes()
    ended = restore_jobs.get(world.deps, world.root, restore.restore_job_id)
    assert ended.status == "COMPLETED", ended.status_message
    b.engine.dispose()


def test_a_blob_in_parts_is_refused() -> None:
    """The wire no longer has parts: a part would need the server that got the others."""
    from snowvault.interfaces.api import agent_actions, errors

    item = {"BlobId": "ab" * 32, "Kind": "data", "Data": "AA==", "Part": 0, "Parts": 2}
    with pytest.raises(errors.ApiError, match="whole"):
        agent_actions._blobs([item])


class _Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def call(self, action: str, body: dict[str, Any], **_: Any) -> dict[str, Any]:
        self.calls.append((action, body))
        return {"Present": []} if action == "AgentHasBlobs" else {"Stored": 1}


def test_a_large_blob_goes_alone_and_whole_and_a_too_large_one_fails_the_job() -> None:
    api = _Recorder()
    keys = store.JobKeys(bytes(32), bytes(32), ChunkerParams())
    blobs = store.RemoteBlobStore(api, "job-1", keys)  # type: ignore[arg-type]
    rng = random.Random(3)
    blobs.add_blob("data", b"small")
    blobs.add_blob("data", rng.randbytes(2 * 1024 * 1024))  # sealed: just over a batch
    blobs.flush()
    puts = [body["Blobs"] for action, body in api.calls if action == "AgentPutBlobs"]
    assert [len(p) for p in puts] == [1, 1]
    assert all("Part" not in item for p in puts for item in p)
    assert len(base64.b64decode(puts[1][0]["Data"])) > store.BATCH_BYTES
    blobs.add_blob("tree", rng.randbytes(store.MAX_CALL_BYTES))
    with pytest.raises(InvalidInput, match="larger than one upload request"):
        blobs.flush()
