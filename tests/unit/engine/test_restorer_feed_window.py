"""The restore's feed queues a whole window of files before it waits, so a streamed
restore's walk gathers the next window while the threads write this one (it used to
wait at ``4 * workers`` runs, and the threads sat idle while the walk decoded trees)."""

from __future__ import annotations

import threading
from typing import Any, cast

from snowvault.engine import restorer
from snowvault.engine.tree import Node

_HANG_GUARD = 30.0
"""Seconds a held run waits before giving up, so a feed that blocks fails, not hangs."""


class _HeldRestorer:
    """Stands in for a _Restorer: each run waits until the test releases them."""

    runs = None

    def __init__(self) -> None:
        self.release = threading.Event()
        self.released_before_start: list[bool] = []
        self.written: list[bytes] = []
        self._lock = threading.Lock()

    def order(self, files: list[tuple[bytes, Node]]) -> list[tuple[bytes, Node]]:
        return files

    def _restore_run(self, run: list[tuple[bytes, Node]]) -> None:
        released = self.release.wait(_HANG_GUARD)
        with self._lock:
            self.released_before_start.append(released)
            self.written.extend(rel for rel, _ in run)


def _files(folder: bytes, n: int) -> list[tuple[bytes, Node]]:
    return [(folder + b"/f%d" % i, Node(name=b"f%d" % i, type="file", size=1)) for i in range(n)]


def test_put_queues_far_more_than_four_runs_a_worker_without_waiting() -> None:
    held = _HeldRestorer()
    files: list[tuple[bytes, Node]] = []
    for d in range(20):  # 20 directories of 64 files: 20 runs, 10 a worker
        files += _files(b"d%d" % d, restorer.RUN_FILES)
    assert len(files) < restorer.STREAM_FILES
    with restorer._Feed(cast(Any, held), workers=2) as feed:
        feed.put(files)  # returns with every run queued, none written yet
        held.release.set()
    assert held.released_before_start == [True] * 20
    assert sorted(held.written) == sorted(rel for rel, _ in files)


class _FirstRunHeld(_HeldRestorer):
    """The first run waits for the release; every other run is written at once."""

    def __init__(self, others_expected: int) -> None:
        super().__init__()
        self.others_expected = others_expected
        self.others_done = threading.Event()
        self.others_before_release = 0

    def _restore_run(self, run: list[tuple[bytes, Node]]) -> None:
        if run[0][0].startswith(b"d0/"):
            super()._restore_run(run)
            return
        with self._lock:
            if not self.release.is_set():
                self.others_before_release += 1
            self.written.extend(rel for rel, _ in run)
            if self.others_before_release == self.others_expected:
                self.others_done.set()


def test_put_waits_once_a_window_of_files_is_queued() -> None:
    """With the first run held, put queues runs up to ``STREAM_FILES`` files, then
    waits for that first run: no run past the window starts before the release."""
    window_runs = restorer.STREAM_FILES // restorer.RUN_FILES
    held = _FirstRunHeld(others_expected=window_runs - 1)
    files: list[tuple[bytes, Node]] = []
    for d in range(3 * window_runs):
        files += _files(b"d%d" % d, restorer.RUN_FILES)
    feed = restorer._Feed(cast(Any, held), workers=2)
    failures: list[BaseException] = []

    def put() -> None:
        try:
            with feed:
                feed.put(files)
        except BaseException as exc:  # pragma: no cover - reported below
            failures.append(exc)

    putter = threading.Thread(target=put)
    putter.start()
    assert held.others_done.wait(_HANG_GUARD), "the feed stopped short of a window"
    held.release.set()
    putter.join()
    assert failures == []
    assert held.others_before_release == window_runs - 1
    assert held.released_before_start == [True]
    assert sorted(held.written) == sorted(rel for rel, _ in files)
