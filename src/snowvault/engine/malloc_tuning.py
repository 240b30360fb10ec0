"""Large buffers straight from the kernel, so a restore's memory goes back when freed.

glibc serves an allocation above its mmap threshold with a fresh mapping that ``free``
returns at once; but the threshold rises to the largest block freed so far (up to
32 MiB), after which the engine's pack buffers (16 MiB), pack caches and chunk copies
come from per-thread heaps that keep their pages and fragment. Fixing the threshold at
``MMAP_THRESHOLD`` keeps it where it started to matter: measured on the benchmark's
restore (1.7 GiB, 127,000 files, four threads) the peak RSS fell from 359 to 249 MiB
(docs/benchmarks.md). Chunks (about 1 MiB) still come from the heap.

    fix_mmap_threshold()   # once per process; a no-op without glibc's mallopt

Process-wide and permanent, which suits a server too (the same buffers, more often).
"""

from __future__ import annotations

import contextlib
import ctypes
import threading

MMAP_THRESHOLD = 4 * 1024 * 1024
_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number

_done = False
_lock = threading.Lock()


def fix_mmap_threshold() -> bool:
    """Set glibc's mmap threshold (once); whether it is now set."""
    global _done
    with _lock:
        if not _done:
            with contextlib.suppress(OSError, AttributeError):
                libc = ctypes.CDLL(None)
                _done = bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD))
        return _done
