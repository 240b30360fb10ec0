"""``check``: prove a repository is whole, and name what is not.

Structure (always): every index segment decodes; every indexed pack exists and its
header lists the blobs the index says it holds; every recovery point's manifest decodes
and every tree and data blob it references is indexed and every tree blob decodes with
entry names a restore accepts (``tree.check_names``).
With ``read_data``: every (or a ``subset`` percent, chosen deterministically) pack is
read whole, its name matches its SHA-256, and each blob authenticates and hashes to its
id. Each problem names the damaged object and the recovery points it affects.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from snowvault.engine import errors, packs, tree
from snowvault.engine.crypto import primitives
from snowvault.engine.index import Segment
from snowvault.engine.repository import INDEX_LOAD_ATTEMPTS, Repository


@dataclass(eq=False)
class Problem:
    object: str
    detail: str
    recovery_points: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        rps = f" (affects {', '.join(r[:12] for r in self.recovery_points)})"
        return f"{self.object}: {self.detail}{rps if self.recovery_points else ''}"


@dataclass
class CheckReport:
    problems: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    packs: int = 0
    packs_read: int = 0
    blobs: int = 0
    recovery_points: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


ProgressFn = Callable[[str, int, int], None]


class _Checker:
    def __init__(self, repo: Repository, progress: ProgressFn | None) -> None:
        self.repo = repo
        self.report = CheckReport()
        self.progress = progress or (lambda phase, done, total: None)
        self.bad_blobs: dict[bytes, Problem] = {}
        self.pack_entries: dict[str, list[packs.PackEntry]] = {}
        self.unindexed: dict[bytes, str] = {}  # blob -> pack no index segment names

    def _bad(self, blob_ids: list[bytes], problem: Problem) -> None:
        self.report.problems.append(problem)
        for blob_id in blob_ids:
            self.bad_blobs.setdefault(blob_id, problem)

    def index(self) -> None:
        """Read every index segment. One listed but gone when read was merged away by a
        concurrent index compaction (a server's sweep), which writes the segment
        superseding it first: list again, as :meth:`Repository._load_index` does."""
        for attempt in range(INDEX_LOAD_ATTEMPTS):
            try:
                loaded, problems = self._read_segments()
                break
            except errors.ObjectNotFound:
                if attempt + 1 == INDEX_LOAD_ATTEMPTS:
                    raise
        self.report.problems.extend(problems)
        superseded = {f"index/{s}" for _, seg in loaded for s in seg.supersedes}
        for name, seg in loaded:
            if name in superseded:
                continue
            for pack_id, entries in seg.packs.items():
                self.pack_entries.setdefault(pack_id, []).extend(entries)

    def _read_segments(self) -> tuple[list[tuple[str, Segment]], list[Problem]]:
        loaded: list[tuple[str, Segment]] = []
        problems: list[Problem] = []
        for name in self.repo.index_segments():
            try:
                loaded.append((name, self.repo.read_segment(name)))
            except errors.IntegrityError as exc:
                problems.append(Problem(name, exc.message))
        return loaded, problems

    def pack_headers(self) -> None:
        stored = dict(self.repo.list_packs())
        indexed = self.pack_entries
        self.report.packs = len(stored)
        for n, (pack_id, entries) in enumerate(sorted(indexed.items())):
            self.progress("packs", n, len(indexed))
            name = packs.pack_name(pack_id)
            ids = [e.blob_id for e in entries]
            if pack_id not in stored:
                self._bad(ids, Problem(name, "pack is missing"))
                continue
            try:
                header = self.repo.read_pack_header(pack_id)
            except errors.IntegrityError as exc:
                self._bad(ids, Problem(name, f"pack header: {exc.fields.get('detail', exc)}"))
                continue
            in_header = {(e.kind, e.blob_id, e.offset, e.length) for e in header}
            missing = [
                e.blob_id
                for e in entries
                if (e.kind, e.blob_id, e.offset, e.length) not in in_header
            ]
            if missing:
                self._bad(missing, Problem(name, f"{len(missing)} indexed blobs not in its header"))
        for pack_id in sorted(set(stored) - set(indexed)):
            name = packs.pack_name(pack_id)
            self.report.warnings.append(
                f"{name}: not in the index (left by an interrupted backup; prune reclaims it)"
            )
            with contextlib.suppress(errors.IntegrityError, errors.BackendError):
                for e in self.repo.read_pack_header(pack_id):
                    self.unindexed[e.blob_id] = name

    def read_data(self, subset: float, seed: int, select: Callable[[str], bool] | None) -> None:
        pack_ids = sorted(self.pack_entries)
        if select is not None:
            pack_ids = [p for p in pack_ids if select(p)]
        elif subset < 100.0:
            count = max(1, round(len(pack_ids) * subset / 100.0)) if pack_ids else 0
            pack_ids = sorted(random.Random(seed).sample(pack_ids, count))
        for n, pack_id in enumerate(pack_ids):
            self.progress("read-data", n, len(pack_ids))
            self._read_pack(pack_id)
        self.report.packs_read = len(pack_ids)

    def _read_pack(self, pack_id: str) -> None:
        name = packs.pack_name(pack_id)
        entries = self.pack_entries[pack_id]
        try:
            data = self.repo.backend.get(name)
        except errors.BackendError as exc:
            self._bad([e.blob_id for e in entries], Problem(name, f"cannot read: {exc}"))
            return
        if primitives.content_hash(data).hex() != pack_id:
            self.report.problems.append(Problem(name, "content does not match its name (SHA-256)"))
        for e in entries:
            self.report.blobs += 1
            sealed = data[e.offset : e.offset + e.length]
            try:
                plain = self.repo.decode_blob(e.blob_id, e.kind, sealed, name)
            except errors.IntegrityError as exc:
                self._bad([e.blob_id], Problem(name, str(exc.fields.get("detail", exc))))
                continue
            if not self.repo.verify_blob_id(e.blob_id, plain, pack_id):
                self._bad([e.blob_id], Problem(name, f"blob {e.blob_id.hex()} hash mismatch"))

    def recovery_points(self) -> None:
        indexed = {e.blob_id for entries in self.pack_entries.values() for e in entries}
        memo: dict[str, set[Problem]] = {}
        ids = self.repo.list_manifests()
        self.report.recovery_points = len(ids)
        for n, rp_id in enumerate(ids):
            self.progress("recovery-points", n, len(ids))
            try:
                manifest = self.repo.load_manifest(rp_id)
            except errors.IntegrityError as exc:
                self.report.problems.append(Problem(exc.fields.get("name", rp_id), exc.message))
                continue
            root = manifest.get("tree")
            if not isinstance(root, str):
                self.report.problems.append(Problem(f"recovery-points/{rp_id}", "has no tree"))
                continue
            for problem in self._walk(root, indexed, memo):
                if rp_id not in problem.recovery_points:
                    problem.recovery_points.append(rp_id)

    def _walk(
        self, tree_id: str, indexed: set[bytes], memo: dict[str, set[Problem]]
    ) -> set[Problem]:
        if tree_id in memo:
            return memo[tree_id]
        found: set[Problem] = set()
        memo[tree_id] = found
        blob_id = bytes.fromhex(tree_id)
        if blob_id in self.bad_blobs:
            found.add(self.bad_blobs[blob_id])
            return found
        if blob_id not in indexed:
            found.add(self._missing(blob_id, "tree"))
            return found
        try:
            nodes = tree.decode_tree(self.repo.get_blob(blob_id), name=f"tree {tree_id}")
            tree.check_names(nodes, f"tree {tree_id}")  # what every restore would refuse
        except errors.EngineError as exc:
            problem = Problem(
                exc.fields.get("name", f"tree {tree_id}"), str(exc.fields.get("detail", exc))
            )
            self._bad([blob_id], problem)
            found.add(problem)
            return found
        for node in nodes:
            for chunk_id, _length in node.content:
                if chunk_id is None:
                    continue
                cid = bytes.fromhex(chunk_id)
                if cid in self.bad_blobs:
                    found.add(self.bad_blobs[cid])
                elif cid not in indexed:
                    found.add(self._missing(cid, f"data of {node.text_name}"))
            if node.subtree is not None:
                found |= self._walk(node.subtree, indexed, memo)
        return found

    def _missing(self, blob_id: bytes, what: str) -> Problem:
        if blob_id not in self.bad_blobs:
            where = self.unindexed.get(blob_id)
            detail = (
                f"{what} is not indexed (it is in {where}, which no index segment names)"
                if where
                else f"{what} is not in any pack"
            )
            self._bad([blob_id], Problem(f"blob {blob_id.hex()}", detail))
        return self.bad_blobs[blob_id]


def check(
    repo: Repository,
    *,
    read_data: bool = False,
    subset: float = 100.0,
    seed: int = 0,
    progress: ProgressFn | None = None,
    select: Callable[[str], bool] | None = None,
) -> CheckReport:
    """``select`` (with ``read_data``): read the packs whose id it accepts, instead of a
    ``subset`` (the integrity watch's daily share)."""
    checker = _Checker(repo, progress)
    checker.index()
    checker.pack_headers()
    if read_data:
        checker.read_data(subset, seed, select)
    checker.recovery_points()
    return checker.report
