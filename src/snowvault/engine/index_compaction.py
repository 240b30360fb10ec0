"""Index compaction: many small index segments become one, so opening a repository
stays one read of a few objects instead of one per backup ever made.

Every flush of a writer (a backup, an agent's upload) adds a segment (``index/<hash>``),
and every open of the repository reads all of them: without compaction, a vault that
took N backups costs N object reads per open, and a run of N backups costs N² reads
(the scale test's 1,000 agent jobs on S3 slowed from tenths of a second per call to
several seconds). Prune already replaces the segments it read by one that supersedes
them, but prune needs an exclusive lock and reads every manifest; this does only the
index part, under a shared lock, in two steps::

    replaced = merge(repo, clock, min_segments=16)   # [] : too few, or locked by a prune
    ...                                              # some seconds later:
    delete_replaced(repo, replaced)

Order, as prune's (docs/design/repository-format.md: index segments): the merged
segment, naming every segment it replaces in ``supersedes``, is written first; the
replaced ones are deleted later, by the caller, once readers that listed them before
the merge have had time to read them (a reader that sees both skips the superseded
ones). Deleting at once made readers on other servers, which list and then read for a
second or two under load, lose the race often enough to exhaust their relistings
(:meth:`Repository._load_index`). A reader that still finds one gone lists again.

Writers running meanwhile add segments the merged one does not name: they stay. Two
merges at once (two servers' sweeps) write segments with the same packs (the index
takes the first location of a blob; duplicates are harmless); a delete meeting an
object already gone is fine. Segments already superseded when a merge lists them
(a merge whose deletes never came: its server died) are not counted and are deleted
with the next merge's. A segment under store retention that cannot be deleted stays,
superseded. The shared lock keeps prune (exclusive) out.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

from snowvault.core.clock import Clock
from snowvault.engine import errors, index, locks, packs
from snowvault.engine.repository import Repository

log = logging.getLogger("snowvault.engine.index_compaction")

MIN_SEGMENTS = 16
"""Merge once a repository has this many segments (each open reads about as many)."""


def merge(repo: Repository, clock: Clock, *, min_segments: int = MIN_SEGMENTS) -> list[str]:
    """Write one segment replacing the repository's live segments when there are at
    least ``min_segments``; the names it replaces (for :func:`delete_replaced`), empty
    when there were too few, a prune holds the repository, or a segment vanished while
    it was read (another merge or prune got there)."""
    if len(repo.index_segments()) < min_segments:
        return []
    try:
        with locks.locked_repository(repo, clock, exclusive=False, wait_seconds=0):
            return _merge(repo, min_segments)
    except locks.RepositoryLocked:
        return []


def _merge(repo: Repository, min_segments: int) -> list[str]:
    names = repo.index_segments()
    try:  # through the server's cache: only the segments new since the last pass
        bodies = repo.segment_bodies(names)
    except errors.ObjectNotFound:
        return []
    superseded = {f"index/{s}" for body in bodies.values() for s in body.supersedes}
    live = [n for n in names if n not in superseded]
    if len(live) < min_segments:
        return []
    merged: dict[str, list[packs.PackEntry]] = {}
    for name in live:
        for pack_id, rows in bodies[name].packs():
            if pack_id not in merged:
                merged[pack_id] = [packs.PackEntry(*row) for row in rows]
    repo.write_segment(
        index.Segment(packs=merged, supersedes=[n.removeprefix("index/") for n in names])
    )
    log.info("merged %d index segments of %s into one", len(names), repo.backend.location)
    return names


def delete_replaced(repo: Repository, names: Iterable[str]) -> int:
    """Delete segments a merge replaced (gone already, or kept by retention: skipped);
    how many were deleted."""

    def delete(name: str) -> int:
        with contextlib.suppress(errors.ObjectNotFound, errors.ObjectLocked):
            repo.backend.delete(name)
            return 1
        return 0

    # all at once: a reader that lists while the deletes run relists right away, and a
    # slow trickle of deletes made some readers fail every relisting in a row
    with ThreadPoolExecutor(16) as pool:
        return sum(pool.map(delete, list(names)))
