"""chunker.chunks_of_file (its own buffer) cuts a file exactly as pyfastcdc's stream chunker."""

from __future__ import annotations

import io
import random
from pathlib import Path

import pytest

from snowvault.engine.chunker import Chunker, ChunkerParams

PARAMS = ChunkerParams(min_size=64, avg_size=256, max_size=1024, seed=7)


def _reference(chunker: Chunker, data: bytes) -> list[bytes]:
    return [bytes(v) for v in chunker.chunks(io.BytesIO(data))]


@pytest.mark.parametrize(
    "size", [0, 1, 63, 64, 1023, 1024, 1025, 2047, 2048, 2049, 3000, 10_000, 65_537]
)
def test_chunks_of_file_match_the_stream_chunker(tmp_path: Path, size: int) -> None:
    rng = random.Random(size)
    # random bytes with runs, so some cuts come at max_size and some content-defined
    data = b"".join(
        rng.randbytes(rng.randrange(1, 3000)) if rng.random() < 0.7 else bytes(rng.randrange(3000))
        for _ in range(size // 500 + 1)
    )[:size]
    path = tmp_path / "f"
    path.write_bytes(data)
    chunker = Chunker(PARAMS)
    want = _reference(chunker, data)
    for _ in range(2):  # a second time with the same chunker
        got = list(chunker.chunks_of_file(str(path)))
        assert got == want
        assert b"".join(got) == data


def test_two_files_read_at_once_do_not_share_a_buffer(tmp_path: Path) -> None:
    rng = random.Random(1)
    a, b = rng.randbytes(20_000), rng.randbytes(20_000)
    (tmp_path / "a").write_bytes(a)
    (tmp_path / "b").write_bytes(b)
    chunker = Chunker(PARAMS)
    ia, ib = (
        chunker.chunks_of_file(str(tmp_path / "a")),
        chunker.chunks_of_file(str(tmp_path / "b")),
    )
    got_a, got_b = [next(ia)], [next(ib)]  # both open, each with a buffer
    got_a += ia
    got_b += ib
    assert got_a == _reference(chunker, a)
    assert got_b == _reference(chunker, b)
