"""What every use case receives: the caller (who, where, when) and the dependencies.

    deps = Deps(engine=catalog_engine, clock=SystemClock(), storage=Storage({...}),
                vault_keys=KmsVaultKeys(kms, catalog_engine))
    caller = Caller(account_id="123456789012", region="us-east-1",
                    principal_arn="arn:aws:iam::123456789012:root", now=deps.clock.now())

Must not depend on the scheduler, the composition root or any interface.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy.engine import Engine

from snowvault.control.model import host_paths
from snowvault.control.services.errors import RegionNotConfigured
from snowvault.core.clock import Clock
from snowvault.plugins import builtin as builtin_plugins
from snowvault.plugins import registry as plugin_registry

if TYPE_CHECKING:
    from snowvault.control.services.vault_keys import VaultKeys
    from snowvault.engine import crypto


@dataclass(frozen=True)
class Caller:
    """The authenticated principal of one request, in one region, at one instant."""

    account_id: str
    region: str
    principal_arn: str
    now: datetime
    source_ip: str | None = None  # aws:SourceIp for policy conditions (authorization)


@dataclass(frozen=True)
class Storage:
    """Region -> storage location (a directory or an engine URL such as ``s3://b/p``),
    and region -> cold location (``cold``: where packs only cold recovery points need
    are moved; a region without one keeps cold points' data where it is)."""

    regions: dict[str, str] = field(default_factory=dict)
    cold: dict[str, str] = field(default_factory=dict)

    def cold_url(self, region: str, storage_url: str) -> str | None:
        """A vault's cold store: its storage URL with the region's location swapped for
        the region's cold location; None without one (or for a vault made elsewhere).

        >>> Storage({"r": "/s/r"}, {"r": "/c/r"}).cold_url("r", "/s/r/1234/v-ab12")
        '/c/r/1234/v-ab12'
        """
        warm, cold = self.regions.get(region, "").rstrip("/"), self.cold.get(region)
        if not cold or not warm or not storage_url.startswith(warm + "/"):
            return None
        return cold.rstrip("/") + storage_url[len(warm) :]

    def location(self, region: str) -> str:
        try:
            return self.regions[region]
        except KeyError:
            configured = ", ".join(sorted(self.regions)) or "none"
            raise RegionNotConfigured(region=region, configured=configured) from None


@dataclass(frozen=True)
class Deps:
    """The catalog engine, the clock, the storage map, the vault key provider, the
    host paths callers may name (resources, restore targets; nothing unless configured)
    and the resource types this server protects (the built-in plugins unless given)."""

    engine: Engine
    clock: Clock
    storage: Storage
    vault_keys: VaultKeys
    path_policy: host_paths.Policy = host_paths.NOTHING_ALLOWED
    plugins: plugin_registry.Registry = field(default_factory=builtin_plugins.registry)
    resource_secrets: crypto.SecretBox | None = None
    """Seals resources' plugin secrets under the root key (None: a registration with
    secrets is refused; see services/resources.py)."""
    trail: Callable[[dict[str, Any]], None] | None = None
    """Records one CloudTrail record of a system action (services/trail.py; None: the
    trail is off). Never called with a secret: trail.emit redacts."""
    integrity_days: int = 30
    """The integrity watch reads every pack of a vault within this many days."""


class JobControl(Protocol):
    """How a running job talks to whoever runs it (the scheduler's runner)."""

    def report(self, **progress: Any) -> None:
        """Record progress (column -> value); raises JobStopped when the job must stop."""
        ...
