"""Content-defined chunking (FastCDC, the compiled pyfastcdc implementation).

Parameters live in the repository ``config``; the gear seed is derived from the
repository secret so chunk boundaries do not reveal content across repositories.

    >>> c = Chunker(ChunkerParams(min_size=64, avg_size=256, max_size=1024, seed=1))
    >>> sum(len(v) for v in c.chunks_of_bytes(bytes(range(256)) * 40))
    10240
"""

from __future__ import annotations

import copy
import io
import mmap
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any, BinaryIO

from pyfastcdc.cy import FastCDC


@dataclass(frozen=True)
class ChunkerParams:
    """FastCDC parameters, passed to pyfastcdc as they are.

    pyfastcdc's ``avg_size`` is the normalized target *beyond* the skipped minimum; with
    the defaults (min 512 KiB, avg 640 KiB, max 8 MiB) the measured mean chunk on random
    data is about 1 MiB, restic's figure.
    """

    min_size: int = 512 * 1024
    avg_size: int = 640 * 1024
    max_size: int = 8 * 1024 * 1024
    seed: int = 0

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> ChunkerParams:
        return cls(
            min_size=int(doc["min_size"]),
            avg_size=int(doc["avg_size"]),
            max_size=int(doc["max_size"]),
            seed=int(doc.get("seed", 0)),
        )


_ZEROS = bytes(64 * 1024)


def all_zero(data: bytes | bytearray | memoryview) -> bool:
    """Whether ``data`` is all zero bytes (a hole's chunk), without allocating: the
    ``bytes(data) == bytes(len(data))`` this replaces had the kernel fault in and zero
    a fresh buffer the size of the chunk (perf: 5.8% of the sparse image's backup).
    Compared 64 KiB at a time with one small buffer, stopping at the first non-zero."""
    step = len(_ZEROS)
    if len(data) <= step:
        return _ZEROS.startswith(data)
    view = memoryview(data)
    return all(_ZEROS.startswith(view[i : i + step]) for i in range(0, len(view), step))


@dataclass(frozen=True, slots=True)
class Known:
    """A chunk of a changed file that is its parent version's chunk at the same offset,
    byte for byte: ``ref`` is that chunk's blob id (hex; None for a hole), stored
    already. :meth:`Chunker.views_of_file` yields it in place of a view."""

    ref: str | None
    length: int


class ParentCuts:
    """Where a changed file's parent version was cut, tried before FastCDC is run.

    FastCDC decides each cut from the bytes since the last cut and the one byte after
    the cut (``_cut_gear`` hashes the byte at the offset it returns), so where a cut of
    the new file meets a cut of the parent's, a parent chunk whose bytes and next byte
    are unchanged ends where FastCDC would end it: the chunker takes it without cutting
    (and without storing: it is in the repository). ``same(ref, view)`` says whether
    ``view`` is the parent's chunk ``ref``; a chunk is taken only when it and the chunk
    after it are the same (the latter for its first byte), and never the parent's last
    (its end was the end of the file, not a cut). A changed region is cut as usual and
    taking the parent's chunks resumes at the first cut that meets one of the parent's.
    A rerun that rereads a grown log or a disk image with a few changed blocks cuts only
    the chunks around the changes; the chunks are those FastCDC would make (tested).

        >>> cuts = ParentCuts([("aa", 4), ("bb", 4), ("cc", 2)], lambda ref, v: True)
        >>> cuts.known(0, memoryview(bytes(10))), cuts.known(4, memoryview(bytes(5)))
        (Known(ref='aa', length=4), None)
    """

    def __init__(
        self,
        parts: Sequence[tuple[str | None, int]],
        same: Callable[[str | None, memoryview], bool],
    ) -> None:
        self._parts = parts
        self._same = same
        self._starts: dict[int, int] = {}  # offset of a part but the last -> its index
        offset = 0
        for i, (_, length) in enumerate(parts[:-1]):
            self._starts[offset] = i
            offset += length
        self._checked = (-1, False)  # the last part compared (the next part's check)

    def wanted(self, offset: int) -> int:
        """Bytes from ``offset`` :meth:`known` compares (0: no parent chunk starts there)."""
        i = self._starts.get(offset)
        return 0 if i is None else self._parts[i][1] + self._parts[i + 1][1]

    def starts(self, offset: int) -> bool:
        return offset in self._starts

    def known(self, offset: int, data: memoryview) -> Known | None:
        """The parent's chunk at ``offset`` when ``data`` (the file from ``offset``, as
        far as it is read) starts with it and with the chunk after it."""
        i = self._starts.get(offset)
        if i is None:
            return None
        ref, length = self._parts[i]
        following = self._parts[i + 1][1]
        if len(data) < length + following:
            return None
        if self._matches(i, data[:length]) and self._matches(i + 1, data[length:][:following]):
            return Known(ref, length)
        return None

    def _matches(self, i: int, view: memoryview) -> bool:
        if self._checked[0] == i:
            return self._checked[1]
        same = self._same(self._parts[i][0], view)
        self._checked = (i, same)
        return same


class Chunker:
    """Splits streams, buffers and files into content-defined chunks. Not thread-safe:
    use one per thread (they are cheap)."""

    def __init__(self, params: ChunkerParams) -> None:
        self.params = params
        self._cdc = FastCDC(
            avg_size=params.avg_size,
            min_size=params.min_size,
            max_size=params.max_size,
            seed=params.seed,
        )
        self._parent: ParentCuts | None = None

    def with_parent(self, parent: ParentCuts) -> Chunker:
        """This chunker for one changed file whose :meth:`views_of_file` takes the
        parent version's unchanged chunks as :class:`Known` (:class:`ParentCuts`)."""
        hinted = copy.copy(self)
        hinted._parent = parent
        return hinted

    def chunks(self, stream: BinaryIO) -> Iterator[memoryview]:
        """Chunks of a stream; each view is valid only until the next one is produced."""
        for chunk in self._cdc.cut_stream(stream):
            yield chunk.data

    def chunks_of_bytes(self, data: bytes | memoryview) -> Iterator[memoryview]:
        for chunk in self._cdc.cut_buf(data):
            yield chunk.data

    def chunks_of_file(self, path: str | bytes) -> Iterator[bytes]:
        """Chunks of a regular file, each its own ``bytes`` (safe to keep and to hand to
        other threads): :meth:`views_of_file`'s, copied."""
        for view in self._views(path, None):
            if isinstance(view, memoryview):
                yield bytes(view)

    def views_of_file(self, path: str | bytes) -> Iterator[memoryview | Known | None]:
        """Chunks of a regular file as views of the buffer it is read into, not copies,
        and a None before the chunker moves or overwrites what it read: a view is valid
        until the next None, so whoever hands views to other threads must be done with
        them all before it asks for the item after a None. (A chunk copied out of the
        buffer, as :meth:`chunks_of_file` does, was a fresh ~1 MiB the kernel faulted in
        and zeroed and glibc gave back on free: 8-17% of the CPU in perf of the media
        set's backups, most of it wasted on the chunks a rerun finds stored already.)
        Between two Nones come ``max_size`` bytes or more of chunks. Plain reads, not
        mmap of the file: a file truncated while it is read must end in a short file,
        never a SIGBUS.

        The cuts are those of pyfastcdc's stream chunker (each made with ``max_size``
        bytes ahead or at the end of the file, in a buffer of twice ``max_size``), but
        the buffer is an anonymous mapping: its pages are zeroed by the kernel as the
        reads first touch them and return when the file and its views are done, where
        the stream chunker's ``bytearray`` is zeroed whole (16 MiB) for every file. The
        mapping is private: Python's default for an anonymous one is shared, whose
        pages are a shmem file's (each first touch costs a page-cache insertion, and the
        unmapping a file teardown; perf on the media set's backup: 5.6% of the CPU in
        ``shmem_fault``, 1.7% in tearing the files down).

        A chunker :meth:`with_parent` yields a :class:`Known` for each of the parent
        version's chunks it finds unchanged, in place of its view."""
        return self._views(path, self._parent)

    def _views(
        self, path: str | bytes, parent: ParentCuts | None
    ) -> Iterator[memoryview | Known | None]:
        buf = mmap.mmap(-1, 2 * self.params.max_size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        with open(path, "rb", buffering=0) as fh:
            yield from self._cut_file(fh, memoryview(buf), parent)

    def _cut_file(
        self, fh: io.FileIO, buf: memoryview, parent: ParentCuts | None
    ) -> Iterator[memoryview | Known | None]:
        ahead = self.params.max_size
        start = end = 0  # buf[start:end]: read, not yet cut
        offset = 0  # the file offset of buf[start]
        eof = False
        given = False  # views of buf handed out since the last None
        while True:
            # a parent's chunk and the next may want more than ``ahead``: refilled early
            # when no view is out (taking known chunks gives none), never waited for
            wanted = parent.wanted(offset) if parent is not None and not given else 0
            if not eof and end - start < max(ahead, wanted):
                if given:
                    yield None  # the views must be done with: buf is moved and refilled
                    given = False
                buf[: end - start] = buf[start:end]  # memmove
                end, start = end - start, 0
                while end < len(buf):
                    n = fh.readinto(buf[end:])
                    if not n:
                        eof = True
                        break
                    end += n
            if start == end:
                return
            if parent is not None:
                known = parent.known(offset, buf[start:end])
                if known is not None:
                    yield known
                    start += known.length
                    offset += known.length
                    continue
            for chunk in self._cdc.cut_buf(buf[start:end]):
                yield chunk.data
                given = True
                start += chunk.length
                offset += chunk.length
                if not eof and end - start < ahead:
                    break
                if parent is not None and parent.starts(offset):
                    break
