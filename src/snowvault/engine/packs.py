"""Pack files: many sealed blobs, then a sealed header saying what is inside.

Layout of ``data/<hh>/<pack-id>`` (pack id = hex SHA-256 of the whole object)::

    blob_0 || blob_1 || ... || sealed_header || u32le(len(sealed_header))

Each ``blob_i`` is ``AEAD(enc_key, method_byte || body, aad = kind_byte || blob_id)``.
The header plaintext is ``b"SVPK" u8(version=1) u32le(count)`` then, per blob,
``u8(kind) 32s(id) u32le(stored_length) u32le(raw_length)``; offsets are the running
sum of stored lengths. It is sealed with ``aad = b"snowvault/pack-header/v1"``, so an index
can be rebuilt from packs alone and no blob boundary leaks without the key.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from snowvault.engine.crypto import primitives

KIND_DATA = 0
KIND_TREE = 1
KINDS = {"data": KIND_DATA, "tree": KIND_TREE}
KIND_NAMES = {v: k for k, v in KINDS.items()}

HEADER_MAGIC = b"SVPK"
HEADER_VERSION = 1
HEADER_AAD = b"snowvault/pack-header/v1"
_ENTRY = struct.Struct("<B32sII")
_HEAD = struct.Struct("<4sBI")
_TAIL = struct.Struct("<I")


class PackFormatError(ValueError):
    """A pack's header is missing, damaged or of an unknown version."""


@dataclass(frozen=True, slots=True)
class PackEntry:
    kind: int
    blob_id: bytes
    offset: int
    length: int
    raw_length: int


def blob_aad(kind: int, blob_id: bytes) -> bytes:
    return bytes((kind,)) + blob_id


def pack_name(pack_id: str) -> str:
    return f"data/{pack_id[:2]}/{pack_id}"


def encode_header(sealer: primitives.Sealer, entries: list[PackEntry]) -> bytes:
    parts = [_HEAD.pack(HEADER_MAGIC, HEADER_VERSION, len(entries))]
    parts.extend(_ENTRY.pack(e.kind, e.blob_id, e.length, e.raw_length) for e in entries)
    sealed = sealer.seal(b"".join(parts), HEADER_AAD)
    return sealed + _TAIL.pack(len(sealed))


def header_length(tail: bytes) -> int:
    if len(tail) != _TAIL.size:
        raise PackFormatError("pack too short")
    return int(_TAIL.unpack(tail)[0])


def decode_header(sealer: primitives.Sealer, sealed: bytes) -> list[PackEntry]:
    try:
        plain = sealer.open(sealed, HEADER_AAD)
    except primitives.AuthenticationFailed as exc:
        raise PackFormatError("pack header fails authentication") from exc
    if len(plain) < _HEAD.size:
        raise PackFormatError("pack header too short")
    magic, version, count = _HEAD.unpack_from(plain)
    if magic != HEADER_MAGIC or version != HEADER_VERSION:
        raise PackFormatError("unknown pack header version")
    if len(plain) != _HEAD.size + count * _ENTRY.size:
        raise PackFormatError("pack header length does not match its count")
    entries, offset = [], 0
    for i in range(count):
        kind, blob_id, length, raw = _ENTRY.unpack_from(plain, _HEAD.size + i * _ENTRY.size)
        entries.append(PackEntry(kind, blob_id, offset, length, raw))
        offset += length
    return entries


TAIL_SIZE = _TAIL.size
