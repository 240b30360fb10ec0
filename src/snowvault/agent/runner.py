"""The agent's loop: claim a job of this host (long poll), run its resource's plugin
here, upload what the vault lacks, commit; heartbeats keep the lease meanwhile.

    options = Options(endpoint, host, region, key_id, secret, allow_paths=["/srv"])
    run(options, stop=threading.Event(), say=print)

Every resource type an agent may hold (Directory, PostgreSQL, MySQL, SQLite, Redis,
S3, BlockDevice) runs through its own plugin here, exactly as the server's worker runs
it: into :class:`_Sink` (the engine's archiver and stream writers over
:class:`store.RemoteBlobStore`) for a backup, from
:class:`~snowvault.agent.restore.RemoteSource` for a restore.

Abuse cases: the server names the source, the target and the database host; the agent
judges them by its own rules before the plugin reads, writes or connects: paths by
``allow_paths`` (the host-path rule, symlinks resolved), hosts by ``allow_networks``
(the network-reach rule, every resolved address inside; loopback only by default), so
a server or a stolen admin key cannot make the agent reach outside them. A refusal ends
the job FAILED with one line. A job whose lease is lost (revoked, the server thought the
agent dead) is dropped: the server refuses its uploads. The resource's secrets (a
database password) arrive with the job and live only in the job's memory.
"""

from __future__ import annotations

import base64
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from snowvault import __version__, plugins
from snowvault.agent import client, store
from snowvault.agent import restore as agent_restore
from snowvault.control.model import host_paths
from snowvault.core.clock import Clock, SystemClock
from snowvault.core.errors import InvalidInput, SnowvaultError, Unavailable
from snowvault.engine import archiver, point_reading, stream_backup
from snowvault.engine import progress as engine_progress

Say = Callable[[str], None]


@dataclass(frozen=True)
class Options:
    endpoint: str
    host: str
    region: str
    access_key_id: str
    secret_access_key: str = field(repr=False)
    allow_paths: Sequence[str] = ()
    wait_seconds: float = 20.0
    allow_networks: Sequence[str] = ()
    """CIDRs the plugins may connect to (database servers, S3 endpoints); empty:
    loopback only."""
    lease_seconds: int = 60
    once: bool = False
    deny_paths: Sequence[str] = ()
    """Roots or per-component patterns never read or written, even under an allowed
    root (``--deny-path``)."""
    protect_paths: Sequence[str] = ()
    """Never read, written, or contained by a target: the agent's own credentials file
    (a restore over it, or a backup of it, would hand its keys around)."""


class _Sink:
    """The plugin's sink on the agent: one recovery point written by the engine's
    archiver (a directory), stream writer (a dump) or entries writer (several named
    streams or host files) into :class:`store.RemoteBlobStore`, with the plugin's notes
    in the manifest's ``plugin`` metadata (the server keeps them for the restore)."""

    def __init__(self, blobs: store.RemoteBlobStore, host: str, clock: Clock) -> None:
        self._blobs, self._host, self._clock = blobs, host, clock
        self._note: dict[str, Any] = {}
        self.result: archiver.BackupResult | None = None

    def note(self, info: Mapping[str, Any]) -> None:
        if self.result is not None:
            raise RuntimeError("Sink.note must come before the point's one write")
        self._note.update(dict(info))

    def _metadata(self) -> dict[str, Any]:
        return {"plugin": dict(self._note)} if self._note else {}

    def _wrote(self, result: archiver.BackupResult) -> None:
        if self.result is not None:
            raise RuntimeError("a plugin wrote twice into one recovery point")
        self.result = result

    def directory(self, path: str, progress: plugins.base.ProgressCallback) -> None:
        self._wrote(
            archiver.backup_paths(
                self._blobs,
                [path],
                now=self._clock.now(),
                hostname=self._host,
                progress=_forward(progress),
                metadata=self._metadata(),
            )
        )

    def stream(self, name: str, stream: BinaryIO, progress: plugins.base.ProgressCallback) -> None:
        self._wrote(
            stream_backup.backup_stream(
                self._blobs,
                name,
                stream,
                now=self._clock.now(),
                hostname=self._host,
                progress=_forward(progress),
                metadata=self._metadata(),
            )
        )

    def entries(
        self, entries: Iterable[plugins.base.Entry], progress: plugins.base.ProgressCallback
    ) -> None:
        known = entries if isinstance(entries, Sequence) else None
        total = None
        if known is not None and all(e.size is not None for e in known):
            total = sum(e.size or 0 for e in known)
        self._wrote(
            stream_backup.backup_entries(
                self._blobs,
                (point_reading.stream_entry(e) for e in entries),
                now=self._clock.now(),
                hostname=self._host,
                progress=_forward(progress),
                bytes_total=total,
                metadata=self._metadata(),
            )
        )


def _forward(progress: plugins.base.ProgressCallback) -> engine_progress.ProgressCallback:
    def forward(p: engine_progress.Progress) -> None:
        progress(plugins.base.Progress(p.bytes_done, p.bytes_total))

    return forward


class _Heartbeat(threading.Thread):
    """Renews the lease every third of it and reports progress; ``lost`` is set when the
    server no longer knows the job as ours."""

    def __init__(self, api: client.AgentApi, job_id: str, lease: int) -> None:
        super().__init__(name=f"heartbeat-{job_id}", daemon=True)
        self._api, self._job_id, self._lease = api, job_id, lease
        self.done = threading.Event()
        self.lost = threading.Event()
        self.bytes_done = 0
        self.bytes_total: int | None = None

    def beat(self) -> None:
        body: dict[str, Any] = {"JobId": self._job_id, "LeaseSeconds": self._lease}
        body["BytesTransferred"] = self.bytes_done
        if self.bytes_total:
            body["PercentDone"] = min(100.0, 100.0 * self.bytes_done / self.bytes_total)
        try:
            state = self._api.call("AgentHeartbeat", body).get("State")
        except SnowvaultError as exc:
            if client.code_of(exc) == client.NOT_FOUND:
                self.lost.set()
            return  # else the server is away for a moment: the lease outlives a few misses
        if state not in ("RUNNING", None):
            self.lost.set()

    def run(self) -> None:
        while not self.done.wait(max(self._lease / 3.0, 1.0)):
            self.beat()


def _policy(options: Options) -> host_paths.Policy:
    """This agent's reach: its ``--allow-path`` roots less its ``--deny-path`` entries
    and protected files, and its ``--allow-network`` CIDRs (loopback only when none is
    given)."""
    networks = list(options.allow_networks) or None
    return host_paths.Policy.build(
        list(options.allow_paths),
        list(options.deny_paths),
        list(options.protect_paths),
        os.path.realpath,
        networks,
    )


def _resource(job: Mapping[str, Any]) -> plugins.base.Resource:
    """The job's resource as its plugin gets it: type, name, source, properties and its
    own secrets (as the server's worker would give them)."""
    arn = str(job.get("ResourceArn") or job.get("RecoveryPointArn") or "")
    rtype = str(job.get("ResourceType") or "Directory")
    return plugins.base.Resource(
        arn=arn,
        resource_type=rtype,
        name=str(job.get("ResourceName") or arn.rpartition("/")[2]),
        source=str(job.get("Source") or ""),
        properties={str(k): str(v) for k, v in dict(job.get("Properties") or {}).items()},
        secrets={str(k): str(v) for k, v in dict(job.get("Secrets") or {}).items()},
    )


_SHOWN_TARGETS = ("targetPath", "targetDirectory", "targetBucket")
_HOW_TO = {
    "the server's allowed_paths in config.json": "this agent's --allow-path",
    "the server's allowed_networks in config.json": "this agent's --allow-network",
}


def _agent_words(message: str) -> str:
    """A refusal names the agent's own flags, not the server's config (the rule's
    messages are written for the server)."""
    for server, agent in _HOW_TO.items():
        message = message.replace(server, agent)
    return message


def run_job(
    api: client.AgentApi,
    options: Options,
    job: Mapping[str, Any],
    say: Say,
    clock: Clock,
    *,
    blobs: store.RemoteBlobStore | None = None,
) -> str:
    """Run one claimed job to its end; the final state as the agent knows it
    (``blobs``: the store to write into, to look at its counters afterwards)."""
    job_id = str(job["JobId"])
    if job.get("Kind") == "RESTORE":
        return run_restore(api, options, job, say)
    if blobs is None:
        blobs = store.RemoteBlobStore(api, job_id, store.JobKeys.from_api(job["Keys"]))
    heart = _Heartbeat(api, job_id, int(job.get("LeaseSeconds") or options.lease_seconds))
    heart.start()

    def progress(p: plugins.base.Progress) -> None:
        heart.bytes_done, heart.bytes_total = p.bytes_done, p.bytes_total
        if p.bytes_total:
            blobs.total = p.bytes_total

    say(f"job {job_id}: backing up {job['ResourceType']} {job['Source']}")
    try:
        resource = _resource(job)
        plugin = plugins.builtin.registry().get(resource.resource_type)
        sink = _Sink(blobs, options.host, clock)
        request = plugins.base.BackupRequest(resource, _policy(options), sink, progress)
        plugin.backup(request)
        if sink.result is None:
            raise InvalidInput(detail=f"the {resource.resource_type} plugin wrote nothing")
    except Exception as exc:
        return _ended_by(api, job_id, exc, heart, say)
    finally:
        heart.done.set()
    direct = f" in {blobs.packs_uploaded} pack(s) put to the store" if blobs.packs_uploaded else ""
    say(
        f"job {job_id}: {blobs.state}, {blobs.uploaded_blobs} blob(s) uploaded{direct}, "
        f"{blobs.skipped_blobs} already in the vault"
    )
    return blobs.state or "COMPLETED"


def run_restore(api: client.AgentApi, options: Options, job: Mapping[str, Any], say: Say) -> str:
    """Run one claimed restore job with the point's plugin: it judges the target (a
    path by ``allow_paths``, a server by ``allow_networks``) right before it writes;
    the data comes from the server. The plugin's after-restore check runs here too."""
    job_id = str(job["JobId"])
    heart = _Heartbeat(api, job_id, int(job.get("LeaseSeconds") or options.lease_seconds))
    heart.start()

    def progress(p: plugins.base.Progress) -> None:
        heart.bytes_done, heart.bytes_total = p.bytes_done, p.bytes_total

    metadata = {str(k): str(v) for k, v in dict(job.get("Metadata") or {}).items()}
    shown = {k: v for k, v in metadata.items() if k in _SHOWN_TARGETS}  # never a DSN
    say(f"job {job_id}: restoring {job.get('ResourceType')} to {shown or 'its server'}")
    try:
        key = base64.b64decode(str(job["Keys"]["JobKey"]))
        blobs = agent_restore.RemoteBlobs(api, job_id, key, job["Manifest"])
        source = agent_restore.RemoteSource(blobs)
        resource = _resource(job)
        plugin = plugins.builtin.registry().get(resource.resource_type)
        request = plugins.base.RestoreRequest(
            resource, metadata, _policy(options), source, progress, job_id=job_id
        )
        plugin.restore(request)
        result = source.result
        if result.errors:
            first = result.errors[0]
            message = f"{len(result.errors)} entries failed, first {first.path}: {first.error}"
            return _fail(api, job_id, message, say)
        problem = plugin.validate_restore(request)
        if problem is not None:
            return _fail(api, job_id, f"the restored {resource.resource_type}: {problem}", say)
        heart.beat()
        doc = api.call(
            "AgentFinishRestore",
            {"JobId": job_id, "FilesRestored": result.files, "BytesRestored": result.bytes},
        )
    except Exception as exc:
        return _ended_by(api, job_id, exc, heart, say)
    finally:
        heart.done.set()
    say(f"job {job_id}: {doc.get('State')}, {result.files} file(s), {result.bytes} bytes")
    return str(doc.get("State") or "COMPLETED")


def _ended_by(
    api: client.AgentApi, job_id: str, exc: Exception, heart: _Heartbeat, say: Say
) -> str:
    """How a job that raised ends, for backups and restores alike: dropped when its lease
    is gone, left to its lease when the server stayed away, else FAILED with the reason
    (a bug's too: the job still ends)."""
    if isinstance(exc, SnowvaultError | OSError):
        if client.code_of(exc) == client.NOT_FOUND or heart.lost.is_set():
            say(f"job {job_id}: the lease is gone, dropped ({exc})")
            return "LOST"
        if _server_away(exc):
            return _left_to_lease(job_id, exc, say)
        return _fail(api, job_id, str(exc), say)
    return _fail(api, job_id, f"internal error: {exc!r}", say)


def _server_away(exc: BaseException) -> bool:
    """The server stayed out of reach (or kept answering 5xx/throttling) for longer than a
    call's retry budget: the client's Unavailable carries a code; a plugin's (its
    database is down) does not, and that one fails the job."""
    return isinstance(exc, Unavailable) and client.code_of(exc) is not None


def _left_to_lease(job_id: str, exc: BaseException, say: Say) -> str:
    """Drop a job the server could not be told about, without AgentFailJob: a network cut
    costs a retry, never the job (issue 13). This agent's next claim, once the link is
    back, ends that attempt on the server and claims the job again (or the sweeper does
    when the lease runs out first); what the dropped attempt stored is not sent again."""
    say(f"job {job_id}: the server is out of reach ({exc}); left to its lease, retried later")
    return "LOST"


def _fail(api: client.AgentApi, job_id: str, message: str, say: Say) -> str:
    line = " ".join(_agent_words(message).split())[:900]
    say(f"job {job_id}: FAILED: {line}")
    try:
        api.call("AgentFailJob", {"JobId": job_id, "StatusMessage": line})
    except SnowvaultError as exc:
        say(f"job {job_id}: could not report the failure ({exc}); the lease will expire")
    return "FAILED"


def run(options: Options, *, stop: threading.Event, say: Say, clock: Clock | None = None) -> int:
    """Claim and run jobs until ``stop`` is set (or one job with ``once``); the number of
    jobs run."""
    clock = clock or SystemClock()
    api = client.AgentApi(
        options.endpoint, options.region, options.access_key_id, options.secret_access_key
    )
    hello = None
    while hello is None:  # a server down at the agent's start is waited for, as later
        try:
            hello = api.call("AgentHello", {"Version": __version__})
        except SnowvaultError as exc:
            if not _server_away(exc) or stop.is_set():
                raise
            say(f"{exc}; trying again")
            stop.wait(2.0)
    if hello["Agent"]["Host"] != options.host:  # the wrong key on this host: serve nothing
        raise InvalidInput(
            detail=f"--host {options.host} but the key is the agent of host "
            f"{hello['Agent']['Host']}; give that host's key or --host"
        )
    say(f"agent for host {hello['Agent']['Host']} connected to {options.endpoint}")
    ran = 0
    while not stop.is_set():
        body = {"WaitSeconds": options.wait_seconds, "LeaseSeconds": options.lease_seconds}
        asked = time.monotonic()
        try:
            doc = api.call("AgentClaimJob", body, timeout=options.wait_seconds + 30)
        except SnowvaultError as exc:
            if not _server_away(exc):  # refused (a revoked key, a bad signature): stop
                raise
            say(f"{exc}; trying again")
            stop.wait(2.0)
            continue
        job = doc.get("Job")
        if job is None:
            if time.monotonic() - asked < options.wait_seconds / 2:
                stop.wait(min(2.0, options.wait_seconds))  # the server did not wait: back off
            continue
        run_job(api, options, job, say, clock)
        ran += 1
        if options.once:
            break
    return ran
