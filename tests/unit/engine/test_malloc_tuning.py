"""The mmap threshold is fixed once per process (glibc) and the call is safe to repeat."""

from __future__ import annotations

import ctypes
import platform

from snowvault.engine import malloc_tuning

IS_MMAPPED = 0x2  # glibc's flag in a chunk's size word, just before the block


def _mapped(libc: ctypes.CDLL, size: int) -> bool:
    block = libc.malloc(size)
    assert block
    try:
        return bool(ctypes.c_size_t.from_address(block - 8).value & IS_MMAPPED)
    finally:
        libc.free(ctypes.c_void_p(block))


def test_fixing_the_threshold_is_idempotent() -> None:
    assert malloc_tuning.fix_mmap_threshold() == malloc_tuning.fix_mmap_threshold()


def test_large_blocks_stay_mappings_after_a_larger_one_is_freed() -> None:
    if platform.libc_ver()[0] != "glibc":
        return  # another allocator: its own policy, nothing of glibc's to fix
    assert malloc_tuning.fix_mmap_threshold()
    libc = ctypes.CDLL(None)
    libc.malloc.restype = ctypes.c_void_p
    # unfixed, freeing an 8 MiB mapping raises glibc's threshold to 8 MiB and the next
    # 6 MiB block would come from the heap and stay there
    assert _mapped(libc, 8 * 1024 * 1024)
    assert _mapped(libc, 6 * 1024 * 1024)
    assert _mapped(libc, malloc_tuning.MMAP_THRESHOLD + 4096)
