"""Plugin fakes: InMemoryPlugin (a resource type whose resources are byte strings in a
dict) for tests of everything around plugins, and MemorySink / MemorySource (the
Sink and Source a plugin writes to and reads from, in memory) for tests of a plugin
without the engine, the catalog or a vault.

    objects = {"greeting": b"hello"}
    deps = dataclasses.replace(deps, plugins=Registry([Directory(), InMemoryPlugin(objects)]))
    resources.register(deps, caller, resource_type="InMemory", name="g", source="greeting")
    # ... back up, then restore with Metadata {"targetName": "copy"}: objects["copy"] == b"hello"

A plugin's own unit test, with no engine:

    sink = MemorySink()
    plugin.backup(BackupRequest(resource, policy, sink, progress.append))
    assert sink.files["dump.sql"].startswith(b"--") and sink.info["server"] == "16.4"
    source = MemorySource.of(sink)
    plugin.restore(RestoreRequest(resource, {"targetDsn": ...}, policy, source, print))

InMemoryPlugin passes the same contract tests as Directory
(tests/unit/services/test_plugin_contract.py) and is the smallest example of the
protocol: one module, one registry line, its tests. The sink and source keep the
protocol's rules (one write per point, note before it, entry paths relative and
``/``-separated, streaming reads), so a plugin that breaks them fails here too.
"""

from __future__ import annotations

import io
import os
import posixpath
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from snowvault.control.model import host_paths
from snowvault.core.errors import InvalidInput, NotFound
from snowvault.plugins.base import (
    BackupRequest,
    Entry,
    EntryInfo,
    MetadataKey,
    Progress,
    ProgressCallback,
    Registration,
    Resource,
    RestoreRequest,
)
from snowvault.plugins.errors import InvalidRestoreTarget

ENTRY = "object"
"""The name of the one file a recovery point of this type holds."""

SECRET_PROPERTIES = frozenset({"password", "secret"})
"""Properties InMemoryPlugin splits off as secrets (sealed by the services, never shown)."""

CHUNK = 64 * 1024
"""How much a MemorySink reads of a stream at a time (and a MemorySource's reads give)."""


class InMemoryPlugin:
    """Resources are keys of ``objects``; a restore writes ``objects[targetName]``.
    ``check`` (optional) is the after-restore validation: restored bytes -> a problem
    sentence or None. Properties are kept as given, except ``password`` and ``secret``,
    which become the registration's secrets; :attr:`seen` records the resource of every
    backup as the worker handed it (secrets unsealed), so a test can check they arrive."""

    type_name: str = "InMemory"
    arn_kind: str = "inmemory"
    restore_keys: tuple[MetadataKey, ...] = (
        MetadataKey("targetName", True, "the key to restore the object under"),
        MetadataKey("overwrite", False, '"true" to replace an existing object'),
    )

    def __init__(
        self,
        objects: dict[str, bytes] | None = None,
        check: Callable[[bytes], str | None] | None = None,
    ) -> None:
        self.objects = objects if objects is not None else {}
        self.check = check
        self.seen: list[Resource] = []

    def check_source(
        self, source: str, policy: host_paths.Policy, properties: Mapping[str, str]
    ) -> Registration:
        if source not in self.objects:
            raise InvalidInput(detail=f"Source {source!r} is not an object of this store")
        shown = {k: v for k, v in properties.items() if k not in SECRET_PROPERTIES}
        secrets = {k: v for k, v in properties.items() if k in SECRET_PROPERTIES}
        return Registration(source, shown, secrets)

    def describe(self, resource: Resource, policy: host_paths.Policy) -> dict[str, Any]:
        data = self.objects.get(resource.source)
        if data is None:
            return {"Error": f"object {resource.source!r} is gone"}
        return {"SizeInBytes": len(data)}

    def backup(self, request: BackupRequest) -> None:
        self.seen.append(request.resource)
        data = self.objects.get(request.resource.source)
        if data is None:
            raise NotFound(kind="object", name=request.resource.source)
        request.progress(Progress(0, len(data)))

        def on_progress(p: Progress) -> None:
            request.progress(Progress(p.bytes_done, len(data)))

        request.sink.stream(ENTRY, io.BytesIO(data), on_progress)

    def _target(self, metadata: Mapping[str, str]) -> str:
        name = metadata.get("targetName")
        if not name:
            raise InvalidRestoreTarget("Metadata.targetName is required")
        if name in self.objects and str(metadata.get("overwrite", "false")).lower() != "true":
            raise InvalidRestoreTarget(
                path=name, detail='exists; set Metadata.overwrite to "true" to replace it'
            )
        return name

    def check_restore(self, metadata: Mapping[str, str], policy: host_paths.Policy) -> None:
        self._target(metadata)

    def restore(self, request: RestoreRequest) -> None:
        name = self._target(request.metadata)
        data = request.source.read_file(ENTRY)
        request.progress(Progress(len(data), len(data)))
        self.objects[name] = data

    def restore_defaults(self, resource: Resource | None) -> dict[str, str]:
        return {"targetName": resource.source if resource is not None else "", "overwrite": "false"}

    def validate_restore(self, request: RestoreRequest) -> str | None:
        if self.check is None:
            return None
        return self.check(self.objects[request.metadata["targetName"]])


def _entry_path(path: str) -> str:
    """A checked entry path: relative, ``/``-separated, no empty, ``.`` or ``..`` parts."""
    parts = path.split("/")
    if not path or path.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise InvalidInput(detail=f"entry path {path!r} must be relative, without . or ..")
    if "\x00" in path:
        raise InvalidInput(detail=f"entry path {path!r} contains a NUL byte")
    return path


def read_sparse(path: str) -> tuple[bytes, list[tuple[int, int]]]:
    """The content of host file ``path`` and its holes as (offset, length), found with
    SEEK_DATA/SEEK_HOLE (a file system without them reports no holes)."""
    with open(path, "rb") as f:
        data = f.read()
        size = len(data)
        holes: list[tuple[int, int]] = []
        offset = 0
        try:
            while offset < size:
                start = os.lseek(f.fileno(), offset, os.SEEK_DATA)
                if start > offset:
                    holes.append((offset, start - offset))
                offset = os.lseek(f.fileno(), start, os.SEEK_HOLE)
        except OSError:  # ENXIO: no data after offset, the rest is a hole
            if offset < size:
                holes.append((offset, size - offset))
    return data, holes


@dataclass
class MemorySink:
    """A :class:`~snowvault.plugins.base.Sink` keeping the point in memory: ``files``
    (path -> bytes), ``meta`` (path -> entry metadata), ``modes``, ``holes`` (path ->
    holes of a ``host_path`` entry), ``info`` (what :meth:`note` got) and ``kind`` (which
    one write was made: "directory", "stream" or "entries")."""

    files: dict[str, bytes] = field(default_factory=dict)
    meta: dict[str, dict[str, str]] = field(default_factory=dict)
    modes: dict[str, int] = field(default_factory=dict)
    holes: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    kind: str | None = None

    def _begin(self, kind: str) -> None:
        if self.kind is not None:
            raise RuntimeError("a plugin wrote twice into one recovery point")
        self.kind = kind

    def note(self, info: Mapping[str, Any]) -> None:
        if self.kind is not None:
            raise RuntimeError("Sink.note must come before the point's one write")
        self.info.update(info)

    def directory(self, path: str, progress: ProgressCallback) -> None:
        self._begin("directory")
        done = 0
        for root, dirs, names in os.walk(path):
            dirs.sort()
            for name in sorted(names):
                full = os.path.join(root, name)
                if not os.path.isfile(full) or os.path.islink(full):
                    continue
                rel = os.path.relpath(full, path).replace(os.sep, "/")
                with open(full, "rb") as f:
                    self.files[rel] = f.read()
                self.modes[rel] = os.stat(full).st_mode & 0o7777
                done += len(self.files[rel])
                progress(Progress(done, None))

    def stream(self, name: str, stream: BinaryIO, progress: ProgressCallback) -> None:
        self._begin("stream")
        self.files[_entry_path(name)] = self._drain(stream, progress, 0)

    def entries(self, entries: Iterable[Entry], progress: ProgressCallback) -> None:
        self._begin("entries")
        done = 0
        for entry in entries:
            path = _entry_path(entry.path)
            if path in self.files:
                raise InvalidInput(detail=f"entry {path!r} given twice")
            if entry.host_path is not None:
                data, holes = read_sparse(entry.host_path)
                self.holes[path] = holes
                done += len(data)
                progress(Progress(done, None))
            elif entry.open is not None:
                with entry.open() as body:
                    data = self._drain(body, progress, done)
                done += len(data)
            else:
                raise InvalidInput(detail=f"entry {path!r} has neither open nor host_path")
            self.files[path] = data
            self.meta[path] = dict(entry.meta)
            self.modes[path] = entry.mode

    @staticmethod
    def _drain(stream: BinaryIO, progress: ProgressCallback, base: int) -> bytes:
        out = io.BytesIO()
        while chunk := stream.read(CHUNK):
            out.write(chunk)
            progress(Progress(base + out.tell(), None))
        return out.getvalue()


class _CountingReader(io.RawIOBase):
    """A reader over ``data`` giving at most CHUNK bytes a read (as a blob would)."""

    def __init__(self, data: bytes, reads: list[int]) -> None:
        self._data, self._pos, self._reads = data, 0, reads

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = min(len(buffer), CHUNK, len(self._data) - self._pos)
        buffer[:n] = self._data[self._pos : self._pos + n]
        self._pos += n
        if n:
            self._reads.append(n)
        return n


@dataclass
class MemorySource:
    """A :class:`~snowvault.plugins.base.Source` over in-memory ``files`` (as a
    :class:`MemorySink` holds them, see :meth:`of`); ``reads`` records the size of every
    read an opened entry served, ``restored`` the (target, path) pairs ``to_directory``
    wrote."""

    files: dict[str, bytes] = field(default_factory=dict)
    meta: dict[str, dict[str, str]] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)
    reads: list[int] = field(default_factory=list)
    restored: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def of(cls, sink: MemorySink) -> MemorySource:
        """What a restore of ``sink``'s point sees."""
        return cls(dict(sink.files), {k: dict(v) for k, v in sink.meta.items()}, dict(sink.info))

    def to_directory(
        self, target: str, *, include: Sequence[str], overwrite: bool, progress: ProgressCallback
    ) -> None:
        wanted = [p.strip("/") for p in include]
        total = sum(len(d) for d in self.files.values())
        done = 0
        for path, data in self.files.items():
            if wanted and not any(path == w or path.startswith(w + "/") for w in wanted):
                continue
            full = os.path.join(target, *path.split("/"))
            if os.path.lexists(full) and not overwrite:
                continue
            os.makedirs(os.path.dirname(full), exist_ok=True)
            with open(full, "wb") as f:
                f.write(data)
            self.restored.append((target, path))
            done += len(data)
            progress(Progress(done, total))

    def read_file(self, name: str) -> bytes:
        if name not in self.files:
            raise NotFound(kind="file in the recovery point", name=name)
        return self.files[name]

    @contextmanager
    def _reader(self, path: str) -> Iterator[BinaryIO]:
        raw = _CountingReader(self.files[path], self.reads)
        with io.BufferedReader(raw, buffer_size=CHUNK) as reader:
            yield reader

    def open(self, path: str) -> AbstractContextManager[BinaryIO]:
        if posixpath.normpath(path) not in self.files:
            raise NotFound(kind="file in the recovery point", name=path)
        return self._reader(posixpath.normpath(path))

    def entries(self) -> list[EntryInfo]:
        return [EntryInfo(p, len(d), dict(self.meta.get(p, {}))) for p, d in self.files.items()]

    def info(self) -> Mapping[str, Any]:
        return dict(self.notes)
