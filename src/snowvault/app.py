"""Composition root: reads DIR/config.json and builds catalog, clock, services, worker.

    result = initialize("/srv/snowvault", region="us-east-1", port=8765)  # `snowvault init`
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

The interfaces build on this; this module must not import any interface.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from snowvault.control import catalog
from snowvault.control.scheduler import planner, runner
from snowvault.control.services import accounts, kms, kms_vault_keys, vaults
from snowvault.control.services.base import Deps, Storage
from snowvault.core.clock import Clock, SystemClock
from snowvault.core.errors import AlreadyExists, InvalidInput, NotFound
from snowvault.engine import crypto

log = logging.getLogger("snowvault.app")

CONFIG_FILE = "config.json"
ROOT_KEY_FILE = "root.key"
CONFIG_VERSION = 1
ROOT_KEY_BYTES = 32


@dataclass(frozen=True)
class WorkerConfig:
    threads: int = 2
    lease_seconds: float = 60.0
    sweep_seconds: float = 5.0
    poll_seconds: float = 1.0


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
    # Peers whose X-Forwarded-For is believed (aws:SourceIp); none by default.
    trusted_proxies: tuple[str, ...] = ()
    # Largest request body the API reads (bytes); larger ones answer 413.
    max_body_bytes: int = 4 * 1024 * 1024
    # Where the root secret lives: a file path (default DATA_DIR/root.key); the
    # SNOWVAULT_ROOT_KEY environment variable (hex), when set, takes precedence.
    root_key_file: str | None = None

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
        except (OSError, ValueError) as exc:
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
                port=int(doc.get("port", 8765)),
                worker=WorkerConfig(**doc.get("worker", {})),
                allowed_paths=tuple(str(p) for p in doc.get("allowed_paths", [])),
                denied_paths=tuple(str(p) for p in doc.get("denied_paths", [])),
                trusted_proxies=tuple(str(p) for p in doc.get("trusted_proxies", [])),
                max_body_bytes=int(doc.get("max_body_bytes", 4 * 1024 * 1024)),
                root_key_file=doc.get("root_key_file"),
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
            "trusted_proxies": list(self.trusted_proxies),
            "max_body_bytes": self.max_body_bytes,
            **({"root_key_file": self.root_key_file} if self.root_key_file else {}),
        }

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"


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


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def initialize(
    data_dir: str | os.PathLike[str],
    *,
    catalog_url: str | None = None,
    region: str = "us-east-1",
    host: str = "127.0.0.1",
    port: int = 8765,
    clock: Clock | None = None,
) -> InitResult:
    """Create a data directory: root secret, catalog, root account and its key pair."""
    root = Path(data_dir).absolute()
    if is_initialized(root):
        raise AlreadyExists(kind="snowvault data directory", name=str(root))
    root.mkdir(parents=True, exist_ok=True)
    storage = root / "storage" / region
    storage.mkdir(parents=True, exist_ok=True)
    config = ServerConfig(
        data_dir=root,
        catalog_url=catalog_url or f"sqlite:///{root / 'catalog.db'}",
        regions={region: str(storage)},
        default_region=region,
        host=host,
        port=port,
    )
    key_path = root / ROOT_KEY_FILE
    if not key_path.exists():
        _write_private(key_path, crypto.random_bytes(ROOT_KEY_BYTES))
    engine = catalog.db.create_engine(config.catalog_url)
    try:
        catalog.db.upgrade(engine)
        box = crypto.SecretBox(_read_root_key(root), "access-keys")
        creds = accounts.bootstrap(engine, box, now=(clock or SystemClock()).now())
    finally:
        engine.dispose()
    (root / CONFIG_FILE).write_text(json.dumps(config.to_dict(), indent=2) + "\n")
    return InitResult(
        creds.account_id, region, creds.access_key_id, creds.secret_access_key, config.endpoint
    )


def _read_root_key(data_dir: Path) -> bytes:
    path = data_dir / ROOT_KEY_FILE
    try:
        key = path.read_bytes()
    except OSError as exc:
        raise InvalidInput(detail=f"cannot read the root key {path}: {exc.strerror}") from exc
    if len(key) != ROOT_KEY_BYTES:
        raise InvalidInput(detail=f"the root key {path} must be {ROOT_KEY_BYTES} bytes")
    return key


class App:
    """Everything a running server holds: config, deps, the access-key box, the worker."""

    def __init__(self, config: ServerConfig, clock: Clock, *, test_mode: bool = False) -> None:
        self.config = config
        self.test_mode = test_mode
        root_key = _read_root_key(config.data_dir)
        engine = catalog.db.create_engine(config.catalog_url)
        catalog.db.upgrade(engine)
        self.kms = kms.Kms(engine, root_key, clock)
        self.deps = Deps(
            engine=engine,
            clock=clock,
            storage=Storage(dict(config.regions)),
            vault_keys=kms_vault_keys.KmsVaultKeys(self.kms, engine),
        )
        self._access_keys = crypto.SecretBox(root_key, "access-keys")
        w = config.worker
        self.worker = runner.Worker(
            self.deps,
            runner.WorkerOptions(
                lease_seconds=w.lease_seconds,
                poll_seconds=w.poll_seconds,
                sweep_seconds=w.sweep_seconds,
                threads=w.threads,
            ),
        )
        self.scheduler = planner.Scheduler(self.deps)
        if isinstance(clock, planner.SettableClock):
            clock.resume(self.deps)  # test mode: continue the simulated time

    @property
    def clock(self) -> Clock:
        return self.deps.clock

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
        for vault in vaults.all_vaults(self.deps):
            vaults.destroy_storage(self.deps, vault)
        accounts.reset_keep_root(self.deps.engine)

    def advance_clock(self, target: datetime) -> planner.AdvanceResult:
        """Test mode: move the clock forward to ``target``, running whatever falls due."""
        if not isinstance(self.clock, planner.SettableClock):
            raise NotFound(kind="endpoint", name="/_snowvault/clock")
        return planner.advance(
            self.deps,
            self.clock,
            target,
            lambda: planner.drain(self.worker),
            self.scheduler.lock,
        )

    def close(self) -> None:
        self.scheduler.stop()
        self.worker.stop()
        self.deps.engine.dispose()


def build(
    data_dir: str | os.PathLike[str], *, clock: Clock | None = None, test_mode: bool = False
) -> App:
    """The App for an initialised data directory (the worker is not started)."""
    if clock is None and test_mode:  # the clock POST /_snowvault/clock moves
        clock = planner.SettableClock(SystemClock().now(), SystemClock())
    return App(ServerConfig.load(data_dir), clock or SystemClock(), test_mode=test_mode)
