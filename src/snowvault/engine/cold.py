"""Move the packs only cold recovery points need into the cold tier of a repository.

A repository whose store is a :class:`~snowvault.engine.backends.tiered.TieredBackend`
keeps one index and every manifest in warm; this moves a pack to cold when every blob
in it that any recovery point references is referenced by cold points only (a pack
also holding a warm point's blob stays warm: deduplication shares blobs, and a warm
point must not be slowed by a cold read). Packs nothing references are left for prune.

    moved = move_cold_packs(repo, cold_rp_ids)
    moved.packs, moved.bytes

Reads are unaffected: the tiered store finds a pack in either tier. A move killed
midway leaves a pack in both tiers or in one, never in none. Knows nothing of the
control plane; never prints.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from snowvault.engine import errors, packs, usage
from snowvault.engine.backends.tiered import TieredBackend
from snowvault.engine.repository import Repository


@dataclass(frozen=True)
class ColdMove:
    """What one pass moved (``packs`` names moved now) and what stays warm for a warm
    point (``shared``: packs holding blobs of both)."""

    packs: list[str]
    bytes: int
    shared: int


def cold_pack_ids(repo: Repository, cold: Collection[str]) -> tuple[list[str], int]:
    """(pack ids only cold points need, how many packs cold and warm points share)."""
    walker = usage.TreeWalker(repo)
    cold_blobs: set[bytes] = set()
    warm_blobs: set[bytes] = set()
    for rp_id, manifest in repo.manifests():
        root = manifest.get("tree")
        if isinstance(root, str):
            (cold_blobs if rp_id in cold else warm_blobs).update(walker.blobs(root))
    pack_of = {blob: loc.pack_id for blob, loc in repo.master_index.items()}
    wanted_warm = {pack_of[b] for b in warm_blobs if b in pack_of}
    wanted_cold = {pack_of[b] for b in cold_blobs if b in pack_of}
    return sorted(wanted_cold - wanted_warm), len(wanted_cold & wanted_warm)


def move_cold_packs(repo: Repository, cold: Collection[str]) -> ColdMove:
    """Move to the cold tier every pack only the points ``cold`` (manifest ids) need."""
    store = repo.backend
    if not isinstance(store, TieredBackend):
        raise errors.EngineError(detail="this repository has no cold tier")
    pack_ids, shared = cold_pack_ids(repo, cold)
    moved, size = [], 0
    for pack_id in pack_ids:
        name = packs.pack_name(pack_id)
        if store.is_cold(name):
            continue
        try:
            length = store.warm.stat(name).size
        except errors.ObjectNotFound:
            continue  # pruned meanwhile
        if store.move_to_cold(name):
            moved.append(name)
            size += length
    return ColdMove(moved, size, shared)
