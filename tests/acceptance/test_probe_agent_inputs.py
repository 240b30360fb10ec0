"""An attacker's inputs to the agent job calls, through a real server (helper Q's probe):
values a botocore model allows or an agent can send must answer 200 or a clean 4xx AWS
error, never 500 (a 5xx also makes the real agent ask again for three minutes).

Defects found: AgentHeartbeat with BytesTransferred 2**63-1 (a valid Long) answered 500
(it went through a float and overflowed SQLite's INTEGER); AgentPutManifest of a
Manifest object that is not a recovery point manifest (``{}``, no ``time``, a version
other than 1) answered 500 DependencyFailureException (from_dict raises the engine's
IntegrityError, which the manifest check did not take as the agent's mistake).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from helpers.stories import ROLE
from helpers.sv_server import ServerProcess, new_server

LONG_MAX = 2**63 - 1


@pytest.fixture(scope="module")
def agent_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """Its own server: a 500 here would be counted by the shared fixture's teardown
    against every test of the module."""
    server = new_server(tmp_path_factory)
    server.init()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _running_job(server: ServerProcess, host: str, tmp: Any) -> tuple[dict[str, str], str]:
    """An enrolled agent of ``host`` and the id of a backup job it has claimed."""
    key = server.ext("EnrollAgent", {"Host": host})["AccessKey"]
    source = tmp / host
    source.mkdir()
    (source / "f").write_text("x")
    arn = server.ext(
        "RegisterResource",
        {
            "ResourceType": "Directory",
            "Name": host,
            "Source": str(source),
            "WorkerLabel": f"agent:{host}",
        },
    )["ResourceArn"]
    backup = server.client()
    backup.create_backup_vault(BackupVaultName=host)
    backup.start_backup_job(BackupVaultName=host, ResourceArn=arn, IamRoleArn=ROLE)
    status, doc = server.agent_call(key, "AgentClaimJob", {"WaitSeconds": 5})
    assert status == 200 and "Job" in doc, (status, doc)
    return key, str(doc["Job"]["JobId"])


def test_heartbeat_takes_any_long_as_bytes_transferred(
    agent_server: ServerProcess, tmp_path: Any
) -> None:
    key, job_id = _running_job(agent_server, "probe-beat", tmp_path)
    for value in (LONG_MAX, LONG_MAX - 1, 2**53 + 1):
        status, doc = agent_server.agent_call(
            key, "AgentHeartbeat", {"JobId": job_id, "BytesTransferred": value}
        )
        assert status == 200, (value, status, doc)
        assert doc["State"] == "RUNNING"
        described = agent_server.client().describe_backup_job(BackupJobId=job_id)
        assert described["BytesTransferred"] == value  # kept exactly, not through a float
    for sent, kept in ((1e300, LONG_MAX), (-5, 0), (12.7, 12)):  # bounded, as before
        status, doc = agent_server.agent_call(
            key, "AgentHeartbeat", {"JobId": job_id, "BytesTransferred": sent}
        )
        assert status == 200, (sent, status, doc)
        described = agent_server.client().describe_backup_job(BackupJobId=job_id)
        assert described["BytesTransferred"] == kept
    for bad in (2**64, "12", True):  # beyond a Long (the strict JSON parser), not a number
        status, doc = agent_server.agent_call(
            key, "AgentHeartbeat", {"JobId": job_id, "BytesTransferred": bad}
        )
        assert 400 <= status < 500, (bad, status, doc)


@pytest.mark.parametrize(
    "manifest",
    [{}, {"kind": "directory"}, {"version": 1, "kind": "directory"}, {"version": 2}],
    ids=["empty", "kind-only", "no-time", "version-2"],
)
def test_a_manifest_that_is_no_manifest_is_the_agents_mistake(
    agent_server: ServerProcess, tmp_path: Any, manifest: dict[str, Any]
) -> None:
    host = f"probe-man-{len(json.dumps(manifest))}"
    key, job_id = _running_job(agent_server, host, tmp_path)
    status, doc = agent_server.agent_call(
        key, "AgentPutManifest", {"JobId": job_id, "Manifest": manifest}
    )
    assert (status, doc.get("__type")) == (400, "InvalidParameterValueException"), doc
