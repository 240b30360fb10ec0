"""Files and directories only the server's own user may touch (0600 / 0700).

Everything snowvault keeps on its host — config, root key, catalog, local vault
storage — is private to the user the server runs as, whatever the process umask (the
umask is left alone: restores into users' directories must keep their own modes)::

    write_new(path, b"...")           # O_EXCL, 0600
    replace(path, b"...")             # temp file 0600, fsync, rename: atomic
    make_dirs(path)                   # missing levels 0700
    tighten([data_dir, storage])      # -> paths whose group/other bits were removed
    with ServerLock(data_dir).shared(): ...   # a running server; exclusive: offline tools
    SoleServerLock(catalog_file).take()       # the one server of a SQLite catalog

Who may call: the composition root and offline tools, never with a path from an API
caller. The walk in :func:`tighten` follows no symlink and stays on each root's tree.
Depends only on the standard library and core errors.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path

from snowvault.core.errors import Conflict

FILE_MODE = 0o600
DIR_MODE = 0o700
GROUP_OTHER = 0o077
LOCK_FILE = "server.lock"
SOLE_SERVER_SUFFIX = ".server.lock"
"""Beside a SQLite catalog file: ``catalog.db.server.lock``, held by its one server."""


def write_new(path: Path, data: bytes) -> None:
    """Create ``path`` (which must not exist) with mode 0600 and ``data``, fsynced."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def replace(path: Path, data: bytes) -> None:
    """Atomically make ``path`` hold ``data`` (mode 0600): temp file, fsync, rename."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    write_new(tmp, data)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_dirs(path: Path) -> None:
    """Create ``path`` and its missing parents, each new level mode 0700."""
    missing: list[Path] = []
    current = path
    while not current.is_dir():
        missing.append(current)
        current = current.parent
    for level in reversed(missing):
        with contextlib.suppress(FileExistsError):
            level.mkdir(DIR_MODE)


def loose_bits(path: Path) -> int:
    """The group/other permission bits of ``path`` (following a symlink), 0 if none."""
    return path.stat().st_mode & GROUP_OTHER


def tighten(roots: Iterable[Path], files: Iterable[Path] = ()) -> list[Path]:
    """Remove group/other bits from every directory and regular file under ``roots``
    (each root included) and from each of ``files`` that exists; returns those changed.

    Symlinks are neither followed nor changed; each entry is opened with O_NOFOLLOW and
    changed through its descriptor, so an entry swapped for a link mid-walk is skipped.
    Directories are tightened before their contents are listed.
    """
    changed: list[Path] = []
    for root in roots:
        if root.is_dir() and not root.is_symlink():
            changed.extend(_tighten_tree(root))
    for path in files:
        if _tighten_one(path, directory=False):
            changed.append(path)
    return changed


def _tighten_tree(root: Path) -> Iterator[Path]:
    pending = [root]
    while pending:
        directory = pending.pop()
        if _tighten_one(directory, directory=True):
            yield directory
        try:
            entries = list(os.scandir(directory))
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            continue
        for entry in entries:
            path = Path(entry.path)
            if entry.is_dir(follow_symlinks=False):
                pending.append(path)
            elif (
                entry.is_file(follow_symlinks=False)
                and _looks_loose(entry)
                and _tighten_one(path, directory=False)
            ):
                yield path


def _looks_loose(entry: os.DirEntry[str]) -> bool:
    """A cheap lstat first: most entries are private already and need no open()."""
    try:
        return bool(entry.stat(follow_symlinks=False).st_mode & GROUP_OTHER)
    except OSError:
        return False


def _tighten_one(path: Path, *, directory: bool) -> bool:
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    if directory:
        flags |= os.O_DIRECTORY
    try:
        fd = os.open(path, flags)
    except OSError:  # gone, a symlink, or not ours to open: nothing to tighten here
        return False
    try:
        st = os.fstat(fd)
        wanted = stat.S_ISDIR(st.st_mode) if directory else stat.S_ISREG(st.st_mode)
        mode = stat.S_IMODE(st.st_mode)
        if not wanted or not mode & GROUP_OTHER:
            return False
        os.fchmod(fd, mode & ~GROUP_OTHER)
        return True
    finally:
        os.close(fd)


class ServerLock:
    """``DIR/server.lock``: running servers hold it shared, offline tools exclusive.

    flock(2) locks end with the process, so a killed server leaves no stale lock. It
    sees only processes on this data directory: the other servers of a fleet (their own
    data directories, one PostgreSQL catalog) are seen through the catalog's roles
    instead (``control/catalog/leadership.py``; ``root-key rotate`` checks both).
    """

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / LOCK_FILE
        self._fd: int | None = None

    def _take(self, how: int) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
        try:
            fcntl.flock(fd, how | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            if how == fcntl.LOCK_SH:  # only an offline tool holds it exclusive
                raise Conflict(
                    f"an offline snowvault command (root-key rotate or move) is working on "
                    f"{self.path.parent} (it holds {self.path}); start when it has finished"
                ) from None
            raise Conflict(
                f"a snowvault server is running on {self.path.parent} (it holds "
                f"{self.path}); stop it first"
            ) from None
        self._fd = fd

    def shared(self) -> ServerLock:
        self._take(fcntl.LOCK_SH)
        return self

    def exclusive(self) -> ServerLock:
        self._take(fcntl.LOCK_EX)
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> ServerLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class SoleServerLock:
    """``<catalog file>.server.lock``, held exclusive by the one server of a SQLite catalog.

    A SQLite catalog has one server (docs/operations/scale-out.md: a fleet needs
    PostgreSQL): two would run two schedulers, two sweepers and two workers on one file,
    and :class:`ServerLock` (shared, so that readers such as ``cost report`` may open the
    catalog beside a running server) cannot tell a second server from a reader. The lock
    sits beside the catalog, not in the data directory, so two data directories whose
    config.json names one SQLite file are refused too. flock(2): a killed server's lock
    ends with it.
    """

    def __init__(self, catalog_file: Path) -> None:
        self.catalog_file = catalog_file
        self.path = Path(f"{catalog_file}{SOLE_SERVER_SUFFIX}")
        self._fd: int | None = None

    def take(self) -> SoleServerLock:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise Conflict(
                f"another snowvault server serves the SQLite catalog {self.catalog_file} "
                f"(it holds {self.path}); a SQLite catalog has one server: stop that one "
                "first, or put several servers on a PostgreSQL catalog "
                "(docs/operations/scale-out.md)"
            ) from None
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
