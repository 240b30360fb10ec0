"""The resource-plugin protocol: what one resource type (Directory, later PostgreSQL,
MySQL, Redis, S3 buckets, block images) provides, and the Sink/Source it works through.

A plugin knows its resources and nothing of vaults, jobs, SQL or the engine: it checks a
source at RegisterResource, backs the resource up into a :class:`Sink`, restores it from
a :class:`Source` as named ``Metadata`` keys say, and gives GetRecoveryPointRestoreMetadata
its defaults. The services build the Sink and Source over the vault's repository (they
own the repository lock, the manifest, the catalog rows), so one plugin works with every
store, and the engine never learns plugins exist (import-linter keeps both true).

    plugin = registry.get("Directory")
    stored = plugin.check_source("/srv/photos", policy)        # RegisterResource
    plugin.backup(BackupRequest(resource, policy, sink, report))  # in a worker
    plugin.check_restore({"targetPath": "/srv/back"}, policy)  # StartRestoreJob
    plugin.restore(RestoreRequest(resource, metadata, policy, source, report))

Abuse case: every plugin method that reaches the host (a path, later a socket or a URL)
runs with the server's rights for a caller who only holds an API permission; a plugin
that touches host paths judges them with the operator's rule
(:mod:`snowvault.control.model.host_paths`, the ``policy`` passed in) at the call AND
again in the worker, right before it reads or writes.

Depends on core and the model only (never the engine, catalog, services or interfaces).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Protocol

from snowvault.control.model import host_paths
from snowvault.core import arn as arns


@dataclass(frozen=True)
class Resource:
    """A registered resource as a plugin sees it: ``source`` is what
    :meth:`ResourcePlugin.check_source` returned at registration."""

    arn: str
    resource_type: str
    name: str
    source: str
    properties: Mapping[str, str] = field(default_factory=dict)
    """Non-secret settings the plugin stored at registration (shown by describe)."""
    secrets: Mapping[str, str] = field(default_factory=dict)
    """Secret settings (a password, a secret access key): sealed under the root key in the
    catalog, unsealed only for the plugin (in the worker for a job, and for
    :meth:`ResourcePlugin.describe`); empty everywhere else. Never logged or shown."""


@dataclass(frozen=True)
class Registration:
    """What :meth:`ResourcePlugin.check_source` keeps of a RegisterResource call:
    ``source`` is the secret-free identity shown everywhere (a resolved path, a DSN
    without its password, ``s3://bucket/prefix``); ``secrets`` are sealed, never shown."""

    source: str
    properties: Mapping[str, str] = field(default_factory=dict)
    secrets: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Progress:
    """How far a backup or restore is: bytes done of ``bytes_total`` (None: unknown)."""

    bytes_done: int
    bytes_total: int | None


ProgressCallback = Callable[[Progress], None]


class Sink(Protocol):
    """Where a backup goes: one recovery point of the vault, written by exactly ONE call
    (the services record the point from it, with the manifest metadata they own)."""

    def directory(self, path: str, progress: ProgressCallback) -> None:
        """Back up the host directory tree at ``path`` (its contents become the point's
        root; unreadable entries make the point PARTIAL)."""
        ...

    def stream(self, name: str, stream: BinaryIO, progress: ProgressCallback) -> None:
        """Back up a byte stream (a dump) as the point's one file ``name``."""
        ...

    def entries(self, entries: Iterable[Entry], progress: ProgressCallback) -> None:
        """Back up several named streams (or host files) as the point's tree, with
        their per-entry metadata; paths may nest (``a/b/c``). Entries that cannot be read
        raise; the plugin decides whether that fails the job."""
        ...

    def note(self, info: Mapping[str, Any]) -> None:
        """Plugin facts recorded with the point (in the manifest's ``plugin`` metadata,
        JSON-able): a server version, a WAL position, the databases in it. Call before
        the one write; :meth:`Source.info` gives them back to the restore. A
        ``"warning"`` (one sentence: "read a live device: ...") also becomes the backup
        job's StatusMessage, the job still COMPLETED."""
        ...


@dataclass(frozen=True)
class Entry:
    """One file of a recovery point written by :meth:`Sink.entries`.

    ``path`` is relative, ``/``-separated (``"dump.sql"``, ``"objects/a/b.json"``);
    ``open`` opens its body when the sink gets to it (so thousands of entries never
    hold thousands of open streams); ``meta`` is per-entry metadata restored with it
    (S3 content type, user metadata, tags) — stored in the tree node as ``user.snowvault.*``
    extended attributes. ``host_path`` instead of ``open``: a host file or block device
    the sink reads itself, holes skipped (SEEK_DATA/SEEK_HOLE) and stored as holes."""

    path: str
    open: Callable[[], AbstractContextManager[BinaryIO]] | None = None
    size: int | None = None
    mode: int = 0o600
    mtime_ns: int | None = None
    meta: Mapping[str, str] = field(default_factory=dict)
    host_path: str | None = None
    fingerprint: str | None = None
    """What identifies the body without reading it (S3: ETag, size, last-modified). A
    sink MAY give the entry the content of the parent point's entry at the same path
    when that one was written with the same fingerprint, without calling ``open`` (an
    unchanged object is never read again); it stores the fingerprint with the entry for
    the next point. None: the body is always read. A sink that does not reuse opens."""


@dataclass(frozen=True)
class EntryInfo:
    """An entry of a recovery point as :meth:`Source.entries` lists it."""

    path: str
    size: int
    meta: Mapping[str, str] = field(default_factory=dict)


class Source(Protocol):
    """One recovery point to restore from; the services count what was restored."""

    def to_directory(
        self, target: str, *, include: Sequence[str], overwrite: bool, progress: ProgressCallback
    ) -> None:
        """Write the point's tree (or the ``include`` paths in it) into host dir ``target``."""
        ...

    def read_file(self, name: str) -> bytes:
        """The content of the root entry ``name`` (what :meth:`Sink.stream` wrote)."""
        ...

    def open(self, path: str) -> AbstractContextManager[BinaryIO]:
        """A streaming reader of entry ``path`` (never the whole body in memory)."""
        ...

    def entries(self) -> list[EntryInfo]:
        """Every file entry of the point (what :meth:`Sink.entries` wrote), in order."""
        ...

    def info(self) -> Mapping[str, Any]:
        """What the backup's plugin passed to :meth:`Sink.note` (empty if nothing)."""
        ...


@dataclass(frozen=True)
class BackupRequest:
    """One backup, as the worker hands it to the plugin."""

    resource: Resource
    policy: host_paths.Policy
    sink: Sink
    progress: ProgressCallback


@dataclass(frozen=True)
class RestoreRequest:
    """One restore: ``metadata`` is StartRestoreJob's Metadata, ``resource`` the point's
    source resource (as recorded with the point)."""

    resource: Resource
    metadata: Mapping[str, str]
    policy: host_paths.Policy
    source: Source
    progress: ProgressCallback
    job_id: str | None = None
    """The restore job's id, the same on every attempt (the embedded worker's and an
    agent's); None outside a job. A plugin may mark its target with it, so a later
    attempt of the same job knows a partial restore for its own (see
    :mod:`snowvault.plugins.directory`)."""


@dataclass(frozen=True)
class MetadataKey:
    """One key StartRestoreJob's Metadata understands for a resource type."""

    name: str
    required: bool
    description: str


class ResourcePlugin(Protocol):
    """One resource type. Adding one = a module implementing this, one line in
    :func:`snowvault.plugins.builtin.registry`, and its tests (the shared contract test
    runs over every plugin)."""

    type_name: str
    """The AWS ResourceType: ``"Directory"``."""
    arn_kind: str
    """The ARN's resource kind: ``arn:aws:snowvault:REGION:ACCOUNT:directory/NAME``."""
    restore_keys: tuple[MetadataKey, ...]
    """The Metadata keys :meth:`restore` reads (documented, and the defaults' keys)."""

    def check_source(
        self, source: str, policy: host_paths.Policy, properties: Mapping[str, str]
    ) -> Registration:
        """RegisterResource: ``source`` and the type's ``properties`` (CLI options, the
        API's Properties — secrets included) as they will be stored, secrets split off,
        or raise (InvalidInput, PathRefused, NetworkRefused) when it cannot be
        protected. Reach (paths, hosts) is judged before anything is contacted."""
        ...

    def describe(self, resource: Resource, policy: host_paths.Policy) -> dict[str, Any]:
        """DescribeResource's ``Discovery``: what the plugin sees of the resource now
        (databases, sizes, a server version); {} when there is nothing to add. Reaching the
        resource may fail: return {"Error": one line} then, never raise. ``resource.secrets``
        are unsealed for this call (a password-protected server can only be described with
        its password), so the result must never carry one; ``policy`` is the operator's
        reach rule, judged again here before any path is opened or host contacted."""
        ...

    def backup(self, request: BackupRequest) -> None:
        """Check the source again, now, and back it up with ONE call to the sink;
        report progress through ``request.progress``."""
        ...

    def check_restore(self, metadata: Mapping[str, str], policy: host_paths.Policy) -> None:
        """StartRestoreJob: refuse bad Metadata before any job exists."""
        ...

    def restore(self, request: RestoreRequest) -> None:
        """Check the Metadata again, now, and restore from ``request.source``."""
        ...

    def restore_defaults(self, resource: Resource | None) -> dict[str, str]:
        """GetRecoveryPointRestoreMetadata: Metadata that puts the point back where it
        came from (``resource`` is None once the resource was deregistered)."""
        ...

    def validate_restore(self, request: RestoreRequest) -> str | None:
        """After a restore without errors: a problem sentence (the job FAILS with it), or
        None. Plugins with nothing to check beyond the restore itself return None."""
        ...


def resource_arn(plugin: ResourcePlugin, region: str, account_id: str, name: str) -> str:
    """The ARN a resource of this type gets: for Directory in us-east-1,
    ``arn:aws:snowvault:us-east-1:111122223333:directory/photos``."""
    return arns.build("snowvault", region, account_id, f"{plugin.arn_kind}/{name}")
