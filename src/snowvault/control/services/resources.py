"""The resource inventory: register resources, list/describe/deregister, tag, and the
protected-resource views (ListProtectedResources, DescribeProtectedResource...).

What a type's ARN and source are is its plugin's (``Deps.plugins``, see
:mod:`snowvault.plugins`): a Directory is ``arn:aws:snowvault:REGION:ACCOUNT:directory/NAME``
with an absolute path to an existing directory on the server's host as its source.

Abuse case: a caller with ``RegisterResource`` names a source the server will read with
its own (often root) rights and hand back through a restore. The plugin checks it with
the operator's host-path and network-reach rules (``Deps.path_policy``) before anything
else is looked at (existence included, so refused paths are no probe); what it returns
(the resolved path, a DSN without its password) is what is stored, and the worker checks
it again before it reads.

Secrets (a password, a secret access key) the plugin splits off are sealed under the
root key (``Deps.resource_secrets``, the ARN as context) in the same transaction as the
row; :func:`get`, :func:`list_resources` and :func:`describe` never return them (the
catalog's rows do not carry them); only :func:`worker_secrets` unseals them, called by
the job services right before a plugin runs and by :func:`describe` for the plugin's
discovery (whose answer carries none).

Must not depend on the scheduler, the composition root or any interface.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any

from snowvault import plugins
from snowvault.control import catalog
from snowvault.control.model import agent_hosts
from snowvault.control.services import agent_resources, composite, tagging
from snowvault.control.services.base import Caller, Deps
from snowvault.core.errors import InvalidInput, NotFound

Record = dict[str, Any]

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
log = logging.getLogger(__name__)


def resource_arn(
    region: str,
    account_id: str,
    resource_type: str,
    name: str,
    registry: plugins.registry.Registry | None = None,
) -> str:
    """The ARN RegisterResource gives ``name`` of ``resource_type`` (built-in types
    unless ``registry`` is given); UnsupportedResourceType for an unknown type."""
    plugin = (registry or plugins.builtin.registry()).get(resource_type)
    return plugins.base.resource_arn(plugin, region, account_id, name)


def register(
    deps: Deps,
    caller: Caller,
    *,
    resource_type: str,
    name: str,
    source: str,
    properties: Mapping[str, str] | None = None,
    tags: Mapping[str, str] | None = None,
    worker_label: str | None = None,
) -> Record:
    """RegisterResource: add a resource to the inventory (AlreadyExists for a known name),
    its source and ``properties`` as its plugin checked and split them (secrets apart)."""
    plugin = deps.plugins.get(resource_type)
    if not _NAME_RE.match(name):
        raise InvalidInput(
            detail=f"Name must be 1-128 letters, digits, '.', '_' or '-', got {name!r}"
        )
    worker_label = agent_hosts.scoped(worker_label, caller.account_id)
    if agent_hosts.is_agent_label(worker_label):
        # the server cannot see that host: the form only (services/agent_resources.py);
        # the agent judges paths and hosts by its own --allow-path/--allow-network
        registration = agent_resources.check_registration(
            deps.plugins, resource_type, source, properties
        )
    else:
        registration = plugin.check_source(source, deps.path_policy, dict(properties or {}))
    stored = registration.source
    arn = plugins.base.resource_arn(plugin, caller.region, caller.account_id, name)
    sealed = _seal(deps, arn, registration.secrets)
    with catalog.db.transaction(deps.engine) as conn:
        if resource_type == composite.RESOURCE_TYPE:  # members: registered, ours, no group
            composite.check_members(conn, caller, registration.properties, worker_label)
        row = catalog.resources.register(
            conn,
            arn=arn,
            account_id=caller.account_id,
            region=caller.region,
            resource_type=resource_type,
            created_at=caller.now,
            name=name,
            source=stored,
            worker_label=worker_label,
            properties=dict(registration.properties),
            sealed_secrets=sealed,
        )
        catalog.tags.tag(conn, arn, dict(tags or {}))
        return _with_tags(conn, row)


def _seal(deps: Deps, arn: str, secrets: Mapping[str, str]) -> bytes | None:
    """``secrets`` as one JSON object sealed for ``arn`` (None when there are none)."""
    if not secrets:
        return None
    if deps.resource_secrets is None:
        raise InvalidInput(detail="this server holds no root key to seal resource secrets")
    plain = json.dumps(dict(secrets), sort_keys=True).encode()
    return deps.resource_secrets.seal(plain, arn.encode())


def worker_secrets(deps: Deps, arn: str) -> dict[str, str]:
    """The unsealed secrets of resource ``arn`` ({} when none): for a plugin only,
    right before it backs up, restores or describes; never logged, stored or returned."""
    with catalog.db.read_transaction(deps.engine) as conn:
        sealed = catalog.sealed_secrets.resource_secrets_of(conn, arn)
    if sealed is None:
        return {}
    if deps.resource_secrets is None:
        raise InvalidInput(detail=f"this server holds no root key to open the secrets of {arn}")
    value = json.loads(deps.resource_secrets.open(sealed, arn.encode()))
    return {str(k): str(v) for k, v in value.items()}


ON_AGENT_HOST = "on an agent's host: the server does not look at it (its agent backs it up)"


def describe(deps: Deps, caller: Caller, arn: str) -> Record:
    """DescribeResource: :func:`get` plus ``discovery``, what the type's plugin sees of
    the resource now. The plugin gets the unsealed secrets (a password-protected server
    answers only with its password) and the reach rule, and returns no secret; a plugin
    failure is ``{"Error": ...}`` naming only the error's kind (its message could hold
    anything). A resource on an agent's host is not looked at: its source names a path
    or an address on that host, and the plugin run here would read the server's own path
    or connect to whatever listens at that address on the server's side, with the
    resource's password."""
    row = get(deps, caller, arn)
    on_host = agent_hosts.parse(row.get("worker_label"))
    if on_host is not None:
        return dict(row, discovery={"AgentHost": on_host[1], "Note": ON_AGENT_HOST})
    try:
        plugin = deps.plugins.get(row["resource_type"])
        resource = plugins.base.Resource(
            row["arn"],
            row["resource_type"],
            row["name"] or "",
            row["source"] or "",
            dict(row.get("properties") or {}),
            worker_secrets(deps, arn),
        )
        discovery = plugin.describe(resource, deps.path_policy)
    except Exception as exc:  # a plugin must not raise here
        log.warning("describe %s: %s from the plugin", arn, type(exc).__name__)
        discovery = {"Error": f"discovery failed ({type(exc).__name__})"}
    return dict(row, discovery=discovery)


def _with_tags(conn: Any, row: Record) -> Record:
    return dict(row, tags=catalog.tags.list_for(conn, row["arn"]))


def get(deps: Deps, caller: Caller, arn: str) -> Record:
    """The resource with its tags; NotFound unless it belongs to the caller's account."""
    with catalog.db.transaction(deps.engine) as conn:
        row = catalog.resources.find(conn, arn)
        if row is None or row["account_id"] != caller.account_id:
            raise NotFound(kind="resource", name=arn)
        return _with_tags(conn, row)


def list_resources(
    deps: Deps,
    caller: Caller,
    *,
    resource_type: str | None = None,
    protected_only: bool = False,
    limit: int | None = None,
    token: str | None = None,
) -> catalog.pagination.Page:
    with catalog.db.transaction(deps.engine) as conn:
        page = catalog.resources.list_resources(
            conn,
            account_id=caller.account_id,
            region=caller.region,
            protected_only=protected_only,
            resource_type=resource_type,
            limit=limit,
            token=token,
        )
        items = [_with_tags(conn, r) for r in page.items]
    return catalog.pagination.Page(items, page.next_token)


def list_by_vault(
    deps: Deps, caller: Caller, vault: Record, *, limit: int | None, token: str | None
) -> catalog.pagination.Page:
    with catalog.db.transaction(deps.engine) as conn:
        return catalog.resources.list_by_vault(
            conn, vault_arn=vault["arn"], limit=limit, token=token
        )


def deregister(deps: Deps, caller: Caller, arn: str) -> None:
    """DeregisterResource: its recovery points stay."""
    get(deps, caller, arn)
    with catalog.db.transaction(deps.engine) as conn:
        catalog.resources.delete(conn, arn)


def tag(deps: Deps, caller: Caller, arn: str, tags: Mapping[str, str]) -> None:
    get(deps, caller, arn)
    with catalog.db.transaction(deps.engine) as conn:
        tagging.add(conn, arn, tags)  # at most 50 tags, the existing ones included


def untag(deps: Deps, caller: Caller, arn: str, keys: Iterable[str]) -> None:
    get(deps, caller, arn)
    with catalog.db.transaction(deps.engine) as conn:
        catalog.tags.untag(conn, arn, list(keys))
