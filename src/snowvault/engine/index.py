"""Index segments: blob id -> (pack, offset, length), written after the packs they describe.

``index/<segment-id>`` (segment id = hex SHA-256 of the object) is
``AEAD(enc_key, body, aad=b"snowvault/index/v1")``; the body is::

    b"SVIX" u8(version=1) u32le(n_supersedes) 32s*n_supersedes u32le(n_packs)
    then per pack: 32s(pack id) u32le(n_entries) and per entry
    u8(kind) 32s(blob id) u32le(offset) u32le(length) u32le(raw_length)

``supersedes`` names earlier segments whose content this one replaces (written by
prune); readers ignore superseded segments that still exist.
"""

from __future__ import annotations

import struct
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from snowvault.engine.crypto import primitives
from snowvault.engine.packs import PackEntry

INDEX_AAD = b"snowvault/index/v1"
_HEAD = struct.Struct("<4sBI")
_COUNT = struct.Struct("<I")
_PACK = struct.Struct("<32sI")
_ENTRY = struct.Struct("<B32sIII")


class IndexFormatError(ValueError):
    """An index segment is damaged or of an unknown version."""


@dataclass(frozen=True, slots=True)
class Location:
    pack_id: str
    kind: int
    offset: int
    length: int
    raw_length: int


@dataclass
class Segment:
    packs: dict[str, list[PackEntry]] = field(default_factory=dict)
    supersedes: list[str] = field(default_factory=list)

    def encode(self, sealer: primitives.Sealer) -> bytes:
        parts = [_HEAD.pack(b"SVIX", 1, len(self.supersedes))]
        parts.extend(bytes.fromhex(s) for s in self.supersedes)
        parts.append(_COUNT.pack(len(self.packs)))
        for pack_id, entries in self.packs.items():
            parts.append(_PACK.pack(bytes.fromhex(pack_id), len(entries)))
            parts.extend(
                _ENTRY.pack(e.kind, e.blob_id, e.offset, e.length, e.raw_length) for e in entries
            )
        return sealer.seal(b"".join(parts), INDEX_AAD)

    @classmethod
    def decode(cls, sealer: primitives.Sealer, data: bytes) -> Segment:
        try:
            body = sealer.open(data, INDEX_AAD)
            magic, version, n_sup = _HEAD.unpack_from(body)
            if magic != b"SVIX" or version != 1:
                raise IndexFormatError("unknown index version")
            pos = _HEAD.size
            supersedes = [body[pos + 32 * i : pos + 32 * (i + 1)].hex() for i in range(n_sup)]
            pos += 32 * n_sup
            (n_packs,) = _COUNT.unpack_from(body, pos)
            pos += _COUNT.size
            packs: dict[str, list[PackEntry]] = {}
            for _ in range(n_packs):
                raw_id, n = _PACK.unpack_from(body, pos)
                pos += _PACK.size
                entries = []
                for _ in range(n):
                    kind, bid, off, length, raw = _ENTRY.unpack_from(body, pos)
                    pos += _ENTRY.size
                    entries.append(PackEntry(kind, bid, off, length, raw))
                packs[raw_id.hex()] = entries
        except primitives.AuthenticationFailed as exc:
            raise IndexFormatError("index segment fails authentication") from exc
        except struct.error as exc:
            raise IndexFormatError("index segment truncated") from exc
        if pos != len(body):
            raise IndexFormatError("trailing bytes in index segment")
        return cls(packs, supersedes)


class MasterIndex:
    """The in-memory union of all index segments. Thread-safe."""

    def __init__(self) -> None:
        self._by_id: dict[bytes, Location] = {}
        self._lock = threading.Lock()

    def add_pack(self, pack_id: str, entries: Iterable[PackEntry]) -> None:
        with self._lock:
            for e in entries:
                self._by_id.setdefault(
                    e.blob_id, Location(pack_id, e.kind, e.offset, e.length, e.raw_length)
                )

    def get(self, blob_id: bytes) -> Location | None:
        return self._by_id.get(blob_id)

    def __contains__(self, blob_id: object) -> bool:
        return blob_id in self._by_id

    def __len__(self) -> int:
        return len(self._by_id)

    def items(self) -> Iterator[tuple[bytes, Location]]:
        with self._lock:
            snapshot = list(self._by_id.items())
        return iter(snapshot)
