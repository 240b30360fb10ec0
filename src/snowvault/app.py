"""Composition root: reads DIR/config.json and builds catalog, clock, services, worker.

    result = initialize("/srv/snowvault", region="us-east-1", port=8765)  # `snowvault init`
    joined = join("/srv/sv2", "/srv/snowvault")    # `snowvault init --join`: one more server
    app = build("/srv/snowvault")                                        # `snowvault server`
    app.worker.start(); ...; app.close()

The data directory holds ``config.json`` (catalog URL, region -> storage location,
worker settings), ``root.key`` (the 32-byte root secret, mode 0600: it seals access-key
secrets and wraps vault keys), ``catalog.db`` (the embedded SQLite catalog) and
``storage/<region>/`` (the default vault locations)::

    {"version": 1, "catalog_url": "sqlite:///DIR/catalog.db",
     "regions": {"us-east-1": "DIR/storage/us-east-1"},
     "default_region": "us-east-1", "host": "127.0.0.1", "port": 8765,
     "worker": {"threads": 2, "lease_seconds": 60, "sweep_seconds": 5}}

A fleet (docs/operations/scale-out.md) is N servers, each with a data directory made by
:func:`join` from the first one's, on one PostgreSQL catalog with S3 vault locations;
what one server must do alone is a role of ``catalog.leadership`` (``App.roles``).

The interfaces build on this; this module must not import any interface.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from snowvault.control import catalog
from snowvault.control.catalog import leadership
from snowvault.control.model import host_paths
from snowvault.control.scheduler import delivery, planner, runner, simulation
from snowvault.control.services import accounts, kms, kms_vault_keys, trail
from snowvault.control.services import root_key as root_key_service
from snowvault.control.services.base import Deps, Storage
from snowvault.core import private_files
from snowvault.core.clock import Clock, SystemClock
from snowvault.core.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from snowvault.engine import crypto

log = logging.getLogger("snowvault.app")

CONFIG_FILE = "config.json"
ROOT_KEY_FILE = "root.key"
CONFIG_VERSION = 1
ROOT_KEY_BYTES = 32
ROOT_KEY_ENV = "SNOWVAULT_ROOT_KEY"
SIGNING_FILES = (delivery.KEY_FILE, delivery.CERT_FILE)
"""The notification signing key and certificate, one pair for a fleet."""


def _port(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
        raise ValueError(f"{name}: expected a port of 1-65535, not {value!r}")
    return value


def _worker(value: object) -> WorkerConfig:
    """The worker settings: known keys, a whole number of threads (0: this server runs
    no jobs) and positive numbers of seconds."""
    if not isinstance(value, dict):
        raise ValueError(f"worker: expected an object, not {value!r}")
    config = WorkerConfig(**value)
    for key, number in dataclasses.asdict(config).items():
        whole = key == "threads"
        kinds = (int,) if whole else (int, float)
        numeric = isinstance(number, kinds) and not isinstance(number, bool)
        if not numeric or not (number >= 0 if whole else number > 0):
            expected = "a whole number (0 or more)" if whole else "a positive number of seconds"
            raise ValueError(f"worker.{key}: expected {expected}, not {number!r}")
    return config


def _proxies(value: object) -> tuple[str, ...]:
    entries = tuple(str(p) for p in value) if isinstance(value, list) else None
    if entries is None:
        raise ValueError(f"trusted_proxies: expected a list of addresses or CIDRs, not {value!r}")
    for entry in entries:
        try:
            ipaddress.ip_network(entry.strip(), strict=False)
        except ValueError:
            raise ValueError(f"trusted_proxies: {entry!r} is no address or CIDR") from None
    return entries


def _body_limit(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"max_body_bytes: expected a positive number of bytes, not {value!r}")
    return value


def _metrics_address(value: object) -> str:
    """``""`` (on the API endpoint), ``off``, or ``HOST:PORT`` (its own listener)."""
    text = str(value).strip()
    if text in ("", "off"):
        return text
    _, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"metrics_address: expected HOST:PORT, '' or 'off', not {value!r}")
    return text


def _log_format(value: object) -> str:
    if value not in ("text", "json"):
        raise ValueError(f"log_format: expected 'text' or 'json', not {value!r}")
    return str(value)


def _flag(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name}: expected true or false, not {value!r}")
    return value


def _days(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name}: expected a whole number of days (1 or more), not {value!r}")
    return value


def _trail_location(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.startswith("s3://"):
        raise ValueError("trail_location: expected an s3://bucket/prefix?... URL")
    from snowvault.engine.backends import url

    url.parse_s3_url(value)  # a bad URL fails the load, not each flush (InvalidInput)
    return value


def _public_endpoint(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.startswith(("http://", "https://")):
        raise ValueError(f"public_endpoint: expected an http(s):// URL, not {value!r}")
    return value.rstrip("/")


def _retention_mode(value: object) -> str:
    if value not in ("GOVERNANCE", "COMPLIANCE"):
        raise ValueError(f"trail_retention_mode: GOVERNANCE or COMPLIANCE, not {value!r}")
    return str(value)


@dataclass(frozen=True)
class WorkerConfig:
    threads: int = 2
    lease_seconds: float = 60.0
    sweep_seconds: float = 5.0
    poll_seconds: float = 1.0
    continuous_seconds: float = 5.0
    """How often the continuous-backup supervisor runs (streamers, base backups)."""
    continuous_ship_seconds: float = 30.0
    """The longest a committed transaction waits before its WAL is shipped."""


@dataclass(frozen=True)
class ServerConfig:
    data_dir: Path
    catalog_url: str
    regions: dict[str, str]
    default_region: str
    host: str = "127.0.0.1"
    port: int = 8765
    worker: WorkerConfig = field(default_factory=WorkerConfig)
    # Host paths the API may name (RegisterResource sources, restore targets): roots, and
    # patterns refused inside them. The data directory and storage are refused always.
    allowed_paths: tuple[str, ...] = ()
    denied_paths: tuple[str, ...] = ()
    # Networks (CIDR) plugins may connect to (databases, Redis, S3 endpoints); None:
    # loopback only (control/model/net_reach.py).
    allowed_networks: tuple[str, ...] | None = None
    # Peers whose X-Forwarded-For is believed (aws:SourceIp); none by default.
    trusted_proxies: tuple[str, ...] = ()
    # Largest request body the API reads (bytes); larger ones answer 413.
    max_body_bytes: int = 4 * 1024 * 1024
    # Where the root secret lives: a file path (default DATA_DIR/root.key); the
    # SNOWVAULT_ROOT_KEY environment variable (hex), when set, takes precedence.
    root_key_file: str | None = None
    # /metrics: "" on the API endpoint, "HOST:PORT" on its own listener, "off" not served.
    metrics_address: str = ""
    # Server log lines: "text" (default) or "json" (one object a line).
    log_format: str = "text"
    # Region -> cold location: where the data of COLD recovery points moves (none: stays).
    cold_regions: dict[str, str] = field(default_factory=dict)
    # The audit trail (DATA_DIR/trail): API calls and system actions; false: none kept.
    trail: bool = True
    # Also deliver the trail to this S3 URL (s3://bucket/prefix?endpoint_url=...); none: local only.
    trail_location: str | None = None
    # Object Lock retention of each delivered trail object (when the bucket has Object Lock).
    trail_retention_days: int = 365
    trail_retention_mode: str = "GOVERNANCE"
    # The integrity watch reads every pack of each vault within this many days.
    integrity_days: int = 30
    # The URL clients reach the service at when it is not this server's own address (a
    # fleet behind one endpoint): notification certificate and confirmation links use it.
    public_endpoint: str | None = None

    @classmethod
    def load(cls, data_dir: str | os.PathLike[str]) -> ServerConfig:
        root = Path(data_dir).absolute()
        path = root / CONFIG_FILE
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise NotFound(
                kind="snowvault data directory", name=f"{root} (run `snowvault init` first)"
            ) from None
        except (OSError, ValueError, RecursionError) as exc:  # RecursionError: too deep
            raise InvalidInput(detail=f"cannot read {path}: {exc}") from exc
        return cls.from_dict(root, doc)

    @classmethod
    def from_dict(cls, data_dir: Path, doc: dict[str, Any]) -> ServerConfig:
        try:
            return cls(
                data_dir=data_dir,
                catalog_url=str(doc["catalog_url"]),
                regions={str(k): str(v) for k, v in doc["regions"].items()},
                default_region=str(doc["default_region"]),
                host=str(doc.get("host", "127.0.0.1")),
                port=_port("port", doc.get("port", 8765)),
                worker=_worker(doc.get("worker", {})),
                allowed_paths=tuple(str(p) for p in doc.get("allowed_paths", [])),
                denied_paths=tuple(str(p) for p in doc.get("denied_paths", [])),
                allowed_networks=(
                    None
                    if doc.get("allowed_networks") is None
                    else tuple(str(n) for n in doc["allowed_networks"])
                ),
                trusted_proxies=_proxies(doc.get("trusted_proxies", [])),
                max_body_bytes=_body_limit(doc.get("max_body_bytes", 4 * 1024 * 1024)),
                root_key_file=doc.get("root_key_file"),
                metrics_address=_metrics_address(doc.get("metrics_address", "")),
                log_format=_log_format(doc.get("log_format", "text")),
                cold_regions={str(k): str(v) for k, v in doc.get("cold_regions", {}).items()},
                trail=_flag("trail", doc.get("trail", True)),
                trail_location=_trail_location(doc.get("trail_location")),
                trail_retention_days=_days(
                    "trail_retention_days", doc.get("trail_retention_days", 365)
                ),
                trail_retention_mode=_retention_mode(doc.get("trail_retention_mode", "GOVERNANCE")),
                integrity_days=_days("integrity_days", doc.get("integrity_days", 30)),
                public_endpoint=_public_endpoint(doc.get("public_endpoint")),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InvalidInput(detail=f"{data_dir / CONFIG_FILE} is malformed: {exc}") from exc

    def to_dict(self) -> dict[str, Any]:
        w = self.worker
        return {
            "version": CONFIG_VERSION,
            "catalog_url": self.catalog_url,
            "regions": dict(self.regions),
            "default_region": self.default_region,
            "host": self.host,
            "port": self.port,
            "worker": {
                "threads": w.threads,
                "lease_seconds": w.lease_seconds,
                "sweep_seconds": w.sweep_seconds,
                "poll_seconds": w.poll_seconds,
            },
            "allowed_paths": list(self.allowed_paths),
            "denied_paths": list(self.denied_paths),
            **(
                {"allowed_networks": list(self.allowed_networks)}
                if self.allowed_networks is not None
                else {}
            ),
            "trusted_proxies": list(self.trusted_proxies),
            "max_body_bytes": self.max_body_bytes,
            **({"root_key_file": self.root_key_file} if self.root_key_file else {}),
            **({"metrics_address": self.metrics_address} if self.metrics_address else {}),
            **({"log_format": self.log_format} if self.log_format != "text" else {}),
            **({"cold_regions": dict(self.cold_regions)} if self.cold_regions else {}),
            **({} if self.trail else {"trail": False}),
            **({"trail_location": self.trail_location} if self.trail_location else {}),
            **(
                {"trail_retention_days": self.trail_retention_days}
                if self.trail_retention_days != 365
                else {}
            ),
            **(
                {"trail_retention_mode": self.trail_retention_mode}
                if self.trail_retention_mode != "GOVERNANCE"
                else {}
            ),
            **({"integrity_days": self.integrity_days} if self.integrity_days != 30 else {}),
            **({"public_endpoint": self.public_endpoint} if self.public_endpoint else {}),
        }

    @property
    def endpoint(self) -> str:
        """Where clients reach the service: ``public_endpoint`` (a fleet's one endpoint)
        or this server's own address."""
        return self.public_endpoint or f"http://{self.host}:{self.port}"


@dataclass(frozen=True)
class InitResult:
    account_id: str
    region: str
    access_key_id: str
    secret_access_key: str
    endpoint: str

    def __repr__(self) -> str:
        return f"InitResult(account={self.account_id!r}, key={self.access_key_id!r})"


def is_initialized(data_dir: str | os.PathLike[str]) -> bool:
    return (Path(data_dir) / CONFIG_FILE).exists()


def _config_bytes(config: ServerConfig) -> bytes:
    return (json.dumps(config.to_dict(), indent=2) + "\n").encode()


def initialize(
    data_dir: str | os.PathLike[str],
    *,
    catalog_url: str | None = None,
    region: str = "us-east-1",
    host: str = "127.0.0.1",
    port: int = 8765,
    clock: Clock | None = None,
    allowed_paths: Sequence[str] | None = None,
    denied_paths: Sequence[str] = (),
    storage: Mapping[str, str] | None = None,
    public_endpoint: str | None = None,
) -> InitResult:
    """Create a data directory: root secret, catalog, root account and its key pair.

    ``allowed_paths`` (None: the initialising user's home, with its hidden top-level
    entries added to ``denied_paths``) are the host trees the API may name; see
    :func:`host_path_rule`. ``storage`` maps regions to vault locations (``s3://bucket/
    prefix``, or a directory); the home region defaults to ``DIR/storage/<region>``.
    """
    allowed, denied = default_host_paths(allowed_paths, denied_paths)
    root = Path(data_dir).absolute()
    if is_initialized(root):
        raise AlreadyExists(kind="snowvault data directory", name=str(root))
    regions = {str(k): _location(str(v)) for k, v in (storage or {}).items()}
    private_files.make_dirs(root)
    os.chmod(root, private_files.DIR_MODE)  # also when it existed (e.g. made by mkdir)
    if region not in regions:
        regions[region] = str(root / "storage" / region)
    for location in regions.values():
        if not _shared(location):
            private_files.make_dirs(Path(location))
    config = ServerConfig(
        data_dir=root,
        catalog_url=catalog_url or f"sqlite:///{root / 'catalog.db'}",
        regions=regions,
        default_region=region,
        host=host,
        port=port,
        allowed_paths=allowed,
        denied_paths=denied,
        public_endpoint=_checked_endpoint(public_endpoint),
    )
    key_path = root / ROOT_KEY_FILE
    if not os.environ.get(ROOT_KEY_ENV) and not key_path.exists():
        private_files.write_new(key_path, crypto.random_bytes(ROOT_KEY_BYTES))
    engine = catalog.db.create_engine(config.catalog_url)
    now = (clock or SystemClock()).now()
    try:
        with leadership.migration_lock(engine):
            catalog.db.upgrade(engine)
        box = root_key_service.access_key_box(_read_root_key(config))
        creds = accounts.bootstrap(engine, box, now=now)
    finally:
        engine.dispose()
    delivery.signing_key(root, now)  # made here so that `init --join` copies it
    private_files.write_new(root / CONFIG_FILE, _config_bytes(config))
    return InitResult(
        creds.account_id, region, creds.access_key_id, creds.secret_access_key, config.endpoint
    )


def _location(value: str) -> str:
    """A region's vault location as config.json keeps it: ``s3://bucket/prefix`` (no
    ``?options``: each vault's URL is the location plus a path, so the store's endpoint
    and credentials come from the server's environment) or an absolute directory."""
    if value.startswith("s3://"):
        if "?" in value:
            raise InvalidInput(
                detail=f"storage {value}: no ?options in a region's location (vault URLs "
                "extend it); set AWS_ENDPOINT_URL_S3 / AWS_ACCESS_KEY_ID / "
                "AWS_SECRET_ACCESS_KEY in the server's environment instead"
            )
        return value.rstrip("/")
    if "://" in value.removeprefix("file://"):
        raise InvalidInput(detail=f"storage {value}: expected s3://bucket/prefix or a directory")
    return os.path.abspath(value.removeprefix("file://"))


def _checked_endpoint(value: str | None) -> str | None:
    try:
        return _public_endpoint(value)
    except ValueError as exc:
        raise InvalidInput(detail=str(exc)) from None


def _shared(location: str) -> bool:
    """Every server of a fleet reaches it (an object store, not one host's directory)."""
    return location.startswith("s3://")


@dataclass(frozen=True)
class JoinResult:
    """What ``snowvault init --join`` made: a data directory for one more server of a
    fleet (the same catalog, vault stores and root key as the one it joined)."""

    data_dir: Path
    catalog_url: str
    endpoint: str
    copied: tuple[str, ...]
    """The files copied from the source directory (root key, notification signing key)."""

    def __repr__(self) -> str:
        return f"JoinResult({str(self.data_dir)!r}, copied={self.copied!r})"


def join(
    data_dir: str | os.PathLike[str],
    source: str | os.PathLike[str],
    *,
    host: str | None = None,
    port: int | None = None,
    trail_location: str | None = None,
    public_endpoint: str | None = None,
) -> JoinResult:
    """Make DATA_DIR one more server of the fleet whose first server's data directory
    (or a copy of its ``config.json``, ``root.key`` and ``sns-signing.*``) is SOURCE.

    Who may ask: whoever can read SOURCE's root key already holds every secret of the
    fleet; nothing here is reachable from the API. Refused, with one line: a SQLite
    catalog (one host's file) or a region whose vaults live in one host's directory
    (other servers could not read them); a root key file group/other may read (the same
    rule as at start) or that does not open the catalog; a trail location equal to the
    source's (two servers' digest chains in one prefix collide: give each its own).
    Nothing is created in the catalog: the accounts, keys and vaults are the fleet's.
    """
    src = ServerConfig.load(source)
    if catalog.db.sqlite_path(src.catalog_url) is not None:
        raise InvalidInput(
            detail=f"{src.data_dir} uses a SQLite catalog (a file on one host): servers of "
            "a fleet share a PostgreSQL catalog (`snowvault init --catalog-url "
            "postgresql://...` for the first one)"
        )
    local = sorted(
        f"{r}={loc}"
        for r, loc in [*src.regions.items(), *src.cold_regions.items()]
        if not _shared(loc)
    )
    if local:
        raise InvalidInput(
            detail=f"{', '.join(local)}: a vault location in one host's directory cannot be "
            "read by another server; a fleet keeps its vaults in S3 (`--storage "
            "REGION=s3://bucket/prefix` at the first server's init)"
        )
    if src.trail_location and trail_location in (None, src.trail_location):
        raise InvalidInput(
            detail=f"{src.data_dir} delivers its trail to {src.trail_location}: give this "
            "server --trail-location with a prefix of its own (each server keeps its own "
            "digest chain)"
        )
    root = Path(data_dir).absolute()
    if is_initialized(root):
        raise AlreadyExists(kind="snowvault data directory", name=str(root))
    root_key = _read_root_key(src)  # the same mode rule as at start; env var first
    engine = catalog.db.create_engine(src.catalog_url)
    try:
        _check_root_key(engine, root_key, src)
    finally:
        engine.dispose()
    config = dataclasses.replace(
        src,
        data_dir=root,
        host=host or src.host,
        port=port or src.port,
        trail_location=trail_location or src.trail_location,
        public_endpoint=_checked_endpoint(public_endpoint) or src.public_endpoint,
    )
    if trail_location is not None:
        _trail_location(trail_location)
    private_files.make_dirs(root)
    os.chmod(root, private_files.DIR_MODE)
    copied = []
    if not os.environ.get(ROOT_KEY_ENV) and not src.root_key_file:
        private_files.write_new(root / ROOT_KEY_FILE, root_key)
        copied.append(ROOT_KEY_FILE)
    for name in SIGNING_FILES:
        path = src.data_dir / name
        if path.exists():  # one signing key for the fleet: any server serves its cert
            private_files.write_new(root / name, path.read_bytes())
            copied.append(name)
    private_files.write_new(root / CONFIG_FILE, _config_bytes(config))
    return JoinResult(root, config.catalog_url, config.endpoint, tuple(copied))


def default_host_paths(
    allowed: Sequence[str] | None, denied: Sequence[str]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``init``'s host-path lists: given roots made absolute, or (none given) the home
    directory minus its hidden top-level entries (``~/.ssh``, ``~/.config``, ``~/.local``)."""
    if allowed is None:
        home_allowed, home_denied = host_paths.default_rule(str(Path.home()))
        return tuple(home_allowed), tuple([*home_denied, *map(os.path.abspath, denied)])
    return tuple(map(os.path.abspath, allowed)), tuple(map(os.path.abspath, denied))


def host_path_rule(config: ServerConfig) -> host_paths.Policy:
    """The host-path rule of a server: ``allowed_paths`` minus ``denied_paths`` (resolved
    now), and never the data directory, a local storage location, the root key file or a
    SQLite catalog outside the data directory."""
    locations = [*config.regions.values(), *config.cold_regions.values()]
    local = [loc.removeprefix("file://") for loc in locations]
    protected = [str(config.data_dir), *(loc for loc in local if "://" not in loc)]
    if config.root_key_file:
        protected.append(config.root_key_file)
    if config.catalog_url.startswith("sqlite:///"):
        protected.append(config.catalog_url.removeprefix("sqlite:///").partition("?")[0])
    protected = [os.path.abspath(p) for p in protected if p]
    return host_paths.Policy.build(
        config.allowed_paths,
        config.denied_paths,
        protected,
        os.path.realpath,
        config.allowed_networks,
    )


def root_key_path(config: ServerConfig) -> Path:
    """Where the root key file is: ``root_key_file`` (absolute) or DATA_DIR/root.key."""
    if not config.root_key_file:
        return config.data_dir / ROOT_KEY_FILE
    path = Path(config.root_key_file)
    if not path.is_absolute():
        raise InvalidInput(detail=f"root_key_file in config.json must be absolute, not {path}")
    return path


def _parse_root_key(raw: bytes, where: str) -> bytes:
    """32 raw bytes, or 64 hex digits (a key file may hold either; the env var holds hex)."""
    if len(raw) == ROOT_KEY_BYTES:
        return raw
    text = raw.strip()
    if len(text) == 2 * ROOT_KEY_BYTES:
        try:
            return bytes.fromhex(text.decode("ascii"))
        except (UnicodeDecodeError, ValueError):
            pass
    raise InvalidInput(
        detail=f"the root key in {where} must be {ROOT_KEY_BYTES} bytes "
        f"or {2 * ROOT_KEY_BYTES} hex digits"
    )


def _read_root_key(config: ServerConfig) -> bytes:
    """The root key: $SNOWVAULT_ROOT_KEY (hex) if set, else the key file, which must not
    be readable or writable by group or other (refused with one line saying the fix)."""
    env = os.environ.get(ROOT_KEY_ENV)
    if env:
        return _parse_root_key(env.encode(), f"${ROOT_KEY_ENV}")
    path = root_key_path(config)
    try:
        loose = private_files.loose_bits(path)
        key = path.read_bytes()
    except OSError as exc:
        raise InvalidInput(detail=f"cannot read the root key {path}: {exc.strerror}") from exc
    if loose:
        raise InvalidInput(
            detail=f"the root key {path} is accessible to group/other (mode "
            f"{path.stat().st_mode & 0o777:o}); refusing to start: run `chmod 600 {path}`, "
            "and if another user may have read it, `snowvault root-key rotate`"
        )
    return _parse_root_key(key, str(path))


def _tighten_host_files(config: ServerConfig) -> None:
    """Take group/other bits off the data directory, local storage and a SQLite catalog
    outside the data directory; one warning line says how many paths changed."""
    roots = [config.data_dir]
    for location in [*config.regions.values(), *config.cold_regions.values()]:
        local = location.removeprefix("file://")
        if "://" not in local and not Path(local).absolute().is_relative_to(config.data_dir):
            roots.append(Path(local).absolute())
    files: list[Path] = []
    db_file = catalog.db.sqlite_path(config.catalog_url)
    if db_file is not None and not Path(db_file).absolute().is_relative_to(config.data_dir):
        base = Path(db_file).absolute()
        files += [base, *(Path(f"{base}{s}") for s in catalog.db.SQLITE_COMPANIONS)]
    changed = private_files.tighten(roots, files)
    if changed:
        log.warning(
            "tightened permissions of %d path(s) under %s: group/other access removed "
            "(snowvault keeps its files 0600 and directories 0700)",
            len(changed),
            ", ".join(str(r) for r in roots),
        )


def _check_root_key(engine: Engine, root_key: bytes, config: ServerConfig) -> None:
    if not root_key_service.opens_catalog(engine, root_key):
        where = f"${ROOT_KEY_ENV}" if os.environ.get(ROOT_KEY_ENV) else root_key_path(config)
        pending = _pending(root_key_path(config))
        hint = (
            f"; an interrupted `snowvault root-key rotate` left {pending}: run it again"
            if pending.exists()
            else ""
        )
        raise InvalidInput(
            detail=f"the root key from {where} does not open this catalog's secrets; "
            f"refusing to start (see docs/operations/root-key.md){hint}"
        )


def _pending(key_file: Path) -> Path:
    return key_file.with_name(key_file.name + ".new")


@dataclass(frozen=True)
class RootKeyRotation:
    """What ``snowvault root-key rotate`` did."""

    key_file: Path  # holds the new key (hex when the old one came from the environment)
    old_key_file: Path | None  # a copy of the old key file, to destroy after checking
    resealed: root_key_service.Resealed | None  # None: finished an interrupted rotation
    from_env: bool


def rotate_root_key(
    data_dir: str | os.PathLike[str], *, new_key_file: str | None = None
) -> RootKeyRotation:
    """Offline (no server on DATA_DIR): a new root key; every value the old one sealed
    in the catalog re-sealed in one transaction; then the key file atomically replaced.

    The old key file is kept as ``<file>.old-<UTC time>`` (0600). With
    ``new_key_file`` the new key goes there and config.json's ``root_key_file`` follows.
    With $SNOWVAULT_ROOT_KEY set, ``new_key_file`` is required and receives the new key
    as hex, for the operator to put into the variable. Order on disk: new key written
    to ``<target>.new``, catalog committed, ``.new`` renamed over the target — a crash
    leaves both keys on disk, and running the command again finishes the job.
    """
    config = ServerConfig.load(data_dir)
    from_env = bool(os.environ.get(ROOT_KEY_ENV))
    if from_env and not new_key_file:
        raise InvalidInput(
            detail=f"${ROOT_KEY_ENV} holds the root key: give --new-key-file PATH to "
            "receive the new key (hex)"
        )
    with private_files.ServerLock(config.data_dir).exclusive():
        old_key = _read_root_key(config)
        current = None if from_env else root_key_path(config)
        target = Path(new_key_file).absolute() if new_key_file else root_key_path(config)
        pending = _pending(target)
        engine = catalog.db.create_engine(config.catalog_url)
        roles = leadership.Leadership(engine, _roles_dir(config))
        try:
            _no_fleet_server_running(roles)
            if pending.exists() and _finish_rotation(engine, old_key, pending, target):
                return RootKeyRotation(target, None, None, from_env)
            pending.unlink(missing_ok=True)  # left by a rotation that never committed
            new_key = crypto.random_bytes(ROOT_KEY_BYTES)
            private_files.make_dirs(target.parent)
            private_files.write_new(
                pending, new_key.hex().encode() + b"\n" if from_env else new_key
            )
            old_copy = None if current is None else _keep_old(current)
            try:
                resealed = root_key_service.reseal(engine, old_key, new_key)
            except BaseException:
                pending.unlink(missing_ok=True)
                if old_copy is not None:
                    old_copy.unlink(missing_ok=True)
                raise
            os.replace(pending, target)
            private_files.fsync_dir(target.parent)
        finally:
            roles.close()
            engine.dispose()
        if new_key_file and not from_env:
            _set_root_key_file(config, target)
        return RootKeyRotation(target, old_copy, resealed, from_env)


def _no_fleet_server_running(roles: leadership.Leadership) -> None:
    """A fleet's servers on other data directories do not hold this one's server.lock,
    but a running server always holds the notification-delivery role: taking it here
    proves none runs (and keeps one from delivering with the old key meanwhile)."""
    if not roles.hold(delivery.ROLE):
        raise Conflict(
            "a snowvault server on this catalog is running (it holds the notification "
            "delivery role): stop every server of the fleet first"
        )


def _keep_old(key_file: Path) -> Path:
    """A 0600 copy of ``key_file`` named ``<name>.old-<UTC time>``."""
    stamp = SystemClock().now().strftime("%Y%m%dT%H%M%SZ")
    for n in range(100):
        copy = key_file.with_name(f"{key_file.name}.old-{stamp}" + (f"-{n}" if n else ""))
        try:
            private_files.write_new(copy, key_file.read_bytes())
        except FileExistsError:
            continue
        return copy
    raise AlreadyExists(kind="file", name=f"{key_file}.old-{stamp}")


def _finish_rotation(engine: Engine, old_key: bytes, pending: Path, target: Path) -> bool:
    """True (and ``pending`` moved to ``target``) if its key is the catalog's now."""
    new_key = _parse_root_key(pending.read_bytes(), str(pending))
    if root_key_service.opens_catalog(engine, old_key):
        return False
    if not root_key_service.opens_catalog(engine, new_key):
        raise InvalidInput(
            detail=f"neither the root key nor {pending} opens this catalog; nothing changed"
        )
    os.replace(pending, target)
    private_files.fsync_dir(target.parent)
    return True


def move_root_key(data_dir: str | os.PathLike[str], to: str | os.PathLike[str]) -> Path:
    """Offline: put the root key file at ``to`` (0600; missing directories 0700), point
    config.json's ``root_key_file`` at it, then remove the old file."""
    config = ServerConfig.load(data_dir)
    if os.environ.get(ROOT_KEY_ENV):
        raise InvalidInput(detail=f"${ROOT_KEY_ENV} holds the root key; no file to move")
    with private_files.ServerLock(config.data_dir).exclusive():
        source, target = root_key_path(config), Path(to).absolute()
        if target.exists():
            raise AlreadyExists(kind="file", name=str(target))
        key = _read_root_key(config)
        private_files.make_dirs(target.parent)
        private_files.write_new(target, key)
        private_files.fsync_dir(target.parent)
        _set_root_key_file(config, target)
        if source != target:
            source.unlink()
            private_files.fsync_dir(source.parent)
    return target


def _set_root_key_file(config: ServerConfig, path: Path) -> None:
    """Rewrite config.json with ``root_key_file`` = ``path``, keeping every other key."""
    config_path = config.data_dir / CONFIG_FILE
    doc = json.loads(config_path.read_text(encoding="utf-8"))
    if path == config.data_dir / ROOT_KEY_FILE:
        doc.pop("root_key_file", None)
    else:
        doc["root_key_file"] = str(path)
    private_files.replace(config_path, (json.dumps(doc, indent=2) + "\n").encode())


class App:
    """Everything a running server holds: config, deps, the access-key box, the worker."""

    def __init__(
        self,
        config: ServerConfig,
        clock: Clock,
        *,
        test_mode: bool = False,
        serving: bool = False,
    ) -> None:
        self.config = config
        self.test_mode = test_mode
        root_key = _read_root_key(config)
        _tighten_host_files(config)
        self._server_lock = private_files.ServerLock(config.data_dir).shared()
        self._sole_lock: private_files.SoleServerLock | None = None
        try:
            if serving:  # before the catalog is touched: a refused server changes nothing
                self._sole_lock = _sole_server_lock(config)
            engine = catalog.db.create_engine(config.catalog_url)
        except BaseException:
            self._server_lock.release()
            raise
        try:
            with leadership.migration_lock(engine):  # servers of a fleet starting together
                catalog.db.upgrade(engine)
            _check_root_key(engine, root_key, config)
        except BaseException:
            engine.dispose()
            self._release_locks()
            raise
        # the roles one server of a fleet holds at a time (WAL receivers, delivery)
        self.roles = leadership.Leadership(engine, _roles_dir(config))
        self.kms = kms.Kms(engine, root_key, clock)
        self.deps = Deps(
            engine=engine,
            clock=clock,
            storage=Storage(dict(config.regions), dict(config.cold_regions)),
            vault_keys=kms_vault_keys.KmsVaultKeys(self.kms, engine),
            path_policy=host_path_rule(config),
            resource_secrets=root_key_service.resource_secret_box(root_key),
            trail=trail.appender(config.data_dir / trail.DIRECTORY) if config.trail else None,
            integrity_days=config.integrity_days,
        )
        self._access_keys = root_key_service.access_key_box(root_key)
        w = config.worker
        self.worker = runner.Worker(
            self.deps,
            runner.WorkerOptions(
                lease_seconds=w.lease_seconds,
                poll_seconds=w.poll_seconds,
                sweep_seconds=w.sweep_seconds,
                threads=w.threads,
                continuous_spool=str(config.data_dir / "continuous"),
                continuous_seconds=w.continuous_seconds,
                continuous_ship_seconds=w.continuous_ship_seconds,
            ),
            roles=self.roles,
        )
        self.scheduler = planner.Scheduler(
            self.deps, tick_seconds=w.sweep_seconds, roles=self.roles
        )
        self.notifier = delivery.Deliverer(  # the notification outbox's delivery loop
            self.deps,
            delivery.signing_key(config.data_dir, clock.now()),
            config.endpoint,
            roles=self.roles,
        )
        if isinstance(clock, simulation.SettableClock):
            simulation.resume(clock, self.deps)  # test mode: continue the simulated time

    @property
    def clock(self) -> Clock:
        return self.deps.clock

    @property
    def signing_clock(self) -> Clock:
        """What SigV4 freshness is checked against: the wall clock, also in test mode
        (clients sign with real time whatever the simulated clock says)."""
        return simulation.wall_clock(self.clock)

    @property
    def regions(self) -> list[str]:
        return sorted(self.config.regions)

    @property
    def access_key_box(self) -> crypto.SecretBox:
        """Seals new access-key secrets (IAM CreateAccessKey, CreateAccount)."""
        return self._access_keys

    def lookup_key(self, access_key_id: str) -> accounts.Credentials | None:
        return accounts.lookup_key(self.deps.engine, self._access_keys, access_key_id)

    def root_credentials(self) -> accounts.Credentials:
        return accounts.root_credentials(self.deps.engine, self._access_keys)

    def reset(self) -> None:
        """Test mode: empty all state except the root account and its keys."""
        if not self.test_mode:
            raise NotFound(kind="endpoint", name="/_snowvault/reset")
        simulation.reset(self.deps)

    def advance_clock(self, target: datetime) -> simulation.AdvanceResult:
        """Test mode: move the clock forward to ``target``, running whatever falls due."""
        if not isinstance(self.clock, simulation.SettableClock):
            raise NotFound(kind="endpoint", name="/_snowvault/clock")
        return simulation.advance(
            self.deps,
            self.clock,
            target,
            lambda: simulation.drain(self.worker),
            self.scheduler.lock,
        )

    def close(self) -> None:
        self.notifier.stop()
        self.scheduler.stop()
        self.worker.stop()
        self.roles.close()
        self.deps.engine.dispose()
        self._release_locks()

    def _release_locks(self) -> None:
        if self._sole_lock is not None:
            self._sole_lock.release()
        self._server_lock.release()


def _sole_server_lock(config: ServerConfig) -> private_files.SoleServerLock | None:
    """The lock the one server of a SQLite catalog holds (Conflict when another server
    holds it); None with PostgreSQL, whose servers share it (a fleet)."""
    db_file = catalog.db.sqlite_path(config.catalog_url)
    if db_file is None:
        return None
    # resolved: a config naming the same file through a symlink finds the same lock
    return private_files.SoleServerLock(Path(db_file).resolve()).take()


def _roles_dir(config: ServerConfig) -> Path:
    """Where a SQLite catalog's role locks live: beside the catalog file (servers
    sharing it are on its host); unused with PostgreSQL (advisory locks)."""
    db_file = catalog.db.sqlite_path(config.catalog_url)
    if db_file is None:
        return config.data_dir / "roles"
    return Path(f"{Path(db_file).absolute()}.roles")


def build(
    data_dir: str | os.PathLike[str],
    *,
    clock: Clock | None = None,
    test_mode: bool = False,
    serving: bool = False,
) -> App:
    """The App for an initialised data directory (the worker is not started).

    ``serving``: the App of ``snowvault server`` (or ``run``), which will start the
    worker, scheduler and delivery loop. On a SQLite catalog only one such App may exist
    (Conflict, before the catalog is touched); readers beside it (``cost report``) pass
    False and share ``server.lock`` with it."""
    if clock is None and test_mode:  # the clock POST /_snowvault/clock moves
        clock = simulation.start_clock()
    config = ServerConfig.load(data_dir)
    return App(config, clock or SystemClock(), test_mode=test_mode, serving=serving)
