"""Walk workers take the heaviest queued subtree first (longest processing time first).

:func:`walk_workers.weigh` estimates a subtree's cost from a capped listing and a few
stats; the pool and the parent both take the heaviest queued task, so the last subtrees
walked are the light ones and no process walks a heavy one alone at the end.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from pathlib import Path
from typing import Any

import pytest

from snowvault.engine import walk_workers


def _files(d: Path, count: int, size: int) -> None:
    d.mkdir(parents=True)
    for i in range(count):
        (d / f"f{i}").write_bytes(b"x" * size)


def test_weigh_counts_bytes_entries_and_holes(tmp_path: Path) -> None:
    _files(tmp_path / "big", 4, 1 << 20)  # 200 entries weigh ~3.2 MB
    _files(tmp_path / "many", 200, 10)
    _files(tmp_path / "few", 2, 10)
    (tmp_path / "deep" / "a" / "b").mkdir(parents=True)
    (tmp_path / "deep" / "a" / "b" / "f").write_bytes(b"y" * (4 << 20))
    sparse = tmp_path / "sparse"
    sparse.mkdir()
    with open(sparse / "img", "wb") as f:
        f.truncate(8 << 20)
    w = {name: walk_workers.weigh(os.fsencode(tmp_path / name)) for name in os.listdir(tmp_path)}
    assert w["big"] > w["many"] > w["few"] > 0
    assert w["deep"] > w["many"]  # a file two directories down counts
    assert w["sparse"] >= (8 << 20) // walk_workers.HOLE_SHARE  # a hole at a quarter
    assert walk_workers.weigh(os.fsencode(tmp_path / "missing")) == 0


def test_weigh_extrapolates_past_its_cap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for d in range(8):
        _files(tmp_path / "t" / f"d{d}", 10, 1000)
    full = walk_workers.weigh(os.fsencode(tmp_path / "t"))
    monkeypatch.setattr(walk_workers, "WEIGH_ENTRIES", 30)  # the top and 3 of 8 listed
    capped = walk_workers.weigh(os.fsencode(tmp_path / "t"))
    assert full * 0.8 <= capped <= full * 1.2


class _Conn:
    def __init__(self, log: list[Any]) -> None:
        self.log = log

    def send(self, msg: Any) -> None:
        self.log.append(msg[1] if msg[0] == "walk" else msg[0])


def _pool(busy: int) -> tuple[Any, list[Any], list[bytes]]:
    """A pool without processes (only the parts submit, _dispatch and wait use): one
    worker, ``busy`` with a task (so every task queues), and this process's walk, which
    logs the subtrees it walks. (pool, what the worker was sent, what this process walked)."""
    pool: Any = walk_workers.SubtreeWorkers.__new__(walk_workers.SubtreeWorkers)
    pool._lock = threading.Lock()
    pool._queue = deque()
    pool._tasks, pool._costs, pool._futures, pool._results = [], [], [], {}
    pool._groups, pool._claims = [], {}
    pool._broken, pool._meter, pool._progress = None, None, [0, 0]
    pool._current, pool._errors, pool._closing = None, [], False
    sent: list[Any] = []
    worker = walk_workers._Worker(process=None, conn=_Conn(sent))  # type: ignore[arg-type]
    worker.busy = busy
    pool._workers = [worker]
    walked: list[bytes] = []

    def local(path: bytes, rel: bytes, dev: int, parent: str | None) -> tuple[str, Any, list[Any]]:
        walked.append(rel)
        return "00", None, []

    pool._local = local
    return pool, sent, walked


def test_workers_and_the_parent_take_the_heaviest_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sizes = {"light": 1, "heavy": 64, "middle": 16, "tiny": 0}
    for name, kib in sizes.items():
        _files(tmp_path / name, 1, kib << 10)
    pool, sent, walked = _pool(busy=0)
    worker = pool._workers[0]
    refs = [pool.submit(os.fsencode(tmp_path / n), n.encode(), 0, None) for n in sizes]
    worker.busy = None
    with pool._lock:
        pool._dispatch()  # the worker is free: it takes the heaviest
    assert sent == [1]  # "heavy"
    refs[0].result()  # the parent walks the rest, heaviest first, until "light" is done
    pool._futures[1].set_result("00")
    assert walked == [b"middle", b"light"]
    refs[3].result()
    assert walked == [b"middle", b"light", b"tiny"]


def test_an_idle_worker_is_stopped_once_nothing_more_will_come(tmp_path: Path) -> None:
    _files(tmp_path / "a", 1, 10)
    pool: Any = walk_workers.SubtreeWorkers.__new__(walk_workers.SubtreeWorkers)
    pool._lock = threading.Lock()
    pool._queue = deque([0, 1])
    pool._tasks = [(os.fsencode(tmp_path / "a"), b"a", 0, None)] * 2
    pool._costs = [1, 2]
    pool._groups, pool._claims = [b"t", b"t"], {}
    pool._closing = False
    logs: list[list[Any]] = [[], []]
    workers = [walk_workers._Worker(process=None, conn=_Conn(log)) for log in logs]  # type: ignore[arg-type]
    pool._workers = workers
    with pool._lock:
        pool._dispatch()
    assert logs == [[1], [0]]  # heaviest first; not closing: nobody is stopped
    workers[0].busy = None
    with pool._lock:
        pool._dispatch()
    assert logs == [[1], [0]]
    pool._closing = True
    with pool._lock:
        pool._dispatch()  # the walk is done and nothing is queued: the idle one flushes
    assert logs == [[1, "stop"], [0]]
    workers[1].busy = None
    with pool._lock:
        pool._dispatch()
        pool._stop_idle()  # told once only
    assert logs == [[1, "stop"], [0, "stop"]]


def test_a_reruns_subtrees_are_not_weighed_and_keep_the_walks_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, kib in {"a": 0, "b": 64, "c": 1, "d": 16}.items():
        _files(tmp_path / name, 1, kib << 10)
    weighed: list[bytes] = []
    monkeypatch.setattr(walk_workers, "weigh", lambda path: weighed.append(path) or 1)
    pool, sent, walked = _pool(busy=99)
    worker = pool._workers[0]
    refs = [pool.submit(os.fsencode(tmp_path / n), n.encode(), 0, "ab" * 32) for n in "abcd"]
    assert weighed == []
    worker.busy = None
    with pool._lock:
        pool._dispatch()
    assert sent == [0]  # the oldest
    pool._futures[0].set_result("00")
    refs[1].result()  # its own first (queued), then the newest
    assert walked == [b"b"]
    refs[2].result()
    assert walked == [b"b", b"c"]
    refs[3].result()
    assert walked == [b"b", b"c", b"d"]


def test_a_process_keeps_to_siblings_no_other_process_walks(tmp_path: Path) -> None:
    # g1/a is the heaviest, g1/b next, g2/c lighter but within AFFINITY of b
    for rel, kib in {"g1/a": 640, "g1/b": 600, "g2/c": 400}.items():
        _files(tmp_path / rel, 1, kib << 10)
    pool, sent, walked = _pool(busy=99)
    worker = pool._workers[0]
    for rel in ("g1/a", "g1/b", "g2/c"):
        pool.submit(os.fsencode(tmp_path / rel), rel.encode(), 0, None)
    worker.busy = None
    with pool._lock:
        pool._dispatch()
    assert sent == [0]
    pool._futures[0].set_result("00")
    # this process waits for b, yet first walks c (b is a sibling of what the worker
    # walks; c of no group another process walks), then b (none left elsewhere)
    pool.wait(1)
    assert walked == [b"g2/c", b"g1/b"]
    assert sent == [0]
