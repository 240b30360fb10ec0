"""Keyed packs: packs an agent wrote straight to the store, sealed under a pack key of
their own instead of the repository's ``enc_key`` (repository-format.md, "Keyed packs").

A keyed pack has the ordinary pack layout; its blobs are ``AEAD(pack_key, method||body,
aad = kind||blob_id)`` and its header ``AEAD(pack_key, header, aad = pack-header/v1)``.
Its blob ids are keyed BLAKE3 under a *scoped* id key, ``HKDF(id_key,
"snowvault/agent-id/v1|" || scope)``, so they never equal the ids the repository's own
writer makes, nor another scope's. Which pack opens with which key, and in which id
scope its blobs are verified, is said by ``pack-keys/<id>`` objects, sealed under
``enc_key``::

    {"version": 1, "groups": [{"packs": [pack id, ...], "key": b64(32 bytes),
                               "scope": "..."}, ...]}

    rec = encode_record(sealer, [(["ab12..."], PackKey(key, scope))])  # the object's bytes
    name = record_name(rec)                                             # pack-keys/<sha256>
    keys_of(records(backend, sealer))                                   # {pack id: PackKey}

Record names are the SHA-256 of their bytes, like index segments: written once, never
rewritten; several records may name one pack (with the same key: a writer re-writes a
record rather than read one back). An agent job writes one per pack; a writer merges
them into one (:data:`COMPACT_RECORDS`, and prune), the merged record before the old
ones go. A repository with no record reads as before.
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


Group = tuple[list[str], PackKey]
"""Some keyed packs and the one key they share."""
COMPACT_RECORDS = 16
"""Records at which a writer merges them into one (every open reads them all)."""
LOAD_ATTEMPTS = 5


def encode_record(
    sealer: primitives.Sealer, groups: Iterable[tuple[Iterable[str], PackKey]]
) -> bytes:
    body_groups = []
    for pack_ids, key in groups:
        ids = sorted({check_pack_id(p) for p in pack_ids})
        if len(key.key) != primitives.KEY_SIZE or not _SCOPE.match(key.scope):
            raise ValueError("a pack key is 32 bytes and its scope a short label")
        body_groups.append(
            {"packs": ids, "key": base64.b64encode(key.key).decode(), "scope": key.scope}
        )
    body = {"version": 1, "groups": body_groups}
    return sealer.seal(json.dumps(body, sort_keys=True).encode(), RECORD_AAD)


def decode_record(sealer: primitives.Sealer, data: bytes) -> list[Group]:
    """Its groups; ValueError when it is damaged or of an unknown version."""
    try:
        doc = json.loads(sealer.open(data, RECORD_AAD))
    except primitives.AuthenticationFailed as exc:
        raise ValueError("pack-key record fails authentication") from exc
    if not isinstance(doc, dict) or doc.get("version") != 1:
        raise ValueError("unknown pack-key record version")
    out: list[Group] = []
    try:
        # the first layout of this record (one group at the top level, version 1 too)
        # was written by this session's earlier commits: read it as one group
        for group in doc.get("groups", [doc]):
            key = base64.b64decode(str(group["key"]), validate=True)
            scope = group["scope"]
            ids = [check_pack_id(p) for p in group["packs"]]
            if len(key) != primitives.KEY_SIZE or not isinstance(scope, str):
                raise ValueError("key or scope")
            if not _SCOPE.match(scope):
                raise ValueError("scope")
            out.append((ids, PackKey(key, scope)))
    except (KeyError, TypeError, ValueError, binascii.Error) as exc:
        raise ValueError(f"damaged pack-key record ({exc!r})") from exc
    return out


def record_name(data: bytes) -> str:
    return PREFIX + primitives.content_hash(data).hex()


def records(backend: Backend, sealer: primitives.Sealer) -> dict[str, list[Group]]:
    """Every record's name with its groups. A record deleted after the listing (merged
    by another writer, who wrote the merged one first) makes it list again, so what the
    deleted one said is always in what is returned."""
    for attempt in range(LOAD_ATTEMPTS):
        names = [o.name for o in backend.list(PREFIX)]
        if not names:
            return {}

        def read(name: str) -> bytes | None:
            try:
                return backend.get(name)
            except errors.ObjectNotFound:
                return None

        with ThreadPoolExecutor(8) as pool:
            blobs = list(pool.map(read, names))
        if any(b is None for b in blobs) and attempt + 1 < LOAD_ATTEMPTS:
            continue
        out: dict[str, list[Group]] = {}
        for name, data in zip(names, blobs, strict=True):
            if data is None:
                continue
            try:
                out[name] = decode_record(sealer, data)
            except ValueError as exc:
                raise errors.IntegrityError(name=name, detail=str(exc)) from exc
        return out
    return {}  # pragma: no cover - the loop always returns


def keys_of(found: dict[str, list[Group]]) -> dict[str, PackKey]:
    """Every keyed pack with its key. A pack that records give different keys (two agent
    jobs that named the same pack id at once) is left out: a reader never guesses a
    key, so that pack's blobs read as damaged, and the rest of the repository as ever."""
    out: dict[str, PackKey] = {}
    ambiguous: set[str] = set()
    for groups in found.values():
        for pack_ids, key in groups:
            for pack_id in pack_ids:
                if out.setdefault(pack_id, key) != key:
                    ambiguous.add(pack_id)
    for pack_id in ambiguous:
        del out[pack_id]
    return out


def merged(groups: Iterable[Group]) -> list[Group]:
    """``groups`` with one group per key (pack ids united, sorted)."""
    by_key: dict[PackKey, set[str]] = {}
    for pack_ids, key in groups:
        by_key.setdefault(key, set()).update(pack_ids)
    return [(sorted(ids), key) for key, ids in by_key.items() if ids]
