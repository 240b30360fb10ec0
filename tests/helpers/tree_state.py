"""What the engine tests compare trees by: whether the file system takes ``user.*``
xattrs, and a tree's state (mode, mtime, xattr names and body of every entry, keyed by
raw relative path) to compare a restore with its source."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any


def xattrs_ok(path: Path) -> bool:
    """Whether ``path``'s file system stores ``user.*`` extended attributes."""
    try:
        os.setxattr(path, "user.probe", b"1")
        os.removexattr(path, "user.probe")
        return True
    except OSError:
        return False


def snapshot(root: Path) -> dict[bytes, tuple[Any, ...]]:
    """Every entry under ``root``: raw relative path -> (mode, mtime_ns, xattr names,
    body of a regular file)."""
    out: dict[bytes, tuple[Any, ...]] = {}
    base = os.fsencode(root)
    for folder, dirs, files in os.walk(base):
        for name in dirs + files:
            full = os.path.join(folder, name)
            st = os.lstat(full)
            xattrs = sorted(os.listxattr(full, follow_symlinks=False))
            body = b""
            if stat.S_ISREG(st.st_mode):
                with open(full, "rb") as fh:
                    body = fh.read()
            out[os.path.relpath(full, base)] = (st.st_mode, st.st_mtime_ns, xattrs, body)
    return out
