"""Settings operations: Describe/UpdateRegionSettings, DescribeGlobalSettings,
GetSupportedResourceTypes.

Must not depend on the CLI or web interfaces.
"""

from __future__ import annotations

from snowvault.app import App
from snowvault.control.services import settings
from snowvault.interfaces.api.asgi import RequestContext
from snowvault.interfaces.api.handlers.common import AppHandler, Out, Params, caller


def describe_region_settings(app: App, ctx: RequestContext, params: Params) -> Out:
    prefs = settings.region_settings(app.deps, caller(ctx))
    return {
        "ResourceTypeOptInPreference": prefs["opt_in"],
        "ResourceTypeManagementPreference": prefs["management"],
    }


def update_region_settings(app: App, ctx: RequestContext, params: Params) -> None:
    settings.update_region_settings(
        app.deps,
        caller(ctx),
        opt_in=params.get("ResourceTypeOptInPreference"),
        management=params.get("ResourceTypeManagementPreference"),
    )


def describe_global_settings(app: App, ctx: RequestContext, params: Params) -> Out:
    return {"GlobalSettings": settings.global_settings()}


def get_supported_resource_types(app: App, ctx: RequestContext, params: Params) -> Out:
    return {"ResourceTypes": settings.supported_resource_types(app.deps)}


HANDLERS: dict[str, AppHandler] = {
    "DescribeRegionSettings": describe_region_settings,
    "UpdateRegionSettings": update_region_settings,
    "DescribeGlobalSettings": describe_global_settings,
    "GetSupportedResourceTypes": get_supported_resource_types,
}
