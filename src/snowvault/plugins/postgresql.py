"""PostgreSQL: one database cluster, backed up as a physical base backup streamed over
the replication protocol, restored as a data directory or into a running server.

A resource is ``arn:aws:snowvault:REGION:ACCOUNT:postgresql/NAME``; its source is a DSN
``postgresql://USER[:PASSWORD]@HOST[:PORT][/DB]`` (no ``?options``; DB, default
``postgres``, is where ordinary connections go: the cluster is backed up whole), stored
without the password (``postgresql://USER@HOST:PORT[/DB]``). Properties: ``password`` (a
secret, as the DSN's password is), ``passfile`` (a host path, rule-checked) and
``sslmode``. A recovery point holds

- ``base.tar``: ``pg_basebackup -D - -Ft -X fetch`` piped straight into the vault (the
  WAL needed to make it consistent is inside), never staged on disk;
- ``backup_manifest``: the server's manifest of that backup (pg_verifybackup's input);
- ``config/postgresql.conf`` ... : the server's configuration files when they live
  outside the data directory (Debian) and the role may read them (superuser);
- ``backup_info.json``: start/stop LSN and timeline, known only once the backup ended;

and the point's plugin notes (:meth:`Source.info`): server version, system identifier,
timeline, start LSN, the databases, the data directory and where the configuration is.

Restore Metadata (strings, as AWS passes them), exactly one target:

- ``targetDirectory``: a new or empty host directory; the base backup is unpacked into it
  with what ``pg_ctl -D DIR start`` needs (configuration written when the source kept it
  outside), owned by the server user, 0700 (:func:`restore_base`);
- ``targetDsn`` (``postgresql://USER@HOST:PORT``, no password: Metadata is shown with the
  job) with ``databases`` (comma list or JSON list; default all) and ``renameTo`` (one
  database only), ``targetPassfile``: the backup is started as a temporary instance and
  each database dumped from it into the target server under its (new) name; an
  existing database there is never overwritten;
- ``validationQuery`` (default ``SELECT 1``): run on the restored data afterwards; a
  failure fails the job. It is the caller's SQL, so it is confined (:func:`_run_query`):
  one statement (a prepared statement: ``COMMIT; ...`` cannot leave the read-only
  transaction), read only, 60 s, and never as a role that can reach the host. In the
  temporary instance of a ``targetDirectory`` restore it runs as a throwaway login role
  without superuser (a member of ``pg_read_all_data``), made for the check and dropped
  after it; on a ``targetDsn`` restore, as the role the restore signs in with, and only
  if that role is neither a superuser nor a member of ``pg_execute_server_program``,
  ``pg_read_server_files`` or ``pg_write_server_files`` (otherwise only the default
  ``SELECT 1`` runs; any other query fails the check with that reason). As a superuser,
  ``COPY ... TO PROGRAM`` or ``pg_read_file`` would run a command or read a file on the
  database host, and an error message would carry what it read into the job's status.

Abuse case: a caller with ``RegisterResource`` makes the server connect, with the
credentials they give, to a host they name; one with ``StartRestoreJob`` makes it write
a host directory or connect to a server. Hosts go through the network-reach rule
(:mod:`snowvault.control.model.net_reach`) at the call and again in the worker, and the
worker connects to the address the rule resolved (libpq ``hostaddr``); paths go through
the host-path rule likewise. Passwords are sealed (``Registration.secrets``), never in
a message, a log or a command line (PGPASSWORD). A restore starts a PostgreSQL server
on backed-up data, which can hold code (C functions): it runs as the unprivileged
server user (:mod:`snowvault.plugins.pg_tools`), never as root, with archive, restore
and preload settings overridden.

Depends on the plugin base, the model's reach rules, core and pg_tools only.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import tarfile
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, BinaryIO
from urllib.parse import quote, unquote, urlsplit

import psycopg
from psycopg import sql

from snowvault.control.model import host_paths, net_reach
from snowvault.core.errors import InvalidInput, PermissionDenied, SnowvaultError, Unavailable
from snowvault.plugins import pg_tools
from snowvault.plugins.base import (
    BackupRequest,
    Entry,
    MetadataKey,
    Progress,
    Registration,
    Resource,
    RestoreRequest,
    Source,
)
from snowvault.plugins.errors import InvalidRestoreTarget

DEFAULT_PORT = 5432
BASE = "base.tar"
MANIFEST = "backup_manifest"
INFO = "backup_info.json"
CONFIG_FILES = ("postgresql.conf", "pg_hba.conf", "pg_ident.conf")
SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
PROPERTIES = ("password", "passfile", "sslmode")
CONNECT_TIMEOUT = 10
MAX_CAPTURE = 256 * 1024 * 1024
"""A backup_manifest larger than this stays inside base.tar only."""

PATH_SETTINGS = frozenset(
    {
        "data_directory",
        "config_file",
        "hba_file",
        "ident_file",
        "external_pid_file",
        "include",
        "include_dir",
        "include_if_exists",
    }
)
"""Settings of a configuration file kept outside the data directory that point at the
source's own files: commented out when the file is written into a restored directory."""

UNSAFE_ON_RESTORE = {
    "archive_mode": "off",
    "archive_command": "",
    "archive_library": "",
    "restore_command": "",
    "recovery_end_command": "",
    "archive_cleanup_command": "",
    "shared_preload_libraries": "",
    "session_preload_libraries": "",
    "local_preload_libraries": "",
    "ssl": "off",
    "ssl_passphrase_command": "",
    "jit": "off",
    "jit_provider": "llvmjit",
    "dynamic_library_path": "$libdir",
}
"""What a temporary instance on restored data overrides (the data may name commands and
libraries; they are not run on this host)."""


# --- DSNs -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Dsn:
    """A parsed ``postgresql://USER[:PASSWORD]@HOST[:PORT][/DB]``: ``dbname`` is the
    database ordinary connections use (the server's facts, Discovery), ``postgres``
    when not given; a base backup always holds the whole cluster."""

    user: str
    host: str
    port: int
    password: str | None = None
    dbname: str | None = None

    @property
    def source(self) -> str:
        """The stored, shown form (no password):

        >>> parse_dsn("postgresql://app:s3cret@db.local/").source
        'postgresql://app@db.local:5432'
        >>> parse_dsn("postgresql://app@db.local:5433/shop").source
        'postgresql://app@db.local:5433/shop'
        """
        db = f"/{quote(self.dbname, safe='')}" if self.dbname else ""
        return f"postgresql://{quote(self.user, safe='')}@{self.where}{db}"

    @property
    def where(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def parse_dsn(text: object, what: str = "Source", *, database: bool = True) -> Dsn:
    """``text`` as a DSN; InvalidInput (never echoing the text: it may hold a password).
    ``database``: whether a ``/DB`` may follow.

    >>> parse_dsn("postgres://u%40x:p%3Aw@127.0.0.1:5433")
    Dsn(user='u@x', host='127.0.0.1', port=5433, password='p:w', dbname=None)
    """
    usage = f"{what} must be postgresql://USER[:PASSWORD]@HOST[:PORT]"
    usage += "[/DB]" if database else ""
    if not isinstance(text, str) or not text or "\x00" in text or len(text) > 2048:
        raise InvalidInput(detail=usage)
    try:
        parts = urlsplit(text.strip())
        port = parts.port
    except ValueError:
        raise InvalidInput(detail=f"{usage} (the port is not a number from 1 to 65535)") from None
    if parts.scheme not in ("postgresql", "postgres"):
        raise InvalidInput(detail=usage)
    if parts.query or parts.fragment:
        raise InvalidInput(detail=f"{usage}; options after '?' are not accepted (Properties)")
    dbname = unquote(parts.path.strip("/")) or None
    if dbname is not None and (not database or "/" in dbname or len(dbname.encode()) > 63):
        hint = "name the databases in Metadata.databases" if not database else "one name"
        raise InvalidInput(detail=f"{usage} ({hint})")
    user = unquote(parts.username or "")
    if not user or not parts.hostname:
        raise InvalidInput(detail=f"{usage} (the user and host are required)")
    password = None if parts.password is None else unquote(parts.password)
    return Dsn(user, parts.hostname, port or DEFAULT_PORT, password, dbname)


def parse_databases(raw: str | None) -> list[str]:
    """``databases`` Metadata: a JSON list or a comma list (empty: all).

    >>> parse_databases('["a", "b c"]'), parse_databases("a, b"), parse_databases("")
    (['a', 'b c'], ['a', 'b'], [])
    """
    if not raw or not raw.strip():
        return []
    text = raw.strip()
    if text.startswith("["):
        try:
            value = json.loads(text)
        except (ValueError, RecursionError):  # nested past the recursion limit
            raise InvalidRestoreTarget("Metadata.databases: not a valid JSON list") from None
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise InvalidRestoreTarget("Metadata.databases: must be a list of names")
        names = list(value)
    else:
        names = [part.strip() for part in text.split(",") if part.strip()]
    for name in names:
        _check_db_name(name, "databases")
    return names


def _check_db_name(name: str, key: str) -> None:
    if "\x00" in name or len(name.encode()) > 63 or not name:
        raise InvalidRestoreTarget(f"Metadata.{key}: {name!r} is not a database name")


def one_line(exc: BaseException, secret: str | None = None) -> str:
    """An exception's message as one line, a secret (if any) blanked out."""
    primary = exc.diag.message_primary if isinstance(exc, psycopg.Error) else None
    text = " ".join((primary or str(exc)).split())  # the server's message, not its context
    for prefix in ("connection failed: ", "connection is bad: "):
        text = text.removeprefix(prefix)
    if secret:
        text = text.replace(secret, "***")
    return text or type(exc).__name__


# --- connecting -----------------------------------------------------------------------


@dataclass(frozen=True)
class Server:
    """Where and how to connect: the DSN, the address the network rule resolved, the
    secret and the libpq options (sslmode, passfile)."""

    dsn: Dsn
    address: str
    password: str | None
    sslmode: str | None = None
    passfile: str | None = None

    def params(self, dbname: str | None = None, **more: str) -> dict[str, Any]:
        dbname = dbname or self.dsn.dbname or "postgres"
        out: dict[str, Any] = {
            "host": self.dsn.host,
            "hostaddr": self.address,
            "port": str(self.dsn.port),
            "user": self.dsn.user,
            "dbname": dbname,
            "application_name": "snowvault",
            "connect_timeout": str(CONNECT_TIMEOUT),
        }
        if self.sslmode:
            out["sslmode"] = self.sslmode
        if self.passfile:
            out["passfile"] = self.passfile
        return out | more

    def conninfo(self, dbname: str | None = None, **more: str) -> str:
        """For a client program's ``-d``: never the password (that goes in PGPASSWORD)."""
        return psycopg.conninfo.make_conninfo(**self.params(dbname, **more))

    def env(self) -> dict[str, str]:
        return pg_tools.client_env(self.password, self.passfile)

    def connect(self, dbname: str | None = None, **more: str) -> psycopg.Connection[Any]:
        try:
            return psycopg.connect(
                **self.params(dbname, **more), password=self.password, autocommit=True
            )
        except psycopg.Error as exc:
            raise self.failure(exc) from None

    @contextlib.contextmanager
    def answering(self) -> Iterator[None]:
        """psycopg's errors inside the block become :meth:`failure` (one line)."""
        try:
            yield
        except psycopg.Error as exc:
            raise self.failure(exc) from None

    def failure(self, exc: BaseException | str) -> SnowvaultError:
        """A one-line error about this server (never the password)."""
        text = exc if isinstance(exc, str) else one_line(exc, self.password)
        text = text.replace("\n", " ")
        if self.password:
            text = text.replace(self.password, "***")
        where = f"PostgreSQL {self.dsn.source}"
        if "replication role" in text or "permission denied to start WAL sender" in text:
            return PermissionDenied(
                detail=f"{where}: {text} (grant it: ALTER ROLE {self.dsn.user} REPLICATION, "
                "and a pg_hba.conf line for the replication database)"
            )
        return Unavailable(detail=f"{where}: {text}")


def _server(
    source: str,
    properties: Mapping[str, str],
    secrets: Mapping[str, str],
    policy: host_paths.Policy,
) -> Server:
    """The resource's server, its host and passfile judged by the rules again, now."""
    dsn = parse_dsn(source)
    address = net_reach.check(dsn.host, dsn.port, policy)[0]
    password = secrets.get("password") or dsn.password
    passfile = properties.get("passfile")
    if passfile:
        passfile = host_paths.check(passfile, policy, os.path.realpath)
    return Server(dsn, address, password, properties.get("sslmode"), passfile)


def _facts(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    """What the server tells an ordinary connection about itself (less without the
    privileges: paths need pg_read_all_settings, file contents superuser)."""
    row = conn.execute(
        "SELECT current_setting('server_version'), current_setting('server_version_num')::int,"
        " (SELECT rolname FROM pg_roles WHERE oid = 10),"
        " (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)"
    ).fetchone()
    assert row is not None
    facts: dict[str, Any] = {
        "server_version": row[0],
        "server_version_num": row[1],
        "bootstrap_superuser": row[2],
    }
    superuser = bool(row[3])
    dbs = conn.execute(
        "SELECT datname, CASE WHEN has_database_privilege(oid, 'CONNECT')"
        " THEN pg_database_size(oid) END, datistemplate"
        " FROM pg_database WHERE datallowconn ORDER BY datname"
    ).fetchall()
    facts["databases"] = [{"name": n, "size": s} for n, s, t in dbs if not t]
    facts["size"] = sum(s or 0 for _, s, _ in dbs)
    with contextlib.suppress(psycopg.Error):
        facts["system_identifier"] = str(
            conn.execute("SELECT system_identifier FROM pg_control_system()").fetchone()[0]  # type: ignore[index]
        )
    settings = conn.execute(
        "SELECT name, setting FROM pg_settings WHERE source = 'configuration file' ORDER BY name"
    ).fetchall()
    facts["settings"] = {k: v for k, v in settings if not _may_hold_a_secret(k)}
    try:
        paths = conn.execute(
            "SELECT current_setting('data_directory'), current_setting('config_file'),"
            " current_setting('hba_file'), current_setting('ident_file')"
        ).fetchone()
    except psycopg.Error:
        paths = None
    if paths is not None:
        data_dir = paths[0]
        facts["data_directory"] = data_dir
        facts["config_paths"] = dict(zip(CONFIG_FILES, paths[1:], strict=True))
        facts["config_outside"] = {
            name: not path.startswith(data_dir.rstrip("/") + "/")
            for name, path in facts["config_paths"].items()
        }
    facts["superuser"] = superuser
    return facts


def _may_hold_a_secret(setting: str) -> bool:
    """Settings left out of the point's (shown) facts: connection strings and shell
    commands can carry passwords or keys.

    >>> [_may_hold_a_secret(n) for n in ("primary_conninfo", "archive_command", "port")]
    [True, True, False]
    """
    return setting.endswith(("_command", "conninfo")) or setting == "archive_library"


def _config_contents(conn: psycopg.Connection[Any], facts: Mapping[str, Any]) -> dict[str, bytes]:
    """The configuration files kept outside the data directory, read over SQL when the
    role may (pg_read_file of an absolute path: superuser or pg_read_server_files)."""
    out: dict[str, bytes] = {}
    for name, outside in facts.get("config_outside", {}).items():
        if not outside:
            continue
        try:
            row = conn.execute(
                "SELECT pg_read_binary_file(%s)", (facts["config_paths"][name],)
            ).fetchone()
        except psycopg.Error:
            continue
        if row is not None and row[0] is not None:
            out[name] = bytes(row[0])
    return out


def _identify(server: Server) -> dict[str, str]:
    """IDENTIFY_SYSTEM over a replication connection: proves the role may stream a base
    backup (REPLICATION and a pg_hba.conf replication line) before anything is written."""
    try:
        conn = psycopg.connect(
            **server.params("replication", replication="true"),
            password=server.password,
            autocommit=True,
        )
    except psycopg.Error as exc:
        raise server.failure(exc) from None
    with conn:
        res = conn.pgconn.exec_(b"IDENTIFY_SYSTEM")
        if res.status != psycopg.pq.ExecStatus.TUPLES_OK:
            message = (res.error_message or b"IDENTIFY_SYSTEM failed").decode("utf-8", "replace")
            raise server.failure(message.strip())
        values = [
            (res.get_value(0, i) or b"").decode("ascii", "replace") for i in range(res.nfields)
        ]
    return {"system_identifier": values[0], "timeline": values[1], "wal_position": values[2]}


# --- the tar stream -------------------------------------------------------------------


class TarTap(io.RawIOBase):
    """A reader over pg_basebackup's tar stream that watches it pass: the member names,
    and the content of the few small members worth keeping apart (backup_label,
    backup_manifest). :meth:`peek_until` reads ahead (kept for the next reads) so the
    backup label, the first member, is known before anything is written."""

    KEEP = ("backup_label", "backup_manifest", "tablespace_map")

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self._ahead = bytearray()
        self.names: list[str] = []
        self.kept: dict[str, bytes] = {}
        self.bytes = 0
        self._header = bytearray()
        self._left = 0  # data bytes of the current member still to come
        self._pad = 0
        self._capture: bytearray | None = None
        self._name = ""
        self.ended = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if self._ahead:
            n = min(len(view), len(self._ahead))
            view[:n] = self._ahead[:n]
            del self._ahead[:n]
            return n
        data = self._raw.read(min(len(view), 1 << 20))
        if not data:
            return 0
        self._watch(data)
        view[: len(data)] = data
        return len(data)

    def peek_until(self, name: str, limit: int = 1 << 20) -> bool:
        """Read ahead until member ``name`` was seen whole (True) or ``limit`` bytes or
        the end passed (False)."""
        while name not in self.kept and len(self._ahead) < limit:
            data = self._raw.read(65536)
            if not data:
                return False
            self._watch(data)
            self._ahead += data
        return name in self.kept

    def _watch(self, data: bytes) -> None:
        self.bytes += len(data)
        pos = 0
        while pos < len(data) and not self.ended:
            if self._left:
                n = min(self._left, len(data) - pos)
                if self._capture is not None:
                    self._capture += data[pos : pos + n]
                self._left -= n
                pos += n
                if not self._left:
                    self._member_done()
            elif self._pad:
                n = min(self._pad, len(data) - pos)
                self._pad -= n
                pos += n
            else:
                n = min(512 - len(self._header), len(data) - pos)
                self._header += data[pos : pos + n]
                pos += n
                if len(self._header) == 512:
                    self._read_header(bytes(self._header))
                    self._header.clear()

    def _read_header(self, block: bytes) -> None:
        if block == bytes(512):
            self.ended = True
            return
        try:
            info = tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
        except tarfile.TarError:
            self.ended = True  # not ours to judge: pg_basebackup's exit status is
            return
        self._name = info.name.removeprefix("./")
        self.names.append(self._name)
        self._left = info.size
        self._pad = (-info.size) % 512
        keep = self._name in self.KEEP and info.size <= MAX_CAPTURE
        self._capture = bytearray() if keep else None
        if not self._left:
            self._member_done()

    def _member_done(self) -> None:
        if self._capture is not None:
            self.kept[self._name] = bytes(self._capture)
        self._capture = None


def parse_label(text: str) -> dict[str, str]:
    """The facts of a backup_label.

    >>> parse_label("START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\\n"
    ...             "START TIMELINE: 1\\n")
    {'start_lsn': '0/2000028', 'start_wal_file': '000000010000000000000002', 'timeline': '1'}
    """
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, _, value = line.partition(": ")
        if key == "START WAL LOCATION":
            lsn, _, rest = value.partition(" ")
            out["start_lsn"] = lsn
            match = re.search(r"file ([0-9A-F]{24})", rest)
            if match:
                out["start_wal_file"] = match.group(1)
        elif key == "START TIMELINE":
            out["timeline"] = value.strip()
        elif key == "START TIME":
            out["start_time"] = value.strip()
    return out


def _stop_lsn(stderr: str) -> str | None:
    match = re.search(r"write-ahead log end point: ([0-9A-F]+/[0-9A-F]+)", stderr)
    return match.group(1) if match else None


class _BaseBackup:
    """One pg_basebackup run whose tar stream becomes entry ``base.tar``."""

    def __init__(self, server: Server, label: str) -> None:
        cmd = [pg_tools.binary("pg_basebackup"), "-d", server.conninfo("replication")]
        cmd += ["-D", "-", "-Ft", "-X", "fetch", "--checkpoint=fast", "--no-password", "-v"]
        cmd += ["--label", label]
        self.server = server
        self.child = pg_tools.Child(cmd, server.env())
        self.tap = TarTap(self.child.stdout)
        self.stderr = ""
        self.label: dict[str, str] = {}

    def start(self) -> None:
        """Read ahead to the backup label; fail with pg_basebackup's own error."""
        if not self.tap.peek_until("backup_label"):
            self.finish()
            raise self.server.failure("pg_basebackup wrote no backup_label")
        self.label = parse_label(self.tap.kept["backup_label"].decode("utf-8", "replace"))

    def finish(self) -> None:
        while self.tap.read(1 << 20):  # whatever the sink left unread
            pass
        code, self.stderr = self.child.finish()
        if code != 0:
            raise self.server.failure(f"pg_basebackup: {pg_tools.last_error(self.stderr)}")

    @contextlib.contextmanager
    def open(self) -> Iterator[BinaryIO]:
        yield io.BufferedReader(self.tap, buffer_size=1 << 20)  # type: ignore[misc]
        self.finish()

    def info(self) -> dict[str, Any]:
        return {
            **self.label,
            "stop_lsn": _stop_lsn(self.stderr),
            "backup_label": self.tap.kept.get("backup_label", b"").decode("utf-8", "replace"),
            "members": len(self.tap.names),
            "config_in_base": [n for n in CONFIG_FILES if n in self.tap.names],
            "tar_bytes": self.tap.bytes,
        }


def _bytes_entry(path: str, data: Callable[[], bytes]) -> Entry:
    return Entry(path, open=lambda: contextlib.closing(io.BytesIO(data())))  # type: ignore[arg-type]


# --- restoring ------------------------------------------------------------------------


class _Counting(io.RawIOBase):
    """A reader counting the bytes it passed on (a restore's progress)."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw, self.count = raw, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._raw.read(len(buffer))
        buffer[: len(data)] = data
        self.count += len(data)
        return len(data)


LEFT_OUT = ("postmaster.pid", "postmaster.opts", "recovery.signal", "standby.signal")
"""Members of a base backup a restore never writes: a running server's pid files, and
the signal files that would make the restored cluster a standby or run a recovery the
backed-up server configured (a point-in-time restore writes its own)."""


def _tar_filter(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo | None:
    if member.name.removeprefix("./") in LEFT_OUT:
        return None
    return tarfile.data_filter(member, dest)


def _sanitise_conf(text: str) -> str:
    """A postgresql.conf kept outside the source's data directory, fit to live inside
    a restored one: the lines naming the source's own files commented out."""
    out = ["# written by snowvault from the backed-up server's configuration file"]
    pattern = re.compile(r"^\s*([A-Za-z_.]+)\s*(=|\s)")
    for line in text.splitlines():
        match = pattern.match(line)
        if match and match.group(1).lower() in PATH_SETTINGS:
            out.append(f"#snowvault: {line}")
        else:
            out.append(line)
    return "\n".join(out) + "\n"


def _conf_from_settings(settings: Mapping[str, str]) -> str:
    lines = ["# written by snowvault from the backed-up server's pg_settings"]
    for name, value in sorted(settings.items()):
        if name.lower() in PATH_SETTINGS:
            continue
        lines.append(f"{name} = '{str(value).replace(chr(39), chr(39) * 2)}'")
    return "\n".join(lines) + "\n"


DEFAULT_HBA = """# written by snowvault: the backed-up server's pg_hba.conf was not readable
local   all             all                                     peer
host    all             all             127.0.0.1/32            scram-sha-256
host    all             all             ::1/128                 scram-sha-256
local   replication     all                                     peer
host    replication     all             127.0.0.1/32            scram-sha-256
host    replication     all             ::1/128                 scram-sha-256
"""


def _write_missing_config(source: Source, target: str, info: Mapping[str, Any]) -> list[str]:
    stored = {e.path for e in source.entries()}
    written = []
    for name in CONFIG_FILES:
        path = os.path.join(target, name)
        if os.path.lexists(path):
            continue
        if f"config/{name}" in stored:
            with source.open(f"config/{name}") as f:
                text = f.read().decode("utf-8", "replace")
            if name == "postgresql.conf":
                text = _sanitise_conf(text)
        elif name == "postgresql.conf":
            text = _conf_from_settings(info.get("settings", {}))
        elif name == "pg_hba.conf":
            text = DEFAULT_HBA
        else:
            text = "# written by snowvault: no user name maps\n"
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        written.append(name)
    return written


def restore_base(
    source: Source, target_dir: str, progress: Callable[[Progress], None] | None = None
) -> dict[str, Any]:
    """Unpack the point's base backup into ``target_dir`` (an existing empty directory
    the caller checked) so that ``pg_ctl -D target_dir start`` works: base.tar streamed
    out (tarfile's ``data`` filter: no absolute paths, no ``..``, no links out),
    postmaster.pid/opts left out, configuration written when the source kept it
    outside, everything owned by the server user, the directory 0700. Returns what a
    recovery on top needs to know (the continuous helper adds WAL and recovery
    settings to the directory afterwards)::

        {"data_directory", "start_lsn", "stop_lsn", "timeline", "system_identifier",
         "server_version", "bootstrap_superuser", "written": [config files written]}
    """
    info = dict(source.info())
    entries = {e.path: e for e in source.entries()}
    if BASE not in entries:
        raise InvalidRestoreTarget("the recovery point holds no PostgreSQL base backup")
    total = entries[BASE].size

    def counted(tar: tarfile.TarFile, stream: _Counting) -> Iterator[tarfile.TarInfo]:
        for member in tar:
            yield member
            if progress is not None:
                progress(Progress(stream.count, total))

    try:
        with source.open(BASE) as raw:
            stream = _Counting(raw)
            with tarfile.open(fileobj=stream, mode="r|") as tar:
                tar.extractall(target_dir, members=counted(tar, stream), filter=_tar_filter)
    except tarfile.TarError as exc:
        raise Unavailable(
            detail=f"{BASE} of the recovery point cannot be unpacked: {exc}"
        ) from None
    for stale in LEFT_OUT:
        with contextlib.suppress(FileNotFoundError):
            os.remove(os.path.join(target_dir, stale))
    written = _write_missing_config(source, target_dir, info)
    pg_tools.server_user().give(target_dir)
    end: dict[str, Any] = {}
    if INFO in entries:
        with source.open(INFO) as f:
            end = json.loads(f.read())
    return {
        "data_directory": target_dir,
        "start_lsn": end.get("start_lsn") or info.get("start_lsn"),
        "stop_lsn": end.get("stop_lsn"),
        "timeline": end.get("timeline") or info.get("timeline"),
        "system_identifier": info.get("system_identifier"),
        "server_version": info.get("server_version"),
        "bootstrap_superuser": info.get("bootstrap_superuser") or "postgres",
        "written": written,
    }


def _directory_target(metadata: Mapping[str, str], policy: host_paths.Policy) -> str:
    path = metadata.get("targetDirectory")
    resolved = host_paths.check(path, policy, os.path.realpath)
    where = f"Metadata.targetDirectory {path!r}"
    if os.path.lexists(resolved):
        if not os.path.isdir(resolved):
            raise InvalidRestoreTarget(f"{where} exists and is not a directory")
        if os.listdir(resolved):
            raise InvalidRestoreTarget(f"{where} is not empty (name a new or empty directory)")
    parent = resolved
    while not os.path.lexists(parent):
        parent = os.path.dirname(parent)
    user = pg_tools.server_user()
    if not pg_tools.accessible_by(user, os.path.join(parent, "x")):
        raise InvalidRestoreTarget(
            f"{where} is under a directory the {user.name} user cannot enter ({parent!r} or "
            "a parent is not searchable), so PostgreSQL could not start there"
        )
    return resolved


def chosen_databases(wanted: list[str], info: Mapping[str, Any]) -> list[str]:
    """The databases a ``targetDsn`` restore copies: ``wanted``, all of them in the
    point; or, when none are named, every database but ``postgres`` (the maintenance
    database every server has: name it to restore it)."""
    known = [str(d["name"]) for d in info.get("databases", [])]
    chosen = wanted or [d for d in known if d != "postgres"]
    missing = [d for d in chosen if d not in known]
    if missing or not chosen:
        raise InvalidRestoreTarget(
            f"Metadata.databases: {missing or 'none'} not in the backup (it holds {known})"
        )
    return chosen


@dataclass(frozen=True)
class DsnTarget:
    """A checked ``targetDsn`` restore: the server, the databases and their new names."""

    dsn: Dsn
    address: str
    passfile: str | None
    databases: list[str]
    rename_to: str | None


def _dsn_target(metadata: Mapping[str, str], policy: host_paths.Policy) -> DsnTarget:
    dsn = parse_dsn(metadata.get("targetDsn"), "Metadata.targetDsn", database=False)
    if dsn.password is not None:
        raise InvalidRestoreTarget(
            "Metadata.targetDsn must not hold a password (Metadata is stored and shown with "
            "the job); name a targetPassfile, or restore into the resource's own server"
        )
    passfile = metadata.get("targetPassfile")
    if passfile:
        passfile = host_paths.check(passfile, policy, os.path.realpath)
        if not os.path.isfile(passfile):
            raise InvalidRestoreTarget(path=passfile, detail="is not a file")
    databases = parse_databases(metadata.get("databases"))
    rename_to = metadata.get("renameTo") or None
    if rename_to is not None:
        _check_db_name(rename_to, "renameTo")
        if len(databases) != 1:
            raise InvalidRestoreTarget("Metadata.renameTo needs exactly one name in databases")
    address = net_reach.check(dsn.host, dsn.port, policy)[0]
    return DsnTarget(dsn, address, passfile, databases, rename_to)


def _check_metadata(metadata: Mapping[str, str], policy: host_paths.Policy) -> str:
    """Which target form the Metadata names ("directory" or "dsn"), checked."""
    has_dir = bool(metadata.get("targetDirectory"))
    has_dsn = bool(metadata.get("targetDsn"))
    if has_dir == has_dsn:
        raise InvalidRestoreTarget("name exactly one of Metadata.targetDirectory, targetDsn")
    if has_dir:
        for key in ("databases", "renameTo", "targetPassfile"):
            if metadata.get(key):
                raise InvalidRestoreTarget(f"Metadata.{key} goes with targetDsn only")
        _directory_target(metadata, policy)
        return "directory"
    _dsn_target(metadata, policy)
    return "dsn"


def _pipe_database(src: str, dst_server: Server, dbname: str) -> None:
    """pg_dump from ``src`` (a conninfo of the temporary instance) piped into
    pg_restore on the target (one transaction, stop at the first error)."""
    dump_cmd = [pg_tools.binary("pg_dump"), "-Fc", "--no-password", "-d", src]
    restore_cmd = [pg_tools.binary("pg_restore"), "--no-password", "--exit-on-error"]
    restore_cmd += ["--single-transaction", "--no-owner", "--no-privileges"]
    restore_cmd += ["-d", dst_server.conninfo(dbname)]
    with pg_tools.Child(dump_cmd, pg_tools.client_env()) as dump:
        load = pg_tools.Child(restore_cmd, dst_server.env(), stdin=dump.stdout)
        with load:
            dump.stdout.close()  # pg_restore holds the read end now
            code, err = load.finish()
            dump_code, dump_err = dump.finish()
    if dump_code != 0:
        raise Unavailable(detail=f"pg_dump of {dbname!r}: {pg_tools.last_error(dump_err)}")
    if code != 0:
        raise dst_server.failure(f"pg_restore into {dbname!r}: {pg_tools.last_error(err)}")


class PostgreSQL:
    """The PostgreSQL resource type (see the module docstring)."""

    type_name: str = "PostgreSQL"
    arn_kind: str = "postgresql"
    restore_keys: tuple[MetadataKey, ...] = (
        MetadataKey("targetDirectory", False, "a new or empty host directory for the cluster"),
        MetadataKey("targetDsn", False, "postgresql://USER@HOST:PORT of a server to restore into"),
        MetadataKey("databases", False, "with targetDsn: databases (JSON list or comma list)"),
        MetadataKey("renameTo", False, "with targetDsn and one database: its new name"),
        MetadataKey("targetPassfile", False, "with targetDsn: a libpq password file"),
        MetadataKey("validationQuery", False, "SQL run on the restored data (SELECT 1)"),
    )

    # --- registration -----------------------------------------------------------------

    def check_source(
        self, source: str, policy: host_paths.Policy, properties: Mapping[str, str]
    ) -> Registration:
        """The DSN without its password as the source; ``password`` sealed; passfile
        (host-path rule) and sslmode kept; the host judged by the network rule."""
        dsn = parse_dsn(source)
        unknown = sorted(set(properties) - set(PROPERTIES))
        if unknown:
            raise InvalidInput(
                detail=f"unknown PostgreSQL properties {unknown} (known: {list(PROPERTIES)})"
            )
        password = properties.get("password") or None
        if password is not None and dsn.password not in (None, password):
            raise InvalidInput(detail="two different passwords (in Source and in Properties)")
        password = password or dsn.password
        props: dict[str, str] = {}
        sslmode = properties.get("sslmode")
        if sslmode:
            if sslmode not in SSLMODES:
                raise InvalidInput(detail=f"sslmode {sslmode!r} is not one of {list(SSLMODES)}")
            props["sslmode"] = sslmode
        passfile = properties.get("passfile")
        if passfile:
            resolved = host_paths.check(passfile, policy, os.path.realpath)
            if not os.path.isfile(resolved):
                raise InvalidInput(detail=f"passfile {passfile!r} is not an existing file")
            props["passfile"] = resolved
        net_reach.check(dsn.host, dsn.port, policy)
        secrets = {"password": password} if password else {}
        return Registration(dsn.source, props, secrets)

    def describe(self, resource: Resource, policy: host_paths.Policy) -> dict[str, Any]:
        """Databases with sizes and the server version (hosts judged by ``policy``)."""
        try:
            server = _server(resource.source, resource.properties, resource.secrets, policy)
            with server.connect() as conn:
                facts = _facts(conn)
        except (SnowvaultError, psycopg.Error, OSError) as exc:
            return {"Error": one_line(exc, resource.secrets.get("password"))}
        return {
            "ServerVersion": facts["server_version"],
            "SystemIdentifier": facts.get("system_identifier"),
            "Databases": [
                {"Name": d["name"], "SizeInBytes": d["size"]} for d in facts["databases"]
            ],
            "SizeInBytes": facts["size"],
        }

    # --- backup -------------------------------------------------------------------------

    def backup(self, request: BackupRequest) -> None:
        resource = request.resource
        server = _server(resource.source, resource.properties, resource.secrets, request.policy)
        with server.answering(), server.connect() as conn:
            facts = _facts(conn)
            config = _config_contents(conn, facts)
        ident = _identify(server)
        total = int(facts["size"])
        request.progress(Progress(0, total))
        run = _BaseBackup(server, f"snowvault {resource.arn}"[:1000])
        with run.child:
            run.start()
            facts.update(
                system_identifier=ident["system_identifier"],
                timeline=run.label.get("timeline", ident["timeline"]),
                start_lsn=run.label.get("start_lsn"),
                start_wal_file=run.label.get("start_wal_file"),
                config_files=sorted(config),
                host=server.dsn.where,
            )
            request.sink.note(facts)
            entries = [Entry(BASE, open=run.open, mode=0o600)]
            entries.append(_bytes_entry(MANIFEST, lambda: run.tap.kept.get(MANIFEST, b"")))
            for name, data in sorted(config.items()):
                entries.append(_bytes_entry(f"config/{name}", lambda d=data: d))  # type: ignore[misc]
            entries.append(_bytes_entry(INFO, lambda: json.dumps(run.info()).encode()))

            def on_progress(p: Progress) -> None:
                request.progress(Progress(p.bytes_done, max(total, p.bytes_done)))

            request.sink.entries(entries, on_progress)

    # --- restore ------------------------------------------------------------------------

    def check_restore(self, metadata: Mapping[str, str], policy: host_paths.Policy) -> None:
        _check_metadata(metadata, policy)

    def restore(self, request: RestoreRequest) -> None:
        if _check_metadata(request.metadata, request.policy) == "directory":
            target = _directory_target(request.metadata, request.policy)  # again, now
            os.makedirs(target, mode=0o700, exist_ok=True)
            if os.path.realpath(target) != target:
                raise host_paths.PathRefused(
                    path=request.metadata.get("targetDirectory"),
                    reason=f"it no longer resolves to {target!r} (a symlink changed)",
                )
            restore_base(request.source, target, request.progress)
            return
        self._restore_into_server(request)

    def _restore_into_server(self, request: RestoreRequest) -> None:
        target = _dsn_target(request.metadata, request.policy)
        chosen = chosen_databases(target.databases, request.source.info())
        names = {d: (target.rename_to or d) for d in chosen}
        server = Server(target.dsn, target.address, self._target_password(request, target))
        if target.passfile:
            server = Server(target.dsn, target.address, None, None, target.passfile)
        with server.answering(), server.connect() as conn:
            taken = [
                n
                for n in names.values()
                if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (n,)).fetchone()
            ]
            if taken:
                raise InvalidRestoreTarget(
                    f"database(s) {taken} exist on {target.dsn.where}; "
                    "restore under another name (renameTo) or drop them first"
                )
            work = tempfile.mkdtemp(prefix="snowvault-pgrestore-")
            try:
                data = os.path.join(work, "data")
                os.mkdir(data, 0o700)
                facts = restore_base(request.source, data, request.progress)
                sandbox = pg_tools.sandbox_user()  # a private copy: nobody's, not postgres's
                sandbox.give(work)
                with pg_tools.TempInstance(
                    data,
                    superuser=facts["bootstrap_superuser"],
                    settings=UNSAFE_ON_RESTORE,
                    user=sandbox,
                ) as pg:
                    for old, new in names.items():
                        self._copy_database(conn, pg, server, old, new)
            finally:
                shutil.rmtree(work, ignore_errors=True)

    @staticmethod
    def _copy_database(
        conn: psycopg.Connection[Any], pg: pg_tools.TempInstance, server: Server, old: str, new: str
    ) -> None:
        try:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(new)))
        except psycopg.Error as exc:
            raise server.failure(exc) from None
        try:
            _pipe_database(pg.conninfo(old), server, new)
        except BaseException:
            with contextlib.suppress(psycopg.Error):
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(new)))
            raise

    @staticmethod
    def _target_password(request: RestoreRequest, target: DsnTarget) -> str | None:
        """The resource's own password when the target is the resource's own server
        and user (its secrets, when the worker has them)."""
        with contextlib.suppress(InvalidInput):
            own = parse_dsn(request.resource.source)
            if (own.host, own.port, own.user) == (
                target.dsn.host,
                target.dsn.port,
                target.dsn.user,
            ):
                return request.resource.secrets.get("password")
        return None

    def restored_source(self, metadata: Mapping[str, str]) -> str | None:
        """The directory, or ``postgresql://HOST:PORT/DB`` (no DB: several)."""
        path = metadata.get("targetDirectory")
        if path and os.path.isabs(path):
            return os.path.normpath(path)
        try:
            dsn = parse_dsn(metadata.get("targetDsn"), "Metadata.targetDsn", database=False)
            databases = parse_databases(metadata.get("databases"))
        except InvalidInput:
            return None
        name = metadata.get("renameTo") or (databases[0] if len(databases) == 1 else "")
        return f"postgresql://{dsn.where}/{quote(name, safe='')}".rstrip("/")

    def restore_defaults(self, resource: Resource | None) -> dict[str, str]:
        """Back into the server it came from, every database, never over one that
        exists (drop it, or choose targetDirectory or renameTo)."""
        return {
            "targetDsn": resource.source if resource is not None else "",
            "databases": "",
            "validationQuery": "SELECT 1",
        }

    def validate_restore(self, request: RestoreRequest) -> str | None:
        """Run ``validationQuery`` (default ``SELECT 1``) on what was restored: the
        restored cluster started as a temporary instance, or each restored database on
        the target server. A problem sentence, or None."""
        query = request.metadata.get("validationQuery") or "SELECT 1"
        try:
            if request.metadata.get("targetDirectory"):
                return self._validate_directory(request, query)
            return self._validate_server(request, query)
        except (SnowvaultError, psycopg.Error, OSError) as exc:
            return one_line(exc)

    @staticmethod
    def _validate_directory(request: RestoreRequest, query: str) -> str | None:
        target = _directory_target_resolved(request.metadata, request.policy)
        superuser = request.source.info().get("bootstrap_superuser") or "postgres"
        sandbox = pg_tools.sandbox_user()  # not the owner-to-be, who owns this host's clusters
        sandbox.give(target)
        checker = f"snowvault_check_{os.urandom(6).hex()}"  # no restored role has this name
        try:
            instance = pg_tools.TempInstance(
                target,
                superuser=superuser,
                settings=UNSAFE_ON_RESTORE,
                user=sandbox,
                extra_hba=f"local all {checker} trust\n",
            )
            with instance as pg:
                with pg.connect() as admin:
                    _make_checker(admin, checker)
                try:
                    with pg.connect(user=checker) as conn:
                        _run_query(conn, query)
                finally:
                    with pg.connect() as admin:
                        admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(checker)))
        finally:
            pg_tools.server_user().give(target)  # handed back to whoever starts it
        return None

    def _validate_server(self, request: RestoreRequest, query: str) -> str | None:
        target = _dsn_target(request.metadata, request.policy)
        chosen = chosen_databases(target.databases, request.source.info())
        server = Server(target.dsn, target.address, self._target_password(request, target))
        if target.passfile:
            server = Server(target.dsn, target.address, None, None, target.passfile)
        for db in chosen:
            with server.connect(target.rename_to or db) as conn:
                if query.strip() != "SELECT 1":
                    reach = _host_reach(conn)
                    if reach:
                        return (
                            f"validationQuery runs only as a role that cannot reach the "
                            f"database host; the restore's role has {reach} (only the "
                            "default SELECT 1 runs as such a role)"
                        )
                _run_query(conn, query)
        return None


HOST_REACHING_ROLES = ("pg_execute_server_program", "pg_read_server_files", "pg_write_server_files")


def _host_reach(conn: psycopg.Connection[Any]) -> str:
    """What of superuser and the host-reaching predefined roles the session's role has
    ("" for none): such a role could run a command or read a file on the server's host
    from a caller's query."""
    row = conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()
    if row is None or row[0]:
        return "superuser"
    held = [
        name
        for name in HOST_REACHING_ROLES
        if conn.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = %s)"
            " AND pg_has_role(current_user, %s, 'MEMBER')",
            (name, name),
        ).fetchone()
        == (True,)
    ]
    return ", ".join(held)


def _make_checker(admin: psycopg.Connection[Any], name: str) -> None:
    """A login role for a caller's validationQuery in a temporary instance: no superuser,
    no role or database creation, reading every table (``pg_read_all_data``, from
    PostgreSQL 14) and nothing of the host."""
    role = sql.Identifier(name)
    admin.execute(
        sql.SQL(
            "CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS"
        ).format(role)
    )
    exists = admin.execute("SELECT 1 FROM pg_roles WHERE rolname = 'pg_read_all_data'")
    if exists.fetchone():
        admin.execute(sql.SQL("GRANT pg_read_all_data TO {}").format(role))


def _run_query(conn: psycopg.Connection[Any], query: str) -> None:
    """``query``, one statement (prepared: a second statement is refused by the server,
    so it cannot end the transaction), in a read-only transaction with a time limit."""
    with conn.transaction():
        conn.execute("SET TRANSACTION READ ONLY")
        conn.execute("SET LOCAL statement_timeout = '60s'")
        conn.execute(query.encode(), prepare=True)


def _directory_target_resolved(metadata: Mapping[str, str], policy: host_paths.Policy) -> str:
    """The restored directory (now holding the cluster), through the host-path rule."""
    return host_paths.check(metadata.get("targetDirectory"), policy, os.path.realpath)
