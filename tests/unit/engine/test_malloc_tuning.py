"""The mmap threshold is fixed once per process (glibc) and the call is safe to repeat."""

from __future__ import annotations

import platform
import subprocess
import sys

from snowvault.engine import malloc_tuning

PROBE = """
import ctypes
from snowvault.engine import malloc_tuning
assert malloc_tuning.fix_mmap_threshold()
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
def mapped(size):
    block = libc.malloc(size)
    try:  # glibc's IS_MMAPPED flag in the chunk's size word, just before the block
        return bool(ctypes.c_size_t.from_address(block - 8).value & 0x2)
    finally:
        libc.free(ctypes.c_void_p(block))
print(mapped(8 << 20), mapped(6 << 20), mapped(malloc_tuning.MMAP_THRESHOLD + 4096))
"""


def test_fixing_the_threshold_is_idempotent() -> None:
    assert malloc_tuning.fix_mmap_threshold() == malloc_tuning.fix_mmap_threshold()


def test_large_blocks_stay_mappings_after_a_larger_one_is_freed() -> None:
    """In a fresh process: in a long-lived one (a test worker) a large block can come
    from a heap's top chunk grown by earlier tests, whatever the threshold says."""
    if platform.libc_ver()[0] != "glibc":
        return  # another allocator: its own policy, nothing of glibc's to fix
    # unfixed, freeing the 8 MiB mapping raises glibc's threshold to 8 MiB and the next
    # 6 MiB block would come from the heap and stay there
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "True", "True"], out.stderr
