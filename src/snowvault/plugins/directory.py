"""Directory: a directory tree on the server's host.

A resource is ``arn:aws:snowvault:REGION:ACCOUNT:directory/NAME``; its source is an
absolute path to an existing directory, stored resolved. Restore Metadata (strings, as
AWS passes them):

- ``targetPath`` (required): absolute path of a new or empty directory, unless
  ``overwrite`` is ``"true"``;
- ``items`` (optional): the paths to restore, a JSON list or comma-separated;
- ``overwrite`` (optional): ``"true"`` to restore over existing files.

Abuse case: a caller with ``RegisterResource`` names a path the server will read with its
own (often root) rights and hand back through a restore; a caller with
``StartRestoreJob`` names a directory the server will write. So a source or target is
resolved (symlinks in it or any parent, ``..``) and must pass the operator's host-path
rule (the ``policy`` passed in, see :mod:`snowvault.control.model.host_paths`: never
/etc unless allowed, never the data directory or a vault's storage, never a directory
*containing* them) at the call (existence looked at only after the rule, so a refused
path is no probe) and again in the worker right before it reads or writes; the worker
reads/writes the path it resolved then, and a restore refuses when the target resolves
differently once created (a symlink swapped in between).

A restore job retried after its attempt was killed (the embedded worker or an agent died
in the middle) finishes what the killed attempt began: an attempt marks the target
directory, right before it writes, with the user extended attribute
``user.snowvault.restore-job`` naming the restore job's id
(:attr:`~snowvault.plugins.base.RestoreRequest.job_id`), and removes the mark when the
restore has been written. A later attempt of the same job that finds the target not
empty but marked with its own id restores over it (overwrite semantics, whatever
``overwrite`` says: what is there is its own partial restore); a mark naming another
job, or none, is the usual refusal of a non-empty target. Abuse case: a caller cannot
use the mark to overwrite a directory: it is honoured only when it names the id of the
job being run, a random id the server makes when StartRestoreJob is called, after the
call's own check of the target; StartRestoreJob's check never honours a mark; and a
user xattr can only be set by who may write the directory (on a sticky directory, its
owner), who could empty it anyway. An attempt that fails with an error leaves its mark
(a retry may still finish the job); it names a job that is over, which nothing honours
again. Where the file system keeps no user xattrs there is no mark, and a retry over a
partial restore is refused as before.

Depends on the plugin base, the model's host-path rule and core only.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
from collections.abc import Mapping
from typing import Any

from snowvault.control.model import host_paths
from snowvault.core.errors import InvalidInput
from snowvault.plugins.base import (
    BackupRequest,
    MetadataKey,
    Progress,
    Registration,
    Resource,
    RestoreRequest,
)
from snowvault.plugins.errors import InvalidRestoreTarget


def parse_items(raw: str | None) -> list[str]:
    """``items`` metadata: a JSON list of paths or a comma-separated string.

    >>> parse_items('["/a", "/b c"]'), parse_items("/a, /b"), parse_items(None)
    (['/a', '/b c'], ['/a', '/b'], [])
    """
    if not raw or not raw.strip():
        return []
    text = raw.strip()
    if text.startswith("["):
        try:
            value = json.loads(text)
        except (ValueError, RecursionError) as exc:  # nested past the recursion limit
            raise InvalidRestoreTarget(
                "Metadata.items: not a valid JSON list", path=raw, detail=str(exc)
            ) from exc
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise InvalidRestoreTarget("Metadata.items: must be a list of strings")
        return _no_dot_dot([v for v in value if v])
    return _no_dot_dot([part.strip() for part in text.split(",") if part.strip()])


def _no_dot_dot(items: list[str]) -> list[str]:
    """Items name paths inside the point: a ``..`` part is refused when the restore is
    asked (the restorer refuses it again when it runs)."""
    for item in items:
        if ".." in item.split("/"):
            raise InvalidRestoreTarget(f"Metadata.items: {item!r} may not contain '..'")
    return items


MARK = "user.snowvault.restore-job"
"""The user xattr naming the restore job that is writing into a target directory."""


def restore_mark(path: str) -> str | None:
    """The restore job id marked on directory ``path``; None when there is no mark (or
    the file system keeps no user xattrs). Never follows a symlink."""
    try:
        value = os.getxattr(path, MARK, follow_symlinks=False)
    except OSError:
        return None
    return value.decode("utf-8", "replace")


def _mark(path: str, job_id: str) -> bool:
    """Mark ``path`` as job ``job_id``'s target; False where it cannot be marked (no user
    xattrs there): the restore goes on, only a retry over it will be refused."""
    try:
        os.setxattr(path, MARK, job_id.encode(), follow_symlinks=False)
    except OSError:
        return False
    return True


def _unmark(path: str, job_id: str) -> None:
    """Remove job ``job_id``'s mark from ``path`` (a mark naming anything else, e.g. one
    restored with the point's own metadata, is left). The restore may have given the
    directory a mode without the owner's write bit, which a user xattr's removal needs:
    it is added for the removal only."""
    if restore_mark(path) != job_id:
        return
    with contextlib.suppress(OSError):
        try:
            os.removexattr(path, MARK, follow_symlinks=False)
        except PermissionError:
            mode = stat.S_IMODE(os.lstat(path).st_mode)
            os.chmod(path, mode | stat.S_IWUSR, follow_symlinks=False)
            try:
                os.removexattr(path, MARK, follow_symlinks=False)
            finally:
                os.chmod(path, mode, follow_symlinks=False)


def check_target(
    metadata: Mapping[str, str], policy: host_paths.Policy, job_id: str | None = None
) -> tuple[str, bool]:
    """The resolved target path and whether to restore over what is there (the overwrite
    flag, or a non-empty target marked with ``job_id``: that job's own partial restore);
    raises InvalidRestoreTarget, or PathRefused when ``policy`` (the host-path rule)
    refuses the resolved target."""
    path = metadata.get("targetPath") or metadata.get("TargetPath")
    if not path:
        raise InvalidRestoreTarget("Metadata.targetPath is required (an absolute directory)")
    overwrite = str(metadata.get("overwrite", "false")).lower() == "true"
    if not isinstance(path, str) or not os.path.isabs(path):
        raise InvalidRestoreTarget(path=path, detail="must be an absolute path")
    if "\x00" in path:
        raise InvalidRestoreTarget(path=path, detail="contains a NUL byte")
    resolved = host_paths.check(path, policy, os.path.realpath)
    if os.path.lexists(resolved):
        if not os.path.isdir(resolved):
            raise InvalidRestoreTarget(path=path, detail="exists and is not a directory")
        if not overwrite and os.listdir(resolved):
            if job_id is not None and restore_mark(resolved) == job_id:
                return resolved, True  # a killed attempt of this job began it
            raise InvalidRestoreTarget(
                path=path,
                detail='is not empty; set Metadata.overwrite to "true" to restore over it',
            )
    return resolved, overwrite


def tree_size(path: str) -> int:
    """Bytes of regular files under ``path`` (the denominator of PercentDone)."""
    total = 0
    stack = [path]
    while stack:
        try:
            with os.scandir(stack.pop()) as it:
                for entry in it:
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
                    elif entry.is_file(follow_symlinks=False):
                        total += entry.stat(follow_symlinks=False).st_size
        except OSError:
            continue
    return total


class Directory:
    """The Directory resource type (see the module docstring)."""

    type_name: str = "Directory"
    arn_kind: str = "directory"
    restore_keys: tuple[MetadataKey, ...] = (
        MetadataKey("targetPath", True, "absolute path of a new or empty directory"),
        MetadataKey("items", False, "paths to restore: a JSON list or comma-separated"),
        MetadataKey("overwrite", False, '"true" to restore over existing files'),
    )

    def check_source(
        self, source: str, policy: host_paths.Policy, properties: Mapping[str, str]
    ) -> Registration:
        """The resolved source when the host-path rule allows it and it is a directory; a
        Directory takes no Properties (a key given is refused, never silently dropped)."""
        path = host_paths.check(source, policy, os.path.realpath)
        if properties:
            raise InvalidInput(
                detail=f"a Directory takes no Properties (got: {', '.join(sorted(properties))})"
            )
        if not os.path.isdir(path):
            raise InvalidInput(detail=f"Source {source!r} is not an existing directory")
        return Registration(path)

    def describe(self, resource: Resource, policy: host_paths.Policy) -> dict[str, Any]:
        """Nothing beyond the stored source: describing reads no host path (the rule is
        judged when a job reads it)."""
        return {}

    def backup(self, request: BackupRequest) -> None:
        # The tree may have changed since RegisterResource: resolve and check again, now,
        # and read the resolved path (a symlink swapped in for the source is judged by
        # its target).
        source = host_paths.check(request.resource.source, request.policy, os.path.realpath)
        if not os.path.isdir(source):
            raise InvalidInput(detail=f"the resource's source {source!r} is not a directory")
        total = tree_size(source)
        request.progress(Progress(0, total))

        def on_progress(p: Progress) -> None:
            request.progress(Progress(p.bytes_done, total))

        request.sink.directory(source, on_progress)

    def check_restore(self, metadata: Mapping[str, str], policy: host_paths.Policy) -> None:
        check_target(metadata, policy)
        parse_items(metadata.get("items"))

    def restore(self, request: RestoreRequest) -> None:
        job_id = request.job_id
        target, overwrite = check_target(request.metadata, request.policy, job_id)  # again
        items = parse_items(request.metadata.get("items"))
        os.makedirs(target, exist_ok=True)
        if os.path.realpath(target) != target:  # a symlink swapped in since the check
            raise host_paths.PathRefused(
                path=request.metadata.get("targetPath"),
                reason=f"it no longer resolves to {target!r} (a symlink changed); not followed",
            )
        marked = job_id is not None and _mark(target, job_id)
        request.source.to_directory(
            target, include=items, overwrite=overwrite, progress=request.progress
        )
        if marked and job_id is not None:  # an error above leaves it, for a retry
            _unmark(target, job_id)

    def restored_source(self, metadata: Mapping[str, str]) -> str | None:
        """The source a restore with ``metadata`` created: its target directory, as a
        resource's source would be stored (absolute, normalised). DescribeRestoreJob's
        CreatedResourceArn names it: the ARN of the Directory resource registered with
        that source, else ``arn:aws:snowvault:REGION:ACCOUNT:directory`` followed by the
        path (``...:directory/srv/restored``; registered names never hold a ``/``)."""
        path = metadata.get("targetPath") or metadata.get("TargetPath")
        return os.path.normpath(path) if path and os.path.isabs(path) else None

    def restore_defaults(self, resource: Resource | None) -> dict[str, str]:
        """Back where it came from, refusing to overwrite, everything."""
        source = resource.source if resource is not None else ""
        return {"targetPath": source, "overwrite": "false", "items": "[]"}

    def validate_restore(self, request: RestoreRequest) -> str | None:
        """Nothing beyond the restore's own per-entry errors."""
        return None
