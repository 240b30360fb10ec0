"""Redis: one server's whole dataset as a point-in-time RDB.

A resource is ``arn:aws:snowvault:REGION:ACCOUNT:redis/NAME``; its source is
``redis://HOST:PORT`` (``redis://USER@HOST:PORT`` with an ACL user; a password given in
the URL or as the ``password`` property is split off and sealed). A backup asks the
server for an RDB over the replication protocol, as ``redis-cli --rdb`` does (the server
forks a snapshot and sends it; its own ``save``/``dir`` settings do not matter, a
server without disk works), and streams it into the point as ``dump.rdb`` while it
arrives. Restore Metadata (strings), exactly one of:

- ``targetPath``: absolute path of a new RDB file (``overwrite`` = ``"true"`` replaces
  an existing one) that a fresh ``redis-server`` loads;
- ``targetUrl``: ``redis://[USER@]HOST:PORT`` of a running, EMPTY server (no password in
  it: Metadata is stored and shown). The restore signs in with the resource's password
  only when the target is the resource's own server and user (same host, port and
  user as its source); any other server gets no AUTH, so a caller cannot have the
  resource's password sent to a server of their choosing (AUTH is cleartext).
  The RDB is loaded into a temporary ``redis-server`` (unprivileged user, private
  directory, a Unix socket only, no persistence) and every key is copied across with
  ``DUMP``/``RESTORE`` (TTLs kept); a key that exists on the target fails the restore.

:meth:`Redis.validate_restore`: each database of a ``targetUrl`` holds the keys copied
into it (less at most those with a TTL, which may expire meanwhile); a ``targetPath``
loads in a fresh ``redis-server``.

Abuse case: a caller with ``RegisterResource`` makes the server connect, with the
password it is given, to a host it names; ``StartRestoreJob`` makes it write into one
or write a host file. Hosts pass the network-reach rule at the call and again in the
worker and are contacted at the address the rule resolved; files pass the host-path
rule (:mod:`host_files`). The password goes to ``redis-cli`` in ``REDISCLI_AUTH`` and
to the server in AUTH, never on a command line or into a message.

Depends on the plugin base, the model's reach rules and core only.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, BinaryIO, cast

from snowvault.control.model import host_paths, net_reach
from snowvault.core.errors import InvalidInput, NotFound, Unavailable
from snowvault.plugins import child, host_files, redis_tools
from snowvault.plugins.base import (
    BackupRequest,
    Entry,
    MetadataKey,
    Progress,
    Registration,
    Resource,
    RestoreRequest,
)
from snowvault.plugins.errors import InvalidRestoreTarget

DEFAULT_PORT = 6379
ENTRY = "dump.rdb"
PROPERTIES = frozenset({"password"})
BATCH = 500
KEEP_LOADED = 8
EOF_MARK = 40
"""redis-cli writes a diskless transfer's 40-character end mark after the RDB when its
output is stdout (it can only truncate a file); :class:`_WithoutEndMark` drops it."""
_HEX = frozenset(b"0123456789abcdef")
_CHATTER = ("sending REPLCONF", "SYNC sent", "Transfer finished")


@dataclass(frozen=True)
class Url:
    """A parsed ``redis://[USER[:PASSWORD]@]HOST[:PORT]``."""

    host: str
    port: int
    user: str | None = None
    password: str | None = None

    def shown(self) -> str:
        """The secret-free form stored and shown.

        >>> Url("127.0.0.1", 6380, None, "pw").shown()
        'redis://127.0.0.1:6380'
        """
        host = f"[{self.host}]" if ":" in self.host else self.host
        user = f"{urllib.parse.quote(self.user, safe='')}@" if self.user else ""
        return f"redis://{user}{host}:{self.port}"


def parse_url(text: object, what: str = "Source") -> Url:
    """``redis://[USER[:PASSWORD]@]HOST[:PORT][/]``; InvalidInput otherwise.

    >>> parse_url("redis://:s%20t@localhost")
    Url(host='localhost', port=6379, user=None, password='s t')
    """
    bad = f"{what} must look like redis://HOST:PORT"
    if not isinstance(text, str) or "\x00" in text:
        raise InvalidInput(detail=bad)
    parts = urllib.parse.urlsplit(text.strip())
    if parts.scheme.lower() != "redis" or parts.query or parts.fragment:
        raise InvalidInput(detail=f"{bad} (rediss:// TLS is not supported)")
    if parts.path not in ("", "/"):
        raise InvalidInput(detail=f"{bad} (no database number: a resource is the whole server)")
    try:
        port = parts.port or DEFAULT_PORT
    except ValueError:
        raise InvalidInput(detail=f"{what}: the port must be a number from 1 to 65535") from None
    if not parts.hostname:
        raise InvalidInput(detail=f"{bad} (a host is required)")
    user = urllib.parse.unquote(parts.username) if parts.username else None
    password = urllib.parse.unquote(parts.password) if parts.password else None
    return Url(parts.hostname, port, user, password)


class _WithoutEndMark:
    """A reader over ``raw`` that holds back the last :data:`EOF_MARK` bytes and drops
    them at the end when they are redis-cli's end mark (40 lowercase hex digits: an RDB
    ends with 0xFF and its checksum, so its own last 40 bytes never are)."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self._held = b""
        self._eof = False

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            parts = []
            while chunk := self.read(1024 * 1024):
                parts.append(chunk)
            return b"".join(parts)
        want = max(size, 1)
        while not self._eof and len(self._held) < want + EOF_MARK:
            chunk = self._raw.read(want)
            if not chunk:
                self._eof = True
                tail = self._held[-EOF_MARK:]
                if len(tail) == EOF_MARK and set(tail) <= _HEX:
                    self._held = self._held[:-EOF_MARK]
                break
            self._held += chunk
        if self._eof:
            out, self._held = self._held[:want], self._held[want:]
            return out
        cut = min(want, len(self._held) - EOF_MARK)
        out, self._held = self._held[:cut], self._held[cut:]
        return out

    def readable(self) -> bool:
        return True


class Redis:
    """The Redis resource type (see the module docstring)."""

    type_name: str = "Redis"
    arn_kind: str = "redis"
    restore_keys: tuple[MetadataKey, ...] = (
        MetadataKey("targetPath", False, "absolute path of a new RDB file (or targetUrl)"),
        MetadataKey("targetUrl", False, "redis://HOST:PORT of an empty running server"),
        MetadataKey("overwrite", False, '"true" to replace an existing targetPath file'),
    )

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loaded: list[tuple[object, dict[int, tuple[int, int]]]] = []
        """(source, (keys, of them with a TTL) per database a targetUrl restore copied), so
        the check after the same restore need not load it again; the source is held,
        so its identity cannot pass to another, and only the last few are kept."""

    def check_source(
        self, source: str, policy: host_paths.Policy, properties: Mapping[str, str]
    ) -> Registration:
        unknown = set(properties) - PROPERTIES
        if unknown:
            raise InvalidInput(detail=f"Redis properties: unknown {sorted(unknown)}")
        url = parse_url(source)
        net_reach.check(url.host, url.port, policy)
        password = properties.get("password") or url.password
        return Registration(url.shown(), {}, {"password": password} if password else {})

    def _password(self, resource: Resource) -> str | None:
        return resource.secrets.get("password") or None

    def _target_password(self, resource: Resource, target: Url) -> str | None:
        """The resource's password for its own server and user only (a restore may
        name any server the network rule lets it reach)."""
        with contextlib.suppress(InvalidInput):
            own = parse_url(resource.source)
            if (own.host, own.port, own.user) == (target.host, target.port, target.user):
                return self._password(resource)
        return None

    def _connect(self, url: Url, policy: host_paths.Policy, password: str | None) -> Any:
        address = child.answering(net_reach.check(url.host, url.port, policy), url.port)
        return redis_tools.Connection(address, url.port, password=password, user=url.user)

    def describe(self, resource: Resource, policy: host_paths.Policy) -> dict[str, Any]:
        """The server version, memory in use and keys per database."""
        try:
            url = parse_url(resource.source)
            with self._connect(url, policy, self._password(resource)) as conn:
                server, memory = conn.info("server"), conn.info("memory")
                keys = conn.keyspace()
        except (InvalidInput, net_reach.NetworkRefused, Unavailable, OSError) as exc:
            return {"Error": str(exc)}
        except redis_tools.ReplyError as exc:
            return {"Error": f"redis: {exc}"}
        return {
            "ServerVersion": server.get("redis_version", ""),
            "UsedMemoryBytes": int(memory.get("used_memory", "0") or 0),
            "Keys": {f"db{n}": count for n, count in sorted(keys.items())},
        }

    def backup(self, request: BackupRequest) -> None:
        resource = request.resource
        if not resource.source:
            raise NotFound(kind="Redis server", name=resource.arn)
        url = parse_url(resource.source)
        password = self._password(resource)
        addresses = net_reach.check(url.host, url.port, request.policy)  # again, now
        address = child.answering(addresses, url.port)
        try:
            with redis_tools.Connection(address, url.port, password=password, user=url.user) as c:
                version = c.info("server").get("redis_version", "")
                at_start = c.keyspace()
        except redis_tools.ReplyError as exc:
            raise Unavailable(detail=f"redis: {exc}") from None
        request.sink.note(
            {"redis_version": version, "keys_at_start": {str(k): v for k, v in at_start.items()}}
        )
        argv = [shutil.which("redis-cli") or "redis-cli", "-h", address, "-p", str(url.port)]
        if url.user:
            argv += ["--user", url.user]
        argv += ["--no-auth-warning", "--rdb", "-"]
        env = child.environment(
            {"REDISCLI_AUTH": password} if password else {}, drop=("REDISCLI_AUTH",)
        )

        @contextlib.contextmanager
        def body() -> Iterator[BinaryIO]:
            secrets = [password or ""]
            with child.reading(argv, env, "redis-cli", skip=_CHATTER, secrets=secrets) as out:
                yield cast(BinaryIO, _WithoutEndMark(out))

        request.progress(Progress(0, None))
        request.sink.entries([Entry(ENTRY, open=body)], request.progress)

    def _target(self, metadata: Mapping[str, str], policy: host_paths.Policy) -> tuple[str, Any]:
        """("path", (resolved, overwrite)) or ("url", Url)."""
        path, url = metadata.get("targetPath"), metadata.get("targetUrl")
        if bool(path) == bool(url):
            raise InvalidRestoreTarget(
                "exactly one of Metadata.targetPath (an RDB file) and Metadata.targetUrl "
                "(redis://HOST:PORT of an empty server) is required"
            )
        if path:
            return "path", host_files.check_target(metadata, policy)
        try:
            target = parse_url(url, "Metadata.targetUrl")
        except InvalidInput as exc:
            raise InvalidRestoreTarget(exc.fields.get("detail", str(exc))) from None
        if target.password is not None:
            raise InvalidRestoreTarget(
                "Metadata.targetUrl must not hold a password (Metadata is stored and shown); "
                "the restore signs in with the resource's password"
            )
        net_reach.check(target.host, target.port, policy)
        return "url", target

    def check_restore(self, metadata: Mapping[str, str], policy: host_paths.Policy) -> None:
        self._target(metadata, policy)

    def _size(self, request: RestoreRequest) -> int:
        for entry in request.source.entries():
            if entry.path == ENTRY:
                return entry.size
        raise InvalidRestoreTarget("the recovery point holds no dump.rdb (not made by Redis?)")

    def restore(self, request: RestoreRequest) -> None:
        kind, target = self._target(request.metadata, request.policy)  # again, now
        total = self._size(request)
        request.progress(Progress(0, total))

        def on_bytes(done: int) -> None:
            request.progress(Progress(done, total))

        if kind == "path":
            resolved, overwrite = target
            with request.source.open(ENTRY) as reader:
                host_files.write(resolved, reader, overwrite=overwrite, on_bytes=on_bytes)
            return
        password = self._target_password(request.resource, target)
        try:
            with self._connect(target, request.policy, password) as dest:
                if dest.keyspace():
                    raise InvalidRestoreTarget(
                        f"{target.shown()} is not empty; restore into an empty server "
                        "(or use Metadata.targetPath)"
                    )
                with (
                    request.source.open(ENTRY) as reader,
                    redis_tools.TempServer.loading(reader, on_bytes) as tmp,
                    tmp.connection() as src,
                ):
                    counts = {db: _copy_db(src, dest, db) for db in sorted(src.keyspace())}
        except redis_tools.ReplyError as exc:
            raise Unavailable(detail=f"redis: {exc}") from None
        with self._lock:
            self._loaded = [*self._loaded[-(KEEP_LOADED - 1) :], (request.source, counts)]

    def restored_source(self, metadata: Mapping[str, str]) -> str | None:
        """The target (a file path or the server's URL) that CreatedResourceArn names."""
        if metadata.get("targetUrl"):
            try:
                return parse_url(metadata["targetUrl"], "Metadata.targetUrl").shown()
            except InvalidInput:
                return None
        path = metadata.get("targetPath")
        return os.path.normpath(path) if path and os.path.isabs(path) else None

    def restore_defaults(self, resource: Resource | None) -> dict[str, str]:
        """Into the server it came from (refused unless that server is empty)."""
        return {"targetUrl": resource.source if resource else ""}

    def validate_restore(self, request: RestoreRequest) -> str | None:
        if request.metadata.get("targetPath"):
            path = host_paths.check(
                request.metadata["targetPath"], request.policy, os.path.realpath
            )
            try:
                with (
                    open(path, "rb") as f,
                    redis_tools.TempServer.loading(f, lambda n: None) as tmp,
                    tmp.connection() as conn,
                ):
                    conn.call("DBSIZE")
            except Unavailable:
                return f"{path} does not load in a fresh redis-server"
            return None
        _, target = self._target(request.metadata, request.policy)
        with self._lock:
            found = [c for src, c in self._loaded if src is request.source]
            self._loaded = [(src, c) for src, c in self._loaded if src is not request.source]
        want = found[0] if found else None
        if want is None:  # not this restore's: count the point's RDB again
            with (
                request.source.open(ENTRY) as reader,
                redis_tools.TempServer.loading(reader, lambda n: None) as tmp,
                tmp.connection() as conn,
            ):
                want = conn.keyspace_expiring()
        password = self._target_password(request.resource, target)
        with self._connect(target, request.policy, password) as dest:
            have = dest.keyspace()
        return _compare(target.shown(), have, want)


def _compare(target: str, have: dict[int, int], want: dict[int, tuple[int, int]]) -> str | None:
    """None when each database of the target holds the keys restored into it, less at
    most those with a TTL (they may expire meanwhile); else the difference.

    >>> _compare("t", {0: 9}, {0: (10, 1)}) is None, _compare("t", {0: 8}, {0: (10, 1)})
    (True, 't holds keys per database {0: 8}, the backup {0: 10} (1 of them with a TTL)')
    """
    fits = set(have) <= set(want) and all(
        keys - expiring <= have.get(db, 0) <= keys for db, (keys, expiring) in want.items()
    )
    if fits:
        return None
    total = {db: keys for db, (keys, _) in want.items()}
    expiring = sum(e for _, e in want.values())
    return (
        f"{target} holds keys per database {have}, the backup {total} "
        f"({expiring} of them with a TTL)"
    )


def _copy_db(src: redis_tools.Connection, dest: redis_tools.Connection, db: int) -> tuple[int, int]:
    """Every key of database ``db`` from ``src`` to ``dest`` by DUMP/RESTORE; (keys
    restored, of them with a TTL)."""
    src.call("SELECT", db)
    dest.call("SELECT", db)
    seen: set[bytes] = set()
    restored = expiring = 0
    cursor = b"0"
    while True:
        cursor, keys = src.call("SCAN", cursor, "COUNT", BATCH)
        fresh = [k for k in keys if k not in seen]
        seen.update(fresh)
        replies = src.pipeline([c for k in fresh for c in (("DUMP", k), ("PTTL", k))])
        restores = []
        for key, payload, ttl in zip(fresh, replies[0::2], replies[1::2], strict=True):
            if payload is None or isinstance(payload, Exception) or ttl == -2:
                continue  # gone (expired) meanwhile
            restores.append(("RESTORE", key, max(int(ttl), 0), payload))
            expiring += int(ttl) > 0
        for reply in dest.pipeline(restores) if restores else []:
            if isinstance(reply, Exception):
                raise Unavailable(detail=f"redis: RESTORE into the target failed: {reply}")
        restored += len(restores)
        if cursor in (b"0", 0, "0"):
            return restored, expiring
