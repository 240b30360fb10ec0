"""A policy's wildcard pattern freezes the whole server (helper Q's probe).

``control/model/iam/conditions.py`` turns a policy glob into a regular expression, one
``.*`` per ``*`` (``_compile_glob``), and Python's backtracking engine needs exponential
time for ``*****...!`` against a text that does not match; it holds the GIL meanwhile,
so every thread of the server stops: other tenants' API calls, ``/health``, the
scheduler, the workers. Anyone who may write a policy gets there: a vault access policy
(PutBackupVaultAccessPolicy on one's own vault), an identity policy (PutUserPolicy), in
a Condition (``StringLike``, ``ArnLike``) or in Resource/Action. The same construction is
in ``control/model/selection.py`` (``_like_regex``, ``_arn_regex``: backup selections,
evaluated by the scheduler).

Fixed: globs are matched without backtracking (``core/wildcard.py``: pattern length
times text length at most), in the IAM model and in selections alike.
Measured here before the fix: one DescribeBackupVault after such a policy left the
server at 70% CPU with /health unanswered for minutes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import boto3
import pytest
import urllib3
from botocore.config import Config

from helpers.sv_server import ServerProcess, new_server

PATTERN = "*" * 40 + "!"


@pytest.fixture
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """Its own server: before the fix it spins until it is killed."""
    server = new_server(tmp_path_factory)
    server.init()
    server.start()
    try:
        yield server
    finally:
        server.stop(9)


def _health(server: ServerProcess) -> int:
    try:
        resp = urllib3.request(
            "GET", server.endpoint + "/health", timeout=urllib3.Timeout(5), retries=False
        )
    except urllib3.exceptions.HTTPError:
        return 0
    return resp.status


def test_a_wildcard_heavy_policy_does_not_freeze_the_server(server: ServerProcess) -> None:
    backup = server.client()
    backup.create_backup_vault(BackupVaultName="redos")
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Deny",
                "Principal": "*",
                "Action": "backup:DescribeBackupVault",
                "Resource": "*",
                "Condition": {"StringLike": {"aws:PrincipalArn": PATTERN}},
            }
        ],
    }
    backup.put_backup_vault_access_policy(BackupVaultName="redos", Policy=json.dumps(policy))
    slow = boto3.client(
        "backup",
        endpoint_url=server.endpoint,
        region_name=server.creds["region"],
        aws_access_key_id=server.creds["access_key_id"],
        aws_secret_access_key=server.creds["secret_access_key"],
        config=Config(retries={"max_attempts": 1}, read_timeout=10, connect_timeout=5),
    )
    try:
        answer = slow.describe_backup_vault(BackupVaultName="redos")
    except Exception as exc:  # a read timeout: the call never came back
        pytest.fail(f"DescribeBackupVault under the policy did not answer: {exc}")
    assert answer["BackupVaultName"] == "redos"  # the Deny's pattern does not match
    assert _health(server) == 200
