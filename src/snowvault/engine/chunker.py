"""Content-defined chunking (FastCDC, the compiled pyfastcdc implementation).

Parameters live in the repository ``config``; the gear seed is derived from the
repository secret so chunk boundaries do not reveal content across repositories.

    >>> c = Chunker(ChunkerParams(min_size=64, avg_size=256, max_size=1024, seed=1))
    >>> sum(len(v) for v in c.chunks_of_bytes(bytes(range(256)) * 40))
    10240
"""

from __future__ import annotations

import contextlib
import copy
import functools
import io
import mmap
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any, BinaryIO

from pyfastcdc import utils as cdc_utils
from pyfastcdc.cy import FastCDC
from pyfastcdc.py import constants as cdc_constants


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


HUGE_PAGES = True
"""Whether a file's read buffer asks for transparent huge pages (``MADV_HUGEPAGE``; used
where ``/sys/kernel/mm/transparent_hugepage/enabled`` says ``madvise`` or ``always``).
Every file's buffer is fresh memory the kernel faults in and zeroes as the reads touch
it; in 2 MiB pages that is 8 faults for 16 MiB, not 4,096. Read and cut alone, the
media set's large files (1.2 GB): CPU 0.86-1.08 -> 0.65-0.82 s; its backups, alternated
at load 6-8: initial CPU (medians of 5) 6.89 -> 6.74 s, incremental (of 6) 1.70 -> 1.59
s, for 2-6 MiB more in the largest process (a touched page is 2 MiB).
With the kernel's ``defrag`` at ``madvise`` a fault may compact memory for its page
first; it falls back to small pages when there is none."""

_ZEROS = bytes(64 * 1024)
_U64 = (1 << 64) - 1


def _seeded(table: Sequence[int], seed: int) -> list[int]:
    """A gear table as pyfastcdc's FastCDC seeds it (xor with the seed when above 0)."""
    seed &= _U64
    return [g ^ seed for g in table] if seed > 0 else list(table)


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

    FastCDC decides each cut from the bytes since the last cut and the one byte at the
    cut (``_cut_gear`` returns the offset whose byte its hash took in last), so where a
    cut of the new file meets a cut of the parent's, a parent chunk whose bytes are
    unchanged ends where FastCDC would end it if its hash still matches at the next
    byte: ``cuts_at(view, length)`` (:meth:`Chunker.cuts_at`) checks that one offset.
    The chunker then takes the chunk without cutting it (and without storing it: it is
    in the repository). ``same(ref, view)`` says whether ``view`` is the parent's chunk
    ``ref``. Never the parent's last chunk (its end was the end of the file, not a
    cut). A changed region is cut as usual and taking the parent's chunks resumes at
    the first cut that meets one of the parent's. A rerun that rereads a grown log or a
    disk image with a few changed blocks cuts only the chunks around the changes; the
    chunks are those FastCDC would make (tested).

        >>> cuts = ParentCuts([("aa", 4), ("bb", 4), ("cc", 2)], lambda ref, v: True)
        >>> cuts.known(0, memoryview(bytes(10)), lambda v, n: True)
        Known(ref='aa', length=4)
        >>> cuts.known(0, memoryview(bytes(10)), lambda v, n: False) is None
        True
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

    def starts(self, offset: int) -> bool:
        return offset in self._starts

    def known(
        self, offset: int, data: memoryview, cuts_at: Callable[[memoryview, int], bool]
    ) -> Known | None:
        """The parent's chunk at ``offset`` when ``data`` (the file from ``offset``, as
        far as it is read) starts with it and FastCDC would cut it there."""
        i = self._starts.get(offset)
        if i is None:
            return None
        ref, length = self._parts[i]
        if length > len(data) or not self._same(ref, data[:length]):
            return None
        return Known(ref, length) if cuts_at(data, length) else None


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
        self._gear = _seeded(cdc_constants.GEAR, params.seed)
        self._gear_ls = _seeded(cdc_constants.GEAR_LS, params.seed << 1)
        bits = cdc_utils.logarithm2(params.avg_size)
        self._masks = (cdc_constants.MASKS[bits + 1], cdc_constants.MASKS[bits - 1])

    def cuts_at(self, data: memoryview, length: int, eof: bool = True) -> bool:
        """Whether FastCDC, started at ``data[0]`` and finding no cut before ``length``,
        cuts at ``length``: ``data`` is the rest of the file (``eof``), or at least
        ``max_size`` bytes of it. pyfastcdc's ``_cut_gear`` one offset at a time: its
        gear hash at an offset holds only the last 64 bytes (each shifted out after 64
        steps), so it is computed from those, not from ``min_size`` on. A cut at
        ``max_size`` takes no hash: FastCDC makes it when nothing matched before it."""
        p = self.params
        remaining = len(data) if eof else max(len(data), p.max_size)
        remaining = min(remaining, p.max_size)
        if length == p.max_size:
            return remaining == p.max_size
        if remaining <= p.min_size:
            return False
        center = p.avg_size if remaining >= p.avg_size else remaining
        start, middle, end = (p.min_size // 2) * 2, (center // 2) * 2, (remaining // 2) * 2
        if not start <= length < end or length >= len(data):
            return False
        gear = self._gear
        h = 0
        for byte in data[max(start, (length - 66) & ~1) : length + 1]:
            h = ((h << 1) + gear[byte]) & _U64
        mask = self._masks[0] if length < middle else self._masks[1]
        if length % 2 == 0:  # the even step's hash and mask, both shifted left once
            return ((h << 1) & _U64) & ((mask << 1) & _U64) == 0
        return h & mask == 0

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
        with contextlib.suppress(AttributeError, OSError):  # not on every system
            if HUGE_PAGES:
                buf.madvise(mmap.MADV_HUGEPAGE)  # 2 MiB pages: 1/512 the faults
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
            if not eof and end - start < ahead:
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
                cuts_at = functools.partial(self.cuts_at, eof=eof)
                known = parent.known(offset, buf[start:end], cuts_at)
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
