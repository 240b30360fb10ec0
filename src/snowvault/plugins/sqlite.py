"""SQLite: one database file on the server's host.

A resource is ``arn:aws:snowvault:REGION:ACCOUNT:sqlite/NAME``; its source is the
database file's path, stored resolved. A backup is an online, consistent copy taken
with SQLite's backup API while other processes keep writing (WAL mode honoured: what
is committed in the ``-wal`` is in the copy; a write that commits during the copy makes
SQLite restart it), into a 0700 temporary directory (``TMPDIR``), then streamed into the
point as ``<name>.sqlite`` and removed. Restore Metadata (strings):

- ``targetPath`` (required): absolute path of a new file (its directory must exist);
- ``overwrite`` (optional): ``"true"`` to replace an existing file (its stale
  ``-wal``/``-shm`` are removed so they cannot be replayed onto the restored copy).

The restored file must pass ``PRAGMA integrity_check`` (:meth:`SQLite.validate_restore`).

Abuse case: a caller with ``RegisterResource`` names a file the server reads with its
own rights and hands back through a restore; a caller with ``StartRestoreJob`` names a
file it writes. Source and target pass the host-path rule (:mod:`host_files`,
:mod:`snowvault.control.model.host_paths`) at the call and again in the worker; a
source must be a regular file starting with SQLite's header (so the server is no
oracle for arbitrary files beyond "is an SQLite database"); the database is opened
read-only.

Depends on the plugin base, the model's host-path rule and core only.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
import urllib.parse
from collections.abc import Iterator, Mapping
from typing import Any, BinaryIO

from snowvault.control.model import host_paths
from snowvault.core.errors import InvalidInput, NotFound, SnowvaultError, Unavailable
from snowvault.plugins import host_files
from snowvault.plugins.base import (
    BackupRequest,
    Entry,
    MetadataKey,
    Progress,
    Registration,
    Resource,
    RestoreRequest,
)
from snowvault.plugins.errors import InvalidRestoreTarget

HEADER = b"SQLite format 3\x00"
SUFFIX = ".sqlite"
PAGES_PER_STEP = -1
"""The backup API copies all pages in one step under one read transaction: the copy is
the state of one commit, and writers are blocked only in rollback-journal mode (in WAL
mode they go on)."""


def _is_sqlite(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(len(HEADER)) == HEADER
    except OSError:
        return False


def _check_file(source: str, policy: host_paths.Policy) -> str:
    path = host_paths.check(source, policy, os.path.realpath)
    if not os.path.isfile(path):
        raise InvalidInput(detail=f"Source {source!r} is not an existing file")
    if not _is_sqlite(path):
        raise InvalidInput(detail=f"Source {source!r} is not an SQLite 3 database")
    return path


def _read_only(path: str) -> sqlite3.Connection:
    uri = "file:" + urllib.parse.quote(path) + "?mode=ro"
    return sqlite3.connect(uri, uri=True, timeout=30.0)


def _copy(source: str, target: str) -> None:
    """A consistent copy of database ``source`` at ``target`` (SQLite's backup API)."""
    try:
        src = _read_only(source)
        try:
            dst = sqlite3.connect(target)
            try:
                src.backup(dst, pages=PAGES_PER_STEP)
            finally:
                dst.close()
        finally:
            src.close()
    except sqlite3.Error as exc:
        raise Unavailable(detail=f"sqlite: cannot copy {source!r}: {exc}") from None


def integrity(path: str) -> str | None:
    """None when ``PRAGMA integrity_check`` of database ``path`` says ok, else why not."""
    try:
        conn = _read_only(path)
        try:
            rows = conn.execute("PRAGMA integrity_check").fetchall()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        return f"{path} does not open as an SQLite database: {exc}"
    answers = [str(r[0]) for r in rows]
    if answers == ["ok"]:
        return None
    return f"PRAGMA integrity_check of {path}: {'; '.join(answers[:3])}"


def _drop_journals(path: str) -> None:
    for suffix in ("-wal", "-shm", "-journal"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path + suffix)


class SQLite:
    """The SQLite resource type (see the module docstring)."""

    type_name: str = "SQLite"
    arn_kind: str = "sqlite"
    restore_keys: tuple[MetadataKey, ...] = (
        MetadataKey("targetPath", True, "absolute path of a new database file"),
        MetadataKey("overwrite", False, '"true" to replace an existing file'),
    )

    def check_source(
        self, source: str, policy: host_paths.Policy, properties: Mapping[str, str]
    ) -> Registration:
        """The resolved path of an existing SQLite database the host-path rule allows."""
        if properties:
            raise InvalidInput(detail=f"SQLite takes no properties (got {sorted(properties)})")
        return Registration(_check_file(source, policy))

    def describe(self, resource: Resource, policy: host_paths.Policy) -> dict[str, Any]:
        """The file's size, page size, journal mode and tables."""
        try:
            path = _check_file(resource.source, policy)  # the rule may have changed since
        except SnowvaultError as exc:
            return {"Error": str(exc)}
        try:
            conn = _read_only(path)
            try:
                page_size = conn.execute("PRAGMA page_size").fetchone()[0]
                mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
                tables = [
                    r[0]
                    for r in conn.execute(
                        "SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name"
                    )
                ]
            finally:
                conn.close()
            size = os.path.getsize(path)
        except (OSError, sqlite3.Error) as exc:
            return {"Error": f"{path}: {exc}"}
        return {
            "SizeInBytes": size,
            "PageSize": page_size,
            "JournalMode": mode,
            "Tables": tables,
            "SQLiteVersion": sqlite3.sqlite_version,
        }

    def backup(self, request: BackupRequest) -> None:
        if not request.resource.source:
            raise NotFound(kind="SQLite database", name=request.resource.arn)
        source = _check_file(request.resource.source, request.policy)  # again, now
        name = (request.resource.name or "database") + SUFFIX
        with tempfile.TemporaryDirectory(prefix="snowvault-sqlite-") as tmp:
            os.chmod(tmp, 0o700)
            copy = os.path.join(tmp, "copy.sqlite")
            _copy(source, copy)
            size = os.path.getsize(copy)
            request.sink.note({"sqlite_version": sqlite3.sqlite_version, "entry": name})
            request.progress(Progress(0, size))

            @contextlib.contextmanager
            def body() -> Iterator[BinaryIO]:
                with open(copy, "rb") as f:
                    yield f

            def on_progress(p: Progress) -> None:
                request.progress(Progress(p.bytes_done, size))

            request.sink.entries([Entry(name, open=body, size=size)], on_progress)

    def check_restore(self, metadata: Mapping[str, str], policy: host_paths.Policy) -> None:
        host_files.check_target(metadata, policy)

    def _entry(self, request: RestoreRequest) -> str:
        names = [e.path for e in request.source.entries() if e.path.endswith(SUFFIX)]
        if len(names) != 1:
            raise InvalidRestoreTarget(
                "the recovery point holds no single SQLite database (not made by SQLite?)"
            )
        return names[0]

    def restore(self, request: RestoreRequest) -> None:
        target, overwrite = host_files.check_target(request.metadata, request.policy)
        entry = self._entry(request)
        total = next(e.size for e in request.source.entries() if e.path == entry)
        request.progress(Progress(0, total))

        def on_bytes(done: int) -> None:
            request.progress(Progress(done, total))

        def stale_journals(_tmp: str) -> None:
            if overwrite:
                _drop_journals(target)

        with request.source.open(entry) as reader:
            host_files.write(
                target, reader, overwrite=overwrite, on_bytes=on_bytes, after=stale_journals
            )

    def restored_source(self, metadata: Mapping[str, str]) -> str | None:
        """The restored file (CreatedResourceArn names it)."""
        path = metadata.get("targetPath")
        return os.path.normpath(path) if path and os.path.isabs(path) else None

    def restore_defaults(self, resource: Resource | None) -> dict[str, str]:
        """Back where it came from, refusing to replace an existing file."""
        return {"targetPath": resource.source if resource else "", "overwrite": "false"}

    def validate_restore(self, request: RestoreRequest) -> str | None:
        """The restored file passes ``PRAGMA integrity_check``."""
        target = host_paths.check(
            request.metadata.get("targetPath"), request.policy, os.path.realpath
        )
        return integrity(target)
