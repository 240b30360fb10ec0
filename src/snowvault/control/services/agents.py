"""Agents (issue 13): principals that stand for one host each and may only run that
host's jobs (docs/design/agents.md).

    creds = agents.enroll(deps, caller, box, "web-1")   # the key pair, shown once
    agents.list_agents(deps, caller)                    # hosts, versions, last seen
    agents.list_agents_page(deps, caller, limit=100, token=None)  # (agents, next token)
    agents.revoke(deps, caller, "web-1")                 # the key stops working
    agents.hello(deps, caller, version="0.1.0")          # the agent's first call

Who may ask: enrol/revoke/list are authorized by the API's hook as
``snowvault:EnrollAgent`` / ``snowvault:RevokeAgent`` / ``snowvault:ListAgents`` (the
account root has them; ``backup:*`` does not grant them). The agent's own calls
(``snowvault:AgentHello``) are the agent principal's built-in permissions, and the only
ones it has: :mod:`authorization` refuses an agent every other operation before any
policy is read, and refuses the agent operations to every other principal.

Abuse cases: a host name is bounded and restricted to letters, digits, ``.`` and ``-``
(it becomes part of an ARN and a queue label); enrolling a host twice is refused (a
second key for one host would survive the revocation of the first); the secret is
sealed under the root key like every access key and returned only by :func:`enroll`.

Must not depend on the scheduler, the composition root or any interface.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import json
import logging
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from snowvault.control import catalog
from snowvault.control.catalog import fleet_locks
from snowvault.control.model import agent_hosts
from snowvault.control.model import jobs as job_rules
from snowvault.control.model.jobs import BackupJob, RestoreJob
from snowvault.control.services import (
    accounts,
    agent_resources,
    agent_trees,
    authorization,
    backup_jobs,
    paging,
    resources,
    restore_jobs,
    vaults,
)
from snowvault.control.services.base import Caller, Deps
from snowvault.control.services.errors import AccessDenied
from snowvault.core import arn as arns
from snowvault.core.errors import InvalidInput, NotFound, SnowvaultError, Unavailable
from snowvault.engine import (
    compression,
    crypto,
    errors,
    index,
    index_cache,
    keyed_packs,
    locks,
    packs,
    prune,
    restorer,
    snapshots,
)
from snowvault.engine.backends import s3
from snowvault.engine.chunker import ChunkerParams
from snowvault.engine.crypto import agent_blobs, primitives
from snowvault.engine.repository import Repository

log = logging.getLogger("snowvault.services.agents")
check_host = agent_hosts.check_host
LABEL_PREFIX = agent_hosts.LABEL_PREFIX
_VERSION_RE = re.compile(r"^[\w.+-]{1,64}$")


def principal_arn(account_id: str, host: str) -> str:
    """The agent principal of ``host`` (IAM path :data:`authorization.AGENT_PATH`)."""
    return arns.build("iam", "", account_id, f"user{authorization.AGENT_PATH}{host}")


def enroll(deps: Deps, caller: Caller, box: crypto.SecretBox, host: str) -> accounts.Credentials:
    """Create the agent principal of ``host`` in the caller's account with one access key
    pair; the secret is in the answer and nowhere else in plaintext."""
    check_host(host)
    arn = principal_arn(caller.account_id, host)
    key_id, secret = accounts.new_key_pair()
    with catalog.db.transaction(deps.engine) as conn:
        catalog.accounts.create_principal(
            conn,
            arn=arn,
            account_id=caller.account_id,
            name=f"{LABEL_PREFIX}{host}",
            created_at=caller.now,
            path=authorization.AGENT_PATH,
        )
        catalog.agents.create(
            conn, account_id=caller.account_id, host=host, principal_arn=arn, now=caller.now
        )
        catalog.accounts.create_access_key(
            conn,
            access_key_id=key_id,
            principal_arn=arn,
            sealed_secret=box.seal(secret.encode(), key_id.encode()),
            created_at=caller.now,
        )
    return accounts.Credentials(key_id, secret, caller.account_id, arn)


def revoke(deps: Deps, caller: Caller, host: str) -> None:
    """Delete the agent of ``host`` with its principal and keys: its next call fails
    signature lookup, and the jobs it was running end FAILED at once."""
    check_host(host)
    with catalog.db.transaction(deps.engine) as conn:
        agent = catalog.agents.get(conn, account_id=caller.account_id, host=host)
        catalog.agents.delete(conn, account_id=caller.account_id, host=host)
        catalog.accounts.delete_principal(conn, agent.principal_arn)
        running = catalog.agents.leased_job_ids(conn, _worker(agent))
    why = f"the agent of host {host} was revoked"
    for job_id in running:  # ended now, not when their leases run out
        with catalog.db.read_transaction(deps.engine) as conn:
            job = catalog.jobs.get(conn, job_id)
        if job.account_id == caller.account_id:
            _fail(deps, job, _worker(agent), why)
    for restore in _leased_restores(deps, caller.account_id, _worker(agent)):
        _end_restore(deps, restore, _worker(agent), why)


def _leased_restores(deps: Deps, account_id: str, worker: str) -> list[RestoreJob]:
    """The account's RUNNING restore jobs leased to ``worker``, in every region."""
    found: list[RestoreJob] = []
    filters = catalog.restore_jobs.RestoreJobFilters(status="RUNNING")
    with catalog.db.read_transaction(deps.engine) as conn:
        for region in deps.storage.regions:
            token = None
            while True:
                page = catalog.restore_jobs.list_jobs(
                    conn, region=region, account_ids=[account_id], filters=filters, token=token
                )
                found += [j for j in page.items if j.lease_owner == worker]
                token = page.next_token
                if not token:
                    break
    return found


def list_agents(deps: Deps, caller: Caller) -> list[catalog.agents.Agent]:
    """The caller's account's agents, by host, with version and last-seen time."""
    with catalog.db.read_transaction(deps.engine) as conn:
        return catalog.agents.list_by_account(conn, caller.account_id)


def list_agents_page(
    deps: Deps, caller: Caller, *, limit: int | None = None, token: str | None = None
) -> tuple[list[catalog.agents.Agent], str | None]:
    """ListAgents: at most ``limit`` (1-1000, default 1000) of :func:`list_agents` by
    host name, after the host ``token`` names (an opaque token: services/paging.py),
    and the next page's token (None on the last page)."""
    return paging.page(
        "agents", list_agents(deps, caller), key=lambda a: a.host, limit=limit, token=token
    )


def hello(deps: Deps, caller: Caller, *, version: str) -> catalog.agents.Agent:
    """AgentHello: record the agent's version and that it was seen now; the agent's row."""
    if not _VERSION_RE.match(version):
        raise InvalidInput(detail="Version must be 1-64 letters, digits, '.', '_', '+' or '-'")
    with catalog.db.transaction(deps.engine) as conn:
        agent = catalog.agents.find_by_principal(conn, caller.principal_arn)
        if agent is None:  # authorization lets only agents here; a race with revoke
            raise AccessDenied(detail=f"{caller.principal_arn} is not an enrolled agent")
        catalog.agents.seen(conn, caller.principal_arn, version=version, now=caller.now)
        return catalog.agents.get(conn, account_id=agent.account_id, host=agent.host)


# ------------------------------------------------------------------ the job protocol

MIN_LEASE_SECONDS = 5
MAX_LEASE_SECONDS = 600
MAX_WAIT_SECONDS = 20
POLL_SECONDS = 0.5
MAX_BLOB_IDS = 1000
MAX_WAITING_POLLS = 8
"""Long polls held at once (each holds an API thread); beyond that a claim answers at
once and the agent backs off, so a fleet cannot starve the API's thread pool."""
_POLL_SLOTS = threading.BoundedSemaphore(MAX_WAITING_POLLS)
SUPPORTED_TYPES = agent_resources.AGENT_TYPES
AGENT_MAX_CHUNK = 2 * 1024 * 1024
"""The largest chunk an agent cuts: a sealed chunk then fits one upload request (base64
adds a third; the default request limit is 4 MiB), so no blob is ever sent in parts
and any server may take any call (docs/design/agents.md, "Any server answers")."""
_PARENT_SETS: dict[tuple[str, int], frozenset[bytes]] = {}
_PARENT_SETS_KEPT = 32
_UPLOADED: dict[str, set[bytes]] = {}
"""Blob ids each running job stored through this server, over its attempts: a retried
attempt does not upload again what the lost one stored. An optimisation only: a job
whose calls land on another server (or after a restart) uploads them again, and the
vault keeps one copy (``Repository.add_blob`` skips a blob its index has)."""
_UPLOADED_LOCK = threading.Lock()


@dataclass(frozen=True)
class JobKeys:
    """What an agent needs to write blobs a vault accepts: the job's data key, a blob-id
    key and the chunker parameters (never the repository secret). Where the vault's
    store is S3 (``direct``) the agent writes keyed packs straight to it: the id key is
    then its host's scoped one (never the vault's) and ``pack_size`` its pack target.
    ``ask``: whether AgentHasBlobs can answer anything for this attempt (False: the
    resource has no point in the vault and no earlier attempt stored anything, so the
    agent need not ask)."""

    job_key: bytes = field(repr=False)
    id_key: bytes = field(repr=False)
    chunker: dict[str, int]
    direct: bool = False
    pack_size: int = 0
    ask: bool = True


@dataclass(frozen=True)
class ClaimedJob:
    """A backup job for the agent: its resource (type, source, properties), the
    resource's own secrets unsealed for this job only, and the job's keys."""

    job: BackupJob
    resource: catalog.db.Record
    keys: JobKeys
    lease_seconds: int
    secrets: dict[str, str] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class ClaimedRestore:
    """A restore job for the agent: the point's manifest (its root tree names what
    AgentReadBlobs may serve), the job's data key the blobs come sealed under, and the
    point's resource as its plugin needs it (with its secrets only while the resource
    is registered on this agent's host; else empty)."""

    job: RestoreJob
    manifest: dict[str, object]
    job_key: bytes = field(repr=False)
    lease_seconds: int = 60
    resource: dict[str, Any] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class _Leased:
    job: BackupJob
    host: str
    worker: str
    job_key: bytes = field(repr=False)


def _worker(agent: catalog.agents.Agent) -> str:
    """The lease owner and queue label of ``agent`` (account-scoped: agent_hosts)."""
    return agent_hosts.label(agent.account_id, agent.host)


def _me(deps: Deps, caller: Caller) -> catalog.agents.Agent:
    with catalog.db.read_transaction(deps.engine) as conn:
        agent = catalog.agents.find_by_principal(conn, caller.principal_arn)
    if agent is None:
        raise AccessDenied(detail=f"{caller.principal_arn} is not an enrolled agent")
    return agent


def _lease(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(detail="LeaseSeconds must be an integer")
    if not MIN_LEASE_SECONDS <= value <= MAX_LEASE_SECONDS:
        raise InvalidInput(
            detail=f"LeaseSeconds must be {MIN_LEASE_SECONDS}-{MAX_LEASE_SECONDS}, not {value}"
        )
    return value


JOB_GONE = "running job of this agent"
NOT_IN_POINT = "blob of this restore job's recovery point"
_JOB_CHECK_KINDS = frozenset({JOB_GONE, NOT_IN_POINT})


def _job_gone(job_id: str) -> NotFound:
    """The one answer that tells an agent to drop a job: it no longer runs under this
    agent's lease and attempt (ResourceNotFoundException on the wire)."""
    return NotFound(kind=JOB_GONE, name=job_id)


def refused_by_job_check(exc: BaseException) -> bool:
    """Whether ``exc`` is the job check's own refusal (the lease is gone, or an id
    outside the restore's point): the only not-found an agent call may answer. Any
    other (a vanished index segment, a deleted point) is the server's trouble and is
    answered as retryable (interfaces/api/agent_actions.py)."""
    return isinstance(exc, NotFound) and exc.fields.get("kind") in _JOB_CHECK_KINDS


STORE_TROUBLE = (errors.BackendError, errors.RecoveryPointNotFound, errors.RepositoryNotFound)
"""Storage errors an agent call may meet on a healthy vault: an index segment or a pack
key record deleted under the reader (the compact-index sweep, a prune), a point
forgotten between listing and reading, the store away for a moment."""


@contextmanager
def _writing_into(
    deps: Deps, vault: catalog.db.Record, *, index: bool = True
) -> Iterator[Repository]:
    """The vault's repository for an agent's job call that adds to it, storage trouble
    answered retryable (:func:`_store_trouble`). No lock is taken here: the job holds
    its vault's shared lock from its claim to its end (:func:`_hold_job_lock`), so no
    prune runs while it writes, and the vault cannot be deleted under a running job
    (the catalog refuses). The index is read as it is listed now (``index=False``,
    presign and commit, which name keyed packs only: the pack-key records only)."""
    with (
        _store_trouble(),
        vaults.open_repository(deps, vault, cached=True, load_index=index) as repo,
    ):
        if not index:
            repo.reload_pack_keys()
        yield repo


JOB_LOCK_WAIT_SECONDS = 20.0
"""How long a claim, or a manifest whose job lock was lost, waits for a prune holding
the vault's exclusive lock (the claim then hands the job back; the manifest answers
Unavailable and is asked again)."""


def _hold_job_lock(deps: Deps, repo: Repository, job_id: str, *, wait_seconds: float) -> None:
    """The job's shared lock on its vault (engine/locks.py, "Job locks"), taken at the
    claim and kept fresh by any server that answers the job's heartbeat: a prune (the
    exclusive lock) cannot run between an agent's commits and its manifest, which is
    when its packs are indexed but named by no point. Other jobs' locks seen when one
    is written whose jobs have ended (a lease that ran out never released its lock)
    are deleted."""
    others = locks.hold_job_lock(repo.backend, deps.clock, job_id, wait_seconds=wait_seconds)
    ended = []
    with catalog.db.read_transaction(deps.engine) as conn:
        for name, doc in others:
            try:
                other = catalog.jobs.get(conn, str(doc.get("job")))
            except NotFound:
                ended.append(name)
                continue
            if other.state in job_rules.BACKUP.final:
                ended.append(name)
    for name in ended:
        with contextlib.suppress(errors.BackendError):
            repo.backend.delete(name)


def _release_job_lock(deps: Deps, job: BackupJob) -> None:
    """The job ended: its lock on the vault goes (a store that fails now leaves it to
    age out, ``locks.STALE_AFTER``, or to the next claim into the vault)."""
    try:
        vault = _vault_of(deps, job)
        with vaults.open_repository(deps, vault, cached=True, load_index=False) as repo:
            locks.release_job_lock(repo.backend, job.job_id)
    except (SnowvaultError, *STORE_TROUBLE):
        log.warning("job %s: its vault lock was not released; it ages out", job.job_id)


def release_locks_of_lost(deps: Deps, recovered: Sequence[Any]) -> None:
    """Backup jobs whose lease ran out and that recovery ended (FAILED, ABORTED) let go
    of their vault lock now, not at the next claim into the vault or when it ages out
    (meanwhile every prune of the vault would meet it). A job retried keeps it: its next
    claim holds it again. A job that never had one costs a listing of ``locks/``."""
    for r in recovered:
        job = r.job
        if isinstance(job, BackupJob) and r.state in job_rules.BACKUP.final:
            _release_job_lock(deps, job)


@contextmanager
def _store_trouble() -> Iterator[None]:
    """Storage errors inside an agent call answer Unavailable (retryable, the repository
    is opened afresh by the next try), never a not-found the agent would read as "your
    lease is gone" and drop a healthy job for."""
    try:
        yield
    except (*STORE_TROUBLE, locks.RepositoryLocked) as exc:  # a prune holds it: later
        raise Unavailable(detail=f"the vault's store: {exc}; ask again") from exc


def _key_context(job_id: str, attempt: int) -> bytes:
    return f"agent-job|{job_id}|{attempt}".encode()


def _box(deps: Deps) -> crypto.SecretBox:
    if deps.resource_secrets is None:
        raise InvalidInput(detail="this server has no root key box; agents cannot run jobs")
    return deps.resource_secrets


def _never_gone() -> bool:
    return False


def claim(
    deps: Deps,
    caller: Caller,
    *,
    wait_seconds: float,
    lease_seconds: object,
    gone: Callable[[], bool] = _never_gone,
) -> ClaimedJob | ClaimedRestore | None:
    """AgentClaimJob: the oldest waiting backup job of a resource on the caller's host
    (else the oldest restore job of a point of one), leased to it, with a fresh data
    key and the resource's own secrets; long-polls up to ``wait_seconds`` (at most
    :data:`MAX_WAIT_SECONDS`). A job an agent cannot run (a group) is ended FAILED with
    the reason, and the next one is tried. ``gone``: whether the asking connection has
    closed; the poll stops at once and claims nothing (an agent killed or restarted
    mid-poll must not be leased a job no process of it will hear of)."""
    lease = _lease(lease_seconds)
    agent = _me(deps, caller)
    polls = max(1, int(min(max(wait_seconds, 0.0), MAX_WAIT_SECONDS) / POLL_SECONDS))
    if polls == 1:
        return _claim_polls(deps, caller, agent, lease, 1, gone)
    if not _POLL_SLOTS.acquire(blocking=False):
        return _claim_polls(deps, caller, agent, lease, 1, gone)  # busy: look once
    try:
        return _claim_polls(deps, caller, agent, lease, polls, gone)
    finally:
        _POLL_SLOTS.release()


def _claim_polls(
    deps: Deps,
    caller: Caller,
    agent: catalog.agents.Agent,
    lease: int,
    polls: int,
    gone: Callable[[], bool],
) -> ClaimedJob | ClaimedRestore | None:
    worker = _worker(agent)
    with catalog.db.transaction(deps.engine) as conn:
        now = deps.clock.now()
        catalog.agents.seen(conn, caller.principal_arn, version=agent.version or "-", now=now)
    for kind in (backup_jobs.JOB_KIND, restore_jobs.JOB_KIND):
        kind.recover_held(deps, worker, HELD_MESSAGE)
    for n in range(polls):
        if gone():
            return None
        job = _claim_labelled(deps, catalog.jobs.QUEUE, worker, lease)
        if job is None:
            restore = _claim_restore(deps, agent, worker, lease)
            if restore is not None:
                return restore
            if n + 1 < polls:
                threading.Event().wait(POLL_SECONDS)
            continue
        backup_jobs.JOB_KIND.notify(deps, job.job_id)
        try:
            claimed = _prepare(deps, agent, job, lease)
        except CLAIM_TROUBLE as exc:
            if job.attempts >= job.max_attempts:  # not for ever: a store that stays so
                _fail(deps, job, worker, str(exc))
                continue
            _hand_back(deps, job, worker, exc)  # a healthy job: back to the queue
            raise Unavailable(detail=f"the vault's store: {exc}; ask again") from exc
        except SnowvaultError as exc:  # the vault's key is disabled, ...: end it now
            _fail(deps, job, worker, str(exc))
            continue
        if claimed is not None:
            return claimed
    return None


HELD_MESSAGE = (
    "its agent asked for new work without ending this attempt (an answer lost on the "
    "way, or the agent restarted)"
)
"""The status of a job still leased to an agent that claims again. An agent runs one job
at a time and claims only between jobs, so such a job is one it does not know it holds:
the answer of a claim that leased it never reached the agent (a connection reset, a
request the server finished after its sender died), or the agent restarted mid-job. It
is retried (or FAILED, attempts spent) now instead of when its lease runs out, which on
a long lease is a long wait and on the test-mode clock is never."""


CLAIM_TROUBLE = (
    errors.ObjectNotFound,
    errors.ShortRead,
    errors.TransientBackendError,
    locks.RepositoryLocked,
)
"""What a claim's opening of the vault may meet for a moment (an index segment compacted
away under the reader, the store away, a prune holding the vault past the claim's wait
for its job lock): the job is handed back, not failed, while it has attempts left."""


def _hand_back(deps: Deps, job: BackupJob, worker: str, exc: BaseException) -> None:
    """A job claimed while its vault's store failed under the reader: PENDING again, for
    this or another agent's next claim, rather than FAILED for a moment's trouble."""
    with catalog.db.transaction(deps.engine) as conn:
        catalog.jobs.QUEUE.release(
            conn, job_id=job.job_id, worker_id=worker, status_message=f"{exc}"[:900]
        )
    backup_jobs.JOB_KIND.notify(deps, job.job_id)


NOT_THIS_ACCOUNT = "the job is not of its agent's account; no agent runs it"
"""How a job whose worker label names an agent of another account ends when that agent
claims it (labels carry the account; a job so labelled would be a bug elsewhere, and
the claim never hands one account's secrets, metadata or keys to another's host)."""


def _prepare(
    deps: Deps, agent: catalog.agents.Agent, job: BackupJob, lease: int
) -> ClaimedJob | None:
    if job.account_id != agent.account_id:  # a label is no proof of the account
        _fail(deps, job, _worker(agent), NOT_THIS_ACCOUNT)
        return None
    with catalog.db.read_transaction(deps.engine) as conn:
        resource = catalog.resources.get(conn, job.resource_arn)
        vault = catalog.vaults.get_by_arn(conn, job.backup_vault_arn)
    worker = _worker(agent)
    if job.is_parent or resource["resource_type"] not in SUPPORTED_TYPES:
        message = (
            f"agents back up {', '.join(sorted(SUPPORTED_TYPES))} resources, "
            f"not {resource['resource_type']}"
        )
        _fail(deps, job, worker, message)
        return None
    if resource["worker_label"] != worker:  # never another host's source or secrets
        _fail(deps, job, worker, f"the resource is not on host {agent.host}")
        return None
    secrets = resources.worker_secrets(deps, resource["arn"])
    with vaults.open_repository(deps, vault, cached=True, load_index=False) as repo:
        _hold_job_lock(deps, repo, job.job_id, wait_seconds=JOB_LOCK_WAIT_SECONDS)
        direct = s3.direct_store(repo.backend) is not None
        scope = keyed_packs.agent_scope(agent.account_id, agent.host)
        keys = JobKeys(
            agent_blobs.new_job_key(),
            repo.scoped_id_key(scope) if direct else repo.delegated_id_key(),
            agent_chunker(repo.chunker_params).to_dict(),
            direct=direct,
            pack_size=direct_pack_size(repo.config.pack_size) if direct else 0,
            ask=job.attempts > 1 or _parent_point(deps, job) is not None,
        )
    sealed = _box(deps).seal(keys.job_key, _key_context(job.job_id, job.attempts))
    with catalog.db.transaction(deps.engine) as conn:
        catalog.agents.put_job_key(
            conn,
            job_id=job.job_id,
            attempt=job.attempts,
            host=agent.host,
            sealed_key=sealed,
            now=deps.clock.now(),
        )
    return ClaimedJob(job, resource, keys, lease, secrets)


def agent_chunker(params: ChunkerParams) -> ChunkerParams:
    """The vault's chunker with chunks of at most :data:`AGENT_MAX_CHUNK` (the same for
    every agent job of the vault, so points of one resource still deduplicate)."""
    top = min(params.max_size, AGENT_MAX_CHUNK)
    low = min(params.min_size, top // 4)
    return dataclasses.replace(
        params, min_size=low, avg_size=max(low, min(params.avg_size, top // 2)), max_size=top
    )


J = TypeVar("J", BackupJob, RestoreJob)


def _lease_check(
    deps: Deps,
    caller: Caller,
    job_id: object,
    get: Callable[[Any, str, str], J],
    running: Callable[[J], bool],
) -> tuple[J, catalog.agents.Agent, bytes]:
    """The caller's running job ``job_id`` (read by ``get``), its agent and its data key;
    NotFound for any job that is not running under the caller's lease and attempt
    (another host's or tenant's, ended, lost, unknown, of the other kind). The one check
    every agent data call goes through, for backups and restores alike."""
    if not isinstance(job_id, str) or not job_id:
        raise InvalidInput(detail="JobId is required")
    agent = _me(deps, caller)
    with catalog.db.read_transaction(deps.engine) as conn:
        try:
            job: J | None = get(conn, job_id, caller.account_id)
        except NotFound:
            job = None
        stored = catalog.agents.job_key(conn, job_id)
    if (
        job is None
        or job.lease_owner != _worker(agent)
        or not running(job)
        or stored is None
        or stored[0] != job.attempts
        or stored[1] != agent.host
    ):
        raise _job_gone(job_id)
    return job, agent, _box(deps).open(stored[2], _key_context(job_id, job.attempts))


def _leased(deps: Deps, caller: Caller, job_id: object) -> _Leased:
    """The caller's running backup job ``job_id`` with its data key (:func:`_lease_check`)."""
    job, agent, key = _lease_check(
        deps,
        caller,
        job_id,
        lambda conn, jid, account: catalog.jobs.get(conn, jid, account_id=account),
        lambda j: j.state == job_rules.BackupJobState.RUNNING,
    )
    return _Leased(job, agent.host, _worker(agent), key)


def heartbeat(
    deps: Deps,
    caller: Caller,
    job_id: object,
    *,
    lease_seconds: object,
    progress: dict[str, float],
) -> str:
    """AgentHeartbeat: renew the lease, store progress; the job's state (ABORTING: stop)."""
    if _is_restore(deps, caller, job_id):
        return restore_heartbeat(
            deps, caller, job_id, lease_seconds=lease_seconds, progress=progress
        )
    leased = _leased(deps, caller, job_id)
    state = backup_jobs.JOB_KIND.heartbeat(
        deps, leased.job.job_id, leased.worker, _lease(lease_seconds), progress
    )
    if state is None:
        raise _job_gone(leased.job.job_id)
    _refresh_job_lock(deps, leased.job)
    return state


def _refresh_job_lock(deps: Deps, job: BackupJob) -> None:
    """Keep the job's vault lock fresh (one listing while it is; taken again if it was
    lost). Never fails the beat: the lease is what keeps the job, and a manifest checks
    its lock again before it relies on it (:func:`_commit_point`)."""
    try:
        with vaults.open_repository(
            deps, _vault_of(deps, job), cached=True, load_index=False
        ) as repo:
            _hold_job_lock(deps, repo, job.job_id, wait_seconds=0)
    except (SnowvaultError, *STORE_TROUBLE) as exc:
        log.warning("job %s: its vault lock was not refreshed (%s); tried again", job.job_id, exc)


def _parent_set(deps: Deps, job: BackupJob, repo: Repository) -> frozenset[bytes]:
    """The blob ids of the resource's latest point in the job's vault (what
    AgentHasBlobs may answer about), computed once per job attempt."""
    key = (job.job_id, job.attempts)
    if key in _PARENT_SETS:
        return _PARENT_SETS[key]
    parent = _parent_point(deps, job)
    found: frozenset[bytes] = frozenset()
    manifest = None
    if parent:
        with contextlib.suppress(errors.RecoveryPointNotFound):  # not a listing: it grows
            manifest = repo.load_manifest(parent)
    if manifest is not None:
        found = frozenset(_blobs_of(repo, manifest))
    while len(_PARENT_SETS) >= _PARENT_SETS_KEPT:
        _PARENT_SETS.pop(next(iter(_PARENT_SETS)))
    _PARENT_SETS[key] = found
    return found


def _parent_point(deps: Deps, job: BackupJob) -> str | None:
    """The engine id of the resource's latest point in the job's vault, if any."""
    with catalog.db.read_transaction(deps.engine) as conn:
        page = catalog.recovery_points.list_by_vault(
            conn,
            vault_arn=job.backup_vault_arn,
            filters=catalog.recovery_points.RecoveryPointFilters(resource_arn=job.resource_arn),
            limit=1,
        )
    return page.items[0].engine_recovery_point_id if page.items else None


def _blobs_of(repo: Repository, manifest: dict[str, Any]) -> set[bytes]:
    """Every blob id a point's trees reach: through the tree check's batched reads and
    memory when its trees pass that check (an agent's point), else as prune reads them."""
    root = manifest.get("tree")
    if not isinstance(root, str):
        return set()
    try:
        return agent_trees.check(repo, root)
    except InvalidInput:  # a point the server's worker made may hold what agents may not
        return prune.used_blobs(repo, [manifest])


def _vault_of(deps: Deps, job: BackupJob) -> catalog.db.Record:
    with catalog.db.read_transaction(deps.engine) as conn:
        return catalog.vaults.get_by_arn(conn, job.backup_vault_arn)


def _hex_ids(values: object) -> list[bytes]:
    if not isinstance(values, list) or len(values) > MAX_BLOB_IDS:
        raise InvalidInput(detail=f"BlobIds must be a list of at most {MAX_BLOB_IDS} ids")
    out = []
    for value in values:
        if not isinstance(value, str) or len(value) != 64:
            raise InvalidInput(detail="a blob id is 64 hex digits")
        try:
            out.append(bytes.fromhex(value))
        except ValueError:
            raise InvalidInput(detail="a blob id is 64 hex digits") from None
    return out


def has_blobs(deps: Deps, caller: Caller, job_id: object, blob_ids: object) -> list[str]:
    """AgentHasBlobs: which of ``blob_ids`` the parent point of the job's resource holds,
    or an earlier attempt of the same job stored (only those: an agent cannot probe the
    rest of the vault)."""
    ids = _hex_ids(blob_ids)
    leased = _leased(deps, caller, job_id)
    known = _PARENT_SETS.get((leased.job.job_id, leased.job.attempts))
    if known is None:  # the repository is opened (its index read) once per attempt
        with (
            _store_trouble(),
            vaults.open_repository(deps, _vault_of(deps, leased.job), cached=True) as repo,
        ):
            known = _parent_set(deps, leased.job, repo)
    with _UPLOADED_LOCK:
        stored = set(_UPLOADED.get(leased.job.job_id, ()))
    return [i.hex() for i in ids if i in known or i in stored]


@dataclass(frozen=True)
class BlobPart:
    """One uploaded blob, whole: a sealed blob always fits one request (agent chunks are
    at most :data:`AGENT_MAX_CHUNK`; a larger one, a huge tree, is sent alone), so no
    server keeps a part of one between calls."""

    blob_id: bytes
    kind: str
    data: bytes = field(repr=False)


def put_blobs(deps: Deps, caller: Caller, job_id: object, blobs: list[BlobPart]) -> int:
    """AgentPutBlobs: open every (whole) blob with the job's key, check its id against
    its content under the vault's id key, then store them all (one pack, indexed) into
    the vault; any blob that fails refuses the whole request. The number stored."""
    leased = _leased(deps, caller, job_id)
    checked: list[tuple[BlobPart, bytes]] = []
    for item in blobs:
        try:
            plaintext = agent_blobs.open_blob(
                leased.job_key, leased.job.job_id, item.kind, item.blob_id, item.data
            )
        except crypto.AuthenticationFailed:
            raise InvalidInput(
                detail=f"blob {item.blob_id.hex()} was not sealed for this job"
            ) from None
        try:
            data = compression.unpack(plaintext)
        except Exception:  # zstd's own errors too: a sealed but malformed body
            raise InvalidInput(detail=f"blob {item.blob_id.hex()} does not decompress") from None
        checked.append((item, data))
    if not checked:
        return 0
    vault = _vault_of(deps, leased.job)
    with _writing_into(deps, vault) as repo:
        for item, data in checked:
            if repo.blob_id(data) != item.blob_id:
                raise InvalidInput(detail=f"blob {item.blob_id.hex()} does not match its content")
        for item, data in checked:
            repo.add_blob("tree" if item.kind == "tree" else "data", data)
        repo.flush()
    with _UPLOADED_LOCK:
        while len(_UPLOADED) >= _PARENT_SETS_KEPT and leased.job.job_id not in _UPLOADED:
            _UPLOADED.pop(next(iter(_UPLOADED)))  # jobs that ended without us hearing
        _UPLOADED.setdefault(leased.job.job_id, set()).update(i.blob_id for i, _ in checked)
    return len(checked)


MANIFEST_WAIT_SECONDS = 120
"""How long a repeated AgentPutManifest waits for the one of its job still running
(the agent waits 300 s for an answer); then it answers Unavailable and is asked again."""
_REPEATS = "AgentPutManifest"
"""The idempotency operation under which each completing call's answer is kept."""


def put_manifest(
    deps: Deps, caller: Caller, job_id: object, manifest: object, total: int
) -> tuple[str, str]:
    """AgentPutManifest: commit the point: every blob its trees reach must be in the
    vault; the server sets what names the point (metadata, hostname, parent). Records
    the recovery point and completes the job: (state, recovery point ARN).

    Safe to ask again (the agent does, when an answer is lost): one call of a job runs
    at a time across the fleet (``fleet_locks``; a second waits for the first), and
    the call that completed the job is answered again, the same state and
    RecoveryPointArn, when this agent repeats it (same job attempt, same manifest).
    A point whose recording failed, or found the lease gone, is left to the orphan
    prune (the vault is marked)."""
    try:
        _leased(deps, caller, job_id)  # only the lease holder takes the job's lock
    except NotFound:
        return _repeat(deps, caller, job_id, manifest)
    name = f"agent-manifest|{job_id}"
    with fleet_locks.hold(deps.engine, name, wait_seconds=MANIFEST_WAIT_SECONDS) as held:
        if not held:
            raise Unavailable(
                detail=f"another AgentPutManifest of job {job_id} is still running; ask again"
            )
        try:  # again: the call this one waited for may have completed the job
            leased = _leased(deps, caller, job_id)
        except NotFound:
            return _repeat(deps, caller, job_id, manifest)
        return _commit_point(deps, caller, leased, manifest, total)


def _digest(manifest: object) -> str:
    """The manifest as the agent sent it, hashed (a repeat sends the same body)."""
    body = json.dumps(manifest, sort_keys=True, separators=(",", ":"), default=str)
    return primitives.content_hash(body.encode()).hex()


def _token(job_id: str, attempt: int) -> str:
    return f"{job_id}|{attempt}"


def _repeat(deps: Deps, caller: Caller, job_id: object, manifest: object) -> tuple[str, str]:
    """What the call that completed ``job_id`` answered, when this call is that one
    again (this agent's host, the job's last attempt, the same manifest); else the
    job is gone (ResourceNotFound: the agent drops it)."""
    if not isinstance(job_id, str) or not job_id:
        raise InvalidInput(detail="JobId is required")
    agent = _me(deps, caller)
    with catalog.db.read_transaction(deps.engine) as conn:
        try:
            job = catalog.jobs.get(conn, job_id, account_id=caller.account_id)
        except NotFound:
            raise _job_gone(job_id) from None
        answer = catalog.idempotency.lookup(
            conn,
            account_id=caller.account_id,
            operation=_REPEATS,
            token=_token(job.job_id, job.attempts),
        )
    if (
        isinstance(answer, dict)
        and answer.get("Host") == agent.host
        and answer.get("Manifest") == _digest(manifest)
    ):
        return str(answer["State"]), str(answer["RecoveryPointArn"])
    raise _job_gone(job_id)


def _commit_point(
    deps: Deps, caller: Caller, leased: _Leased, manifest: object, total: int
) -> tuple[str, str]:
    """The body of :func:`put_manifest`, under the job's lock and lease."""
    job = leased.job
    if not isinstance(manifest, dict):
        raise InvalidInput(detail="Manifest must be an object")
    try:
        parsed = snapshots.Manifest.from_dict(manifest)
    except (KeyError, TypeError, ValueError, errors.IntegrityError) as exc:
        raise InvalidInput(detail=f"Manifest is not a recovery point manifest: {exc}") from None
    with catalog.db.read_transaction(deps.engine) as conn:
        resource = catalog.resources.get(conn, job.resource_arn)
    kinds = MANIFEST_KINDS.get(resource["resource_type"], OTHER_KINDS)
    if parsed.kind not in kinds:  # what the type's restore reads
        raise InvalidInput(
            detail=f"Manifest kind must be {' or '.join(sorted(kinds))} for a "
            f"{resource['resource_type']}, not {parsed.kind!r}"
        )
    metadata: dict[str, Any] = {
        "resource_arn": resource["arn"],
        "resource_type": resource["resource_type"],
        "recovery_point_arn": job.recovery_point_arn,
        "backup_job_id": job.job_id,
        "agent_host": leased.host,
    }
    note = _plugin_note(parsed.metadata.get("plugin"))
    if note:
        metadata["plugin"] = note
    vault = _vault_of(deps, job)
    parsed = dataclasses.replace(
        parsed,
        hostname=leased.host,
        parent=None,
        root=None,  # the target keeps its own mode, owner and xattrs on restore
        metadata=metadata,
    )
    with _writing_into(deps, vault, index=False) as repo:
        # the job's lock, taken again if it was lost (then a prune may have run since the
        # commits: the index read below shows it, and a point missing blobs is refused)
        _hold_job_lock(deps, repo, job.job_id, wait_seconds=JOB_LOCK_WAIT_SECONDS)
        repo.reload_index()
        used = _reached(repo, parsed.tree)
        missing = [b for b in used if not repo.has_any_blob(b)]
        if missing:
            raise InvalidInput(
                detail=f"the manifest names {len(missing)} blob(s) the vault lacks, "
                f"e.g. {missing[0].hex()}"
            )
        rp_id = repo.save_manifest(parsed.to_dict())
        # the manifest names the job's packs now: a prune keeps them without the lock
        with contextlib.suppress(*STORE_TROUBLE):
            locks.release_job_lock(repo.backend, job.job_id)
    result = snapshots.BackupResult(rp_id, parsed)
    try:
        state = backup_jobs.record_agent_point(
            deps, job, leased.worker, vault, dict(resource), result, total
        )
    except BaseException:
        if not _remember_if_recorded(deps, caller, leased, rp_id, manifest):
            _orphaned(deps, job)
        raise
    if state == "LOST":  # the lease ran out (or a revocation ended the job) meanwhile
        _orphaned(deps, job)
        raise _job_gone(job.job_id)
    _remember(deps, caller, leased, state, manifest)
    _forget(deps, job.job_id)
    return state, job.recovery_point_arn


def _reached(repo: Repository, root_tree: str) -> set[bytes]:
    """:func:`agent_trees.check`, a tree the vault lacks refused (InvalidInput: the agent's
    mistake, the job fails) and a store that failed under the walk retryable."""
    try:
        return agent_trees.check(repo, root_tree)
    except InvalidInput:
        raise
    except errors.IntegrityError as exc:
        if isinstance(exc.__cause__, STORE_TROUBLE):  # a pack deleted under the reader
            raise Unavailable(detail=f"the vault's store: {exc}; ask again") from exc
        raise InvalidInput(detail=f"the manifest names a tree the vault lacks: {exc}") from None
    except STORE_TROUBLE:
        raise
    except (KeyError, ValueError, SnowvaultError) as exc:
        raise InvalidInput(detail=f"the manifest names a tree the vault lacks: {exc}") from None


def _remember(deps: Deps, caller: Caller, leased: _Leased, state: str, manifest: object) -> None:
    """Keep this call's answer for its repeats (:func:`_repeat`)."""
    answer = {
        "State": state,
        "RecoveryPointArn": leased.job.recovery_point_arn,
        "Host": leased.host,
        "Manifest": _digest(manifest),
    }
    with catalog.db.transaction(deps.engine) as conn:
        catalog.idempotency.remember(
            conn,
            account_id=caller.account_id,
            operation=_REPEATS,
            token=_token(leased.job.job_id, leased.job.attempts),
            result=answer,
            now=deps.clock.now(),
        )


def _remember_if_recorded(
    deps: Deps, caller: Caller, leased: _Leased, rp_id: str, manifest: object
) -> bool:
    """After recording raised: whether the point was recorded all the same (a failure
    after the job completed, protecting the point under a vault lock); then its answer
    is kept for the repeat the agent will send."""
    try:
        with catalog.db.read_transaction(deps.engine) as conn:
            job = catalog.jobs.get(conn, leased.job.job_id)
            rp = catalog.recovery_points.find(conn, job.recovery_point_arn or "")
    except SnowvaultError:
        return False
    if rp is None or rp.engine_recovery_point_id != rp_id:
        return False
    _remember(deps, caller, leased, str(job.state), manifest)
    return True


def _orphaned(deps: Deps, job: BackupJob) -> None:
    """The manifest this call saved names no recorded point: the orphan prune forgets it
    (and what only it reaches) once no backup writes into the vault."""
    with catalog.db.transaction(deps.engine) as conn:
        vaults.mark_orphans(conn, job.backup_vault_arn, deps.clock.now())


# ------------------------------------------------------------------ direct uploads to S3

PRESIGN_SECONDS = 15 * 60
MAX_PACKS_PER_CALL = 32
MAX_PACK_BYTES = 64 * 1024 * 1024
DIRECT_PACK_FACTOR = 4
"""An agent's direct packs target this many times the vault's pack size: each pack
costs the server a HEAD and a presign, its commit a ranged read and a share of an index
segment, whatever its size, so larger packs are less of the server's CPU per GiB (the
agent spools them to a file: its memory does not grow with them)."""
DIRECT_PACK_ROOM = 8 * 1024 * 1024
"""What a direct pack's target leaves below :data:`MAX_PACK_BYTES`: the agent closes a
pack once its blobs and header reach the target, so the last blob (a sealed chunk, at
most 2 MiB and a little) and its header entry still fit what a presign accepts."""


def direct_pack_size(vault_pack_size: int) -> int:
    """The pack size an agent's claim answers for a vault whose store is S3."""
    return max(1, min(DIRECT_PACK_FACTOR * vault_pack_size, MAX_PACK_BYTES - DIRECT_PACK_ROOM))


_MD5_B64 = re.compile(r"^[A-Za-z0-9+/]{22}==$")


@dataclass(frozen=True)
class PackUpload:
    """One pack an agent asks to upload (presign) or has uploaded (commit)."""

    pack_id: str
    size: int
    content_md5: str


@dataclass(frozen=True)
class Presigned:
    pack_id: str
    url: str = field(repr=False)
    headers: dict[str, str]
    exists: bool = False


def parse_packs(value: object, member: str = "Packs") -> list[PackUpload]:
    """``[{PackId, Size, ContentMD5}]``, the ``member`` (Presign, Commit) of a request."""
    if not isinstance(value, list) or not 0 < len(value) <= MAX_PACKS_PER_CALL:
        raise InvalidInput(detail=f"{member} must be a list of 1-{MAX_PACKS_PER_CALL} packs")
    out = []
    for item in value:
        if not isinstance(item, dict):
            raise InvalidInput(detail="each pack is an object {PackId, Size, ContentMD5}")
        try:
            pack_id = keyed_packs.check_pack_id(item.get("PackId"))
        except ValueError as exc:
            raise InvalidInput(detail=f"PackId: {exc}") from None
        size, md5 = item.get("Size"), item.get("ContentMD5")
        if isinstance(size, bool) or not isinstance(size, int) or not 0 < size <= MAX_PACK_BYTES:
            raise InvalidInput(detail=f"Size must be an integer of 1-{MAX_PACK_BYTES} bytes")
        if not isinstance(md5, str) or not _MD5_B64.match(md5):
            raise InvalidInput(detail="ContentMD5 must be the base64 MD5 of the pack (24 chars)")
        out.append(PackUpload(pack_id, size, md5))
    if len({p.pack_id for p in out}) != len(out):
        raise InvalidInput(detail="a pack is named twice")
    return out


def _job_pack_key(leased: _Leased, account_id: str) -> keyed_packs.PackKey:
    return keyed_packs.PackKey(leased.job_key, keyed_packs.agent_scope(account_id, leased.host))


def _direct(repo: Repository) -> s3.S3Backend:
    store = s3.direct_store(repo.backend)
    if store is None:
        raise InvalidInput(
            detail="this vault's store is not S3: upload blobs with AgentPutBlobs Blobs"
        )
    return store


def presign_packs(
    deps: Deps, caller: Caller, job_id: object, uploads: list[PackUpload]
) -> list[Presigned]:
    """AgentPutBlobs ``Presign`` alone (:func:`put_packs`)."""
    return put_packs(deps, caller, job_id, presign=uploads)[1]


def commit_packs(deps: Deps, caller: Caller, job_id: object, uploads: list[PackUpload]) -> int:
    """AgentPutBlobs ``Commit`` alone (:func:`put_packs`)."""
    return put_packs(deps, caller, job_id, commit=uploads)[0]


def put_packs(
    deps: Deps,
    caller: Caller,
    job_id: object,
    *,
    commit: Sequence[PackUpload] = (),
    presign: Sequence[PackUpload] = (),
) -> tuple[int, list[Presigned]]:
    """AgentPutBlobs ``Commit`` and/or ``Presign`` in one call (an agent commits the
    pack it put last and asks for the next one's URL together: one call per pack), the
    commits first. (packs indexed, URLs)."""
    leased = _leased(deps, caller, job_id)
    key = _job_pack_key(leased, caller.account_id)
    stored: list[bytes] = []
    with _writing_into(deps, _vault_of(deps, leased.job), index=False) as repo:
        store = _direct(repo)
        if commit:
            stored = _commit(repo, store, key, commit)
        signed = _presign(repo, store, key, presign) if presign else []
        if commit:
            repo.compact_pack_keys()  # one record per pack otherwise, all read by every open
    if stored:
        with _UPLOADED_LOCK:
            while len(_UPLOADED) >= _PARENT_SETS_KEPT and leased.job.job_id not in _UPLOADED:
                _UPLOADED.pop(next(iter(_UPLOADED)))
            _UPLOADED.setdefault(leased.job.job_id, set()).update(stored)
    return len(commit), signed


def _presign(
    repo: Repository, store: s3.S3Backend, key: keyed_packs.PackKey, uploads: Sequence[PackUpload]
) -> list[Presigned]:
    """Short-lived PUT URLs, one per pack, for the keys the server derives from each pack
    id (``data/<hh>/<id>``; the agent never names a key), each bound to its Content-MD5
    and refusing to replace an object. The packs' key record (this attempt's job key,
    the host's id scope) is written first, so a pack that lands is always readable and
    prunable. A pack id the store already holds is answered ``exists`` when it is this
    job's own (a retried upload), else refused."""
    out: list[Presigned] = []
    fresh = []
    for upload in uploads:
        known = repo.pack_key(upload.pack_id)
        if known is not None and known != key:
            raise InvalidInput(detail=f"pack {upload.pack_id} is not this job's to upload")
        name = packs.pack_name(upload.pack_id)
        if repo.backend.exists(name):
            if known is None:  # the vault's own pack, or one nobody may name
                raise InvalidInput(detail=f"pack {upload.pack_id} is not this job's to upload")
            out.append(Presigned(upload.pack_id, "", {}, exists=True))
            continue
        fresh.append(upload)
    if fresh:
        ids = [u.pack_id for u in fresh]
        record = repo.put_pack_keys(ids, key)
        index_cache.remember_record(  # the next call's listing shows it: not read back
            vaults.STORE_CACHE.entry(repo.backend.location), record, [(ids, key)]
        )
    for upload in fresh:
        signed = store.presign_put(  # the store refuses other bytes under the pack's name
            packs.pack_name(upload.pack_id),
            upload.content_md5,
            PRESIGN_SECONDS,
            checksum_sha256=base64.b64encode(bytes.fromhex(upload.pack_id)).decode(),
        )
        out.append(Presigned(upload.pack_id, signed.url, signed.headers))
    return out


def _commit(
    repo: Repository, store: s3.S3Backend, key: keyed_packs.PackKey, uploads: Sequence[PackUpload]
) -> list[bytes]:
    """Index packs the agent put to the store. For each, one ranged read of its end
    answers the store's size and ETag of the object (they must be the size and MD5 the
    agent declared) and its sealed header, which must open with this attempt's job
    key: a header that opens was sealed by this job. Their entries become one index
    segment (all or nothing: one pack refused, none indexed). The blob ids stored."""
    found: dict[str, list[packs.PackEntry]] = {}
    for upload in uploads:
        known = repo.pack_key(upload.pack_id)
        if known is not None and known != key:
            raise InvalidInput(detail=f"pack {upload.pack_id} is not this job's")
        found[upload.pack_id] = _keyed_header(repo, store, upload, key)
        if known is None:  # a prune dropped the record of a pack not yet landed
            repo.put_pack_keys([upload.pack_id], key)  # (only once its header opened)
    # one segment for the call's packs (what repo.add_keyed_pack does per pack, less
    # adding to the in-memory index this call never reads: ~1,000 rows a pack)
    for pack_id in found:
        if repo.pack_key(pack_id) is None:
            raise errors.IntegrityError(name=packs.pack_name(pack_id), detail="no pack key")
    repo.write_segment(index.Segment(found))
    return [e.blob_id for entries in found.values() for e in entries]


HEADER_READ = 128 * 1024
"""What a commit reads from a pack's end: its sealed header and tail in one read when
the header fits (about 2,500 blobs), else a second read for the rest."""


def _keyed_header(
    repo: Repository, store: s3.S3Backend, upload: PackUpload, key: keyed_packs.PackKey
) -> list[packs.PackEntry]:
    """The entries of the pack ``upload`` declares, from its sealed header alone (one
    ranged read of its end, whose answer also carries the object's size and ETag; a
    second read when the header is longer), opened with ``key``: InvalidInput unless the
    object is the one declared, its header opens and describes blobs that fit it. Read
    before any record names the pack, so a pack the job's key does not open (the
    vault's own, another job's) never gets a record giving it that key."""
    pack_id = upload.pack_id
    name = packs.pack_name(pack_id)
    try:
        last, size, etag = store.tail_with_etag(name, HEADER_READ)
    except errors.ObjectNotFound:
        raise InvalidInput(detail=f"pack {pack_id} is not in the store") from None
    except errors.BackendError as exc:
        raise InvalidInput(detail=f"pack {pack_id}: {exc}") from None
    md5_hex = base64.b64decode(upload.content_md5).hex()
    if size != upload.size or etag != md5_hex:
        raise InvalidInput(
            detail=f"pack {pack_id} in the store is not the one declared (size {size}, ETag {etag})"
        )
    try:
        if size < packs.TAIL_SIZE or len(last) != min(size, HEADER_READ):
            raise packs.PackFormatError("too short to be a pack")
        end = len(last)  # the header and its tail, mostly in one read
        hlen = packs.header_length(last[-packs.TAIL_SIZE :])
        if hlen + packs.TAIL_SIZE > size:
            raise packs.PackFormatError("header length beyond the pack")
        if hlen + packs.TAIL_SIZE <= end:
            sealed = last[end - packs.TAIL_SIZE - hlen : end - packs.TAIL_SIZE]
        else:
            sealed = repo.backend.get(name, size - packs.TAIL_SIZE - hlen, hlen)
        entries = packs.decode_header(primitives.Sealer(key.key), sealed)
    except (packs.PackFormatError, errors.BackendError) as exc:
        raise InvalidInput(detail=f"pack {pack_id}: {exc}") from None
    end = max((e.offset + e.length for e in entries), default=0)
    if not entries or end + hlen + packs.TAIL_SIZE != size:
        raise InvalidInput(detail=f"pack {pack_id}: its header does not describe the object")
    if any(e.kind not in packs.KIND_NAMES for e in entries):
        raise InvalidInput(detail=f"pack {pack_id}: a blob of an unknown kind")
    return entries


MANIFEST_KINDS = {"Directory": frozenset({"directory"})}
OTHER_KINDS = frozenset({"stream", "entries"})
MAX_NOTE_CHARS = 64 * 1024


def _plugin_note(value: object) -> dict[str, Any]:
    """The plugin facts an agent recorded (``Sink.note``: a server version, the
    databases, a ``warning`` that becomes the job's StatusMessage): a JSON object of
    bounded size, kept with the point for the restore's ``Source.info``. They are the
    host's word about its own data, as the data itself is."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidInput(detail="Manifest metadata.plugin must be an object")
    if len(json.dumps(value)) > MAX_NOTE_CHARS:
        raise InvalidInput(detail=f"Manifest metadata.plugin is over {MAX_NOTE_CHARS} characters")
    warning = value.get("warning")
    if warning is not None and not isinstance(warning, str):
        raise InvalidInput(detail="Manifest metadata.plugin.warning must be a string")
    return dict(value)


def fail(deps: Deps, caller: Caller, job_id: object, message: object) -> None:
    """AgentFailJob: the agent could not finish; the job ends FAILED with its message."""
    if _is_restore(deps, caller, job_id):
        fail_restore(deps, caller, job_id, message)
        return
    leased = _leased(deps, caller, job_id)
    _fail(deps, leased.job, leased.worker, _agent_says(leased.host, message))


def _agent_says(host: str, message: object) -> str:
    """The StatusMessage of a job an agent failed: its host and its (bounded) reason."""
    text = message if isinstance(message, str) and message else "the agent failed"
    return f"agent {host}: {text[:900]}"


def _fail(deps: Deps, job: BackupJob, worker: str, message: str) -> None:
    backup_jobs.JOB_KIND.end(deps, job, worker, "FAILED", status_message=message)
    backup_jobs.JOB_KIND.notify(deps, job.job_id, final_only=True)
    _forget(deps, job.job_id)
    _release_job_lock(deps, job)


def _forget(deps: Deps, job_id: str) -> None:
    with catalog.db.transaction(deps.engine) as conn:
        catalog.agents.drop_job_key(conn, job_id)
    with _UPLOADED_LOCK:
        _UPLOADED.pop(job_id, None)
    for key in [k for k in _PARENT_SETS if k[0] == job_id]:
        _PARENT_SETS.pop(key, None)


# ------------------------------------------------------------------ restores to an agent

MAX_READ_IDS = 64
_READABLE: dict[tuple[str, int], frozenset[bytes]] = {}
"""Per restore job attempt: the blob ids its point's trees reach (all AgentReadBlobs
may serve it), computed once at claim time."""
_READABLE_LOCK = threading.Lock()


_J = TypeVar("_J")


def _claim_labelled(
    deps: Deps, queue: catalog.queue.Queue[_J], worker: str, lease: int
) -> _J | None:
    """The next job of ``queue`` labelled for this agent (never an unlabelled one: the
    server's own worker runs those), leased to it; None when there is none."""
    with catalog.db.transaction(deps.engine) as conn:
        return queue.claim(
            conn,
            worker_id=worker,
            labels=[worker],
            lease_seconds=lease,
            now=deps.clock.now(),
            labelled_only=True,
        )


def _claim_restore(
    deps: Deps, agent: catalog.agents.Agent, worker: str, lease: int
) -> ClaimedRestore | None:
    job = _claim_labelled(deps, catalog.restore_jobs.QUEUE, worker, lease)
    if job is None:
        return None
    restore_jobs.JOB_KIND.notify(deps, job.restore_job_id)
    try:
        return _prepare_restore(deps, agent, job, lease)
    except CLAIM_TROUBLE as exc:
        if job.attempts < job.max_attempts:  # as a backup's claim (_claim_polls)
            with catalog.db.transaction(deps.engine) as conn:
                catalog.restore_jobs.QUEUE.release(
                    conn, job_id=job.restore_job_id, worker_id=worker,
                    status_message=f"{exc}"[:900],
                )  # fmt: skip
            restore_jobs.JOB_KIND.notify(deps, job.restore_job_id)
            raise Unavailable(detail=f"the vault's store: {exc}; ask again") from exc
        _end_restore(deps, job, worker, str(exc))
        return None
    except SnowvaultError as exc:  # the vault's key is disabled, the point is gone, ...
        _end_restore(deps, job, worker, str(exc))
        return None


def _prepare_restore(
    deps: Deps, agent: catalog.agents.Agent, job: RestoreJob, lease: int
) -> ClaimedRestore | None:
    worker = _worker(agent)
    if job.account_id != agent.account_id:  # a label is no proof of the account
        _end_restore(deps, job, worker, NOT_THIS_ACCOUNT)
        return None
    with catalog.db.read_transaction(deps.engine) as conn:
        rp = catalog.recovery_points.get(conn, job.recovery_point_arn)
        vault = catalog.vaults.get_by_arn(conn, rp.backup_vault_arn)
        row = catalog.resources.find(conn, rp.resource_arn)
    if job.is_parent or rp.resource_type not in SUPPORTED_TYPES:
        message = (
            f"agents restore {', '.join(sorted(SUPPORTED_TYPES))} points, not {rp.resource_type}"
        )
        _end_restore(deps, job, worker, message)
        return None
    resource: dict[str, Any] = {
        "ResourceType": rp.resource_type,  # the point's own plugin, whatever the caller named
        "ResourceArn": rp.resource_arn,
        "ResourceName": rp.resource_name or "",
        "Source": "",
        "Properties": {},
    }
    secrets: dict[str, str] = {}
    if row is not None and row["worker_label"] == worker:  # never another host's secrets
        resource["Source"] = row["source"] or ""
        resource["Properties"] = dict(row.get("properties") or {})
        secrets = resources.worker_secrets(deps, row["arn"])
    with vaults.open_repository(deps, vault, cached=True) as repo:
        manifest = repo.load_manifest(rp.engine_recovery_point_id or "")
        readable = frozenset(prune.used_blobs(repo, [manifest]))
    key = agent_blobs.new_job_key()
    sealed = _box(deps).seal(key, _key_context(job.restore_job_id, job.attempts))
    with catalog.db.transaction(deps.engine) as conn:
        catalog.agents.put_job_key(
            conn,
            job_id=job.restore_job_id,
            attempt=job.attempts,
            host=agent.host,
            sealed_key=sealed,
            now=deps.clock.now(),
        )
    with _READABLE_LOCK:
        while len(_READABLE) >= _PARENT_SETS_KEPT:
            _READABLE.pop(next(iter(_READABLE)))
        _READABLE[(job.restore_job_id, job.attempts)] = readable
    return ClaimedRestore(job, manifest, key, lease, resource, secrets)


@dataclass(frozen=True)
class _LeasedRestore:
    job: RestoreJob
    host: str
    worker: str
    job_key: bytes = field(repr=False)


def _leased_restore(deps: Deps, caller: Caller, job_id: object) -> _LeasedRestore:
    """The caller's running restore job ``job_id`` with its data key (:func:`_lease_check`)."""
    job, agent, key = _lease_check(
        deps,
        caller,
        job_id,
        lambda conn, jid, account: catalog.restore_jobs.get(conn, jid, account_id=account),
        lambda j: j.status == job_rules.RestoreJobStatus.RUNNING,
    )
    return _LeasedRestore(job, agent.host, _worker(agent), key)


def _is_restore(deps: Deps, caller: Caller, job_id: object) -> bool:
    if not isinstance(job_id, str) or not job_id:
        return False
    with catalog.db.read_transaction(deps.engine) as conn:
        try:
            catalog.restore_jobs.get(conn, job_id, account_id=caller.account_id)
        except NotFound:
            return False
    return True


def restore_heartbeat(
    deps: Deps, caller: Caller, job_id: object, *, lease_seconds: object, progress: dict[str, float]
) -> str:
    leased = _leased_restore(deps, caller, job_id)
    state = restore_jobs.JOB_KIND.heartbeat(
        deps, leased.job.restore_job_id, leased.worker, _lease(lease_seconds), progress
    )
    if state is None:
        raise _job_gone(leased.job.restore_job_id)
    return state


def read_blobs(
    deps: Deps, caller: Caller, job_id: object, blob_ids: object
) -> list[tuple[bytes, bytes]]:
    """AgentReadBlobs: the blobs (ids from the job's point only) of the caller's running
    restore job, each compressed and sealed under the job's key: (id, sealed)."""
    if not isinstance(blob_ids, list) or not 0 < len(blob_ids) <= MAX_READ_IDS:
        raise InvalidInput(detail=f"BlobIds must be a list of 1-{MAX_READ_IDS} ids")
    ids = _hex_ids(blob_ids)
    leased = _leased_restore(deps, caller, job_id)
    job = leased.job
    with _READABLE_LOCK:
        readable = _READABLE.get((job.restore_job_id, job.attempts))
    if readable is None:  # this server restarted since the claim: compute it again
        with catalog.db.read_transaction(deps.engine) as conn:
            rp = catalog.recovery_points.get(conn, job.recovery_point_arn)
        vault = _vault_of_arn(deps, rp.backup_vault_arn)
        with _store_trouble(), vaults.open_repository(deps, vault, cached=True) as repo:
            manifest = repo.load_manifest(rp.engine_recovery_point_id or "")
            readable = frozenset(prune.used_blobs(repo, [manifest]))
        with _READABLE_LOCK:
            _READABLE[(job.restore_job_id, job.attempts)] = readable
    outside = [i for i in ids if i not in readable]
    if outside:
        raise NotFound(kind=NOT_IN_POINT, name=outside[0].hex())
    out = []
    vault = _vault_of_arn(deps, job.backup_vault_arn or "")
    with _store_trouble(), vaults.open_repository(deps, vault, cached=True) as repo:
        for blob_id in ids:
            data = repo.get_blob(blob_id)
            sealed = agent_blobs.seal_blob(
                leased.job_key, job.restore_job_id, "data", blob_id, compression.pack(data)
            )
            out.append((blob_id, sealed))
    return out


def _vault_of_arn(deps: Deps, vault_arn: str) -> catalog.db.Record:
    with catalog.db.read_transaction(deps.engine) as conn:
        return catalog.vaults.get_by_arn(conn, vault_arn)


def finish_restore(deps: Deps, caller: Caller, job_id: object, *, files: int, size: int) -> str:
    """AgentFinishRestore: the agent wrote every file; the job ends COMPLETED."""
    leased = _leased_restore(deps, caller, job_id)
    result = restorer.RestoreResult(files=files, bytes=size)
    state = restore_jobs.finish(deps, leased.job, leased.worker, result)
    restore_jobs.JOB_KIND.notify(deps, leased.job.restore_job_id, final_only=True)
    _forget_restore(deps, leased.job.restore_job_id)
    return state


def fail_restore(deps: Deps, caller: Caller, job_id: object, message: object) -> None:
    leased = _leased_restore(deps, caller, job_id)
    _end_restore(deps, leased.job, leased.worker, _agent_says(leased.host, message))


def _end_restore(deps: Deps, job: RestoreJob, worker: str, message: str) -> None:
    line = " ".join(message.split())
    restore_jobs.JOB_KIND.end(deps, job, worker, "FAILED", status_message=line)
    restore_jobs.JOB_KIND.notify(deps, job.restore_job_id, final_only=True)
    _forget_restore(deps, job.restore_job_id)


def drop_caches() -> None:
    """Forget this server's memory of running jobs (stored ids, parent and readable
    sets) and of its vaults (the objects read, the trees checked), as when another
    server answers the next call: only slower, never wrong."""
    with _UPLOADED_LOCK:
        _UPLOADED.clear()
    with _READABLE_LOCK:
        _READABLE.clear()
    _PARENT_SETS.clear()
    vaults.STORE_CACHE.clear()
    agent_trees.forget()


def _forget_restore(deps: Deps, job_id: str) -> None:
    with catalog.db.transaction(deps.engine) as conn:
        catalog.agents.drop_job_key(conn, job_id)
    with _READABLE_LOCK:
        for key in [k for k in _READABLE if k[0] == job_id]:
            _READABLE.pop(key, None)
