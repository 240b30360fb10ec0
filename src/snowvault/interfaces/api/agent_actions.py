"""Agent actions of the extension API (``POST /_snowvault/v1/<Action>``), issue 13:

    EnrollAgent {Host}      -> {Agent, AccessKey}   (the secret is shown once)
    RevokeAgent {Host}
    ListAgents {}           -> {Agents}
    AgentHello {Version}    -> {Agent, ServerTime}  (agents only)

Each is authorized as ``snowvault:<Action>`` (not ``backup:``: ``backup:*`` grants none
of them) on ``*`` in the caller's account; ``AgentHello`` is an agent principal's
built-in permission and refused to every other principal (docs/design/agents.md).

Must not depend on the CLI or web interfaces.
"""

from __future__ import annotations

from collections.abc import Callable

from snowvault.app import App
from snowvault.control import catalog
from snowvault.control.services import agents, authorization
from snowvault.interfaces.api import errors
from snowvault.interfaces.api.asgi import RequestContext
from snowvault.interfaces.api.handlers.common import Out, Params, caller

Action = Callable[[App, RequestContext, Params], Out]


def _text(params: Params, key: str) -> str:
    value = params.get(key)
    if not isinstance(value, str) or not value:
        raise errors.ApiError("ValidationException", f"{key} is required.")
    return value


def _agent(agent: catalog.agents.Agent) -> Out:
    out: Out = {
        "Host": agent.host,
        "PrincipalArn": agent.principal_arn,
        "EnrolledAt": agent.enrolled_at.isoformat(),
    }
    if agent.version is not None:
        out["Version"] = agent.version
    if agent.last_seen_at is not None:
        out["LastSeenAt"] = agent.last_seen_at.isoformat()
    return out


def enroll_agent(app: App, ctx: RequestContext, params: Params) -> Out:
    host = _text(params, "Host")
    creds = agents.enroll(app.deps, caller(ctx), app.access_key_box, host)
    return {
        "Host": host,
        "AccessKey": {
            "AccessKeyId": creds.access_key_id,
            "SecretAccessKey": creds.secret_access_key,
            "AccountId": creds.account_id,
            "PrincipalArn": creds.principal_arn,
        },
    }


def revoke_agent(app: App, ctx: RequestContext, params: Params) -> Out:
    agents.revoke(app.deps, caller(ctx), _text(params, "Host"))
    return {}


def list_agents(app: App, ctx: RequestContext, params: Params) -> Out:
    return {"Agents": [_agent(a) for a in agents.list_agents(app.deps, caller(ctx))]}


def agent_hello(app: App, ctx: RequestContext, params: Params) -> Out:
    who = caller(ctx)
    agent = agents.hello(app.deps, who, version=_text(params, "Version"))
    return {"Agent": _agent(agent), "ServerTime": who.now.isoformat()}


ACTIONS: dict[str, Action] = {
    "EnrollAgent": enroll_agent,
    "RevokeAgent": revoke_agent,
    "ListAgents": list_agents,
    "AgentHello": agent_hello,
}


def authorize(app: App, ctx: RequestContext, action: str, params: Params) -> None:
    """``snowvault:<Action>`` through the one shared authorize function."""
    authorization.authorize_operation(app.deps, caller(ctx), action, params, service="snowvault")
