"""The agent's loop: claim a job of this host (long poll), run its resource's plugin
here, upload what the vault lacks, commit; heartbeats keep the lease meanwhile.

    options = Options(endpoint, host, region, key_id, secret, allow_paths=["/srv"])
    run(options, stop=threading.Event(), say=print)

Abuse cases: the server names the source; the agent judges it by its own
``allow_paths`` (the host-path rule, symlinks resolved) before reading, so a server or
a stolen admin key cannot make the agent read outside them. A job whose lease is lost
(revoked, the server thought the agent dead) is dropped: the server refuses its uploads.
"""

from __future__ import annotations

import base64
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from snowvault import __version__, plugins
from snowvault.agent import client, store
from snowvault.agent import restore as agent_restore
from snowvault.control.model import host_paths
from snowvault.core.clock import Clock, SystemClock
from snowvault.core.errors import InvalidInput, SnowvaultError
from snowvault.engine import archiver
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
    lease_seconds: int = 60
    once: bool = False


class _Sink:
    """The plugin's sink on the agent: a directory becomes a recovery point through the
    engine's archiver writing into :class:`store.RemoteBlobStore`."""

    def __init__(self, blobs: store.RemoteBlobStore, host: str, clock: Clock) -> None:
        self._blobs, self._host, self._clock = blobs, host, clock
        self.result: archiver.BackupResult | None = None

    def note(self, info: Mapping[str, Any]) -> None:
        return None  # a Directory notes nothing; other types are refused by the server

    def directory(self, path: str, progress: plugins.base.ProgressCallback) -> None:
        def forward(p: engine_progress.Progress) -> None:
            progress(plugins.base.Progress(p.bytes_done, p.bytes_total))

        self.result = archiver.backup_paths(
            self._blobs, [path], now=self._clock.now(), hostname=self._host, progress=forward
        )

    def stream(self, name: str, stream: BinaryIO, progress: Any) -> None:
        raise InvalidInput(detail="agents back up Directory resources only for now")

    def entries(self, entries: Any, progress: Any) -> None:
        raise InvalidInput(detail="agents back up Directory resources only for now")


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


def _policy(allow_paths: Sequence[str]) -> host_paths.Policy:
    return host_paths.Policy.build(list(allow_paths), [], [], os.path.realpath)


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

    say(f"job {job_id}: backing up {job['Source']}")
    try:
        plugin = plugins.builtin.registry().get(str(job["ResourceType"]))
        resource = plugins.base.Resource(
            arn=str(job["ResourceArn"]),
            resource_type=str(job["ResourceType"]),
            name=str(job["ResourceArn"]).rpartition("/")[2],
            source=str(job["Source"]),
        )
        sink = _Sink(blobs, options.host, clock)
        request = plugins.base.BackupRequest(resource, _policy(options.allow_paths), sink, progress)
        plugin.backup(request)
    except (SnowvaultError, OSError) as exc:
        if client.code_of(exc) == client.NOT_FOUND or heart.lost.is_set():
            say(f"job {job_id}: the lease is gone, dropped ({exc})")
            return "LOST"
        return _fail(api, job_id, str(exc), say)
    except Exception as exc:  # a bug: the job still ends, with the reason
        return _fail(api, job_id, f"internal error: {exc!r}", say)
    finally:
        heart.done.set()
    say(
        f"job {job_id}: {blobs.state}, {blobs.uploaded_blobs} blob(s) uploaded, "
        f"{blobs.skipped_blobs} already in the vault"
    )
    return blobs.state or "COMPLETED"


def run_restore(api: client.AgentApi, options: Options, job: Mapping[str, Any], say: Say) -> str:
    """Run one claimed restore job: the Directory plugin judges ``targetPath`` by this
    agent's ``allow_paths`` right before it writes; the files come from the server."""
    job_id = str(job["JobId"])
    heart = _Heartbeat(api, job_id, int(job.get("LeaseSeconds") or options.lease_seconds))
    heart.start()

    def progress(p: plugins.base.Progress) -> None:
        heart.bytes_done, heart.bytes_total = p.bytes_done, p.bytes_total

    metadata = {str(k): str(v) for k, v in dict(job.get("Metadata") or {}).items()}
    say(f"job {job_id}: restoring to {metadata.get('targetPath')}")
    try:
        key = base64.b64decode(str(job["Keys"]["JobKey"]))
        blobs = agent_restore.RemoteBlobs(api, job_id, key, job["Manifest"])
        source = agent_restore.RemoteSource(blobs)
        rtype = str(job.get("ResourceType") or "Directory")
        plugin = plugins.builtin.registry().get(rtype)
        resource = plugins.base.Resource(
            arn=str(job.get("RecoveryPointArn", "")),
            resource_type=rtype,
            name=rtype,
            source="",
        )
        request = plugins.base.RestoreRequest(
            resource, metadata, _policy(options.allow_paths), source, progress
        )
        plugin.restore(request)
        result = source.result
        if result.errors:
            first = result.errors[0]
            message = f"{len(result.errors)} entries failed, first {first.path}: {first.error}"
            return _fail(api, job_id, message, say)
        heart.beat()
        doc = api.call(
            "AgentFinishRestore",
            {"JobId": job_id, "FilesRestored": result.files, "BytesRestored": result.bytes},
        )
    except (SnowvaultError, OSError) as exc:
        if client.code_of(exc) == client.NOT_FOUND or heart.lost.is_set():
            say(f"job {job_id}: the lease is gone, dropped ({exc})")
            return "LOST"
        return _fail(api, job_id, str(exc), say)
    except Exception as exc:  # a bug: the job still ends, with the reason
        return _fail(api, job_id, f"internal error: {exc!r}", say)
    finally:
        heart.done.set()
    say(f"job {job_id}: {doc.get('State')}, {result.files} file(s), {result.bytes} bytes")
    return str(doc.get("State") or "COMPLETED")


def _fail(api: client.AgentApi, job_id: str, message: str, say: Say) -> str:
    line = " ".join(message.split())[:900]
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
    hello = api.call("AgentHello", {"Version": __version__})
    say(f"agent for host {hello['Agent']['Host']} connected to {options.endpoint}")
    ran = 0
    while not stop.is_set():
        body = {"WaitSeconds": options.wait_seconds, "LeaseSeconds": options.lease_seconds}
        asked = time.monotonic()
        try:
            doc = api.call("AgentClaimJob", body, timeout=options.wait_seconds + 30)
        except SnowvaultError as exc:
            if client.code_of(exc) != client.UNREACHABLE:
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
