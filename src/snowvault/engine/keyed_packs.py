"""Keyed packs: packs an agent wrote straight to the store, sealed under a pack key of
their own instead of the repository's ``enc_key`` (repository-format.md, "Keyed packs").

A keyed pack has the ordinary pack layout; its blobs are ``AEAD(pack_key, method||body,
aad = kind||blob_id)`` and its header ``AEAD(pack_key, header, aad = pack-header/v1)``.
Its blob ids are keyed BLAKE3 under a *scoped* id key, ``HKDF(id_key,
"snowvault/agent-id/v1|" || scope)``, so they never equal the ids the repository's own
writer makes, nor another scope's. Which pack opens with which key, and in which id
scope its blobs are verified, is said by ``pack-keys/<id>`` objects, sealed under
``enc_key``::

    {"version": 1, "packs": [pack id, ...], "key": b64(32 bytes), "scope": "..."}

    rec = encode_record(sealer, ["ab12..."], PackKey(key, scope))   # the object's bytes
    name = record_name(rec)                                          # pack-keys/<sha256>
    load(backend, sealer)                                            # {pack id: PackKey}

Record names are the SHA-256 of their bytes, like index segments: written once, never
rewritten; several records may name one pack (with the same key: a writer re-writes a
record rather than read one back). A repository with no record reads as before.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from snowvault.engine import errors
from snowvault.engine.backends.base import Backend
from snowvault.engine.crypto import primitives

PREFIX = "pack-keys/"
RECORD_AAD = b"snowvault/pack-keys/v1"
SCOPE_INFO = b"snowvault/agent-id/v1|"
_PACK_ID = re.compile(r"^[0-9a-f]{64}$")
_SCOPE = re.compile(r"^[\w.:|@-]{1,200}$")


@dataclass(frozen=True)
class PackKey:
    """The key a keyed pack is sealed with, and the id scope of its blobs."""

    key: bytes = field(repr=False)
    scope: str


def agent_scope(account_id: str, host: str) -> str:
    """The id scope of the agent of ``host`` in ``account_id``."""
    return f"{account_id}|{host}"


def scoped_id_key(id_key: bytes, scope: str) -> bytes:
    """The blob-id key of ``scope``: ids under it never equal the repository's own."""
    return primitives.hkdf(id_key, SCOPE_INFO + scope.encode())


def check_pack_id(value: object) -> str:
    if not isinstance(value, str) or not _PACK_ID.match(value):
        raise ValueError("a pack id is 64 lowercase hex digits")
    return value


def encode_record(sealer: primitives.Sealer, pack_ids: Iterable[str], key: PackKey) -> bytes:
    ids = sorted({check_pack_id(p) for p in pack_ids})
    if len(key.key) != primitives.KEY_SIZE or not _SCOPE.match(key.scope):
        raise ValueError("a pack key is 32 bytes and its scope a short label")
    body = {
        "version": 1,
        "packs": ids,
        "key": base64.b64encode(key.key).decode(),
        "scope": key.scope,
    }
    return sealer.seal(json.dumps(body, sort_keys=True).encode(), RECORD_AAD)


def decode_record(sealer: primitives.Sealer, data: bytes) -> tuple[list[str], PackKey]:
    """(pack ids, their key); ValueError when it is damaged or of an unknown version."""
    try:
        doc = json.loads(sealer.open(data, RECORD_AAD))
    except primitives.AuthenticationFailed as exc:
        raise ValueError("pack-key record fails authentication") from exc
    if not isinstance(doc, dict) or doc.get("version") != 1:
        raise ValueError("unknown pack-key record version")
    try:
        key = base64.b64decode(str(doc["key"]), validate=True)
        scope = doc["scope"]
        ids = [check_pack_id(p) for p in doc["packs"]]
    except (KeyError, TypeError, binascii.Error) as exc:
        raise ValueError(f"damaged pack-key record ({exc!r})") from exc
    if len(key) != primitives.KEY_SIZE or not isinstance(scope, str) or not _SCOPE.match(scope):
        raise ValueError("damaged pack-key record (key or scope)")
    return ids, PackKey(key, scope)


def record_name(data: bytes) -> str:
    return PREFIX + primitives.content_hash(data).hex()


def load(backend: Backend, sealer: primitives.Sealer) -> dict[str, PackKey]:
    """Every keyed pack of the repository with its key. A damaged record raises
    IntegrityError. A pack that two records give different keys (two agent jobs that
    named the same pack id at once) is left out: a reader never guesses a key, so that
    pack's blobs read as damaged, and the rest of the repository as ever."""
    names = [o.name for o in backend.list(PREFIX)]
    if not names:
        return {}

    def read(name: str) -> bytes | None:
        try:
            return backend.get(name)
        except errors.ObjectNotFound:  # deleted by a prune after we listed
            return None

    with ThreadPoolExecutor(8) as pool:
        blobs = list(pool.map(read, names))
    out: dict[str, PackKey] = {}
    ambiguous: set[str] = set()
    for name, data in zip(names, blobs, strict=True):
        if data is None:
            continue
        try:
            ids, key = decode_record(sealer, data)
        except ValueError as exc:
            raise errors.IntegrityError(name=name, detail=str(exc)) from exc
        for pack_id in ids:
            if out.setdefault(pack_id, key) != key:
                ambiguous.add(pack_id)
    for pack_id in ambiguous:
        del out[pack_id]
    return out


def records(backend: Backend, sealer: primitives.Sealer) -> dict[str, tuple[list[str], PackKey]]:
    """Every record's name with the packs it names and their key (for prune, which
    deletes a record once none of its packs exists and merges a key's records)."""
    out: dict[str, tuple[list[str], PackKey]] = {}
    for info in backend.list(PREFIX):
        try:
            out[info.name] = decode_record(sealer, backend.get(info.name))
        except errors.ObjectNotFound:
            continue
        except ValueError as exc:
            raise errors.IntegrityError(name=info.name, detail=str(exc)) from exc
    return out
