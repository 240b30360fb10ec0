"""MySQL and MariaDB: every database of one server, as logical dumps.

A resource is ``arn:aws:snowvault:REGION:ACCOUNT:mysql/NAME``; its source is
``mysql://USER@HOST:PORT`` (a password given in the DSN or as the ``password`` property
is split off and sealed). Properties: ``users`` = ``"true"`` adds the server's users and
grants (``mariadb-dump --system=users``) as the entry ``users.sql``; ``databases`` (a
JSON list or comma-separated) limits the backups to those databases (all user
databases when absent; one that is missing at backup time fails the job).

A backup is one ``mariadb-dump`` (``mysqldump``) per database with
``--single-transaction --routines --triggers --events`` and one ``INSERT`` per row
(so a changed row changes one line of the next dump, and the rest deduplicates): each
database is one consistent snapshot (InnoDB; MyISAM tables are read as they are),
streamed into the point as ``databases/<quoted name>.sql`` while it is written, never
staged on disk; the system schemas (``mysql``, ``sys``, ``information_schema``,
``performance_schema``) are left out. The point's note holds the server version and,
per database, its character set, collation and tables. Restore Metadata (strings):

- ``targetDsn`` (required): ``mysql://USER@HOST:PORT`` of a running server; no
  password in it (Metadata is stored and shown). The restore signs in with the
  resource's sealed password only when the target is the resource's own server and
  user (same host, port and user as its source); any other server is signed in to
  without a password, so a caller cannot have the resource's password (or a hash
  challenge over it) sent to a server of their choosing;
- ``databases`` (optional): which databases, a JSON list or comma-separated; all of
  the point's when absent;
- ``renameTo`` (optional, with exactly one database): the name it gets on the target.

A database that exists on the target is refused (``CREATE DATABASE`` decides, so a
concurrent create is refused too); a database that fails to restore is dropped again.
:meth:`MySQL.validate_restore` checks each restored database answers and holds the
tables the backup saw.

Abuse case: a caller with ``RegisterResource`` makes the server connect, with the
credentials it is given, to a host it names; a caller with ``StartRestoreJob`` makes it
write into one. Hosts pass the network-reach rule (:mod:`snowvault.control.model.net_reach`)
at the call and again in the worker, and the clients connect to the address that rule
resolved (TCP), never to the name again. The password goes to the clients in a 0600
``--defaults-file`` in a 0700 directory (no other option file is read), never on a
command line, in a message or a log. Database names from the server are passed after
``--`` (a database called ``--defaults-file=...`` is a name, not an option).

Depends on the plugin base, the model's reach rules and core only.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import shutil
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, BinaryIO

from snowvault.control.model import host_paths, net_reach
from snowvault.core.errors import InvalidInput, NotFound, Unavailable
from snowvault.plugins import child
from snowvault.plugins.base import (
    BackupRequest,
    Entry,
    EntryInfo,
    MetadataKey,
    Progress,
    Registration,
    Resource,
    RestoreRequest,
)
from snowvault.plugins.errors import InvalidRestoreTarget

DEFAULT_PORT = 3306
SCHEMES = ("mysql", "mariadb")
SYSTEM_SCHEMAS = frozenset({"mysql", "sys", "information_schema", "performance_schema"})
PROPERTIES = frozenset({"password", "users", "databases"})
ENTRY_DIR = "databases"
USERS_ENTRY = "users.sql"
CONNECT_TIMEOUT = 10
DUMP_OPTIONS = (
    "--single-transaction",
    "--routines",
    "--triggers",
    "--events",
    "--hex-blob",
    "--quick",
    "--skip-dump-date",  # identical data dumps to identical bytes: the next point dedups
    "--skip-extended-insert",  # a row per line: a changed row changes its line only (multi-row
    # INSERTs break every ~1 MiB, so one shorter row would move every break and every chunk)
    "--no-autocommit",  # ... and one transaction per table keeps the restore fast
)
_DUMP_CHATTER = ("Warning:", "mariadb-dump: Deprecated", "mysqldump: [Warning]")


def _program(*names: str) -> str:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    return names[0]


@dataclass(frozen=True)
class Dsn:
    """A parsed ``mysql://USER[:PASSWORD]@HOST[:PORT]``."""

    user: str
    host: str
    port: int
    password: str | None = None

    def shown(self) -> str:
        """The secret-free form stored and shown.

        >>> Dsn("app", "::1", 3307, "pw").shown()
        'mysql://app@[::1]:3307'
        """
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"mysql://{urllib.parse.quote(self.user, safe='')}@{host}:{self.port}"


def parse_dsn(text: object, what: str = "Source") -> Dsn:
    """``mysql://USER[:PASSWORD]@HOST[:PORT][/]``; InvalidInput otherwise.

    >>> parse_dsn("mysql://root:p%40ss@127.0.0.1")
    Dsn(user='root', host='127.0.0.1', port=3306, password='p@ss')
    """
    if not isinstance(text, str) or "\x00" in text:
        raise InvalidInput(detail=f"{what} must be a mysql://USER@HOST:PORT DSN")
    parts = urllib.parse.urlsplit(text.strip())
    bad = f"{what} must look like mysql://USER@HOST:PORT"
    if parts.scheme.lower() not in SCHEMES or parts.query or parts.fragment:
        raise InvalidInput(detail=bad)
    if parts.path not in ("", "/"):
        raise InvalidInput(detail=f"{bad} (no database: a resource is the whole server)")
    try:
        port = parts.port or DEFAULT_PORT
    except ValueError:
        raise InvalidInput(detail=f"{what}: the port must be a number from 1 to 65535") from None
    if not parts.username or not parts.hostname:
        raise InvalidInput(detail=f"{bad} (a user and a host are required)")
    password = urllib.parse.unquote(parts.password) if parts.password is not None else None
    return Dsn(urllib.parse.unquote(parts.username), parts.hostname, port, password)


def parse_names(raw: str | None) -> list[str]:
    """``databases`` Metadata: a JSON list or comma-separated names.

    >>> parse_names('["a", "b c"]'), parse_names("a, b"), parse_names("")
    (['a', 'b c'], ['a', 'b'], [])
    """
    text = (raw or "").strip()
    if not text:
        return []
    if text.startswith("["):
        try:
            value = json.loads(text)
        except (ValueError, RecursionError):  # nested past the recursion limit
            raise InvalidRestoreTarget("Metadata.databases: not a valid JSON list") from None
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise InvalidRestoreTarget("Metadata.databases: must be a list of names")
        return list(dict.fromkeys(value))
    return list(dict.fromkeys(p.strip() for p in text.split(",") if p.strip()))


def check_name(name: str, what: str) -> str:
    """A database name MySQL accepts: 1-64 characters, no NUL, no trailing space."""
    if not name or len(name) > 64 or "\x00" in name or name != name.rstrip():
        raise InvalidRestoreTarget(f"{what} {name!r} is not a valid database name")
    return name


def ident(name: str) -> str:
    """A quoted identifier: ``ident("a`b") == "`a``b`"``."""
    return "`" + name.replace("`", "``") + "`"


def literal(text: str) -> str:
    """A quoted string literal (backslashes and quotes escaped)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


_UNESCAPE = {"\\\\": "\\", "\\t": "\t", "\\n": "\n", "\\0": "\x00"}


def _unescape(field: str) -> str:
    return re.sub(r"\\[\\tn0]", lambda m: _UNESCAPE[m.group(0)], field)


def entry_path(database: str) -> str:
    """The point's entry of a database: ``databases/<quoted>.sql``.

    >>> entry_path("shop/eu")
    'databases/shop%2Feu.sql'
    """
    return f"{ENTRY_DIR}/{urllib.parse.quote(database, safe='')}.sql"


class Client:
    """The command-line clients, signed in as ``dsn.user`` at ``address`` with the
    password in a private defaults file; used as a context manager."""

    def __init__(self, dsn: Dsn, address: str, password: str | None) -> None:
        self.dsn, self.address, self.password = dsn, address, password or ""
        self._dir = contextlib.ExitStack()
        self._defaults = ""

    def __enter__(self) -> Client:
        directory = self._dir.enter_context(child.private_dir("snowvault-mysql-"))
        self._defaults = os.path.join(directory, "client.cnf")
        lines = ["[client]"]
        if self.password:
            quoted = self.password.replace("\\", "\\\\").replace('"', '\\"')
            lines.append(f'password="{quoted}"')
        child.write_private(self._defaults, "\n".join(lines) + "\n")
        return self

    def __exit__(self, *exc: object) -> None:
        self._dir.close()

    def _args(self, program: str) -> list[str]:
        return [
            program,
            f"--defaults-file={self._defaults}",
            "--protocol=TCP",
            f"--host={self.address}",
            f"--port={self.dsn.port}",
            f"--user={self.dsn.user}",
        ]

    @property
    def env(self) -> dict[str, str]:
        return child.environment({}, drop=("MYSQL_PWD", "MYSQL_HOST", "MYSQL_TCP_PORT"))

    def query(self, sql: str, database: str | None = None) -> list[list[str]]:
        """Rows of ``sql`` (several statements: their rows in order), fields as text."""
        argv = [*self._args(_program("mariadb", "mysql")), "--batch", "--skip-column-names"]
        argv.append(f"--connect-timeout={CONNECT_TIMEOUT}")
        if database is not None:
            argv.append(f"--database={database}")
        out = child.run([*argv, "-e", sql], self.env, "mysql", secrets=[self.password])
        return [[_unescape(f) for f in line.split("\t")] for line in out.splitlines()]

    def dump(self, database: str) -> contextlib.AbstractContextManager[BinaryIO]:
        argv = [*self._args(_program("mariadb-dump", "mysqldump")), *DUMP_OPTIONS, "--", database]
        label = f"mariadb-dump {database}"
        return child.reading(argv, self.env, label, skip=_DUMP_CHATTER, secrets=[self.password])

    def dump_users(self) -> contextlib.AbstractContextManager[BinaryIO]:
        argv = [
            *self._args(_program("mariadb-dump", "mysqldump")),
            "--system=users",
            "--skip-dump-date",
            "--no-data",
            "--no-create-info",
            "--skip-triggers",
        ]
        return child.reading(
            argv, self.env, "mariadb-dump users", skip=_DUMP_CHATTER, secrets=[self.password]
        )

    def load(self, database: str, stream: BinaryIO, on_bytes: Any) -> None:
        argv = [*self._args(_program("mariadb", "mysql")), "--batch", f"--database={database}"]
        child.feed(argv, self.env, f"mysql {database}", stream, on_bytes, secrets=[self.password])


def _connect(dsn: Dsn, policy: host_paths.Policy, password: str | None) -> Client:
    """A client for ``dsn`` at the address the network-reach rule resolved, now."""
    address = child.answering(net_reach.check(dsn.host, dsn.port, policy), dsn.port)
    return Client(dsn, address, password)


def _inventory(client: Client) -> tuple[str, dict[str, dict[str, Any]]]:
    """The server version and, per user database: charset, collation, tables, bytes."""
    rows = client.query(
        "SELECT 'v', VERSION(), '', '';"
        " SELECT 'd', schema_name, default_character_set_name, default_collation_name"
        " FROM information_schema.schemata;"
        " SELECT 't', table_schema, table_name,"
        " COALESCE(data_length, 0) + COALESCE(index_length, 0)"
        " FROM information_schema.tables ORDER BY table_schema, table_name"
    )
    version = ""
    databases: dict[str, dict[str, Any]] = {}
    for row in rows:
        if len(row) != 4:
            continue
        kind, a, b, c = row
        if kind == "v":
            version = a
        elif kind == "d" and a not in SYSTEM_SCHEMAS:
            databases[a] = {"charset": b, "collation": c, "tables": [], "bytes": 0}
        elif kind == "t" and a in databases:
            databases[a]["tables"].append(b)
            databases[a]["bytes"] += int(c) if c.isdigit() else 0
    return version, dict(sorted(databases.items()))


class MySQL:
    """The MySQL/MariaDB resource type (see the module docstring)."""

    type_name: str = "MySQL"
    arn_kind: str = "mysql"
    restore_keys: tuple[MetadataKey, ...] = (
        MetadataKey("targetDsn", True, "mysql://USER@HOST:PORT of a running server"),
        MetadataKey("databases", False, "databases to restore (JSON list or a,b); all if absent"),
        MetadataKey("renameTo", False, "the restored name of the one database chosen"),
    )

    def check_source(
        self, source: str, policy: host_paths.Policy, properties: Mapping[str, str]
    ) -> Registration:
        unknown = set(properties) - PROPERTIES
        if unknown:
            raise InvalidInput(detail=f"MySQL properties: unknown {sorted(unknown)}")
        dsn = parse_dsn(source)
        net_reach.check(dsn.host, dsn.port, policy)
        password = properties.get("password") or dsn.password
        shown: dict[str, str] = {}
        users = str(properties.get("users", "")).strip().lower()
        if users not in ("", "true", "false"):
            raise InvalidInput(detail='MySQL property users must be "true" or "false"')
        if users == "true":
            shown["users"] = "true"
        if properties.get("databases"):
            try:
                names = parse_names(properties["databases"])
            except InvalidRestoreTarget as exc:
                raise InvalidInput(detail=str(exc).replace("Metadata.", "property ")) from None
            shown["databases"] = json.dumps([check_name(n, "property databases:") for n in names])
        secrets = {"password": password} if password else {}
        return Registration(dsn.shown(), shown, secrets)

    def describe(self, resource: Resource, policy: host_paths.Policy) -> dict[str, Any]:
        """The server version and every user database with its size in bytes."""
        try:
            dsn = parse_dsn(resource.source)
            with _connect(dsn, policy, self._password(resource)) as client:
                version, databases = _inventory(client)
        except (InvalidInput, net_reach.NetworkRefused, Unavailable, OSError) as exc:
            return {"Error": str(exc)}
        return {
            "ServerVersion": version,
            "Databases": [
                {"Name": name, "SizeInBytes": db["bytes"], "Tables": len(db["tables"])}
                for name, db in databases.items()
            ],
        }

    def _password(self, resource: Resource) -> str | None:
        return resource.secrets.get("password") or None

    def _target_password(self, resource: Resource, target: Dsn) -> str | None:
        """The resource's password for its own server and user only (a restore may
        name any server the network rule lets it reach)."""
        with contextlib.suppress(InvalidInput):
            own = parse_dsn(resource.source)
            if (own.host, own.port, own.user) == (target.host, target.port, target.user):
                return self._password(resource)
        return None

    def backup(self, request: BackupRequest) -> None:
        resource = request.resource
        if not resource.source:
            raise NotFound(kind="MySQL server", name=resource.arn)
        dsn = parse_dsn(resource.source)
        with _connect(dsn, request.policy, self._password(resource)) as client:
            version, databases = _inventory(client)
            wanted = parse_names(resource.properties.get("databases"))
            if wanted:
                missing = [n for n in wanted if n not in databases]
                if missing:
                    raise NotFound(kind="database on the MySQL server", name=", ".join(missing))
                databases = {n: databases[n] for n in wanted}
            users = resource.properties.get("users") == "true"
            request.sink.note(
                {
                    "server_version": version,
                    "databases": {
                        name: {k: v for k, v in db.items() if k != "bytes"}
                        for name, db in databases.items()
                    },
                    "users": users,
                }
            )
            estimate = sum(db["bytes"] for db in databases.values()) or None
            entries = [
                Entry(
                    entry_path(name),
                    open=functools.partial(client.dump, name),
                    meta={"database": name},
                )
                for name in databases
            ]
            if users:
                entries.append(Entry(USERS_ENTRY, open=client.dump_users))

            def on_progress(p: Progress) -> None:
                total = max(estimate, p.bytes_done) if estimate else None
                request.progress(Progress(p.bytes_done, total))

            request.progress(Progress(0, estimate))
            request.sink.entries(entries, on_progress)

    def _target(
        self, metadata: Mapping[str, str], policy: host_paths.Policy
    ) -> tuple[Dsn, list[str], str | None]:
        raw = metadata.get("targetDsn")
        if not raw:
            raise InvalidRestoreTarget("Metadata.targetDsn is required (mysql://USER@HOST:PORT)")
        try:
            dsn = parse_dsn(raw, "Metadata.targetDsn")
        except InvalidInput as exc:
            raise InvalidRestoreTarget(exc.fields.get("detail", str(exc))) from None
        if dsn.password is not None:
            raise InvalidRestoreTarget(
                "Metadata.targetDsn must not hold a password (Metadata is stored and shown); "
                "the restore signs in with the resource's password"
            )
        names = [
            check_name(n, "Metadata.databases:") for n in parse_names(metadata.get("databases"))
        ]
        rename = metadata.get("renameTo") or None
        if rename is not None:
            check_name(rename, "Metadata.renameTo:")
            if len(names) != 1:
                raise InvalidRestoreTarget(
                    "Metadata.renameTo needs exactly one database in Metadata.databases"
                )
        net_reach.check(dsn.host, dsn.port, policy)
        return dsn, names, rename

    def check_restore(self, metadata: Mapping[str, str], policy: host_paths.Policy) -> None:
        self._target(metadata, policy)

    def _chosen(
        self, request: RestoreRequest, entries: list[EntryInfo]
    ) -> list[tuple[str, str, str]]:
        """(database, entry path, target name) for every database to restore."""
        _, names, rename = self._target(request.metadata, request.policy)
        held = {
            e.meta.get("database") or "": e.path
            for e in entries
            if e.path.startswith(ENTRY_DIR + "/")
        }
        held.pop("", None)
        missing = [n for n in names if n not in held]
        if missing:
            raise InvalidRestoreTarget(
                f"Metadata.databases: {', '.join(missing)} not in the recovery point "
                f"(it holds: {', '.join(sorted(held)) or 'no database'})"
            )
        chosen = names or sorted(held)
        return [(name, held[name], rename or name) for name in chosen]

    def restore(self, request: RestoreRequest) -> None:
        dsn, _, _ = self._target(request.metadata, request.policy)  # again, now
        entries = request.source.entries()
        chosen = self._chosen(request, entries)
        sizes = {e.path: e.size for e in entries}
        total = sum(sizes.get(path, 0) for _, path, _ in chosen)
        info = request.source.info().get("databases", {})
        request.progress(Progress(0, total))
        done = 0
        with _connect(dsn, request.policy, self._target_password(request.resource, dsn)) as client:
            for name, path, target in chosen:
                facts = info.get(name, {}) if isinstance(info, Mapping) else {}
                self._create(client, target, facts)
                base = done

                def on_bytes(n: int, base: int = base) -> None:
                    request.progress(Progress(base + n, total))

                try:
                    with request.source.open(path) as stream:
                        client.load(target, stream, on_bytes)
                except BaseException:
                    with contextlib.suppress(Unavailable):
                        client.query(f"DROP DATABASE IF EXISTS {ident(target)}")
                    raise
                done += sizes.get(path, 0)
        request.progress(Progress(total, total))

    def _create(self, client: Client, target: str, facts: Mapping[str, Any]) -> None:
        sql = f"CREATE DATABASE {ident(target)}"
        charset, collation = facts.get("charset"), facts.get("collation")
        if isinstance(charset, str) and re.fullmatch(r"\w+", charset):
            sql += f" CHARACTER SET {charset}"
        if isinstance(collation, str) and re.fullmatch(r"\w+", collation):
            sql += f" COLLATE {collation}"
        try:
            client.query(sql)
        except Unavailable as exc:
            if "1007" in str(exc):  # ER_DB_CREATE_EXISTS
                raise InvalidRestoreTarget(
                    f"database {target!r} exists on the target; restore it under another "
                    "name (Metadata.renameTo) or drop it first"
                ) from None
            raise

    def restored_source(self, metadata: Mapping[str, str]) -> str | None:
        """The target server's DSN (CreatedResourceArn names it)."""
        try:
            return parse_dsn(metadata.get("targetDsn"), "Metadata.targetDsn").shown()
        except InvalidInput:
            return None

    def restore_defaults(self, resource: Resource | None) -> dict[str, str]:
        """Every database back into the server it came from (refused while it exists)."""
        return {"targetDsn": resource.source if resource else ""}

    def validate_restore(self, request: RestoreRequest) -> str | None:
        """Each restored database answers and holds the tables the backup saw."""
        dsn, _, _ = self._target(request.metadata, request.policy)
        info = request.source.info().get("databases", {})
        with _connect(dsn, request.policy, self._target_password(request.resource, dsn)) as client:
            for name, _, target in self._chosen(request, request.source.entries()):
                rows = client.query(
                    "SELECT table_name FROM information_schema.tables"
                    f" WHERE table_schema = {literal(target)}"
                )
                have = {r[0] for r in rows if r}
                want = (
                    set(info.get(name, {}).get("tables", []))
                    if isinstance(info, Mapping)
                    else set()
                )
                missing = sorted(want - have)
                if missing:
                    shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
                    return f"database {target!r} lacks {len(missing)} tables: {shown}"
        return None
