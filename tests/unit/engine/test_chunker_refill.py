"""Chunker.views_of_file cuts a file exactly as FastCDC cuts the whole file in memory,
for every mix of content-defined cuts, cuts at max_size, runs of zeros and files ending
anywhere around its buffer's size (twice max_size), whatever its refills move."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from pyfastcdc.cy import FastCDC

from snowvault.engine.chunker import Chunker, ChunkerParams

PARAMS = [
    ChunkerParams(min_size=64, avg_size=256, max_size=1024, seed=7),
    ChunkerParams(min_size=256, avg_size=320, max_size=4096, seed=3),
    ChunkerParams(min_size=1024, avg_size=2048, max_size=2048, seed=0),
]


def _data(rng: random.Random, size: int) -> bytes:
    parts, n = [], 0
    while n < size:
        k = rng.randrange(1, 5000)
        kind = rng.random()
        parts.append(rng.randbytes(k) if kind < 0.6 else bytes(k) if kind < 0.85 else b"xy" * k)
        n += len(parts[-1])
    return b"".join(parts)[:size]


def _whole(params: ChunkerParams, data: bytes) -> list[int]:
    cdc = FastCDC(
        avg_size=params.avg_size,
        min_size=params.min_size,
        max_size=params.max_size,
        seed=params.seed,
    )
    return [c.length for c in cdc.cut_buf(data)]


@pytest.mark.parametrize("params", PARAMS, ids=["small", "wide", "avg-is-max"])
@pytest.mark.parametrize("seed", range(8))
def test_the_cuts_are_those_of_the_whole_file(
    tmp_path: Path, params: ChunkerParams, seed: int
) -> None:
    rng = random.Random(seed)
    chunker = Chunker(params)
    buffer = 2 * params.max_size
    sizes = [rng.randrange(1, 60 * params.max_size) for _ in range(6)]
    sizes += [buffer - 1, buffer, buffer + 1, 3 * buffer + rng.randrange(params.max_size)]
    for size in sizes:
        data = _data(rng, size)
        path = tmp_path / "f"
        path.write_bytes(data)
        cuts = [len(v) for v in chunker.views_of_file(str(path)) if v is not None]
        assert cuts == _whole(params, data), size


def test_a_run_of_zeros_cut_at_max_size_across_refills(tmp_path: Path) -> None:
    params = PARAMS[0]
    data = random.Random(1).randbytes(700) + bytes(20 * params.max_size) + b"end"
    path = tmp_path / "f"
    path.write_bytes(data)
    cuts = [len(v) for v in Chunker(params).views_of_file(str(path)) if v is not None]
    assert cuts == _whole(params, data)
    assert cuts.count(params.max_size) >= 15
