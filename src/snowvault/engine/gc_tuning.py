"""Fewer cyclic garbage collections while a backup or restore runs.

A backup allocates a few objects per entry (nodes, parts, futures) and keeps up to
``MAX_PENDING_NODES`` of them alive, so CPython's default first-generation threshold
(700 allocations) starts a collection every few files, each traversing the young
objects, and a full collection now and then walks every object of the index. Measured
on the benchmark's 1.7 GiB / 127,000-file tree: 17.5 CPU s with the default thresholds,
15.1 with these (docs/benchmarks.md). Reference counting still frees everything at once;
only cycles (rare here) wait a little longer.

    with fewer_collections():
        ...  # the walk

Nested and concurrent uses (a server running several jobs) share one setting: the
thresholds are raised when the first use starts and put back when the last one ends.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

THRESHOLDS = (50_000, 20, 20)
"""gen0 allocations between collections, then gen1/gen2 as multiples (CPython: 700, 10, 10)."""

_lock = threading.Lock()
_users = 0
_saved: tuple[int, int, int] | None = None


@contextmanager
def fewer_collections() -> Iterator[None]:
    global _users, _saved
    with _lock:
        if _users == 0:
            _saved = gc.get_threshold()
            gc.set_threshold(*(max(a, b) for a, b in zip(THRESHOLDS, _saved, strict=True)))
        _users += 1
    try:
        yield
    finally:
        with _lock:
            _users -= 1
            if _users == 0 and _saved is not None:
                gc.set_threshold(*_saved)
                _saved = None
