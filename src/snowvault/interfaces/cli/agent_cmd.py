"""``snowvault agent``: enrol, revoke and list the agents that protect other hosts
(issue 13, docs/design/agents.md), over the extension API (EnrollAgent, RevokeAgent,
ListAgents).

    snowvault agent enroll --host web-1 --json   # the key pair, shown once
    snowvault agent list
    snowvault agent revoke --host web-1

Enrolling needs the account root or ``snowvault:EnrollAgent``. The agent's key pair may
only call the agent operations; give it to the agent host and nothing else.

A pure API client: must not import the server side (interfaces.api, app, services).
"""

from __future__ import annotations

import click

from snowvault.interfaces.cli import render
from snowvault.interfaces.cli.client import Api, json_option, with_api

AGENT_COLUMNS: list[render.Column] = [
    ("HOST", lambda a: a.get("Host")),
    ("VERSION", lambda a: a.get("Version") or "-"),
    ("LAST SEEN", lambda a: a.get("LastSeenAt") or "never"),
    ("ENROLLED", lambda a: a.get("EnrolledAt")),
    ("PRINCIPAL", lambda a: a.get("PrincipalArn")),
]

_host_option = click.option(
    "--host", "host", required=True, metavar="NAME", help="The host the agent stands for."
)


@click.group()
def agent() -> None:
    """Agents: principals that back up resources on other hosts."""


@agent.command("enroll")
@_host_option
@json_option
@with_api
def agent_enroll(api: Api, host: str, as_json: bool) -> None:
    """Enrol an agent for host NAME and print its access key pair (shown only now)."""
    doc = api.ext("EnrollAgent", {"Host": host})
    key = doc["AccessKey"]
    render.result(
        as_json,
        doc,
        f"enrolled agent for host {host} ({key['PrincipalArn']})\n"
        f"access key id:     {key['AccessKeyId']}\n"
        f"secret access key: {key['SecretAccessKey']}\n"
        "(the secret is shown only now; the agent reads it from AWS_ACCESS_KEY_ID and "
        "AWS_SECRET_ACCESS_KEY)",
    )


@agent.command("revoke")
@_host_option
@json_option
@with_api
def agent_revoke(api: Api, host: str, as_json: bool) -> None:
    """Revoke host NAME's agent: its key stops working at once."""
    api.ext("RevokeAgent", {"Host": host})
    render.result(as_json, {"Host": host, "Revoked": True}, f"revoked the agent of host {host}")


@agent.command("list")
@json_option
@with_api
def agent_list(api: Api, as_json: bool) -> None:
    """List the agents of your account with their version and when each was last seen."""
    render.table(as_json, api.ext("ListAgents", {})["Agents"], AGENT_COLUMNS)
