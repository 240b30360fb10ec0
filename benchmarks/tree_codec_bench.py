"""CPU per entry of the tree codec (engine/tree.py), two versions side by side.

    git show <rev>:src/snowvault/engine/tree.py > /tmp/tree_old.py
    .venv/bin/python benchmarks/tree_codec_bench.py /tmp/tree_old.py src/snowvault/engine/tree.py

Both versions are loaded into one process and timed alternately (process CPU time, the
minimum of ``--rounds`` runs), on seeded trees: one directory of 10,000 entries and 500
of 20 (80% files of 1-3 chunks, a tenth of them with an xattr; 10% directories; 10%
symlinks), under ``gc_tuning.fewer_collections()`` as a backup or restore runs. Before
timing, the script checks that both versions encode the trees to the same bytes.
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import json
import random
import sys
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

from snowvault.engine import gc_tuning

ENTRIES = 10_000


def load(name: str, path: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def make_nodes(t: ModuleType, count: int, rnd: random.Random) -> list[Any]:
    nodes = []
    for i in range(count):
        common: dict[str, Any] = {
            "mode": 0o644,
            "uid": 1000,
            "gid": 100,
            "user": "alice",
            "group": "users",
            "mtime_ns": 1_700_000_000_123_456_789 + i,
            "ctime_ns": 1_700_000_001_000_000_000 + i,
            "inode": 100_000 + i,
            "device": 2049,
        }
        r = rnd.random()
        if r < 0.8:
            content = tuple(
                (rnd.randbytes(32).hex(), rnd.randint(1, 1 << 20)) for _ in range(rnd.randint(1, 3))
            )
            xattrs = ((b"user.x", b"v" * 10),) if rnd.random() < 0.1 else ()
            size = sum(length for _, length in content)
            name = f"file-{i:06d}.txt".encode()
            nodes.append(
                t.Node(name=name, type="file", size=size, content=content, xattrs=xattrs, **common)
            )
        elif r < 0.9:
            subtree = rnd.randbytes(32).hex()
            nodes.append(
                t.Node(name=f"dir-{i:06d}".encode(), type="dir", subtree=subtree, **common)
            )
        else:
            name = f"link-{i:06d}".encode()
            nodes.append(t.Node(name=name, type="symlink", target=b"../x/y", **common))
    return nodes


def copied_encode(pairs: list[tuple[bytes, dict[str, Any]]]) -> bytes:
    """archiver.encode_pending's own copy of the encoding, before tree.encode_dicts."""
    docs = sorted(pairs, key=lambda pair: pair[0])
    for before, after in itertools.pairwise(docs):
        if before[0] == after[0]:
            raise ValueError("duplicate")
    doc = {"nodes": [d for _, d in docs], "version": 1}
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("old")
    parser.add_argument("new")
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    old, new = load("tree_bench_old", args.old), load("tree_bench_new", args.new)
    rnd = random.Random(7)
    big = make_nodes(old, ENTRIES, rnd)
    small = [make_nodes(old, 20, rnd) for _ in range(ENTRIES // 20)]
    big_blob = old.encode_tree(big)
    small_blobs = [old.encode_tree(s) for s in small]
    assert new.encode_tree(big) == big_blob
    assert [new.encode_tree(s) for s in small] == small_blobs
    docs = json.loads(big_blob)["nodes"]
    pairs = [(n.name, old.node_to_dict(n)) for n in big]
    cases: dict[str, Callable[[ModuleType], object]] = {
        "decode_tree, one 10,000-entry dir": lambda t: t.decode_tree(big_blob),
        "decode_tree, 500 dirs of 20": lambda t: [t.decode_tree(b) for b in small_blobs],
        "encode_tree, one 10,000-entry dir": lambda t: t.encode_tree(big),
        "encode_tree, 500 dirs of 20": lambda t: [t.encode_tree(s) for s in small],
        "node_from_dict": lambda t: [t.node_from_dict(d) for d in docs],
        "node_to_dict": lambda t: [t.node_to_dict(n) for n in big],
    }
    if hasattr(new, "encode_dicts"):
        cases["node dicts (archiver's copy / encode_dicts)"] = lambda t: (
            t.encode_dicts(pairs) if hasattr(t, "encode_dicts") else copied_encode(pairs)
        )
    times: dict[str, tuple[list[float], list[float]]] = {k: ([], []) for k in cases}
    with gc_tuning.fewer_collections():
        for round_ in range(args.rounds):
            for label, fn in cases.items():
                order = ((0, old), (1, new)) if round_ % 2 else ((1, new), (0, old))
                for i, t in order:
                    start = time.process_time()
                    fn(t)
                    times[label][i].append(time.process_time() - start)
    print(f"{'case':46} {'old ns/entry':>12} {'new ns/entry':>12} {'new/old':>8}")
    for label, (o, n) in times.items():
        before, after = min(o) / ENTRIES * 1e9, min(n) / ENTRIES * 1e9
        print(f"{label:46} {before:12.0f} {after:12.0f} {after / before:8.2f}")


if __name__ == "__main__":
    main()
