"""One host file as a restore target (SQLite's database file, Redis's RDB): the
``targetPath`` Metadata judged by the host-path rule, and the file written so that a
reader never sees half of it and nothing existing is replaced unless asked.

    target, overwrite = host_files.check_target(metadata, policy)
    host_files.write(target, reader, overwrite=overwrite, on_bytes=report)

Abuse case: a caller with ``StartRestoreJob`` names a file the server writes with its
own rights. The path is resolved and must pass the operator's host-path rule (never the
data directory, a vault's storage or a denied path) at StartRestoreJob and again in the
worker; an existing file is refused unless ``overwrite`` is ``"true"``; the body goes
to a new temporary file beside the target (O_EXCL, O_NOFOLLOW) that is then linked in
(no overwrite: fails if the target appeared meanwhile) or renamed over it (overwrite),
so a symlink planted at the target is replaced, never followed.

Depends on the model's host-path rule and the plugin errors only.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import BinaryIO

from snowvault.control.model import host_paths
from snowvault.plugins.errors import InvalidRestoreTarget

CHUNK = 1024 * 1024


def overwrite_of(metadata: Mapping[str, str]) -> bool:
    """``overwrite`` Metadata: only ``"true"`` (any case) means yes."""
    return str(metadata.get("overwrite", "false")).strip().lower() == "true"


def check_target(metadata: Mapping[str, str], policy: host_paths.Policy) -> tuple[str, bool]:
    """The resolved ``targetPath`` and the overwrite flag; InvalidRestoreTarget for a
    missing/relative path, a directory, an existing file without overwrite or a missing
    parent directory; PathRefused when the host-path rule refuses it."""
    path = metadata.get("targetPath")
    if not path:
        raise InvalidRestoreTarget("Metadata.targetPath is required (an absolute file path)")
    if not isinstance(path, str) or not os.path.isabs(path) or "\x00" in path:
        raise InvalidRestoreTarget(path=path, detail="must be an absolute path")
    overwrite = overwrite_of(metadata)
    resolved = host_paths.check(path, policy, os.path.realpath)
    if os.path.isdir(resolved):
        raise InvalidRestoreTarget(path=path, detail="is a directory; name a file")
    if os.path.lexists(resolved) and not overwrite:
        raise InvalidRestoreTarget(
            path=path, detail='exists; set Metadata.overwrite to "true" to replace it'
        )
    if not os.path.isdir(os.path.dirname(resolved)):
        raise InvalidRestoreTarget(path=path, detail="its directory does not exist")
    return resolved, overwrite


def write(
    target: str,
    reader: BinaryIO,
    *,
    overwrite: bool,
    on_bytes: Callable[[int], None],
    mode: int = 0o600,
    after: Callable[[str], None] | None = None,
) -> int:
    """Write ``reader`` to ``target`` through a temporary file beside it; ``after`` runs
    on the complete temporary file before it is put in place (e.g. removing a stale
    SQLite ``-wal``). Bytes written."""
    directory, name = os.path.split(target)
    tmp = os.path.join(directory, f".{name}.snowvault-{os.getpid()}-{id(reader):x}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    done = 0
    try:
        with os.fdopen(fd, "wb") as out:
            while chunk := reader.read(CHUNK):
                out.write(chunk)
                done += len(chunk)
                on_bytes(done)
            out.flush()
            os.fsync(out.fileno())
        if after is not None:
            after(tmp)
        if overwrite:
            os.replace(tmp, target)
        else:
            try:
                os.link(tmp, target)
            except FileExistsError:
                raise InvalidRestoreTarget(
                    path=target, detail="appeared while the restore ran; not replaced"
                ) from None
            os.unlink(tmp)
    except BaseException:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        raise
    return done
