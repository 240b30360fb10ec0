"""BlockDevice: a block device or a disk image file on the server's host, as one image.

A resource is ``arn:aws:snowvault:REGION:ACCOUNT:block/NAME``; its source is the
resolved path of a block device (``/dev/vg0/data-snap``) or of a regular image file
(``/srv/vm/disk.img``). No properties. A recovery point holds one entry, ``image``,
read by the sink from the host path itself: sparse-aware (holes are neither read nor
stored) and chunked with the vault's content-defined chunker, so a point after a 1%
change stores about 1% plus chunk overhead.

A device is read through a consistent view when it is one: a device-mapper snapshot (an
LVM snapshot: ``lvcreate -s``; see docs/resources/block.md) or a read-only device. Any
other device is read live (blocks may change while they are read): the point's plugin
note then says ``read a live device`` and the note's ``warning`` gives the sentence for
the job's status message.

Restore Metadata: ``targetPath`` (required: an image file, new or, with ``overwrite``
``"true"``, replaced; or a block device, written over only with ``overwrite`` and never
while it, a partition of it or a holder on it is mounted, used as swap or held by
device-mapper/MD, and never a loop device's backing file in use), ``overwrite``. A file
target gets the image's holes back as holes (zero blocks are not written); a device is
written whole. The after-restore check compares the size and a CRC-32 of what was
written with the point's image.

Abuse case: a caller with ``RegisterResource`` names a host path the server reads with
its (root) rights and hands back through a restore; one with ``StartRestoreJob`` names a
path the server overwrites (a device with a mounted file system would be corrupted). So
sources and targets pass the operator's host-path rule (resolved, at the call and again
in the worker), the target is opened without following a symlink swapped in since the
check, and a device target is refused while anything uses it (``/proc/self/mountinfo``,
``/proc/swaps``, ``/sys/dev/block/M:m/holders``, its partitions) and opened ``O_EXCL``
(the kernel refuses a mounted or claimed device too).

Depends on the plugin base and errors, the model's host-path rule and core only.
"""

from __future__ import annotations

import errno
import os
import stat
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, BinaryIO

from snowvault.control.model import host_paths
from snowvault.core.errors import Conflict, InvalidInput
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

IMAGE = "image"
"""The one entry of a BlockDevice recovery point."""

LIVE = "read a live device"
"""What the note says of a device read without a consistent view."""

BLOCK = 4096
"""The granularity of holes a file restore keeps (zero blocks of this size are skipped)."""
BUFFER = 1024 * 1024


def device_of(path: str) -> tuple[int, int] | None:
    """(major, minor) of a block device at ``path``; None for anything else."""
    st = os.stat(path)
    return (os.major(st.st_rdev), os.minor(st.st_rdev)) if stat.S_ISBLK(st.st_mode) else None


@dataclass(frozen=True)
class Host:
    """Where the plugin learns what uses a device: the files of a Linux host (tests pass
    fakes). ``device_of`` tells a block device's numbers."""

    mountinfo: str = "/proc/self/mountinfo"
    swaps: str = "/proc/swaps"
    sys: str = "/sys"
    device_of: Callable[[str], tuple[int, int] | None] = device_of

    def _read(self, path: str) -> str:
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def _sysdir(self, dev: tuple[int, int]) -> str:
        return os.path.join(self.sys, "dev", "block", f"{dev[0]}:{dev[1]}")

    def partitions(self, dev: tuple[int, int]) -> list[tuple[int, int]]:
        """The device and its partitions (their numbers from sysfs)."""
        found = [dev]
        base = self._sysdir(dev)
        try:
            names = sorted(os.listdir(base))
        except OSError:
            return found
        for name in names:
            text = self._read(os.path.join(base, name, "dev")).strip()
            if os.path.exists(os.path.join(base, name, "partition")) and ":" in text:
                major, _, minor = text.partition(":")
                found.append((int(major), int(minor)))
        return found

    def device_in_use(self, path: str, dev: tuple[int, int]) -> str | None:
        """Why block device ``path`` (numbers ``dev``) is in use, or None."""
        mounted = {line.split()[2] for line in self._read(self.mountinfo).splitlines() if line}
        for part in self.partitions(dev):
            number = f"{part[0]}:{part[1]}"
            if number in mounted:
                return f"it (or its partition {number}) is mounted"
            try:
                holders = os.listdir(os.path.join(self._sysdir(part), "holders"))
            except OSError:
                holders = []
            if holders:
                return f"it is held by {', '.join(sorted(holders))} (device-mapper, LVM or MD)"
        swaps = [line.split()[0] for line in self._read(self.swaps).splitlines()[1:] if line]
        if any(os.path.realpath(s) == path for s in swaps):
            return "it is used as swap"
        return None

    def file_in_use(self, path: str) -> str | None:
        """Why image file ``path`` is in use (a loop device's backing file), or None."""
        try:
            names = os.listdir(os.path.join(self.sys, "block"))
        except OSError:
            return None
        for name in sorted(names):
            backing = self._read(os.path.join(self.sys, "block", name, "loop", "backing_file"))
            if backing.strip() == path:
                return f"it is the backing file of /dev/{name}"
        return None

    def consistent(self, dev: tuple[int, int]) -> bool:
        """A read-only device, or a device-mapper snapshot (a slave whose dm uuid ends
        in ``-cow``, as LVM names a snapshot's exception store)."""
        base = self._sysdir(dev)
        if self._read(os.path.join(base, "ro")).strip() == "1":
            return True
        try:
            slaves = os.listdir(os.path.join(base, "slaves"))
        except OSError:
            return False
        return any(
            self._read(os.path.join(self.sys, "block", s, "dm", "uuid")).strip().endswith("-cow")
            for s in slaves
        )


def _size(path: str) -> int:
    with open(path, "rb") as f:
        return f.seek(0, os.SEEK_END)


def _source(path: str, policy: host_paths.Policy, host: Host) -> tuple[str, str]:
    """The resolved source and its kind ("device" or "file") when the rule allows it."""
    resolved = host_paths.check(path, policy, os.path.realpath)
    try:
        st = os.stat(resolved)
        if host.device_of(resolved) is not None:
            return resolved, "device"
    except OSError as exc:
        raise InvalidInput(detail=f"Source {path!r} cannot be read ({exc.strerror})") from None
    if stat.S_ISREG(st.st_mode):
        return resolved, "file"
    raise InvalidInput(detail=f"Source {path!r} is neither a block device nor an image file")


@dataclass(frozen=True)
class Target:
    path: str
    device: tuple[int, int] | None
    exists: bool
    overwrite: bool


def check_target(metadata: Mapping[str, str], policy: host_paths.Policy, host: Host) -> Target:
    """The resolved restore target; InvalidRestoreTarget / PathRefused / Conflict (in use)."""
    raw = metadata.get("targetPath")
    if not raw:
        raise InvalidRestoreTarget("Metadata.targetPath is required (an image file or a device)")
    if not os.path.isabs(raw) or "\x00" in raw:
        raise InvalidRestoreTarget(path=raw, detail="must be an absolute path")
    overwrite = str(metadata.get("overwrite", "false")).lower() == "true"
    path = host_paths.check(raw, policy, os.path.realpath)
    if not os.path.lexists(path):
        if not os.path.isdir(os.path.dirname(path)):
            raise InvalidRestoreTarget(path=raw, detail="its directory does not exist")
        return Target(path, None, False, overwrite)
    st = os.stat(path)
    device = host.device_of(path)
    if device is None and not stat.S_ISREG(st.st_mode):
        raise InvalidRestoreTarget(path=raw, detail="is neither a block device nor a file")
    if not overwrite:
        what = "is a device" if device is not None else "exists"
        raise InvalidRestoreTarget(
            path=raw, detail=f'{what}; set Metadata.overwrite to "true" to write over it'
        )
    busy = host.device_in_use(path, device) if device is not None else host.file_in_use(path)
    if busy:
        raise Conflict(f"restore target {raw!r} is in use: {busy}; not written")
    return Target(path, device, True, overwrite)


def _zero_runs(data: memoryview) -> list[tuple[int, int, bool]]:
    """``data`` as runs (offset, length, is_zero) of BLOCK-sized pieces."""
    zero = bytes(BLOCK)
    runs: list[tuple[int, int, bool]] = []
    for at in range(0, len(data), BLOCK):
        piece = data[at : at + BLOCK]
        is_zero = piece == zero[: len(piece)]
        if runs and runs[-1][2] == is_zero:
            start, length, _ = runs[-1]
            runs[-1] = (start, length + len(piece), is_zero)
        else:
            runs.append((at, len(piece), is_zero))
    return runs


def _copy(body: BinaryIO, fd: int, sparse: bool, report: Callable[[int], None]) -> int:
    """Write ``body`` to ``fd`` from offset 0, zero blocks skipped when ``sparse``."""
    offset = 0
    while chunk := body.read(BUFFER):
        view = memoryview(chunk)
        runs = _zero_runs(view) if sparse else [(0, len(view), False)]
        for start, length, is_zero in runs:
            if not is_zero:
                os.pwrite(fd, view[start : start + length], offset + start)
        offset += len(view)
        report(offset)
    return offset


def _crc(read: Callable[[int], bytes], limit: int) -> int:
    crc, left = 0, limit
    while left > 0 and (chunk := read(min(BUFFER, left))):
        crc = zlib.crc32(chunk, crc)
        left -= len(chunk)
    return crc


class BlockDevice:
    """The BlockDevice resource type (see the module docstring). ``host`` says where
    mounts, swaps and sysfs are (tests pass fakes)."""

    type_name: str = "BlockDevice"
    arn_kind: str = "block"
    restore_keys: tuple[MetadataKey, ...] = (
        MetadataKey("targetPath", True, "image file or block device to write (absolute)"),
        MetadataKey("overwrite", False, '"true" to write over an existing file or a device'),
    )

    def __init__(self, host: Host | None = None) -> None:
        self.host = host or Host()

    def check_source(
        self, source: str, policy: host_paths.Policy, properties: Mapping[str, str]
    ) -> Registration:
        if properties:
            raise InvalidInput(detail=f"BlockDevice takes no properties ({', '.join(properties)})")
        path, _ = _source(source, policy, self.host)
        return Registration(path)

    def describe(self, resource: Resource, policy: host_paths.Policy) -> dict[str, Any]:
        try:
            host_paths.check(resource.source, policy, os.path.realpath)
        except host_paths.PathRefused as exc:
            return {"Error": str(exc)}
        try:
            st = os.stat(resource.source)
            kind = "device" if stat.S_ISBLK(st.st_mode) else "file"
            out: dict[str, Any] = {"Kind": kind, "SizeInBytes": _size(resource.source)}
        except OSError as exc:
            return {"Error": f"{resource.source} cannot be read ({exc.strerror})"}
        if kind == "file":
            out["AllocatedBytes"] = st.st_blocks * 512
        return out

    def backup(self, request: BackupRequest) -> None:
        path, kind = _source(request.resource.source, request.policy, self.host)  # again
        size = _size(path)
        info: dict[str, Any] = {"kind": kind, "size": size}
        if kind == "device":
            device = self.host.device_of(path)
            consistent = device is not None and self.host.consistent(device)
            info["view"] = "snapshot or read-only device" if consistent else LIVE
            if not consistent:
                info["warning"] = (
                    f"{LIVE}: {path} was not a snapshot or read-only, so blocks written "
                    "during the backup may be inconsistent"
                )
        request.sink.note(info)
        request.progress(Progress(0, size))

        def on_progress(p: Progress) -> None:
            request.progress(Progress(p.bytes_done, size))

        entry = Entry(path=IMAGE, host_path=path, size=size, meta={"kind": kind})
        request.sink.entries([entry], on_progress)

    def check_restore(self, metadata: Mapping[str, str], policy: host_paths.Policy) -> None:
        check_target(metadata, policy, self.host)

    def restore(self, request: RestoreRequest) -> None:
        target = check_target(request.metadata, request.policy, self.host)  # again, now
        size = next((e.size for e in request.source.entries() if e.path == IMAGE), None)
        if size is None:
            raise InvalidRestoreTarget("the recovery point holds no block image")
        if target.device is not None:
            flags = os.O_WRONLY | os.O_EXCL  # EBUSY when mounted or claimed
        else:
            flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW
            flags |= 0 if target.exists else os.O_EXCL
        try:
            fd = os.open(target.path, flags | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            if exc.errno == errno.EBUSY:
                raise Conflict(f"restore target {target.path!r} is in use (busy)") from None
            raise InvalidRestoreTarget(path=target.path, detail=exc.strerror) from None
        try:
            if os.path.realpath(target.path) != target.path:  # a symlink swapped in
                raise host_paths.PathRefused(path=target.path, reason="it no longer resolves")
            if target.device is not None and os.lseek(fd, 0, os.SEEK_END) < size:
                raise InvalidRestoreTarget(path=target.path, detail=f"is smaller than {size}")
            request.progress(Progress(0, size))
            with request.source.open(IMAGE) as body:
                written = _copy(
                    body,
                    fd,
                    target.device is None,
                    lambda n: request.progress(Progress(n, size)),
                )
            if target.device is None:
                os.ftruncate(fd, written)  # the trailing hole
            os.fsync(fd)
        finally:
            os.close(fd)

    def restore_defaults(self, resource: Resource | None) -> dict[str, str]:
        """Back where it came from; a device or an existing file needs overwrite."""
        return {"targetPath": resource.source if resource else "", "overwrite": "false"}

    def restored_source(self, metadata: Mapping[str, str]) -> str | None:
        path = metadata.get("targetPath")
        return os.path.normpath(path) if path and os.path.isabs(path) else None

    def validate_restore(self, request: RestoreRequest) -> str | None:
        """The target holds the image: its size (a device: at least) and CRC-32."""
        path = host_paths.check(
            request.metadata.get("targetPath"), request.policy, os.path.realpath
        )
        size = next(e.size for e in request.source.entries() if e.path == IMAGE)
        with request.source.open(IMAGE) as body:
            want = _crc(body.read, size)
        with open(path, "rb") as f:
            have_size = f.seek(0, os.SEEK_END)
            f.seek(0)
            have = _crc(f.read, size)
        device = self.host.device_of(path) is not None
        if have_size < size or (have_size != size and not device):
            return f"{path} has {have_size} bytes, the image {size}"
        if have != want:
            return f"{path} differs from the image (CRC-32 {have:08x}, expected {want:08x})"
        return None
