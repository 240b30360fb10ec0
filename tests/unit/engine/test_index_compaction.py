"""Index compaction (engine/index_compaction.py): many segments become one that
supersedes them, nothing indexed is lost, readers and writers next to it keep working
(before and after the replaced segments are deleted), and a prune's exclusive lock
keeps it out."""

from __future__ import annotations

import io
import random
import threading
from collections.abc import Callable
from pathlib import Path

from snowvault.engine import check, index, index_compaction, locks, restorer, stream_backup
from snowvault.engine.backends.memory import MemoryBackend
from snowvault.engine.crypto import KdfParams
from snowvault.engine.repository import Repository
from snowvault.testing import FakeClock

KDF = KdfParams.for_tests()


def _repo_with_points(clock: FakeClock, count: int) -> tuple[MemoryBackend, list[str]]:
    backend = MemoryBackend()
    repo = Repository.init(backend, password="pw", kdf=KDF, pack_size=64 * 1024)
    rng = random.Random(5)
    points = []
    for n in range(count):  # one backup, one flush, one more segment each
        data = rng.randbytes(rng.randint(100, 20_000))
        result = stream_backup.backup_stream(
            repo, f"f{n}", io.BytesIO(data), now=clock.now(), clock=clock
        )
        points.append(result.rp_id)
    repo.close()
    return backend, points


def _restored(repo: Repository, rp_id: str, tmp: Path) -> bytes:
    target = tmp / rp_id
    restorer.restore(repo, rp_id, str(target))
    (only,) = [p for p in target.rglob("*") if p.is_file()]
    return only.read_bytes()


def test_segments_become_one_and_every_point_still_restores(
    clock: FakeClock, tmp_path: Path
) -> None:
    backend, points = _repo_with_points(clock, 20)
    repo = Repository.open(backend, password="pw")
    before = {bytes(b) for b in repo.master_index.blob_ids()}
    expected = {rp: _restored(repo, rp, tmp_path / "before") for rp in points}
    segments = repo.index_segments()
    assert len(segments) >= 20

    replaced = index_compaction.merge(repo, clock, min_segments=16)
    assert sorted(replaced) == sorted(segments)
    assert not list(backend.list("locks/"))  # its shared lock is gone
    (merged,) = set(repo.index_segments()) - set(segments)  # the replaced ones stay
    assert sorted(repo.read_segment(merged).supersedes) == sorted(
        s.removeprefix("index/") for s in segments
    )
    for phase in ("merged", "deleted"):  # before and after the replaced ones go
        reopened = Repository.open(backend, password="pw")
        assert {bytes(b) for b in reopened.master_index.blob_ids()} == before
        assert check.check(reopened, read_data=True).problems == []
        for rp in points:
            assert _restored(reopened, rp, tmp_path / phase) == expected[rp]
        if phase == "merged":
            assert index_compaction.delete_replaced(repo, replaced) == len(replaced)
            assert repo.index_segments() == [merged]


def test_too_few_segments_are_left_alone(clock: FakeClock) -> None:
    backend, _ = _repo_with_points(clock, 5)
    repo = Repository.open(backend, password="pw")
    names = repo.index_segments()
    assert index_compaction.merge(repo, clock, min_segments=16) == []
    assert repo.index_segments() == names


def test_a_writer_next_to_it_keeps_its_segment(clock: FakeClock, tmp_path: Path) -> None:
    """A backup flushing between the compaction's listing and its write adds a segment
    the merged one does not name: it stays, and its point restores."""
    backend, _ = _repo_with_points(clock, 16)
    hooked = HookedBackend(backend)
    writer = Repository.open(backend, password="pw")
    compactor = Repository.open(hooked, password="pw")
    earlier = set(compactor.index_segments())
    data = b"written during the compaction" * 100
    points: list[str] = []

    def write_now() -> None:  # the compaction has listed; a backup lands now
        result = stream_backup.backup_stream(
            writer, "late", io.BytesIO(data), now=clock.now(), clock=clock
        )
        writer.flush()
        points.append(result.rp_id)

    hooked.hook = write_now
    hooked.skip = len(earlier)  # the lock's index reload reads them all first
    replaced = index_compaction.merge(compactor, clock, min_segments=16)
    assert set(replaced) == earlier
    index_compaction.delete_replaced(compactor, replaced)
    names = set(Repository.open(backend, password="pw").index_segments())
    assert not names & earlier
    assert len(names) >= 2  # the merged one, and the late writer's
    reopened = Repository.open(backend, password="pw")
    assert _restored(reopened, points[0], tmp_path) == data
    assert check.check(reopened, read_data=True).problems == []


class HookedBackend(MemoryBackend):
    """Another view of a memory store that runs ``hook`` once, just before a read of an
    index segment, after ``skip`` such reads."""

    def __init__(self, inner: MemoryBackend) -> None:
        super().__init__()
        self._objects, self._lock = inner._objects, inner._lock  # the same store
        self.hook: Callable[[], None] | None = None
        self.skip = 0
        self._count = threading.Lock()

    def get(self, name: str, offset: int = 0, length: int | None = None) -> bytes:
        hook = None
        if name.startswith("index/"):
            with self._count:
                if self.skip:
                    self.skip -= 1
                else:
                    hook, self.hook = self.hook, None
        if hook is not None:
            hook()
        return super().get(name, offset, length)


def test_a_prune_holding_the_repository_keeps_it_out(clock: FakeClock) -> None:
    backend, _ = _repo_with_points(clock, 16)
    pruner = Repository.open(backend, password="pw")
    compactor = Repository.open(backend, password="pw")
    names = compactor.index_segments()
    with locks.locked_repository(pruner, clock, exclusive=True):
        assert index_compaction.merge(compactor, clock, min_segments=16) == []
    assert compactor.index_segments() == names


def test_segments_left_behind_are_not_merged_again_and_go_with_the_next(
    clock: FakeClock,
) -> None:
    """Replaced segments whose deletes never came (the merging server died) are
    superseded already: they do not count towards the next merge, which replaces them
    too, so its deletes take them."""
    backend, _ = _repo_with_points(clock, 16)
    repo = Repository.open(backend, password="pw")
    first = index_compaction.merge(repo, clock, min_segments=16)
    assert first
    assert index_compaction.merge(repo, clock, min_segments=16) == []  # 1 live segment
    rng = random.Random(9)
    for n in range(16):  # more backups: enough live segments again
        stream_backup.backup_stream(
            repo, f"g{n}", io.BytesIO(rng.randbytes(3000)), now=clock.now(), clock=clock
        )
        repo.flush()
    second = index_compaction.merge(repo, clock, min_segments=16)
    assert set(first) < set(second)
    index_compaction.delete_replaced(repo, second)
    (only,) = repo.index_segments()
    assert isinstance(repo.read_segment(only), index.Segment)
    assert check.check(Repository.open(backend, password="pw"), read_data=True).problems == []


def test_a_check_reading_as_the_replaced_segments_go_lists_again(clock: FakeClock) -> None:
    """A check lists the segments, then a server's sweep merges them and deletes the
    replaced ones before the check has read them all: the check lists again and finds
    the repository whole (it once failed with ObjectNotFound: the three-server test)."""
    backend, _ = _repo_with_points(clock, 16)
    hooked = HookedBackend(backend)
    checked = Repository.open(hooked, password="pw")
    compactor = Repository.open(backend, password="pw")
    deleted: list[int] = []

    def compact_now() -> None:  # the check has read two segments of its listing
        replaced = index_compaction.merge(compactor, clock, min_segments=16)
        deleted.append(index_compaction.delete_replaced(compactor, replaced))

    hooked.hook, hooked.skip = compact_now, 2
    report = check.check(checked, read_data=True)
    assert deleted and deleted[0] >= 16  # the segments went while it read
    assert report.problems == []
    assert report.recovery_points == 16
    assert report.packs_read == report.packs > 0
