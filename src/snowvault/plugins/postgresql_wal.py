"""PostgreSQL WAL streaming and point-in-time recovery: the plugin-side pieces of
continuous backup (the services drive them; see docs/design/continuous.md).

- :class:`Streamer`: one supervised ``pg_receivewal`` child per continuous point, on a
  physical replication slot (``snowvault_<id>``: the server keeps the WAL the streamer
  has not confirmed, so a restarted streamer resumes without a gap), writing into a
  spool directory (0700) the shipper reads.
- :func:`mark`: the shipper's tick on the source: the source's clock, then a tiny
  committed transaction after it (recovery to an instant needs a commit record after
  that instant in the WAL), then the WAL position the spool must reach.
- :func:`spool_files`: completed WAL files and the current ``.partial`` segment.
- base backups are the PostgreSQL plugin's own (``PostgreSQL.backup``: the snapshot
  point's entries and note), so a chain's base backup is a snapshot point too.
- :func:`extract_base` and :func:`write_recovery`: a data directory that
  ``pg_ctl -D DIR start`` brings up at exactly ``recovery_target_time``, promoted.

Abuse case: the source comes from a registered resource (its host checked by the
network-reach rule at registration and again by the caller right before connecting:
the addresses passed in are the resolved, allowed ones, used as libpq ``hostaddr``);
the password goes to child processes only through ``PGPASSWORD`` in their environment,
never on a command line, in a log or an exception. Restore targets are judged by the
caller with the host-path rule before anything here writes.

Must not import the engine, the catalog or the services (import-linter).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tarfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urlsplit

import psycopg

from snowvault.core.errors import InvalidInput
from snowvault.plugins import pg_tools

SEGMENT_RE = re.compile(r"^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})$")
HISTORY_RE = re.compile(r"^[0-9A-F]{8}\.history$")
PARTIAL_SUFFIX = ".partial"
DEFAULT_SEGMENT_SIZE = 16 * 1024 * 1024
WAL_DIR = "snowvault_wal"
"""Where a restore puts the WAL it replays, inside the restored data directory."""
CONNECT_TIMEOUT = 10


class StreamerFailed(RuntimeError):
    """The WAL streamer or a base backup failed (message without secrets)."""


# --- LSNs and segment names ------------------------------------------------------------


def parse_lsn(text: str) -> int:
    """``"0/3000028"`` -> 50331688."""
    high, _, low = text.partition("/")
    return (int(high, 16) << 32) | int(low, 16)


def format_lsn(lsn: int) -> str:
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


def segment_range(name: str, segment_size: int = DEFAULT_SEGMENT_SIZE) -> tuple[int, int, int]:
    """(timeline, first LSN, LSN after the end) of WAL segment file ``name``."""
    m = SEGMENT_RE.match(name.removesuffix(PARTIAL_SUFFIX))
    if m is None:
        raise ValueError(f"not a WAL segment name: {name!r}")
    timeline, log, seg = (int(g, 16) for g in m.groups())
    per_log = 0x100000000 // segment_size
    begin = (log * per_log + seg) * segment_size
    return timeline, begin, begin + segment_size


# --- the source ------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """How to reach the source server: ``hostaddr`` is an address the network-reach rule
    allowed (never the name again). ``password`` stays out of every string but env."""

    host: str
    hostaddr: str
    port: int
    user: str
    password: str | None = None
    dbname: str = "postgres"

    def conninfo(self, **extra: str) -> str:
        """A libpq keyword string without the password."""
        parts = {
            "host": self.host,
            "hostaddr": self.hostaddr,
            "port": str(self.port),
            "user": self.user,
            "dbname": self.dbname,
            "connect_timeout": str(CONNECT_TIMEOUT),
            **extra,
        }
        return " ".join(f"{k}={_quote(v)}" for k, v in parts.items())

    def env(self) -> dict[str, str]:
        """The child process environment: ours, plus PGPASSWORD when there is one."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        if self.password:
            env["PGPASSWORD"] = self.password
        return env

    def __repr__(self) -> str:  # never show the password
        return f"Target({self.user}@{self.host}:{self.port})"


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def parse_source(source: str) -> tuple[str, int, str]:
    """(host, port, user) of a stored source ``postgresql://USER@HOST:PORT``."""
    parts = urlsplit(source)
    if parts.scheme not in ("postgresql", "postgres") or not parts.hostname:
        raise InvalidInput(detail=f"not a PostgreSQL source: {source!r}")
    return parts.hostname, parts.port or 5432, unquote(parts.username or "postgres")


def target_of(source: str, secrets: Mapping[str, str], addresses: Sequence[str]) -> Target:
    host, port, user = parse_source(source)
    if not addresses:
        raise InvalidInput(detail=f"no allowed address for {host}")
    return Target(host, addresses[0], port, user, secrets.get("password") or None)


def slot_name(key: str) -> str:
    """A replication slot name for ``key`` (lower-case letters, digits, ``_``; <= 63)."""
    clean = re.sub(r"[^a-z0-9_]", "_", key.lower())
    return ("snowvault_" + clean)[:63]


def connect(target: Target) -> psycopg.Connection[Any]:
    return psycopg.connect(target.conninfo(), password=target.password, autocommit=True)


def ensure_slot(target: Target, slot: str) -> bool:
    """Create the physical slot (reserving WAL now) unless it exists; True if it did."""
    with connect(target) as conn:
        row = conn.execute(
            "SELECT 1 FROM pg_replication_slots WHERE slot_name = %s", (slot,)
        ).fetchone()
        if row is not None:
            return True
        conn.execute("SELECT pg_create_physical_replication_slot(%s, true)", (slot,))
        return False


def release_slot(target: Target, slot: str, timeout: float = 10.0) -> None:
    """End the walsender still holding ``slot`` for a streamer that died (the server
    notices a killed client late; a new streamer would be refused "slot is active")."""
    with connect(target) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots "
            "WHERE slot_name = %s AND active",
            (slot,),
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT active FROM pg_replication_slots WHERE slot_name = %s", (slot,)
            ).fetchone()
            if row is None or not row[0]:
                return
            time.sleep(0.05)


def drop_slot(target: Target, slot: str) -> None:
    with connect(target) as conn:
        conn.execute(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
            "WHERE slot_name = %s AND NOT active",
            (slot,),
        )


@dataclass(frozen=True)
class Mark:
    """The source's clock (``time``) and the WAL position (``lsn``) after a commit made
    after it: once the spool holds WAL up to ``lsn``, every instant up to ``time`` is
    restorable."""

    time: datetime
    lsn: int
    timeline: int
    segment_size: int


def mark(target: Target) -> Mark:
    with connect(target) as conn:
        row = conn.execute("SELECT clock_timestamp()").fetchone()
        assert row is not None
        when: datetime = row[0]
        # a commit record after ``when``; it writes nothing else, so PostgreSQL commits
        # it asynchronously: the INSERT position (not the flushed one) is where it ends,
        # and the WAL writer flushes it within a few wal_writer_delay
        conn.execute("SELECT txid_current()")
        row = conn.execute(
            "SELECT pg_current_wal_insert_lsn()::text, "
            "(SELECT timeline_id FROM pg_control_checkpoint()), "
            "current_setting('wal_segment_size')"
        ).fetchone()
        assert row is not None
    return Mark(when.astimezone(UTC), parse_lsn(row[0]), int(row[1]), _size(row[2]))


def _size(text: str) -> int:
    units = {"kB": 1024, "MB": 1024**2, "GB": 1024**3}
    for unit, factor in units.items():
        if text.endswith(unit):
            return int(text.removesuffix(unit)) * factor
    return int(text)


def flushed_lsn(target: Target, slot: str) -> int | None:
    """How far the streamer has confirmed WAL as flushed (the slot's restart LSN)."""
    with connect(target) as conn:
        row = conn.execute(
            "SELECT restart_lsn::text FROM pg_replication_slots WHERE slot_name = %s", (slot,)
        ).fetchone()
    return parse_lsn(row[0]) if row and row[0] else None


def wait_flushed(
    target: Target, slot: str, lsn: int, timeout: float, alive: Callable[[], bool]
) -> int | None:
    """Poll (one connection) until the streamer confirmed ``lsn`` as flushed, ``timeout``
    seconds passed or ``alive()`` says the streamer died; the last position seen."""
    seen: int | None = None
    deadline = time.monotonic() + timeout
    with connect(target) as conn:
        while True:
            row = conn.execute(
                "SELECT restart_lsn::text FROM pg_replication_slots WHERE slot_name = %s",
                (slot,),
            ).fetchone()
            seen = parse_lsn(row[0]) if row and row[0] else None
            if seen is not None and seen >= lsn:
                return seen
            if time.monotonic() >= deadline or not alive():
                return seen
            time.sleep(0.05)


def clock(target: Target) -> tuple[datetime, int]:
    """The source's clock and current WAL position."""
    with connect(target) as conn:
        row = conn.execute("SELECT clock_timestamp(), pg_current_wal_lsn()::text").fetchone()
        assert row is not None
    return row[0].astimezone(UTC), parse_lsn(row[1])


# --- the streamer ----------------------------------------------------------------------


class Streamer:
    """``pg_receivewal`` on ``slot`` into ``spool`` (flushing and confirming every write:
    ``--synchronous``; exiting on any error: ``--no-loop``, the supervisor restarts it)."""

    def __init__(self, target: Target, slot: str, spool: str) -> None:
        self.target, self.slot, self.spool = target, slot, spool
        self._proc: subprocess.Popen[bytes] | None = None
        self._log = os.path.join(spool, "..", os.path.basename(spool) + ".log")

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    def start(self) -> None:
        os.makedirs(self.spool, mode=0o700, exist_ok=True)
        os.chmod(self.spool, 0o700)
        args = [
            pg_tools.binary("pg_receivewal"),
            "--directory",
            self.spool,
            "--slot",
            self.slot,
            "--synchronous",
            "--no-loop",
            "--no-password",
            "--status-interval",
            "1",
            "--dbname",
            self.target.conninfo(application_name=self.slot),
        ]
        with open(self._log, "wb") as log:  # the last run's error was read before
            self._proc = subprocess.Popen(
                args, stdout=subprocess.DEVNULL, stderr=log, env=self.target.env()
            )

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def last_error(self) -> str:
        """The last line the streamer wrote to its log (no secrets: none are on its
        command line or in its messages)."""
        try:
            with open(self._log, "rb") as f:
                lines = f.read()[-4096:].decode("utf-8", "replace").strip().splitlines()
        except OSError:
            return ""
        return lines[-1] if lines else ""

    def stop(self, timeout: float = 5.0) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass(frozen=True)
class SpoolFile:
    """A WAL file in the spool: ``kind`` is ``wal`` (completed segment or timeline
    history) or ``partial`` (the segment being written)."""

    name: str
    path: str
    kind: str
    timeline: int
    begin_lsn: int
    end_lsn: int
    size: int


def spool_files(spool: str, segment_size: int = DEFAULT_SEGMENT_SIZE) -> list[SpoolFile]:
    out = []
    for name in sorted(os.listdir(spool)) if os.path.isdir(spool) else []:
        path = os.path.join(spool, name)
        if HISTORY_RE.match(name):
            tli = int(name[:8], 16)
            out.append(SpoolFile(name, path, "wal", tli, 0, 0, os.path.getsize(path)))
            continue
        stem = name.removesuffix(PARTIAL_SUFFIX)
        if not SEGMENT_RE.match(stem):
            continue
        tli, begin, end = segment_range(stem, segment_size)
        kind = "partial" if name.endswith(PARTIAL_SUFFIX) else "wal"
        out.append(SpoolFile(name, path, kind, tli, begin, end, os.path.getsize(path)))
    return out


# --- restoring a base ------------------------------------------------------------------


def extract_base(tar_path: str, target_dir: str) -> None:
    """Unpack a ``base.tar`` into ``target_dir`` (tarfile's ``data`` filter: nothing
    outside it), handed to the server user (``pg_tools.server_user``), 0700."""
    with tarfile.open(tar_path, "r:") as tar:
        tar.extractall(target_dir, filter="data")
    _own_like_dir(target_dir)


def _own_like_dir(target_dir: str) -> None:
    """Hand the data directory to the unprivileged server user (0700), as the
    PostgreSQL plugin's restores do, so ``pg_ctl`` run as that user can start it."""
    pg_tools.server_user().give(target_dir)


def write_recovery(target_dir: str, wal: Mapping[str, str], when: datetime) -> None:
    """Put the WAL to replay in ``target_dir/snowvault_wal`` (a partial segment under its
    segment's name), point ``restore_command`` at it and ask for recovery to ``when``,
    then promotion: ``pg_ctl -D target_dir start`` comes up at that instant."""
    wal_dir = os.path.join(target_dir, WAL_DIR)
    os.makedirs(wal_dir, mode=0o700, exist_ok=True)
    for name, path in wal.items():  # name -> the host file holding it
        shutil.copyfile(path, os.path.join(wal_dir, name.removesuffix(PARTIAL_SUFFIX)))
    stamp = when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f+00")
    lines = [
        "",
        "# snowvault point-in-time restore",
        f'restore_command = \'cp "{WAL_DIR}/%f" "%p"\'',
        f"recovery_target_time = '{stamp}'",
        "recovery_target_action = 'promote'",
        "recovery_target_timeline = 'latest'",
        "archive_mode = 'off'",
        "",
    ]
    with open(os.path.join(target_dir, "postgresql.auto.conf"), "a", encoding="utf-8") as conf:
        conf.write("\n".join(lines))
    with open(os.path.join(target_dir, "recovery.signal"), "w", encoding="utf-8"):
        pass
    for stale in ("standby.signal", "postmaster.pid"):
        path = os.path.join(target_dir, stale)
        if os.path.exists(path):
            os.remove(path)
    _own_like_dir(target_dir)
