"""Process-wide allocator tuning for the data plane (glibc only; a no-op elsewhere).

The pipeline allocates and frees megabyte-sized buffers (chunks, compressed and sealed
copies) from several threads. glibc's default raises its mmap threshold after the first
large free, so later buffers come from per-thread heaps that fragment and keep memory.
A fixed 1 MiB threshold returns every large buffer to the system when freed: measured
on a 213 MiB backup, peak RSS fell from ~150 to ~110 MiB for a small cost in speed.
Call once, early, from a command's entry point (never on import).
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_MMAP_THRESHOLD = -3
THRESHOLD = 1024 * 1024


def tune() -> bool:
    """Fix glibc's mmap threshold; True when applied."""
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, THRESHOLD))
