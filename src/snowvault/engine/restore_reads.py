"""Blob reads for a restore's runs of files: few system calls, no fresh buffers.

The restorer hands its threads *runs* of files in pack order (up to a few hundred small
files, or one large file). Reading a whole 16 MiB pack into a new buffer for the first
small blob of it, and every large blob into a new buffer of its own, made the kernel
fault in and clear fresh pages for every byte read (a fifth of a full restore's CPU,
measured with perf on the benchmark's 127,000 files). A :class:`RunReader` instead

- reads the run's small blobs as a few *segments* (neighbours in one pack whose gaps are
  under ``GAP`` bytes are read together), each with one ``preadv`` into a buffer the
  thread keeps from run to run, when the first blob of that segment is needed;
- reads a large blob (``DIRECT`` bytes or more) alone, into a second kept buffer;
- authenticates and decompresses every blob straight from those buffers
  (``Repository.decode_blob_view`` takes a memoryview), so only the plaintext is
  allocated, and a blob stored uncompressed is not copied again.

A read that fails (a missing or short pack) fails the file that needed it, as
``Repository.get_blob`` does: an IntegrityError naming the pack. Only a
:class:`Repository` on a :class:`LocalBackend` (a store whose packs are files) is read
this way; any other blob source goes through its own ``get_blob`` one blob at a time.

    reader = RunReader.start(repo)            # None: use repo.get_blob
    blobs = reader.run(blob_ids)              # one per run, on the thread writing it
    data = blobs.get(blob_id)
    reader.close()                            # every thread's pack files closed
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from typing import Any

from snowvault.engine import errors, packs
from snowvault.engine.backends.local import LocalBackend

DIRECT = 256 * 1024
"""A blob this large is read on its own (small ones are read in segments)."""
GAP = 64 * 1024
"""Small blobs of one pack this close are read with the bytes between them."""
SEGMENT_MAX = 4 * 1024 * 1024
KEEP_BYTES = 16 * 1024 * 1024
"""A thread's buffer larger than this (a run of unusually large segments) is not kept."""
OPEN_PACKS = 8
"""Pack files a thread keeps open (runs sweep the packs in order)."""


class _Thread:
    """One thread's buffers and open pack files."""

    def __init__(self) -> None:
        self.segments = bytearray()
        self.single = bytearray()
        self.fds: dict[str, int] = {}

    def close(self) -> None:
        for fd in self.fds.values():
            os.close(fd)
        self.fds.clear()


class RunReader:
    def __init__(self, repo: Any, root: str) -> None:
        self._repo = repo
        self._root = root
        self._local = threading.local()
        self._threads: list[_Thread] = []
        self._lock = threading.Lock()

    @classmethod
    def start(cls, repo: Any) -> RunReader | None:
        """A reader for ``repo``, or None when its packs are not local files (or it is
        not a Repository: tests' fakes, an agent's remote source)."""
        backend = getattr(repo, "backend", None)
        if not isinstance(backend, LocalBackend) or not hasattr(repo, "locate"):
            return None
        return cls(repo, backend.root)

    def _thread(self) -> _Thread:
        state: _Thread | None = getattr(self._local, "state", None)
        if state is None:
            state = self._local.state = _Thread()
            with self._lock:
                self._threads.append(state)
        return state

    def close(self) -> None:
        with self._lock:
            for state in self._threads:
                state.close()

    def run(self, blob_ids: Iterable[bytes]) -> RunBlobs:
        """The reads for one run of files needing ``blob_ids`` (on the calling thread)."""
        return RunBlobs(self, self._thread(), blob_ids)

    # ------------------------------------------------------------ file access
    def _fd(self, state: _Thread, name: str) -> int:
        fd = state.fds.get(name)
        if fd is None:
            if len(state.fds) >= OPEN_PACKS:
                oldest = next(iter(state.fds))
                os.close(state.fds.pop(oldest))
            try:
                fd = os.open(os.path.join(self._root, name), os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError as exc:
                raise errors.IntegrityError(name=name, detail="pack is missing") from exc
            state.fds[name] = fd
        return fd

    def _read(self, state: _Thread, name: str, view: memoryview, offset: int) -> None:
        """Fill ``view`` from pack ``name`` at ``offset``; a short pack is damage."""
        fd = self._fd(state, name)
        done = 0
        while done < len(view):
            n = os.preadv(fd, [view[done:]], offset + done)
            if n <= 0:
                raise errors.IntegrityError(
                    name=name, detail=f"pack too short (wanted {len(view)} bytes at {offset})"
                )
            done += n


class RunBlobs:
    """Blobs of one run: :meth:`get` reads a small blob's segment on first use."""

    def __init__(self, reader: RunReader, state: _Thread, blob_ids: Iterable[bytes]) -> None:
        self._reader = reader
        self._state = state
        locate = reader._repo.locate
        small: list[tuple[str, int, int, int, bytes]] = []
        seen: set[bytes] = set()
        for blob_id in blob_ids:
            if blob_id in seen:
                continue
            seen.add(blob_id)
            try:
                loc = locate(blob_id)
            except errors.IntegrityError:
                continue  # not in the index: get() says so for the file that needs it
            if loc.length < DIRECT:
                small.append(
                    (packs.pack_name(loc.pack_id), loc.offset, loc.length, loc.kind, blob_id)
                )
        small.sort()
        # segments: (pack name, pack offset, length, offset in the run's buffer)
        self._segments: list[tuple[str, int, int, int]] = []
        self._loaded: list[bool | None] = []  # None: not read yet; False: read failed
        # blob id -> (segment number, offset in the run's buffer, length, kind)
        self._where: dict[bytes, tuple[int, int, int, int]] = {}
        base = 0
        seg_start = seg_end = -1
        seg_pack = ""
        pending: list[tuple[bytes, int, int, int]] = []

        def close_segment() -> None:
            nonlocal base
            number = len(self._segments)
            self._segments.append((seg_pack, seg_start, seg_end - seg_start, base))
            self._loaded.append(None)
            for blob_id, offset, length, kind in pending:
                self._where[blob_id] = (number, base + offset - seg_start, length, kind)
            base += seg_end - seg_start
            pending.clear()

        for name, offset, length, kind, blob_id in small:
            if pending and (
                name != seg_pack
                or offset - seg_end > GAP
                or offset + length - seg_start > SEGMENT_MAX
            ):
                close_segment()
            if not pending:
                seg_pack, seg_start, seg_end = name, offset, offset
            pending.append((blob_id, offset, length, kind))
            seg_end = max(seg_end, offset + length)
        if pending:
            close_segment()
        if len(state.segments) < base or len(state.segments) > max(base, KEEP_BYTES):
            state.segments = bytearray(base)
        self._buffer = memoryview(state.segments)

    def get(self, blob_id: bytes) -> bytes | memoryview:
        """The plaintext of ``blob_id`` (authenticated); IntegrityError when it cannot be
        read or is damaged."""
        where = self._where.get(blob_id)
        if where is None:
            return self._single(blob_id)
        number, at, length, kind = where
        name, offset, size, base = self._segments[number]
        if self._loaded[number] is None:
            try:
                self._reader._read(self._state, name, self._buffer[base : base + size], offset)
                self._loaded[number] = True
            except errors.IntegrityError:
                self._loaded[number] = False  # a cut pack: each blob on its own, below
        if not self._loaded[number]:
            return self._single(blob_id)
        view = self._buffer[at : at + length]
        data: bytes | memoryview = self._reader._repo.decode_blob_view(blob_id, kind, view, name)
        return data

    def _single(self, blob_id: bytes) -> bytes | memoryview:
        """A blob read on its own (a large one, or one of a segment that could not be
        read whole), into the thread's second buffer."""
        repo = self._reader._repo
        loc = repo.locate(blob_id)  # IntegrityError: not in the index
        name = packs.pack_name(loc.pack_id)
        state = self._state
        if len(state.single) < loc.length or len(state.single) > max(loc.length, KEEP_BYTES):
            state.single = bytearray(loc.length)
        view = memoryview(state.single)[: loc.length]
        self._reader._read(state, name, view, loc.offset)
        data: bytes | memoryview = repo.decode_blob_view(blob_id, loc.kind, view, name)
        return data
