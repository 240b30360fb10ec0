"""chunker.all_zero: a hole's chunk found without allocating a zero buffer its size."""

from __future__ import annotations

import pytest

from snowvault.engine.chunker import _ZEROS, all_zero

STEP = len(_ZEROS)


@pytest.mark.parametrize("size", [0, 1, STEP - 1, STEP, STEP + 1, 3 * STEP + 5, 8 * 1024 * 1024])
def test_zero_buffers_of_any_size_are_all_zero(size: int) -> None:
    data = bytes(size)
    assert all_zero(data)
    assert all_zero(memoryview(data))
    assert all_zero(bytearray(data))


@pytest.mark.parametrize("size", [1, STEP - 1, STEP, STEP + 1, 3 * STEP + 5])
@pytest.mark.parametrize("where", ["first", "middle", "last"])
def test_one_non_zero_byte_anywhere_is_seen(size: int, where: str) -> None:
    data = bytearray(size)
    at = {"first": 0, "middle": size // 2, "last": size - 1}[where]
    data[at] = 0x80
    assert not all_zero(bytes(data))
    assert not all_zero(memoryview(data))
    assert not all_zero(memoryview(bytes(data))[at:])
