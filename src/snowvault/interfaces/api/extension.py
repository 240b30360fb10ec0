"""The snowvault extension API: ``POST /_snowvault/v1/<Action>`` with a JSON body.

Signed with SigV4 for service ``snowvault`` (the region comes from the credential
scope); errors answer like the AWS API (``x-amzn-ErrorType`` + ``{"__type", "message"}``).

    RegisterResource {ResourceType: "Directory", Name, Source, Properties?, Tags?}
    ListResources {ResourceType?, NextToken?, MaxResults?} -> {Resources, NextToken?}
    DescribeResource {ResourceArn} -> {..., Properties, Discovery}
    DeregisterResource {ResourceArn}
    TagResource {ResourceArn, Tags}       UntagResource {ResourceArn, TagKeys}
    ListRecoveryPointContents {RecoveryPointArn, Path?, Recursive?, MaxResults?, NextToken?}
        -> {Entries, NextToken?}   (1-1000 entries a page, default 1000)
    ExportRecoveryKey {BackupVaultName, Passphrase} -> {RepositoryUrl, KeySlotId}  (audited)
    EnrollAgent, RevokeAgent, ListAgents, AgentHello   (agent_actions.py, snowvault:<Action>)

``Properties`` are the type's settings as strings (at most 64, values up to 4096
characters): secrets among them (a password, a secret access key) are split off by the
type's plugin, sealed under the root key and never answered; a resource's shape carries
only the non-secret ``Properties`` (DescribeResource adds the plugin's ``Discovery``).

``POST /_snowvault/reset`` (``--test-mode`` only; 404 otherwise) empties all state but
the root account and its keys.

Must not depend on the CLI or web interfaces.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

import anyio.from_thread
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from snowvault.app import App
from snowvault.control.model import tags as tag_rules
from snowvault.control.services import kms_vault_keys, recovery_points, resources
from snowvault.interfaces.api import agent_actions, errors, iam_actions
from snowvault.interfaces.api.asgi import ExtraRoute, RequestContext
from snowvault.interfaces.api.handlers import plans as plan_handlers
from snowvault.interfaces.api.handlers import views
from snowvault.interfaces.api.handlers.common import Out, Params, caller

Action = Callable[[App, RequestContext, Params], Out]
PREFIX = "/_snowvault/v1"


def _str(params: Params, key: str, *, required: bool = True) -> str | None:
    value = params.get(key)
    if value is None:
        if required:
            raise errors.ApiError("ValidationException", f"{key} is required.")
        return None
    if not isinstance(value, str):
        raise errors.ApiError("ValidationException", f"{key} must be a string.")
    return value


def _need(params: Params, key: str) -> str:
    value = _str(params, key)
    assert value is not None
    return value


def _tags(params: Params, key: str) -> dict[str, str]:
    """``params[key]`` under the tag rules (keys 1-128, values <= 256, <= 50, no aws:)."""
    value = params.get(key) or {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise errors.ApiError("ValidationException", f"{key} must be an object of strings.")
    return tag_rules.validate(value, key)


MAX_PROPERTIES = 64
MAX_PROPERTY_KEY = 128
MAX_PROPERTY_VALUE = 4096


def _properties(params: Params, key: str) -> dict[str, str]:
    """RegisterResource's ``Properties``: an object of strings, bounded. Messages name the
    key, never the value (a value may be a password)."""
    value = params.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise errors.ApiError("ValidationException", f"{key} must be an object of strings.")
    if len(value) > MAX_PROPERTIES:
        raise errors.ApiError(
            "ValidationException", f"{key} may hold at most {MAX_PROPERTIES} keys."
        )
    for name, item in value.items():
        if not isinstance(name, str) or not 0 < len(name) <= MAX_PROPERTY_KEY:
            raise errors.ApiError(
                "ValidationException", f"{key} keys must be 1-{MAX_PROPERTY_KEY} characters."
            )
        if not isinstance(item, str):
            raise errors.ApiError("ValidationException", f"{key}.{name} must be a string.")
        if len(item) > MAX_PROPERTY_VALUE:
            raise errors.ApiError(
                "ValidationException",
                f"{key}.{name} is longer than {MAX_PROPERTY_VALUE} characters.",
            )
    return dict(value)


def _resource(row: dict[str, Any]) -> Out:
    """The extension API's resource shape with its non-secret Properties."""
    out = views.registered_resource(row)
    out["Properties"] = dict(row.get("properties") or {})
    return out


def register_resource(app: App, ctx: RequestContext, params: Params) -> Out:
    row = resources.register(
        app.deps,
        caller(ctx),
        resource_type=_need(params, "ResourceType"),
        name=_need(params, "Name"),
        source=_need(params, "Source"),
        properties=_properties(params, "Properties"),
        tags=_tags(params, "Tags"),
        worker_label=_str(params, "WorkerLabel", required=False),
    )
    return _resource(row)


def list_resources(app: App, ctx: RequestContext, params: Params) -> Out:
    limit = params.get("MaxResults")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)):
        raise errors.ApiError("ValidationException", "MaxResults must be an integer.")
    page = resources.list_resources(
        app.deps,
        caller(ctx),
        resource_type=_str(params, "ResourceType", required=False),
        limit=limit,
        token=_str(params, "NextToken", required=False),
    )
    out: Out = {"Resources": [_resource(r) for r in page.items]}
    if page.next_token:
        out["NextToken"] = page.next_token
    return out


def describe_resource(app: App, ctx: RequestContext, params: Params) -> Out:
    row = resources.describe(app.deps, caller(ctx), _need(params, "ResourceArn"))
    return dict(_resource(row), Discovery=row["discovery"])


def deregister_resource(app: App, ctx: RequestContext, params: Params) -> Out:
    resources.deregister(app.deps, caller(ctx), _need(params, "ResourceArn"))
    return {}


def tag_resource(app: App, ctx: RequestContext, params: Params) -> Out:
    resources.tag(app.deps, caller(ctx), _need(params, "ResourceArn"), _tags(params, "Tags"))
    return {}


def untag_resource(app: App, ctx: RequestContext, params: Params) -> Out:
    keys = params.get("TagKeys")
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise errors.ApiError("ValidationException", "TagKeys must be a list of strings.")
    resources.untag(app.deps, caller(ctx), _need(params, "ResourceArn"), keys)
    return {}


def list_recovery_point_contents(app: App, ctx: RequestContext, params: Params) -> Out:
    limit = params.get("MaxResults")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)):
        raise errors.ApiError("ValidationException", "MaxResults must be an integer.")
    entries, next_token = recovery_points.contents_page(
        app.deps,
        caller(ctx),
        _need(params, "RecoveryPointArn"),
        _str(params, "Path", required=False) or "/",
        bool(params.get("Recursive", False)),
        limit=limit,
        token=_str(params, "NextToken", required=False),
    )
    out: Out = {
        "Entries": [
            {
                "Path": e.path,
                "Type": e.type,
                "Size": e.size,
                "Mode": e.mode,
                "ModifiedTime": e.mtime.timestamp(),
            }
            for e in entries
        ]
    }
    if next_token:
        out["NextToken"] = next_token
    return out


def export_recovery_key(app: App, ctx: RequestContext, params: Params) -> Out:
    """ExportRecoveryKey {BackupVaultName, Passphrase} -> {RepositoryUrl, KeySlotId, ...}."""
    return kms_vault_keys.export_recovery_key(
        app.deps, caller(ctx), _need(params, "BackupVaultName"), _need(params, "Passphrase")
    )


ACTIONS: dict[str, Action] = {
    "RegisterResource": register_resource,
    "ListResources": list_resources,
    "DescribeResource": describe_resource,
    "DeregisterResource": deregister_resource,
    "TagResource": tag_resource,
    "UntagResource": untag_resource,
    "ListRecoveryPointContents": list_recovery_point_contents,
    "PreviewSelection": plan_handlers.preview_selection,
    "ExportRecoveryKey": export_recovery_key,
    **iam_actions.ACTIONS,
    **agent_actions.ACTIONS,
}


async def _body(request: Request) -> Params:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, ValueError) as exc:
        raise errors.ApiError(
            "SerializationException", f"The body is not valid JSON: {exc}"
        ) from None
    if not isinstance(doc, dict):
        raise errors.ApiError("SerializationException", "The body must be a JSON object.")
    return doc


def _gone(request: Request) -> Callable[[], bool]:
    """Whether ``request``'s client has hung up, asked from a handler's worker thread
    (through the event loop: the ASGI receive channel is the loop's)."""

    def gone() -> bool:
        try:
            return bool(anyio.from_thread.run(request.is_disconnected))
        except RuntimeError:  # not called from a worker thread of this loop
            return False

    return gone


def routes(app: App) -> list[ExtraRoute]:
    """The extension routes for ``app`` (the reset route answers 404 unless test mode);
    refuses to build when an action has no authorization rule."""
    missing = iam_actions.unruled(ACTIONS)
    if missing:
        raise ValueError(f"extension actions without an authorization rule: {missing}")

    async def action(request: Request, ctx: RequestContext | None) -> Response:
        assert ctx is not None
        name = request.path_params["action"]
        handler = ACTIONS.get(name)
        if handler is None:
            raise errors.ApiError("UnknownOperationException", f"Unknown action {name!r}.")
        params = await _body(request)
        authorize = (
            agent_actions.authorize if name in agent_actions.ACTIONS else iam_actions.authorize
        )
        await run_in_threadpool(authorize, app, ctx, name, params)
        if name in agent_actions.ACTIONS:
            ctx = dataclasses.replace(ctx, gone=_gone(request))
        result = await run_in_threadpool(handler, app, ctx, params)
        return JSONResponse(result)

    async def reset(request: Request, ctx: RequestContext | None) -> Response:
        await run_in_threadpool(app.reset)
        return JSONResponse({})

    async def no_reset(request: Request, ctx: RequestContext | None) -> Response:
        raise errors.ApiError(
            "ResourceNotFoundException", "reset is only served with --test-mode.", 404
        )

    reset_route = (
        ExtraRoute("/_snowvault/reset", reset, methods=("POST",))
        if app.test_mode
        else ExtraRoute("/_snowvault/reset", no_reset, methods=("POST",), authenticated=False)
    )
    return [ExtraRoute(PREFIX + "/{action}", action, methods=("POST",)), reset_route]
