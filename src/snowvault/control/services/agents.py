"""Agents (issue 13): principals that stand for one host each and may only run that
host's jobs (docs/design/agents.md).

    creds = agents.enroll(deps, caller, box, "web-1")   # the key pair, shown once
    agents.list_agents(deps, caller)                    # hosts, versions, last seen
    agents.revoke(deps, caller, "web-1")                 # the key stops working
    agents.hello(deps, caller, version="0.1.0")          # the agent's first call

Who may ask: enrol/revoke/list are authorized by the API's hook as
``snowvault:EnrollAgent`` / ``snowvault:RevokeAgent`` / ``snowvault:ListAgents`` (the
account root has them; ``backup:*`` does not grant them). The agent's own calls
(``snowvault:AgentHello``) are the agent principal's built-in permissions, and the only
ones it has: :mod:`authorization` refuses an agent every other operation before any
policy is read, and refuses the agent operations to every other principal.

Abuse cases: a host name is bounded and restricted to letters, digits, ``.`` and ``-``
(it becomes part of an ARN and a queue label); enrolling a host twice is refused (a
second key for one host would survive the revocation of the first); the secret is
sealed under the root key like every access key and returned only by :func:`enroll`.

Must not depend on the scheduler, the composition root or any interface.
"""

from __future__ import annotations

import re

from snowvault.control import catalog
from snowvault.control.services import accounts, authorization
from snowvault.control.services.base import Caller, Deps
from snowvault.control.services.errors import AccessDenied
from snowvault.core import arn as arns
from snowvault.core.errors import InvalidInput
from snowvault.engine import crypto

_HOST_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]{0,62}$")
_VERSION_RE = re.compile(r"^[\w.+-]{1,64}$")
LABEL_PREFIX = "agent:"
"""Jobs of resources registered with ``--host NAME`` carry ``worker_label = agent:NAME``."""


def check_host(host: object) -> str:
    """``host`` if it is a valid agent host name, else :class:`InvalidInput`."""
    if not isinstance(host, str) or not _HOST_RE.match(host):
        raise InvalidInput(
            detail=f"Host {host!r} is not valid: 1-63 letters, digits, '.' or '-', "
            "starting with a letter or digit"
        )
    return host


def principal_arn(account_id: str, host: str) -> str:
    """The agent principal of ``host`` (IAM path :data:`authorization.AGENT_PATH`)."""
    return arns.build("iam", "", account_id, f"user{authorization.AGENT_PATH}{host}")


def label(host: str) -> str:
    """The queue label of ``host``'s jobs."""
    return LABEL_PREFIX + check_host(host)


def enroll(deps: Deps, caller: Caller, box: crypto.SecretBox, host: str) -> accounts.Credentials:
    """Create the agent principal of ``host`` in the caller's account with one access key
    pair; the secret is in the answer and nowhere else in plaintext."""
    check_host(host)
    arn = principal_arn(caller.account_id, host)
    key_id, secret = accounts.new_key_pair()
    with catalog.db.transaction(deps.engine) as conn:
        catalog.accounts.create_principal(
            conn,
            arn=arn,
            account_id=caller.account_id,
            name=f"{LABEL_PREFIX}{host}",
            created_at=caller.now,
            path=authorization.AGENT_PATH,
        )
        catalog.agents.create(
            conn, account_id=caller.account_id, host=host, principal_arn=arn, now=caller.now
        )
        catalog.accounts.create_access_key(
            conn,
            access_key_id=key_id,
            principal_arn=arn,
            sealed_secret=box.seal(secret.encode(), key_id.encode()),
            created_at=caller.now,
        )
    return accounts.Credentials(key_id, secret, caller.account_id, arn)


def revoke(deps: Deps, caller: Caller, host: str) -> None:
    """Delete the agent of ``host`` with its principal and keys: its next call fails
    signature lookup, and a job it was running loses its lease."""
    check_host(host)
    with catalog.db.transaction(deps.engine) as conn:
        agent = catalog.agents.get(conn, account_id=caller.account_id, host=host)
        catalog.agents.delete(conn, account_id=caller.account_id, host=host)
        catalog.accounts.delete_principal(conn, agent.principal_arn)


def list_agents(deps: Deps, caller: Caller) -> list[catalog.agents.Agent]:
    """The caller's account's agents, by host, with version and last-seen time."""
    with catalog.db.read_transaction(deps.engine) as conn:
        return catalog.agents.list_by_account(conn, caller.account_id)


def hello(deps: Deps, caller: Caller, *, version: str) -> catalog.agents.Agent:
    """AgentHello: record the agent's version and that it was seen now; the agent's row."""
    if not _VERSION_RE.match(version):
        raise InvalidInput(detail="Version must be 1-64 letters, digits, '.', '_', '+' or '-'")
    with catalog.db.transaction(deps.engine) as conn:
        agent = catalog.agents.find_by_principal(conn, caller.principal_arn)
        if agent is None:  # authorization lets only agents here; a race with revoke
            raise AccessDenied(detail=f"{caller.principal_arn} is not an enrolled agent")
        catalog.agents.seen(conn, caller.principal_arn, version=version, now=caller.now)
        return catalog.agents.get(conn, account_id=agent.account_id, host=agent.host)
