"""The IAM calls cannot name an agent (helper Q's probe; docs/design/agents.md, "Who is an
agent": "CreateUser, DeleteUser, PutUserPolicy and CreateAccessKey can never name an
agent").

Found: only CreateUser checked the user name. CreateAccessKey with UserName
``snowvault-agent/HOST`` resolved to the agent's principal and answered a key pair of
that agent, so an IAM user allowed ``iam:CreateAccessKey`` (or ``iam:*``) could act as the
host in the job protocol (claim its jobs, receive its resources' secrets and its restore
jobs' data); DeleteUser could delete the agent's principal without ending its jobs.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from helpers.sv_server import ServerProcess

HOST = "probe-imp-host"


@pytest.fixture(scope="module")
def admin(snowvault_server: ServerProcess) -> dict[str, str]:
    """An IAM user allowed every IAM action (not the account root)."""
    server = snowvault_server
    server.ext("EnrollAgent", {"Host": HOST})
    server.ext("CreateUser", {"UserName": "probe-admin"})
    key: dict[str, str] = server.ext("CreateAccessKey", {"UserName": "probe-admin"})["AccessKey"]
    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "iam:*", "Resource": "*"}],
    }
    server.ext(
        "PutUserPolicy",
        {"UserName": "probe-admin", "PolicyName": "iam", "PolicyDocument": json.dumps(policy)},
    )
    return key


AGENT_NAMES = [f"snowvault-agent/{HOST}", f"agent:{HOST}", "a/b", "x:y"]
POLICY = json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
)


@pytest.mark.parametrize("name", AGENT_NAMES)
@pytest.mark.parametrize(
    ("action", "extra"),
    [
        ("CreateAccessKey", {}),
        ("PutUserPolicy", {"PolicyName": "p", "PolicyDocument": POLICY}),
        ("GetUserPolicy", {"PolicyName": "p"}),
        ("DeleteUserPolicy", {"PolicyName": "p"}),
        ("DeleteUser", {}),
    ],
)
def test_no_iam_call_names_an_agent(
    snowvault_server: ServerProcess,
    admin: dict[str, str],
    name: str,
    action: str,
    extra: dict[str, Any],
) -> None:
    status, doc = snowvault_server.agent_call(admin, action, {"UserName": name, **extra})
    assert (status, doc.get("__type")) == (400, "InvalidParameterValueException"), doc
    assert "AccessKey" not in doc
    agents = snowvault_server.ext("ListAgents", {})["Agents"]
    assert [a["Host"] for a in agents if a["Host"] == HOST] == [HOST]  # still enrolled
