"""A rerun against a parent gives the tree a backup from scratch gives, whatever changed.

The rerun takes unchanged entries from the parent's tree as they are (without decoding
them, without listing xattrs or reading files) and reuses unchanged directories' tree
ids; a backup without a parent reads and encodes everything, chunked files inline rather
than on the reader thread (the reference). After any sequence of changes the two must
name the same tree.
"""

from __future__ import annotations

import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from helpers.tree_state import xattrs_ok
from snowvault.engine import archiver
from snowvault.engine.backends.memory import MemoryBackend
from snowvault.engine.crypto import KdfParams
from snowvault.engine.repository import Repository
from snowvault.testing.repository import SMALL_CHUNKS

NOW = datetime(2026, 5, 6, 7, 8, 9, tzinfo=UTC)
FILES = ("a", "b", "d1/c", "d1/d2/e", "d3/f")
CHANGES = ("write", "append", "chmod", "touch", "remove", "mkdir", "xattr", "link", "same")


def _apply(root: Path, change: str, target: str, n: int) -> None:
    path = root / target
    path.parent.mkdir(parents=True, exist_ok=True)
    if change == "write":
        path.write_bytes(bytes([n]) * (n * 37 % 9000))  # over 4096: chunked, on a thread
    elif change == "append" and path.is_file():
        with open(path, "ab") as fh:
            fh.write(b"+" * n)
    elif change == "chmod" and path.exists():
        path.chmod(0o600 + n % 0o100)
    elif change == "touch" and path.exists():
        os.utime(path, ns=(n * 1_000_000_007, n * 1_000_000_007))
    elif change == "remove" and path.is_file():
        path.unlink()
    elif change == "mkdir":
        (path.parent / f"new{n}").mkdir(exist_ok=True)
    elif change == "xattr" and path.exists() and xattrs_ok(path):
        os.setxattr(path, "user.n", bytes([n]))
    elif change == "link" and path.is_file():
        link = path.parent / f"link{n}"
        if not link.exists():
            os.link(path, link)
    elif change == "same" and path.is_file():
        path.write_bytes(path.read_bytes())  # same bytes, new mtime and ctime


@settings(max_examples=40, derandomize=True, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(CHANGES), st.sampled_from(FILES), st.integers(1, 250)),
        max_size=6,
    )
)
def test_a_rerun_names_the_tree_a_backup_from_scratch_names(
    changes: list[tuple[str, str, int]],
) -> None:
    repo = Repository.init(
        MemoryBackend(), password="pw", kdf=KdfParams.for_tests(), chunker=SMALL_CHUNKS
    )
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "src"
        for i, name in enumerate(FILES):
            _apply(root, "write", name, i + 1)
        first = archiver.backup_paths(repo, [root], now=NOW, walkers=0, processes=0)
        for change, target, n in changes:
            _apply(root, change, target, n)
        rerun = archiver.backup_paths(
            repo, [root], now=NOW, parent=first.rp_id, walkers=0, processes=0
        )
        archiver.READ_ON_THREAD = False  # the reference reads every file inline
        try:
            scratch = archiver.backup_paths(repo, [root], now=NOW, walkers=0, processes=0)
        finally:
            archiver.READ_ON_THREAD = True
    assert rerun.manifest.tree == scratch.manifest.tree
    assert rerun.manifest.summary.total_size == scratch.manifest.summary.total_size
    if not changes:
        assert rerun.manifest.tree == first.manifest.tree
        assert rerun.manifest.summary.bytes_read == 0
