"""Region and global settings, and the resource types this server can protect (the
plugin registry, ``Deps.plugins``).

Must not depend on the scheduler, the composition root or any interface.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from snowvault.control import catalog
from snowvault.control.services.base import Caller, Deps
from snowvault.core.errors import InvalidInput

GLOBAL_SETTINGS = {"isCrossAccountBackupEnabled": "false", "isMpaEnabled": "false"}


def supported_resource_types(deps: Deps) -> list[str]:
    """GetSupportedResourceTypes: the registered plugins' types."""
    return list(deps.plugins.types())


def _defaults(deps: Deps) -> dict[str, bool]:
    return dict.fromkeys(deps.plugins.types(), True)


def region_settings(deps: Deps, caller: Caller) -> dict[str, dict[str, bool]]:
    """DescribeRegionSettings: every supported type is opted in unless turned off."""
    with catalog.db.transaction(deps.engine) as conn:
        row = catalog.settings.get_region(conn, account_id=caller.account_id, region=caller.region)
    row = row or {}
    return {
        "opt_in": {**_defaults(deps), **(row.get("resource_type_opt_in_preference") or {})},
        "management": {
            **_defaults(deps),
            **(row.get("resource_type_management_preference") or {}),
        },
    }


def _check(deps: Deps, prefs: Mapping[str, Any] | None, field: str) -> dict[str, bool]:
    out: dict[str, bool] = {}
    for key, value in (prefs or {}).items():
        if key not in deps.plugins:
            raise InvalidInput(detail=f"{field}: unsupported resource type {key!r}")
        out[key] = bool(value)
    return out


def update_region_settings(
    deps: Deps,
    caller: Caller,
    *,
    opt_in: Mapping[str, Any] | None,
    management: Mapping[str, Any] | None,
) -> None:
    """UpdateRegionSettings: merge the given preferences."""
    opt = _check(deps, opt_in, "ResourceTypeOptInPreference")
    mgmt = _check(deps, management, "ResourceTypeManagementPreference")
    with catalog.db.transaction(deps.engine) as conn:
        catalog.settings.put_region(
            conn,
            account_id=caller.account_id,
            region=caller.region,
            now=caller.now,
            opt_in=opt,
            management=mgmt,
        )


def global_settings() -> dict[str, str]:
    """DescribeGlobalSettings: cross-account backup is not offered yet."""
    return dict(GLOBAL_SETTINGS)
