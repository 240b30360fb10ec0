"""What opening a repository reads, kept in memory per process, so that opening it
again reads only what is new: the server opens a vault for every agent call
(docs/design/agents.md, "Costs of a job call").

    cache = index_cache.StoreCache()
    repo = Repository.open(backend, wrapper=w, cache=cache)   # lists keys/, pack-keys/,
    repo = Repository.open(backend, wrapper=w, cache=cache)   # index/; reads only new names

Why a cached object is never stale: every object an open reads is written once under
its name and never rewritten. Index segments (``index/<sha256>``) and pack-key records
(``pack-keys/<sha256>``) are named by the hash of their bytes, key slots by a random id,
and ``config`` is written once, before any slot. Every open still **lists** ``keys/``,
``pack-keys/`` and ``index/`` (under the caller's repository lock when it holds one, as
without the cache), and a cached object is used only for a name in that listing; names
gone from it (merged by index compaction or a pack-key merge, replaced by a prune) are
forgotten. So a repository opened through the cache holds the index a fresh read of the
same listing gives. The one difference: a segment deleted between the listing and its
read makes a fresh open list again, while the cache serves its bytes; but the segment
superseding it was written before it was deleted, and the packs it names are deleted
only after that, so it describes the store as it was at the listing, as a fresh read
just before the delete would.

A different repository at the same location (a vault deleted and its place reused) has
other key slot names: the entry is dropped whole. The unwrapping of the secret is not
cached: a disabled or deleted vault key refuses the next open as before.

The built master index is kept too (a snapshot, never handed out: each open gets a
copy). An open whose live segments are the snapshot's plus new ones, and whose pack keys
only add new packs, copies the snapshot and adds the new segments; anything else (a
compaction or prune superseded segments, a record changed a pack's key, a new segment
of the repository's own writer names a blob a keyed pack claimed: the own copy must win)
builds the index again from the cached segments.

Bounds: :data:`MAX_REPOSITORIES` locations and :data:`MAX_CACHED_BYTES` (decrypted
segments, ~49 bytes a blob, and kept indexes, ~150 bytes a blob) over all of them, the
least recently opened dropped first (the one being opened never); a snapshot only for
indexes up to :data:`MAX_SNAPSHOT_BLOBS` blobs. Must not depend on anything above the
engine.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TypeVar

from snowvault.engine import index, keyed_packs

MAX_REPOSITORIES = 16
MAX_CACHED_BYTES = 256 * 1024 * 1024
MAX_SNAPSHOT_BLOBS = 1_000_000
INDEX_BYTES_PER_BLOB = 150

Rows = list[tuple[int, bytes, int, int, int]]


@dataclass
class _Snapshot:
    live: frozenset[str]
    keys: dict[str, keyed_packs.PackKey]
    index: index.MasterIndex  # never mutated once stored


@dataclass
class Entry:
    """What one location's repository has shown this process (use under ``lock``)."""

    slot_names: tuple[str, ...] = ()
    config: bytes = b""
    slots: dict[str, bytes] = field(default_factory=dict)
    records: dict[str, list[keyed_packs.Group]] = field(default_factory=dict)
    bodies: dict[str, index.SegmentBody] = field(default_factory=dict)
    snapshot: _Snapshot | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    stats: dict[str, int] = field(default_factory=dict)

    def count(self, what: str, n: int = 1) -> None:
        self.stats[what] = self.stats.get(what, 0) + n

    def size(self) -> int:
        """Roughly the bytes it holds (segments' bodies and the kept index)."""
        with self.lock:
            held = sum(len(body.body) for body in self.bodies.values())
            if self.snapshot is not None:
                held += len(self.snapshot.index) * INDEX_BYTES_PER_BLOB
            return held


class StoreCache:
    """Per-process memory of repository objects, by location (thread-safe)."""

    def __init__(
        self, max_repositories: int = MAX_REPOSITORIES, max_bytes: int = MAX_CACHED_BYTES
    ) -> None:
        self._max = max_repositories
        self._max_bytes = max_bytes
        self._entries: OrderedDict[str, Entry] = OrderedDict()
        self._lock = threading.Lock()

    def entry(self, location: str) -> Entry:
        """The entry of ``location`` (made when new), the least recently used others
        dropped while the cache is over its bounds."""
        with self._lock:
            found = self._entries.get(location)
            if found is None:
                found = self._entries[location] = Entry()
            else:
                self._entries.move_to_end(location)
            sizes = {loc: e.size() for loc, e in self._entries.items()}
            total = sum(sizes.values())
            for loc in list(self._entries):  # least recently used first
                if len(self._entries) <= self._max and total <= self._max_bytes:
                    break
                if loc != location:
                    del self._entries[loc]
                    total -= sizes[loc]
            return found

    def locations(self) -> list[str]:
        """The locations held, least recently opened first."""
        with self._lock:
            return list(self._entries)

    def forget(self, location: str) -> None:
        with self._lock:
            self._entries.pop(location, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


Fixed = tuple[bytes, list[tuple[str, bytes]]]
"""A repository's ``config`` and its key slots (name, bytes)."""


def fixed_objects(entry: Entry, slot_names: list[str]) -> Fixed | None:
    """``config`` and the key slots listed as ``slot_names`` when the same names were
    listed before (:func:`remember_fixed`); None: read them."""
    names = tuple(sorted(slot_names))
    with entry.lock:
        if names and entry.slot_names == names:
            entry.count("fixed_hits")
            return entry.config, [(n, entry.slots[n]) for n in names]
    return None


def remember_fixed(entry: Entry, config: bytes, slots: list[tuple[str, bytes]]) -> None:
    """Keep what a successful open read; other slot names than the entry's (another
    repository at the place, or a slot added or removed) reset the entry."""
    names = tuple(sorted(n for n, _ in slots))
    with entry.lock:
        if entry.slot_names == names:
            return
        entry.slot_names, entry.config, entry.slots = names, config, dict(slots)
        entry.records.clear()
        entry.bodies.clear()
        entry.snapshot = None
        entry.count("fixed_reads")


def remember_record(entry: Entry, name: str, groups: list[keyed_packs.Group]) -> None:
    """A pack-key record this process just wrote under ``name``: the next open that
    lists it takes it from here instead of reading it back (its name is the hash of its
    bytes, which hold exactly ``groups``)."""
    with entry.lock:
        entry.records[name] = groups
        entry.count("records_written")


T = TypeVar("T")


def objects(
    entry: Entry,
    store: dict[str, T],
    names: list[str],
    kind: str,
    read_all: Callable[[list[str]], list[T]],
) -> dict[str, T]:
    """The decoded objects of ``names``, a whole listing (``store``: the entry's
    ``records`` or ``bodies``, counted as ``kind``), reading only those not in memory
    (``read_all``, which raises ObjectNotFound for one gone); names not in the listing
    are forgotten."""
    with entry.lock:
        have = {n: store[n] for n in names if n in store}
        entry.count(f"{kind}_hits", len(have))
    missing = [n for n in names if n not in have]
    fresh = dict(zip(missing, read_all(missing), strict=True)) if missing else {}
    with entry.lock:
        entry.count(f"{kind}_reads", len(missing))
        store.update(fresh)
        listed = set(names)
        for gone in [n for n in store if n not in listed]:
            del store[gone]
    return have | fresh


def master_index(
    entry: Entry,
    live: list[str],
    keys: dict[str, keyed_packs.PackKey],
    bodies: dict[str, index.SegmentBody],
) -> index.MasterIndex:
    """The master index of the ``live`` segments with ``keys``: a copy of the snapshot,
    the snapshot extended by the new segments, or built again (module docstring)."""
    live_set = frozenset(live)
    with entry.lock:
        snap = entry.snapshot
    if snap is not None and snap.live == live_set and snap.keys == keys:
        entry.count("index_copied")
        return snap.index.copy()
    built: index.MasterIndex | None = None
    if snap is not None and snap.live <= live_set and _only_adds(snap, keys):
        built = snap.index.copy()
        if _extend(built, [n for n in live if n not in snap.live], keys, bodies):
            entry.count("index_extended")
        else:
            built = None
    if built is None:
        built = build(live, keys, bodies)
        entry.count("index_built")
    if len(built) <= MAX_SNAPSHOT_BLOBS:
        with entry.lock:
            entry.snapshot = _Snapshot(live_set, dict(keys), built)
        return built.copy()
    return built


def build(
    live: Iterable[str],
    keys: dict[str, keyed_packs.PackKey],
    bodies: dict[str, index.SegmentBody],
) -> index.MasterIndex:
    """The master index of ``live`` segments: keyed packs' rows last, so an id the
    repository's own writer holds is read from its own pack."""
    out = index.MasterIndex()
    keyed: list[tuple[str, Rows]] = []
    for name in live:
        body = bodies[name]
        if not keys:
            out.add_body(body)
            continue
        for pack_id, rows in body.packs():
            if pack_id in keys:
                keyed.append((pack_id, list(rows)))
            else:
                out.add_rows(pack_id, rows)
    for pack_id, listed in keyed:
        out.add_rows(pack_id, listed)
    return out


def _only_adds(snap: _Snapshot, keys: dict[str, keyed_packs.PackKey]) -> bool:
    """Whether ``keys`` only add keys for packs the snapshot does not index."""
    if any(keys.get(p) != k for p, k in snap.keys.items()):
        return False
    return not any(snap.index.has_pack(p) for p in keys if p not in snap.keys)


def _extend(
    out: index.MasterIndex,
    names: list[str],
    keys: dict[str, keyed_packs.PackKey],
    bodies: dict[str, index.SegmentBody],
) -> bool:
    """Add the segments ``names`` as :func:`build` would have; False when that needs a
    build (an own blob whose id a keyed pack already holds in ``out``)."""
    keyed: list[tuple[str, Rows]] = []
    for name in names:
        for pack_id, rows in bodies[name].packs():
            listed = list(rows)
            if pack_id in keys:
                keyed.append((pack_id, listed))
                continue
            for row in listed:
                at = out.pack_of(row[1])
                if at is not None and at[0] in keys:
                    return False
            out.add_rows(pack_id, listed)
    for pack_id, listed in keyed:
        out.add_rows(pack_id, listed)
    return True
