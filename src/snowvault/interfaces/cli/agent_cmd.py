"""``snowvault agent``: enrol, revoke and list the agents that protect other hosts
(issue 13, docs/design/agents.md), over the extension API (EnrollAgent, RevokeAgent,
ListAgents).

    snowvault agent enroll --host web-1 --json   # the key pair, shown once
    snowvault agent list
    snowvault agent revoke --host web-1
    AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=... \
        snowvault agent run --endpoint http://backup:8080 --host web-1 --allow-path /srv

Enrolling needs the account root or ``snowvault:EnrollAgent``. The agent's key pair may
only call the agent operations; give it to the agent host and nothing else.

A pure API client: must not import the server side (interfaces.api, app, services);
``agent run`` runs :mod:`snowvault.agent` (imported inside the command).
"""

from __future__ import annotations

import ipaddress
import json
import os
import signal
import sys
import threading
import urllib.parse
from pathlib import Path
from types import FrameType

import click

from snowvault.core.errors import InvalidInput
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
    render.table(as_json, api.ext_paginate("ListAgents", "Agents", {}), AGENT_COLUMNS)


def _keys(credentials_file: str | None) -> tuple[str, str]:
    """The agent's key pair: ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, or a JSON
    file as ``agent enroll --json`` printed it (its ``AccessKey``), which must not be
    readable by others."""
    if credentials_file is not None:
        path = Path(credentials_file)
        if path.stat().st_mode & 0o077:
            raise InvalidInput(detail=f"{path} is readable by others; chmod 600 it")
        try:
            doc = json.loads(path.read_text())
        except (ValueError, RecursionError):
            doc = None
        key = doc.get("AccessKey", doc) if isinstance(doc, dict) else None
        pair = (key.get("AccessKeyId"), key.get("SecretAccessKey")) if isinstance(key, dict) else ()
        if len(pair) != 2 or not all(isinstance(v, str) and v for v in pair):
            raise InvalidInput(
                detail=f"--credentials-file {path}: not the JSON `agent enroll --json` printed "
                '(an "AccessKey" with "AccessKeyId" and "SecretAccessKey")'
            )
        return str(pair[0]), str(pair[1])
    key_id = os.environ.get("AWS_ACCESS_KEY_ID")
    secret = os.environ.get("AWS_SECRET_ACCESS_KEY")
    if not key_id or not secret:
        raise InvalidInput(
            detail="the agent's key pair: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
            "or pass --credentials-file"
        )
    return key_id, secret


def _check_endpoint(endpoint: str) -> None:
    """An http(s) URL with a host, refused now by its flag's name: anything else would
    fail every call (or be retried as an unreachable server for minutes)."""
    parsed = urllib.parse.urlsplit(endpoint)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise InvalidInput(detail=f"--endpoint {endpoint!r} is not an http(s)://HOST[:PORT] URL")


@agent.command("run")
@click.option("--endpoint", required=True, metavar="URL", help="The snowvault server.")
@_host_option
@click.option(
    "--allow-path",
    "allow_paths",
    multiple=True,
    metavar="DIR",
    help="A directory this agent may read and restore into (repeatable); nothing else.",
)
@click.option(
    "--deny-path",
    "deny_paths",
    multiple=True,
    metavar="PATH",
    help="A path (or a shell-like pattern per component, '*' never crossing '/') this "
    "agent never reads or restores into, even under an --allow-path (repeatable). On "
    "the server's own host, deny its data directory.",
)
@click.option(
    "--allow-network",
    "allow_networks",
    multiple=True,
    metavar="CIDR",
    help="A network whose database or S3 servers this agent may connect to (repeatable); "
    "loopback only when none is given.",
)
@click.option("--region", default="us-east-1", show_default=True)
@click.option("--credentials-file", type=click.Path(dir_okay=False, exists=True), default=None)
@click.option("--lease-seconds", type=click.IntRange(5, 600), default=60, show_default=True)
@click.option("--wait-seconds", type=click.FloatRange(0, 20), default=20, show_default=True)
@click.option("--once", is_flag=True, help="Run one job, then stop.")
def agent_run(
    endpoint: str,
    host: str,
    allow_paths: tuple[str, ...],
    deny_paths: tuple[str, ...],
    allow_networks: tuple[str, ...],
    region: str,
    credentials_file: str | None,
    lease_seconds: int,
    wait_seconds: float,
    once: bool,
) -> None:
    """Run host NAME's jobs: long-poll the server, back up here (uploading only what the
    vault lacks) and restore here. Stops on SIGTERM/SIGINT after the job at hand."""
    from snowvault.agent import runner

    _check_endpoint(endpoint)
    key_id, secret = _keys(credentials_file)
    for text in allow_networks:  # a bad CIDR is refused now, by its flag's name
        try:
            ipaddress.ip_network(text, strict=False)
        except ValueError as exc:
            raise InvalidInput(detail=f"--allow-network {text!r} is no network ({exc})") from None
    options = runner.Options(
        endpoint=endpoint,
        host=host,
        region=region,
        access_key_id=key_id,
        secret_access_key=secret,
        allow_paths=tuple(os.path.abspath(p) for p in allow_paths),
        deny_paths=tuple(os.path.abspath(p) for p in deny_paths),
        protect_paths=(os.path.abspath(credentials_file),) if credentials_file else (),
        allow_networks=allow_networks,
        wait_seconds=wait_seconds,
        lease_seconds=lease_seconds,
        once=once,
    )
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    def say(line: str) -> None:
        click.echo(line, err=True)
        sys.stderr.flush()

    runner.run(options, stop=stop, say=say)
