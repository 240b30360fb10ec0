"""An object store in a local directory: object ``a/b/c`` is the file ``<root>/a/b/c``.

How the guarantees of base.py are kept:

- Atomic, durable put: the bytes go to a temporary file in the target directory
  (``.sv-tmp-*``, never listed), which is fsynced, made read-only and then *hard-linked*
  to the final name; the link fails if the name exists, so a racing writer can never
  replace an object (rename would). The directory is fsynced afterwards. On a file
  system without hard links the put falls back to check-then-rename, which is not
  race-free; a warning in docs/design/backends.md says so.
- WORM aid: objects are created mode 0o400 (read-only, owner only). That stops
  accidents, not an attacker or root; this backend does not enforce retention
  (``capabilities.retention`` is False) and ``set_retention`` records nothing.
- Private: directories are created 0o700 and temporary files 0o600, whatever the process
  umask, so another local user can read neither packs nor keys (vault data is
  encrypted, but its sizes and names still say something).
- Ranged reads use ``os.pread`` and never read more than asked for.

Deletes are not fsynced: a delete lost in a crash leaves an extra object, which every
reader of a repository must tolerate anyway. Depends only on base.py, memory.py and the
engine errors.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat as stat_mod
import tempfile
import threading
from collections.abc import Iterator

from snowvault.engine import errors
from snowvault.engine.backends import base
from snowvault.engine.backends.memory import past_end

TEMP_PREFIX = ".sv-tmp-"
OBJECT_MODE = 0o400
DIR_MODE = 0o700
_TRANSIENT_ERRNOS = frozenset(
    {errno.EAGAIN, errno.EINTR, errno.EBUSY, errno.ETIMEDOUT, errno.ESTALE, errno.ENOLCK}
)
_NO_LINK_ERRNOS = frozenset({errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EXDEV})


def backend_error(exc: OSError, name: str) -> errors.BackendError:
    """Translate an OSError met while handling ``name`` into the backend error tree."""
    if isinstance(exc, FileNotFoundError | IsADirectoryError | NotADirectoryError):
        return errors.ObjectNotFound(name=name)
    detail = f"{name}: {exc.strerror or exc}"
    if exc.errno in _TRANSIENT_ERRNOS:
        return errors.TransientBackendError(detail=detail)
    return errors.PermanentBackendError(detail=detail)


def fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def publish_link(tmp: str, path: str) -> bool:
    """Give the written temporary file ``tmp`` the final name ``path`` (a hard link:
    atomic, and refused if the name is taken); False when it is taken. Where the file
    system has no hard links, a rename after a look (best effort, not race-free)."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        return False
    except OSError as exc:
        if exc.errno not in _NO_LINK_ERRNOS:
            raise
        if os.path.lexists(path):
            return False
        os.rename(tmp, path)
    return True


def make_dirs(directory: str) -> None:
    """``directory`` and its missing parents, each new one made durable in its parent
    (without :class:`LocalBackend`'s memory of the directories it made)."""
    missing: list[str] = []
    current = directory
    while not os.path.isdir(current):
        missing.append(current)
        current = os.path.dirname(current)
    for path in reversed(missing):
        try:
            os.mkdir(path, DIR_MODE)
        except FileExistsError:
            continue
        fsync_dir(os.path.dirname(path))


def _write_all(fd: int, data: bytes | bytearray) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _pread_exact(fd: int, length: int, offset: int) -> bytes:
    """Read up to ``length`` bytes at ``offset``; fewer only at end of file."""
    data = os.pread(fd, length, offset)
    if len(data) == length or not data:
        return data
    buf = bytearray(data)
    while len(buf) < length:
        chunk = os.pread(fd, length - len(buf), offset + len(buf))
        if not chunk:
            break
        buf += chunk
    return bytes(buf)


class LocalBackend:
    """Objects as read-only files under ``root``."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self._root = os.path.abspath(os.fspath(root))
        self._known_dirs: set[str] = set()
        self._dirs_lock = threading.Lock()

    @property
    def root(self) -> str:
        return self._root

    @property
    def location(self) -> str:
        return f"file://{self._root}"

    @property
    def capabilities(self) -> base.Capabilities:
        return base.Capabilities(retention=False)

    def put(self, name: str, data: bytes | bytearray) -> None:
        path = self._path(name)
        directory = os.path.dirname(path)
        try:
            tmp = self._write_temp(directory, data)
            try:
                self._publish(tmp, path, name)
            finally:
                with contextlib.suppress(FileNotFoundError):  # gone if renamed
                    os.unlink(tmp)
            fsync_dir(directory)
        except OSError as exc:
            raise backend_error(exc, name) from exc

    def get(self, name: str, offset: int = 0, length: int | None = None) -> bytes:
        base.check_range(offset, length)
        path = self._path(name)
        try:
            fd = os.open(path, os.O_RDONLY)
            try:
                return self._read(fd, name, offset, length)
            finally:
                os.close(fd)
        except OSError as exc:
            raise backend_error(exc, name) from exc

    def stat(self, name: str) -> base.ObjectInfo:
        try:
            st = os.stat(self._path(name))
        except OSError as exc:
            raise backend_error(exc, name) from exc
        if not stat_mod.S_ISREG(st.st_mode):
            raise errors.ObjectNotFound(name=name)
        return base.ObjectInfo(name=name, size=st.st_size)

    def exists(self, name: str) -> bool:
        return os.path.isfile(self._path(name))

    def list(self, prefix: str = "") -> Iterator[base.ObjectInfo]:
        start = prefix.rpartition("/")[0]
        return self._walk(start, prefix)

    def delete(self, name: str, *, bypass_governance: bool = False) -> None:
        try:
            os.unlink(self._path(name))
        except OSError as exc:
            raise backend_error(exc, name) from exc

    def set_retention(self, name: str, retention: base.Retention) -> None:
        """Records nothing: a directory cannot enforce retention (see the module docs)."""
        self.stat(name)

    def get_retention(self, name: str) -> base.Retention | None:
        self.stat(name)
        return None

    def close(self) -> None:
        """Nothing to release."""

    # -- helpers -------------------------------------------------------------------

    def _path(self, name: str) -> str:
        return os.path.join(self._root, base.check_name(name))

    def _write_temp(self, directory: str, data: bytes | bytearray) -> str:
        self._ensure_dir(directory)
        try:
            fd, tmp = tempfile.mkstemp(dir=directory, prefix=TEMP_PREFIX)
        except FileNotFoundError:  # removed behind our back: forget and recreate
            with self._dirs_lock:
                self._known_dirs.clear()
            self._ensure_dir(directory)
            fd, tmp = tempfile.mkstemp(dir=directory, prefix=TEMP_PREFIX)
        try:
            _write_all(fd, data)
            os.fchmod(fd, OBJECT_MODE)
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            os.unlink(tmp)
            raise
        os.close(fd)
        return tmp

    def _publish(self, tmp: str, path: str, name: str) -> None:
        """Give ``tmp`` the final name, failing with ObjectExists if it is taken."""
        if not publish_link(tmp, path):
            raise errors.ObjectExists(name=name)

    def _ensure_dir(self, directory: str) -> None:
        """Create ``directory`` and missing parents, fsyncing each parent that changed."""
        with self._dirs_lock:
            if directory in self._known_dirs:
                return
        make_dirs(directory)
        with self._dirs_lock:
            self._known_dirs.add(directory)

    def _read(self, fd: int, name: str, offset: int, length: int | None) -> bytes:
        if length is None or length == 0:
            st = os.fstat(fd)
            if not stat_mod.S_ISREG(st.st_mode):
                raise errors.ObjectNotFound(name=name)
            size = st.st_size
            if offset > size:
                raise past_end(name, offset, size, length)
            length = size - offset if length is None else 0
        if length == 0:
            return b""
        data = _pread_exact(fd, length, offset)
        if len(data) != length:
            raise errors.ShortRead(name=name, wanted=length, got=len(data))
        return data

    def _walk(self, rel_dir: str, prefix: str) -> Iterator[base.ObjectInfo]:
        path = os.path.join(self._root, rel_dir) if rel_dir else self._root
        try:
            entries = list(os.scandir(path))
        except (FileNotFoundError, NotADirectoryError):
            return
        except OSError as exc:
            raise backend_error(exc, rel_dir or ".") from exc
        for entry in entries:
            rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
            if entry.is_dir(follow_symlinks=False):
                sub = rel + "/"
                if sub.startswith(prefix) or prefix.startswith(sub):
                    yield from self._walk(rel, prefix)
            elif (
                rel.startswith(prefix)
                and not entry.name.startswith(TEMP_PREFIX)
                and entry.is_file(follow_symlinks=False)
            ):
                try:
                    size = entry.stat(follow_symlinks=False).st_size
                except FileNotFoundError:
                    continue  # deleted since the directory was read (e.g. a released lock)
                except OSError as exc:
                    raise backend_error(exc, rel) from exc
                yield base.ObjectInfo(name=rel, size=size)


def remove_stale_temp(root: str, *, before: float) -> list[str]:
    """Delete the temporary files (``.sv-tmp-*``) under ``root`` last modified before
    ``before`` (a POSIX time) and return their relative paths.

    Only a put killed between writing its temporary file and linking it leaves one (any
    other failure unlinks it); a put in flight has a fresh file and is spared, so call
    this with a ``before`` well in the past (the control plane's orphan grace period).
    """
    removed = []
    for directory, _dirs, files in os.walk(root):
        for name in files:
            if not name.startswith(TEMP_PREFIX):
                continue
            path = os.path.join(directory, name)
            with contextlib.suppress(FileNotFoundError):
                if os.lstat(path).st_mtime < before:
                    os.unlink(path)
                    removed.append(os.path.relpath(path, root))
    return removed


def remove_empty_tree(root: str) -> bool:
    """Remove ``root`` and the directories under it once no object is left in them
    (temporary files go with them); True if ``root`` is gone. For a repository whose
    objects were all deleted (a deleted vault, a vault whose create failed): deleting
    objects leaves the directories. A directory still holding an object stays."""
    if not os.path.isdir(root):
        return True
    for directory, _dirs, files in os.walk(root, topdown=False):
        for name in files:
            if name.startswith(TEMP_PREFIX):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(directory, name))
        with contextlib.suppress(OSError):  # not empty: an object is left, it stays
            os.rmdir(directory)
    return not os.path.exists(root)
