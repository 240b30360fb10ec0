"""An agent's key pair through the real server (issue 13, docs/design/agents.md): every
operation of the AWS Backup API, the KMS API and the extension API, signed (wall clock)
with an enrolled agent's keys, is refused with AccessDeniedException except the agent's
own calls; the refusals are in the audit trail; the agent operations are refused to the
account root; `snowvault agent enroll|list|revoke` on the CLI, and a revoked key stops
working at once.
"""

from __future__ import annotations

import json
import re
import subprocess
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.model import Shape

import snowvault
from helpers import stories
from helpers.sv_server import ServerProcess
from snowvault.interfaces.api import extension, handlers

AGENT_OPERATIONS = [
    "AgentHello",
    "AgentClaimJob",
    "AgentHeartbeat",
    "AgentHasBlobs",
    "AgentPutBlobs",
    "AgentPutManifest",
    "AgentFailJob",
    "AgentReadBlobs",
    "AgentFinishRestore",
]
AGENT_OWN = {("snowvault", name) for name in AGENT_OPERATIONS}
_CANDIDATES = (
    "x",
    "abc",
    "vault-1",
    "12345678-1234-1234-1234-123456789012",
    "arn:aws:backup:us-east-1:123456789012:backup-vault:vault-1",
    "arn:aws:kms:us-east-1:123456789012:key/12345678-1234-1234-1234-123456789012",
    "alias/agent",
    "123456789012",
)

SERVER_REQUIRED: dict[str, dict[str, Any]] = {  # required by the server's KMS model
    "CreateGrant": {"GranteePrincipal": "arn:aws:iam::123456789012:root"},
    "ListRetirableGrants": {"RetiringPrincipal": "arn:aws:iam::123456789012:root"},
    "Decrypt": {"CiphertextBlob": b"x" * 64},
    "ReEncrypt": {"CiphertextBlob": b"x" * 64},
}


def _text(shape: Shape) -> str:
    if shape.enum:
        return str(shape.enum[0])
    low = int(shape.metadata.get("min", 0))
    pattern = shape.metadata.get("pattern")
    for value in _CANDIDATES:
        if len(value) >= low and (not pattern or re.fullmatch(pattern, value)):
            return value
    return "x" * max(low, 1)


def minimal(shape: Shape) -> Any:
    """A small value that passes the model's constraints (required members only)."""
    kind = shape.type_name
    if kind == "structure":
        members = shape.members  # type: ignore[attr-defined]
        return {k: minimal(members[k]) for k in shape.required_members}  # type: ignore[attr-defined]
    if kind == "list":
        return [minimal(shape.member)] * int(shape.metadata.get("min", 0))  # type: ignore[attr-defined]
    if kind == "map":
        return {}
    if kind == "string":
        return _text(shape)
    if kind in ("integer", "long"):
        return max(int(shape.metadata.get("min", 1)), 1)
    if kind in ("float", "double"):
        return 1.0
    if kind == "boolean":
        return False
    if kind == "timestamp":
        return datetime(2026, 12, 7, tzinfo=UTC)
    if kind == "blob":
        return b"x"
    return None


def _client(server: ServerProcess, service: str, key: str, secret: str) -> Any:
    options: dict[str, Any] = {
        "endpoint_url": server.endpoint,
        "region_name": server.creds["region"],
        "aws_access_key_id": key,
        "aws_secret_access_key": secret,
        "config": Config(retries={"max_attempts": 1, "mode": "standard"}),
    }
    if service == "snowvault":
        return snowvault.client(**options)
    return boto3.client(service, **options)


def _operations() -> list[tuple[str, str]]:
    served = handlers.implemented()
    served["snowvault"] = set(extension.ACTIONS)
    return sorted((service, op) for service, ops in served.items() for op in ops)


def _call(client: Any, operation: str) -> str:
    """The error code of one call with minimal valid input ("" when it succeeds)."""
    model = client.meta.service_model.operation_model(operation)
    params = minimal(model.input_shape) if model.input_shape is not None else {}
    params.update(SERVER_REQUIRED.get(operation, {}))
    try:
        client._make_api_call(operation, params)
    except ClientError as exc:
        return str(exc.response["Error"]["Code"])
    return ""


def _cli(server: ServerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    done: subprocess.CompletedProcess[str] = stories.sv(server, *args, ok=False)
    return done


def test_an_agent_key_may_call_only_the_agent_operations(snowvault_server: ServerProcess) -> None:
    server = snowvault_server
    root_ext = _client(
        server, "snowvault", server.creds["access_key_id"], server.creds["secret_access_key"]
    )
    server.client().create_backup_vault(BackupVaultName="vault-1")
    doc = root_ext.enroll_agent(Host="web-1")
    key = doc["AccessKey"]
    clients = {
        service: _client(server, service, key["AccessKeyId"], key["SecretAccessKey"])
        for service in ("backup", "kms", "snowvault")
    }
    outcomes = {(s, op): _call(clients[s], op) for s, op in _operations()}
    allowed = {k for k, code in outcomes.items() if code != "AccessDeniedException"}
    assert allowed == AGENT_OWN, {k: outcomes[k] for k in allowed ^ AGENT_OWN}
    assert outcomes[("snowvault", "AgentHello")] == ""
    assert outcomes[("snowvault", "AgentClaimJob")] == ""  # no job for this host: {}
    # a job id that is not its running job is unknown to it, not refused
    assert outcomes[("snowvault", "AgentHeartbeat")] == "ResourceNotFoundException"
    assert len(outcomes) > 100  # the whole API was tried

    # a vault access policy naming everyone does not widen an agent's rights
    everyone = {"Effect": "Allow", "Principal": "*", "Action": "backup:*", "Resource": "*"}
    server.client().put_backup_vault_access_policy(
        BackupVaultName="vault-1",
        Policy=json.dumps({"Version": "2012-10-17", "Statement": [everyone]}),
    )
    with pytest.raises(ClientError, match="AccessDenied"):
        clients["backup"].describe_backup_vault(BackupVaultName="vault-1")

    # the agent operations are the agents' only: the account root is refused them
    with pytest.raises(ClientError, match="only an enrolled agent"):
        root_ext.agent_hello(Version="1.0")

    # the refusals are audited like any signed call
    stories.sv(server, "trail", "flush", "--data-dir", str(server.data_dir))
    found = stories.sv(
        server,
        "trail",
        "lookup",
        "--data-dir",
        str(server.data_dir),
        "--username",
        key["PrincipalArn"],
        "--max-results",
        "1000",
        "--json",
    )
    records = [json.loads(line) for line in found.stdout.splitlines() if line.strip()]
    codes = {  # extension calls are named by their path
        (str(r.get("eventName")).rpartition("/")[2], r.get("errorCode")) for r in _flatten(records)
    }
    assert ("DescribeBackupVault", "AccessDeniedException") in codes, sorted(codes)[:10]
    assert ("AgentHello", None) in codes
    assert ("ListAgents", "AccessDeniedException") in codes


def _flatten(docs: list[Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for doc in docs:
        out += _flatten(doc) if isinstance(doc, list) else [doc]
    return out


def test_enrol_list_revoke_on_the_cli(snowvault_server: ServerProcess) -> None:
    server = snowvault_server
    enrolled = _cli(server, "agent", "enroll", "--host", "db-1", "--json")
    assert enrolled.returncode == 0, enrolled.stderr
    key = json.loads(enrolled.stdout)["AccessKey"]
    agent = _client(server, "snowvault", key["AccessKeyId"], key["SecretAccessKey"])
    assert agent.agent_hello(Version="0.1.0")["Agent"]["Host"] == "db-1"
    listed = _cli(server, "agent", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    [row] = [a for a in json.loads(listed.stdout) if a["Host"] == "db-1"]
    assert row["Version"] == "0.1.0" and row["LastSeenAt"]
    again = _cli(server, "agent", "enroll", "--host", "db-1")
    assert again.returncode != 0 and "already exists" in again.stderr
    assert "Traceback" not in again.stderr
    revoked = _cli(server, "agent", "revoke", "--host", "db-1")
    assert revoked.returncode == 0, revoked.stderr
    with pytest.raises(ClientError) as err:
        agent.agent_hello(Version="0.1.0")
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    listed = _cli(server, "agent", "list", "--json")
    assert all(a["Host"] != "db-1" for a in json.loads(listed.stdout))
