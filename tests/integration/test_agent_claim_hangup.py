"""A long-poll AgentClaimJob whose agent hangs up (killed, restarted) claims nothing
afterwards (issue 13, docs/design/agents.md "Failure and networks"): the server's poll
stops when the connection closes, so a job started after the hang-up waits for a live
agent and is its first attempt. Before, the orphaned poll leased it to the host and the
next agent never heard of it (the namespace-agent tests' flakiness); and a job an agent
holds while it claims again is retried at once (tests/unit/services/test_agent_jobs.py).
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from helpers import stories
from helpers.sv_server import ServerProcess, new_server
from snowvault.agent import client

HOST = "hangup-1"
VAULT = "hangup"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, Path]]:
    area = tmp_path_factory.mktemp("hangup-area").resolve()
    server = new_server(tmp_path_factory)
    server.init(allow_paths=(str(area),), lease_seconds=600, sweep_seconds=1, poll_seconds=0.2)
    server.start()
    try:
        yield server, area
    finally:
        server.stop()


def _signed_claim(server: ServerProcess, key: dict[str, str], wait: float) -> bytes:
    """The raw HTTP request of one AgentClaimJob, signed now (wall clock)."""
    url = f"{server.endpoint}{client.PREFIX}AgentClaimJob"
    body = json.dumps({"WaitSeconds": wait, "LeaseSeconds": 600}).encode()
    req = AWSRequest("POST", url, data=body, headers={"Content-Type": "application/json"})
    creds = Credentials(key["AccessKeyId"], key["SecretAccessKey"])
    SigV4Auth(creds, client.SERVICE, server.creds["region"]).add_auth(req)
    parts = urlsplit(url)
    head = [f"POST {parts.path} HTTP/1.1", f"Host: {parts.netloc}"]
    head += [f"{k}: {v}" for k, v in req.headers.items() if k.lower() != "host"]
    head += [f"Content-Length: {len(body)}", "Connection: close", "", ""]
    return "\r\n".join(head).encode() + body


def test_a_claim_whose_agent_hung_up_claims_nothing(site: tuple[ServerProcess, Path]) -> None:
    server, area = site
    backup = server.client()
    backup.create_backup_vault(BackupVaultName=VAULT)
    key = stories.sv_json(server, "agent", "enroll", "--host", HOST)["AccessKey"]
    source = area / "data"
    source.mkdir()
    (source / "a.txt").write_text("hello")
    arn = stories.sv_json(
        server, "resource", "add", "directory", str(source), "--host", HOST, "--name", "d"
    )["ResourceArn"]

    # an agent asks with a 20 s poll and dies at once (its socket closes)
    parts = urlsplit(server.endpoint)
    with socket.create_connection((parts.hostname, parts.port), timeout=5) as sock:
        sock.sendall(_signed_claim(server, key, wait=20))
        time.sleep(1.0)  # the server is polling now
    job_id = backup.start_backup_job(
        BackupVaultName=VAULT, ResourceArn=arn, IamRoleArn=stories.ROLE
    )["BackupJobId"]
    time.sleep(3.0)  # several of the dead poll's rounds (0.5 s each), were it still polling
    state: dict[str, Any] = backup.describe_backup_job(BackupJobId=job_id)
    assert state["State"] in ("CREATED", "PENDING"), state  # nobody holds it

    api = client.AgentApi(
        server.endpoint, server.creds["region"], key["AccessKeyId"], key["SecretAccessKey"]
    )
    job = api.call("AgentClaimJob", {"WaitSeconds": 0, "LeaseSeconds": 600}).get("Job")
    assert job is not None and job["JobId"] == job_id
    assert job["Attempt"] == 1  # the first attempt goes to the live agent
