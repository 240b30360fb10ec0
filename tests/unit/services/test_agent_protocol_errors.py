"""What an agent call answers when the store fails under it, and a repeated
AgentPutManifest (docs/design/agents.md, "Job protocol" and "Failure and networks").

Calls go through the extension API's own handlers (interfaces/api/agent_actions.py)
and its error table, and each error answer becomes what the agent's client raises
(client.error_of), tried again while the client would (client.retryable): the runner
sees exactly the codes it sees on the wire. The store is the vault's real local store;
a "vanished segment" is a listing that still names an index segment that is gone (as
after the compact-index sweep or a prune deleted it under the reader), read for real.

- a vanished segment in any job call answers ServiceUnavailableException (retryable),
  never ResourceNotFoundException ("your lease is gone"): the job completes on the retry;
- a claim that meets a prune holding the vault hands the job back to the queue instead
  of failing it;
- the lease check's own refusal is still ResourceNotFoundException;
- AgentPutManifest twice at once: one point, one manifest, the same answer to both;
  a repeat after success answers the same RecoveryPointArn; another manifest or another
  agent is refused; a call whose lease ran out meanwhile marks the vault for the
  orphan prune.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from helpers import agent_world
from helpers.access_world import ROLE, World
from snowvault.agent import client, runner, store
from snowvault.control import catalog
from snowvault.control.catalog import fleet_locks
from snowvault.control.services import agents, backup_jobs, resources, restore_jobs, vaults
from snowvault.control.services.base import Caller
from snowvault.core.errors import SnowvaultError, Unavailable
from snowvault.engine import errors as engine_errors
from snowvault.engine import locks
from snowvault.engine.backends import base
from snowvault.engine.backends.url import open_backend
from snowvault.engine.repository import MANIFEST_PREFIX
from snowvault.interfaces.api import agent_actions, errors
from snowvault.interfaces.api.asgi import RequestContext
from snowvault.testing import FaultyBackend

GHOST = "index/" + "e0" * 32


class Store(FaultyBackend):
    """The vault's store as the server opens it, with two test hooks: ``vanished``
    (listings of index/ name a segment that is gone) and ``hold_manifests`` (a
    manifest put waits until ``go`` is set)."""

    def __init__(self, inner: base.Backend, shared: Shared) -> None:
        super().__init__(inner)
        self.shared = shared

    def list(self, prefix: str = "") -> Iterator[base.ObjectInfo]:
        found = list(super().list(prefix))
        if self.shared.vanished and prefix == "index/":
            found.append(base.ObjectInfo(GHOST, 100))
        return iter(found)

    def put(self, name: str, data: bytes | bytearray) -> None:
        if name.startswith(MANIFEST_PREFIX):
            self.shared.manifest_puts += 1
            if self.shared.hold_manifests:
                self.shared.putting.set()
                assert self.shared.go.wait(30)
        super().put(name, data)


@dataclass
class Shared:
    vanished: bool = False
    hold_manifests: bool = False
    manifest_puts: int = 0

    def __post_init__(self) -> None:
        self.putting = threading.Event()
        self.go = threading.Event()


@pytest.fixture
def shared(monkeypatch: pytest.MonkeyPatch) -> Shared:
    state = Shared()
    monkeypatch.setattr(vaults, "open_backend", lambda url: Store(open_backend(url), state))
    return state


@pytest.fixture
def world(tmp_path: Path, shared: Shared) -> World:
    return agent_world.make_world(tmp_path)


@dataclass
class _App:
    deps: Any


class EdgeApi:
    """The agent's calls through the API's handlers and error table, retried as the
    client retries (up to 5 tries); ``vanish_on``: actions whose first try meets a
    vanished segment. Each call is answered by a server with no memory of the job."""

    def __init__(self, world: World, who: Caller, shared: Shared, vanish_on: set[str]) -> None:
        self.world, self.who, self.shared, self.vanish_on = world, who, shared, vanish_on
        self.answers: list[tuple[str, str]] = []
        self.bodies: dict[str, dict[str, Any]] = {}

    def call(self, action: str, body: dict[str, Any], **_: Any) -> dict[str, Any]:
        self.bodies[action] = json.loads(json.dumps(body))
        for attempt in range(5):
            self.shared.vanished = attempt == 0 and action in self.vanish_on
            try:
                out = answer(self.world, self.who, action, self.bodies[action])
            except SnowvaultError as exc:
                code = client.code_of(exc) or ""
                self.answers.append((action, code))
                if not exc.fields.get("retryable") or attempt == 4:
                    raise
                continue
            finally:
                self.shared.vanished = False
            self.answers.append((action, "OK"))
            return out
        raise AssertionError("unreachable")


def answer(world: World, who: Caller, action: str, body: dict[str, Any]) -> dict[str, Any]:
    """One try of ``action`` as the server answers it and the client reads it: the
    answer, or the core error client.error_of makes of the error answer (its
    ``retryable`` field: whether the client would ask again)."""
    agents.drop_caches()  # as if another server answered
    now = world.clock.now()
    arn = who.principal_arn
    ctx = RequestContext("r", arn.split(":")[4], "us-east-1", "snowvault", arn, "k", "", now, "")
    try:
        out = agent_actions.ACTIONS[action](_App(world.deps), ctx, body)  # type: ignore[arg-type]
    except Exception as exc:
        api = errors.to_api_error(exc)
        error = client.error_of(api.code, api.message, api.status)
        error.fields["retryable"] = client.retryable(api.status, api.code)
        raise error from exc
    return dict(json.loads(json.dumps(out)))


def _agent_resource(world: World, source: Path) -> str:
    (source / "sub").mkdir(parents=True)
    (source / "a.txt").write_bytes(b"alpha " * 4000)
    (source / "sub" / "b.bin").write_bytes(bytes(range(256)) * 64)
    row = resources.register(world.deps, world.root, resource_type="Directory", name="r",
                             source=str(source), worker_label="agent:h1")  # fmt: skip
    return str(row["arn"])


def _start(world: World, arn: str) -> str:
    job = backup_jobs.start(world.deps, world.root, backup_jobs.StartRequest("main", arn, ROLE))
    return job.job_id


def _job(world: World, job_id: str) -> Any:
    with catalog.db.read_transaction(world.deps.engine) as conn:
        return catalog.jobs.get(conn, job_id)


def _run(api: EdgeApi, world: World, source: Path) -> tuple[str, dict[str, Any]]:
    """Claim and run one job through ``api``: (the runner's final state, the job)."""
    job = api.call("AgentClaimJob", {})["Job"]
    options = runner.Options("in-process", "h1", "us-east-1", "k", "s", (str(source),))
    blobs = store.RemoteBlobStore(api, job["JobId"], store.JobKeys.from_api(job["Keys"]))  # type: ignore[arg-type]
    state = runner.run_job(api, options, job, lambda _l: None, world.clock, blobs=blobs)  # type: ignore[arg-type]
    return state, job


@pytest.mark.parametrize("action", ["AgentHasBlobs", "AgentPutBlobs", "AgentPutManifest"])
def test_a_vanished_segment_answers_retryable_and_the_job_completes(
    world: World, shared: Shared, tmp_path: Path, action: str
) -> None:
    h1 = agent_world.agent(world, "h1")
    source = tmp_path / "on-h1"
    arn = _agent_resource(world, source)
    if action == "AgentHasBlobs":  # asked only once the resource has a point (a parent)
        _start(world, arn)
        first, _job0 = _run(EdgeApi(world, h1, shared, vanish_on=set()), world, source)
        assert first == "COMPLETED"
        (source / "c.txt").write_bytes(b"new " * 1000)
    job_id = _start(world, arn)
    api = EdgeApi(world, h1, shared, vanish_on={action})
    state, job = _run(api, world, source)
    assert job["JobId"] == job_id
    assert (action, "ServiceUnavailableException") in api.answers  # it met the ghost
    assert not any(code == client.NOT_FOUND for _a, code in api.answers)
    assert state == "COMPLETED"
    done = _job(world, job_id)
    assert (done.state, done.attempts) == ("COMPLETED", 1)  # the same attempt, not dropped


def test_the_engine_error_under_it_is_an_object_not_found(world: World, shared: Shared) -> None:
    """What the retryable answer replaced: the repository's load gives up on the segment
    with ObjectNotFound, which the error table alone answers ResourceNotFoundException."""
    vault = vaults.get(world.deps, world.root, "main")
    shared.vanished = True
    with (
        pytest.raises(engine_errors.ObjectNotFound) as caught,
        vaults.open_repository(world.deps, vault),
    ):
        pass
    assert errors.to_api_error(caught.value).code == client.NOT_FOUND


def test_a_claim_that_meets_a_prune_holding_the_vault_hands_the_job_back(
    world: World, shared: Shared, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The claim reads no index segment (the job's first data call does), but it takes
    the job's vault lock: a prune holding the vault past the claim's wait hands the job
    back to the queue, as a store trouble does, instead of failing it."""
    monkeypatch.setattr(agents, "JOB_LOCK_WAIT_SECONDS", 0.0)
    h1 = agent_world.agent(world, "h1")
    job_id = _start(world, _agent_resource(world, tmp_path / "on-h1"))
    vault = vaults.get(world.deps, world.root, "main")
    with vaults.open_repository(world.deps, vault) as repo:
        held = locks.Lock(repo.backend, world.clock, exclusive=True)
        held.acquire()
        try:
            with pytest.raises(SnowvaultError) as caught:
                answer(world, h1, "AgentClaimJob", {})
        finally:
            held.release()
    assert client.code_of(caught.value) == "ServiceUnavailableException"
    assert caught.value.fields["retryable"]
    waiting = _job(world, job_id)
    assert waiting.state == "PENDING" and waiting.lease_owner is None  # not FAILED
    again = answer(world, h1, "AgentClaimJob", {})["Job"]
    assert again["JobId"] == job_id


def test_the_lease_check_still_answers_not_found(
    world: World, shared: Shared, tmp_path: Path
) -> None:
    h1, h2 = agent_world.agent(world, "h1"), agent_world.agent(world, "h2")
    job_id = _start(world, _agent_resource(world, tmp_path / "on-h1"))
    answer(world, h1, "AgentClaimJob", {})
    for who, job in ((h2, job_id), (h1, "no-such-job")):
        with pytest.raises(SnowvaultError) as caught:
            answer(world, who, "AgentHeartbeat", {"JobId": job})
        assert client.code_of(caught.value) == client.NOT_FOUND
        assert not caught.value.fields["retryable"]


def _manifests(world: World) -> list[str]:
    vault = vaults.get(world.deps, world.root, "main")
    with vaults.open_repository(world.deps, vault) as repo:
        return repo.list_manifests()


def test_a_repeat_after_success_answers_the_same_point(
    world: World, shared: Shared, tmp_path: Path
) -> None:
    h1, h2 = agent_world.agent(world, "h1"), agent_world.agent(world, "h2")
    source = tmp_path / "on-h1"
    job_id = _start(world, _agent_resource(world, source))
    api = EdgeApi(world, h1, shared, vanish_on=set())
    state, _job_doc = _run(api, world, source)
    assert state == "COMPLETED"
    body = api.bodies["AgentPutManifest"]
    first = [a for a in api.answers if a[0] == "AgentPutManifest"]
    assert first == [("AgentPutManifest", "OK")]
    done = _job(world, job_id)

    again = answer(world, h1, "AgentPutManifest", body)  # the first answer was lost
    assert again == {"State": "COMPLETED", "RecoveryPointArn": done.recovery_point_arn}
    assert len(_manifests(world)) == 1 and shared.manifest_puts == 1

    other = json.loads(json.dumps(body))
    other["Manifest"]["tree"] = "ab" * 32
    for who, sent in ((h1, other), (h2, body)):  # not that call: the job is gone
        with pytest.raises(SnowvaultError) as caught:
            answer(world, who, "AgentPutManifest", sent)
        assert client.code_of(caught.value) == client.NOT_FOUND
    assert _job(world, job_id).state == "COMPLETED"


def _until(check: Callable[[], bool]) -> None:
    event = threading.Event()
    for _ in range(3000):
        if check():
            return
        event.wait(0.01)
    raise AssertionError("never happened")


def _up_to_the_manifest(
    world: World, shared: Shared, tmp_path: Path
) -> tuple[Caller, str, dict[str, Any]]:
    """A job of h1 run up to its AgentPutManifest, which is not sent: (h1, job id, body)."""
    h1 = agent_world.agent(world, "h1")
    source = tmp_path / "on-h1"
    job_id = _start(world, _agent_resource(world, source))

    class Withheld(EdgeApi):
        def call(self, action: str, body: dict[str, Any], **kw: Any) -> dict[str, Any]:
            if action == "AgentPutManifest":
                self.bodies[action] = json.loads(json.dumps(body))
                raise Unavailable("cut", code=client.UNREACHABLE)
            return super().call(action, body, **kw)

    api = Withheld(world, h1, shared, vanish_on=set())
    state, _job_doc = _run(api, world, source)
    assert state == "LOST"  # left to its lease: the server never heard the manifest
    return h1, job_id, api.bodies["AgentPutManifest"]


def test_two_calls_at_once_make_one_point_and_get_one_answer(
    world: World, shared: Shared, tmp_path: Path
) -> None:
    h1, job_id, body = _up_to_the_manifest(world, shared, tmp_path)
    shared.hold_manifests = True
    got: dict[str, Any] = {}

    def send(name: str) -> None:
        try:
            got[name] = answer(world, h1, "AgentPutManifest", body)
        except Exception as exc:  # kept for the asserts
            got[name] = exc

    first = threading.Thread(target=send, args=("first",))
    first.start()
    assert shared.putting.wait(30)  # the first is writing its manifest
    second = threading.Thread(target=send, args=("second",))
    second.start()
    lock = f"agent-manifest|{job_id}"
    _until(lambda: fleet_locks._LOCAL.get(lock, (None, 0))[1] == 2)  # the second waits
    shared.go.set()
    first.join(60)
    second.join(60)
    arn = _job(world, job_id).recovery_point_arn
    assert got["first"] == got["second"] == {"State": "COMPLETED", "RecoveryPointArn": arn}
    assert shared.manifest_puts == 1 and len(_manifests(world)) == 1
    assert lock not in fleet_locks._LOCAL


def test_a_manifest_whose_lease_ran_out_meanwhile_is_left_to_the_orphan_prune(
    world: World, shared: Shared, tmp_path: Path
) -> None:
    h1, job_id, body = _up_to_the_manifest(world, shared, tmp_path)
    shared.hold_manifests = True
    got: list[BaseException] = []

    def send() -> None:
        try:
            answer(world, h1, "AgentPutManifest", body)
        except Exception as exc:
            got.append(exc)

    call = threading.Thread(target=send)
    call.start()
    assert shared.putting.wait(30)
    world.clock.advance(timedelta(minutes=5))  # past the lease: the sweeper retries the job
    backup_jobs.JOB_KIND.recover(world.deps, world.clock.now())
    with catalog.db.transaction(world.deps.engine) as conn:  # the sweeper's own mark: done
        for mark in catalog.maintenance.orphan_prunes(conn):
            catalog.maintenance.clear_orphans(conn, mark)
    shared.go.set()
    call.join(60)
    assert len(got) == 1 and client.code_of(got[0]) == client.NOT_FOUND  # the job is gone
    job = _job(world, job_id)
    assert job.state == "PENDING" and job.recovery_point_arn  # another attempt's to make
    with catalog.db.read_transaction(world.deps.engine) as conn:
        marks = catalog.maintenance.orphan_prunes(conn)
        points = catalog.recovery_points.find(conn, job.recovery_point_arn)
    vault = vaults.get(world.deps, world.root, "main")
    assert [m.vault_arn for m in marks] == [vault["arn"]]  # the saved manifest: a stray
    assert points is None and len(_manifests(world)) == 1


def test_a_restore_claim_that_meets_a_vanished_segment_hands_it_back(
    world: World, shared: Shared, tmp_path: Path
) -> None:
    h1 = agent_world.agent(world, "h1")
    source = tmp_path / "on-h1"
    job_id = _start(world, _agent_resource(world, source))
    state, _job_doc = _run(EdgeApi(world, h1, shared, vanish_on=set()), world, source)
    assert state == "COMPLETED"
    restore = restore_jobs.start(
        world.deps, world.root, recovery_point_arn=_job(world, job_id).recovery_point_arn,
        metadata={"targetPath": str(tmp_path / "back")}, iam_role_arn=ROLE,
    )  # fmt: skip
    shared.vanished = True
    with pytest.raises(SnowvaultError) as caught:
        answer(world, h1, "AgentClaimJob", {})
    assert client.code_of(caught.value) == "ServiceUnavailableException"
    waiting = restore_jobs.get(world.deps, world.root, restore.restore_job_id)
    assert waiting.status == "PENDING"  # not FAILED
    shared.vanished = False
    again = answer(world, h1, "AgentClaimJob", {})["Job"]
    assert (again["Kind"], again["JobId"]) == ("RESTORE", restore.restore_job_id)
