"""``forget`` and ``prune``: remove recovery points, then the data only they needed.

Protocol (the format spec's "Deleting data" section is the normative text):

1. Take the repository's exclusive lock: no backup runs while prune does (backups hold
   shared locks), so no pack a backup is about to reference can disappear under it.
2. Collect every blob reachable from every remaining manifest.
3. Gather every pack: indexed ones and ones left unindexed by an interrupted backup
   (their headers tell what they hold). A blob stored twice (two concurrent backups)
   keeps one copy; the others count as unused.
4. Packs with no used blob are deleted; packs whose unused share exceeds
   ``repack_threshold`` have their used blobs copied (still sealed: AAD binds a blob to
   its id, not its pack) into new packs.
5. Write ONE new index segment describing every kept and new pack, superseding all
   segments read in step 3; only then delete the old segments, then the old packs.
   A crash at any step leaves extra objects, never a missing one.
6. Objects under store retention (WORM) are never deleted: they are skipped and
   reported, and stay indexed. With ``bypass_governance`` (the control plane passes it
   only for a caller allowed to bypass a governance lock) GOVERNANCE retention is
   bypassed; COMPLIANCE retention never is.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from snowvault.core.clock import Clock
from snowvault.engine import errors, index, keyed_packs, locks, packs, tree
from snowvault.engine.repository import Repository


@dataclass
class PruneReport:
    recovery_points: int = 0
    used_blobs: int = 0
    packs_before: int = 0
    packs_deleted: int = 0
    packs_repacked: int = 0
    packs_written: int = 0
    bytes_freed: int = 0
    skipped_locked: list[str] = field(default_factory=list)
    dry_run: bool = False


def forget(
    repo: Repository, rp_ids: Iterable[str], *, bypass_governance: bool = False
) -> list[str]:
    """Delete recovery point manifests (data goes at the next prune)."""
    removed = []
    for rp_id in rp_ids:
        repo.delete_manifest(rp_id, bypass_governance=bypass_governance)
        removed.append(rp_id)
    return removed


def used_blobs(repo: Repository, manifests: Iterable[dict[str, object]]) -> set[bytes]:
    used: set[bytes] = set()
    stack = [str(m["tree"]) for m in manifests if isinstance(m.get("tree"), str)]
    while stack:
        tree_hex = stack.pop()
        tree_id = bytes.fromhex(tree_hex)
        if tree_id in used:
            continue
        used.add(tree_id)
        for node in tree.decode_tree(repo.get_blob(tree_id), name=f"tree {tree_hex}"):
            used.update(bytes.fromhex(c) for c, _ in node.content if c is not None)
            if node.subtree is not None:
                stack.append(node.subtree)
    return used


def packs_of(repo: Repository, manifest: dict[str, object]) -> set[str]:
    """The pack object names a recovery point's data lives in (its trees and chunks), so
    store retention can be set, or extended, on exactly those packs."""
    return {repo.blob_location(blob_id)[0] for blob_id in used_blobs(repo, [manifest])}


def _all_packs(
    repo: Repository,
) -> tuple[dict[str, list[packs.PackEntry]], list[str], set[str]]:
    """Every pack with its entries, the segments read, and the packs no segment names."""
    segments = repo.index_segments()
    by_pack: dict[str, list[packs.PackEntry]] = {}
    superseded: set[str] = set()
    loaded = []
    for name in segments:
        seg = repo.read_segment(name)
        superseded.update(f"index/{s}" for s in seg.supersedes)
        loaded.append((name, seg))
    for name, seg in loaded:
        if name not in superseded:
            for pack_id, entries in seg.packs.items():
                by_pack.setdefault(pack_id, entries)
    unindexed = set()
    for pack_id, _size in list(repo.list_packs()):
        if pack_id not in by_pack:
            with contextlib.suppress(errors.IntegrityError):
                by_pack[pack_id] = repo.read_pack_header(pack_id)
                unindexed.add(pack_id)
    return by_pack, segments, unindexed


def prune(
    repo: Repository,
    clock: Clock,
    *,
    repack_threshold: float = 0.2,
    dry_run: bool = False,
    progress: Callable[[str, int, int], None] | None = None,
    bypass_governance: bool = False,
) -> PruneReport:
    with locks.locked_repository(repo, clock, exclusive=True):
        return _prune(repo, clock.now(), repack_threshold, dry_run, progress, bypass_governance)


def _prune(
    repo: Repository,
    now: datetime,
    threshold: float,
    dry_run: bool,
    progress: Callable[[str, int, int], None] | None,
    bypass: bool = False,
) -> PruneReport:
    report = PruneReport(dry_run=dry_run)
    manifests = [m for _, m in repo.manifests()]
    report.recovery_points = len(manifests)
    used = used_blobs(repo, manifests)
    report.used_blobs = len(used)
    by_pack, old_segments, unindexed = _all_packs(repo)
    report.packs_before = len(by_pack)

    kept: dict[str, list[packs.PackEntry]] = {}
    to_delete: list[str] = []
    to_repack: list[tuple[str, list[packs.PackEntry]]] = []
    placed: set[bytes] = set()
    # the repository's own packs first: of an id also in a keyed pack, its copy is kept
    for pack_id in sorted(by_pack, key=lambda p: (repo.pack_key(p) is not None, p)):
        entries = by_pack[pack_id]
        live = [e for e in entries if e.blob_id in used and e.blob_id not in placed]
        total = sum(e.length for e in entries) or 1
        unused = total - sum(e.length for e in live)
        if not live:
            to_delete.append(pack_id)
        elif unused / total > threshold:
            to_repack.append((pack_id, live))
        else:
            kept[pack_id] = entries
        placed.update(e.blob_id for e in live)
    report.packs_deleted = len(to_delete)
    report.packs_repacked = len(to_repack)
    # a kept pack that no segment names (its segment was lost) is indexed again below
    reindex = unindexed & set(kept)
    if dry_run or (not to_delete and not to_repack and not reindex):
        return report

    for n, (pack_id, live) in enumerate(to_repack):
        if progress:
            progress("repack", n, len(to_repack))
        new_id, entries = _repack(repo, pack_id, live)
        kept[new_id] = entries
        report.packs_written += 1

    locked = _retained(repo, to_delete + [p for p, _ in to_repack], now, bypass)
    for pack_id in locked:  # still under retention: it stays, and stays indexed
        kept.setdefault(pack_id, by_pack[pack_id])
    new_segment = repo.write_segment(
        index.Segment(packs=kept, supersedes=[s.removeprefix("index/") for s in old_segments])
    )
    for name in old_segments:
        if name != new_segment:
            _delete(repo, name, report, bypass)
    for pack_id in to_delete + [p for p, _ in to_repack]:
        if pack_id in locked:
            report.skipped_locked.append(packs.pack_name(pack_id))
            continue
        size = sum(e.length for e in by_pack[pack_id])
        if _delete(repo, packs.pack_name(pack_id), report, bypass):
            report.bytes_freed += size
    _drop_pack_keys(repo, report, bypass)
    repo.reload_index()
    return report


def _drop_pack_keys(repo: Repository, report: PruneReport, bypass: bool) -> None:
    """Rewrite the pack-key records as one naming only the packs the store still holds
    (the others were pruned, or an agent never uploaded them): the new record first,
    then the old ones go, so a pack the store holds always has its key."""
    records = repo.pack_key_records()
    if not records:
        return
    stored = {pack_id for pack_id, _size in repo.list_packs()}
    live = keyed_packs.merged(
        (sorted(stored.intersection(ids)), key)
        for groups in records.values()
        for ids, key in groups
    )
    named = {p for groups in records.values() for ids, _ in groups for p in ids}
    if len(records) == 1 and named <= stored:
        return  # one record, every pack of it still there
    new = repo.put_pack_key_groups(live) if live else None
    for name in records:
        if name != new:
            _delete(repo, name, report, bypass)


def _repack(
    repo: Repository, pack_id: str, live: list[packs.PackEntry]
) -> tuple[str, list[packs.PackEntry]]:
    name = packs.pack_name(pack_id)
    data = repo.backend.get(name)
    blobs = []
    for e in live:
        sealed = data[e.offset : e.offset + e.length]
        repo.decode_blob(e.blob_id, e.kind, sealed, name)  # never copy damage forward
        blobs.append((e.kind, e.blob_id, sealed, e.raw_length))
    new_id = repo.write_pack(blobs, repo.pack_key(pack_id))  # a keyed pack stays keyed
    return new_id, repo.read_pack_header(new_id)


def _retained(repo: Repository, pack_ids: list[str], now: datetime, bypass: bool) -> set[str]:
    """The packs the store will not let go (GOVERNANCE ones are let go with ``bypass``)."""
    if not repo.backend.capabilities.retention:
        return set()
    held = set()
    for pack_id in pack_ids:
        retention = repo.backend.get_retention(packs.pack_name(pack_id))
        if retention is None or retention.until <= now:
            continue
        if retention.mode == "COMPLIANCE" or not bypass:
            held.add(pack_id)
    return held


def _delete(repo: Repository, name: str, report: PruneReport, bypass: bool) -> bool:
    try:
        repo.backend.delete(name, bypass_governance=bypass)
    except errors.ObjectNotFound:
        return False
    except errors.ObjectLocked:
        report.skipped_locked.append(name)
        return False
    return True
