"""A pack spool gathers small parts in one buffer filled in place and writes large ones
straight through: the file holds every part in order, whatever their sizes."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

from snowvault.engine import pack_spool
from snowvault.engine.pack_spool import PackSpool


def test_parts_of_every_size_land_in_order(tmp_path: Path) -> None:
    rng = random.Random(5)
    limit = pack_spool.WRITE_BYTES
    sizes = [1, 100, limit - 1, 1, limit, 3, limit // 2, limit // 2, limit // 2 + 1, 7, 2 * limit]
    sizes += [rng.randrange(1, 40_000) for _ in range(60)]
    parts = [rng.randbytes(n) for n in sizes]
    spool = PackSpool.create(str(tmp_path))
    for i in range(0, len(parts), 3):  # several parts a call, as a sealed blob's are
        spool.write(*[memoryview(p) if k % 2 else p for k, p in enumerate(parts[i : i + 3])])
    pack_id = spool.publish(b"HEADER")
    want = b"".join(parts) + b"HEADER"
    got = (tmp_path / "data" / pack_id[:2] / pack_id).read_bytes()
    assert got == want and pack_id == hashlib.sha256(want).hexdigest()
    assert spool.size == len(want)
