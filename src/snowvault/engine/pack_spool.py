"""A pack being filled straight into a temporary file of a local repository, not in memory.

A writer on a :class:`~snowvault.engine.backends.local.LocalBackend` appends each sealed
blob to a temporary file in ``<root>/data/`` as it comes, hashing the bytes on the way;
when the pack is full its header is appended, the file is fsynced, made read-only and
hard-linked to ``data/<hh>/<pack-id>`` exactly as :meth:`LocalBackend.put` publishes an
object (a temporary ``.sv-tmp-*`` file is never listed; the link fails if the name is
taken, which for a content-addressed name means the same bytes are already there). The
pack's bytes then live in the page cache, not in the writer's heap: a backup holds no
16 MiB buffer per open or uploading pack (measured in docs/benchmarks.md, "Issue 15,
backup"), and each blob is copied once (into the file) instead of twice.

    spool = PackSpool.create(root)
    spool.write(nonce, sealed)           # any number of times
    pack_id = spool.publish(header)      # durable under data/<hh>/<pack-id> on return
    spool.discard()                      # or: drop an unpublished one

The objects written are byte for byte those of the in-memory path (same layout, same
name), so the repository format does not change. A writer killed while a pack is open
leaves its temporary file behind, as a put interrupted mid-write does; readers never
list it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile

from snowvault.engine.backends.local import (
    OBJECT_MODE,
    TEMP_PREFIX,
    backend_error,
    fsync_dir,
    make_dirs,
    publish_link,
)

WRITE_BYTES = 256 * 1024
"""Blobs smaller than this are gathered and written together (one system call, and one
hand-over of the GIL, per 256 KiB instead of two per small file)."""


class PackSpool:
    """One open pack's temporary file (not thread-safe: the repository's pack lock
    serializes writes; :meth:`publish` runs on one upload thread)."""

    def __init__(self, root: str, fd: int, tmp: str) -> None:
        self._root = root
        self._fd = fd
        self._tmp = tmp
        self._hash = hashlib.sha256()
        # small blobs gathered up to WRITE_BYTES (fewer syscalls) in one buffer of that
        # size, made at the first and filled in place: a bytearray grown by += and
        # dropped at each write was reallocated (copied) as it grew and its pages faulted
        # in afresh every 256 KiB (glibc gives a freed block above 128 KiB back)
        self._buf: bytearray | None = None
        self._fill = 0
        self.size = 0
        self._failed: OSError | None = None  # a write failed: the file lacks bytes

    @classmethod
    def create(cls, root: str) -> PackSpool:
        directory = os.path.join(root, "data")
        try:
            make_dirs(directory)
            fd, tmp = tempfile.mkstemp(dir=directory, prefix=TEMP_PREFIX)
        except OSError as exc:
            raise backend_error(exc, "data/") from exc
        return cls(root, fd, tmp)

    def write(self, *parts: bytes | bytearray | memoryview) -> None:
        self._refuse_if_failed()
        for part in parts:
            self.size += len(part)
            n = len(part)
            if n >= WRITE_BYTES:
                self._drain()
                self._hash.update(part)
                self._write(part)
                continue
            if self._fill + n > WRITE_BYTES:
                self._drain()
            if self._buf is None:
                self._buf = bytearray(WRITE_BYTES)
            self._buf[self._fill : self._fill + n] = part  # same length: never resized
            self._fill += n

    def _drain(self) -> None:
        """Hash and write the gathered small blobs (hashed here, not blob by blob:
        hashlib lets go of the GIL for each part over 2 KiB, a hand-over per blob)."""
        if self._fill:
            assert self._buf is not None
            with memoryview(self._buf) as whole, whole[: self._fill] as gathered:
                self._hash.update(gathered)
                self._write(gathered)
            self._fill = 0

    def _write(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError as exc:
            self._failed = exc
            raise backend_error(exc, "data/ (a pack being written)") from exc
        finally:
            view.release()  # a traceback that keeps this frame must not pin the buffer

    def _refuse_if_failed(self) -> None:
        """A write that failed (a full disk, say) left the file short of bytes the hash
        and the entries' offsets count: nothing more is written to it and it is never
        published, even once the disk has room again (it would be a pack whose name
        and index entries promise bytes it lacks)."""
        if self._failed is not None:
            raise backend_error(self._failed, "data/ (a pack whose earlier write failed)")

    def publish(self, header: bytes) -> str:
        """Append the header, make the pack durable under its name; its id."""
        self._refuse_if_failed()
        self.write(header)
        self._drain()
        pack_id = self._hash.hexdigest()
        name = f"data/{pack_id[:2]}/{pack_id}"
        final = os.path.join(self._root, name)
        try:
            os.fchmod(self._fd, OBJECT_MODE)
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = -1
            directory = os.path.dirname(final)
            make_dirs(directory)
            publish_link(self._tmp, final)  # taken: content-addressed, the same bytes
            fsync_dir(directory)
        except OSError as exc:
            raise backend_error(exc, name) from exc
        finally:
            self.discard()
        return pack_id

    def __del__(self) -> None:
        """A pack its repository dropped unflushed (a failed backup in a long-running
        server): its descriptor and temporary file go with it, not at process exit."""
        with contextlib.suppress(Exception):
            self.discard()

    def discard(self) -> None:
        """Close and remove the temporary file (nothing was published from it)."""
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = -1
        if self._tmp:
            with contextlib.suppress(OSError):
                os.unlink(self._tmp)
            self._tmp = ""
