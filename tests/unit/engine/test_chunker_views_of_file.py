"""Chunker.views_of_file: views of the read buffer, each valid until the next None, the
same cuts as chunks_of_file (and so as pyfastcdc's stream chunker)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from snowvault.engine.chunker import Chunker, ChunkerParams

PARAMS = ChunkerParams(min_size=64, avg_size=256, max_size=1024, seed=7)


def _data(size: int) -> bytes:
    rng = random.Random(size)
    return b"".join(
        rng.randbytes(rng.randrange(1, 3000)) if rng.random() < 0.7 else bytes(rng.randrange(3000))
        for _ in range(size // 500 + 1)
    )[:size]


@pytest.mark.parametrize("size", [0, 1, 1023, 1024, 2047, 2048, 2049, 10_000, 65_537])
def test_views_stay_valid_until_the_next_none(tmp_path: Path, size: int) -> None:
    data = _data(size)
    path = tmp_path / "f"
    path.write_bytes(data)
    chunker = Chunker(PARAMS)
    held: list[tuple[memoryview, int]] = []  # views since the last None, and their offsets
    cuts: list[bytes] = []
    pos = 0
    nones = 0
    for item in chunker.views_of_file(str(path)):
        for view, at in held:  # nothing handed out was overwritten before a None
            assert bytes(view) == data[at : at + len(view)]
        if item is None:
            assert held  # a None only when views were handed out
            nones += 1
            held.clear()
            continue
        held.append((item, pos))
        cuts.append(bytes(item))
        pos += len(item)
    for view, at in held:  # the last ones stay valid after the file is done
        assert bytes(view) == data[at : at + len(view)]
    assert cuts == list(chunker.chunks_of_file(str(path)))
    assert b"".join(cuts) == data
    if size > 2 * PARAMS.max_size:
        assert nones >= 1  # the buffer (twice max_size) was reused
