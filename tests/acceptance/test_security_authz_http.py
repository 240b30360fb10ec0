"""Authorization is complete, over HTTP: a real `snowvault server --test-mode`
subprocess, boto3 and SigV4 signed with the wall clock, second and third IAM users.

- A vault access policy Deny holds for the operations that name the vault only through a
  recovery point ARN or a job id (StartRestoreJob, ListRecoveryPointContents,
  DescribeBackupJob, DescribeRestoreJob, ...), for a user and for the account root.
- An identity-policy-only user without the actions is refused them.
- ``snowvault:Path`` (StringLike) confines a user's restores, registrations and backups
  to a prefix, after ``..`` and symlinks are resolved.

The breadth (every operation of the model and every extension action) is in
tests/unit/services/test_security_authz_table.py.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import urllib3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from helpers.sv_server import ServerProcess, new_server

ROLE = "arn:aws:iam::123456789012:role/backup"
VAULT = "authz"
DENIED = [
    "backup:StartRestoreJob",
    "backup:ListRecoveryPointContents",
    "backup:DescribeRecoveryPoint",
    "backup:DescribeBackupJob",
    "backup:DescribeRestoreJob",
    "backup:GetRecoveryPointRestoreMetadata",
    "backup:DeleteRecoveryPoint",
]
Ext = Callable[[str, dict[str, Any]], tuple[int, dict[str, Any]]]


def _doc(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def _signed_ext(server: ServerProcess, key: str, secret: str) -> Ext:
    """Extension API calls signed (wall clock) with one principal's key: (status, body)."""

    def call(action: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        data = json.dumps(body).encode()
        url = f"{server.endpoint}/_snowvault/v1/{action}"
        req = AWSRequest("POST", url, data=data, headers={"Content-Type": "application/json"})
        SigV4Auth(Credentials(key, secret), "snowvault", server.creds["region"]).add_auth(req)
        resp = urllib3.request(
            "POST", url, body=data, headers=dict(req.headers.items()), retries=False
        )
        return resp.status, json.loads(resp.data or b"{}")

    return call


@dataclass
class User:
    arn: str
    backup: Any  # boto3 client
    ext: Ext


@dataclass
class Story:
    server: ServerProcess
    root: Any
    root_ext: Ext
    tmp: Path  # resolved
    resource_arn: str
    rp: str
    doomed_rp: str
    backup_job_id: str
    restore_job_id: str

    def user(self, name: str, policy: str) -> User:
        ok = self.root_ext
        assert ok("CreateUser", {"UserName": name})[0] == 200
        body = {"UserName": name, "PolicyName": "p", "PolicyDocument": policy}
        assert ok("PutUserPolicy", body)[0] == 200
        status, doc = ok("CreateAccessKey", {"UserName": name})
        assert status == 200, doc
        key = doc["AccessKey"]
        client = self.server.client(key=key["AccessKeyId"], secret=key["SecretAccessKey"])
        ext = _signed_ext(self.server, key["AccessKeyId"], key["SecretAccessKey"])
        return User(key["PrincipalArn"], client, ext)


def _wait(call: Callable[[], dict[str, Any]], key: str, done: tuple[str, ...]) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        doc = call()
        if doc[key] in done or time.monotonic() > deadline:
            return doc
        time.sleep(0.2)


def _backup(story_root: Any, resource_arn: str) -> dict[str, Any]:
    job = story_root.start_backup_job(
        BackupVaultName=VAULT, ResourceArn=resource_arn, IamRoleArn=ROLE
    )
    doc = _wait(
        lambda: story_root.describe_backup_job(BackupJobId=job["BackupJobId"]),
        "State",
        ("COMPLETED", "FAILED", "ABORTED", "EXPIRED", "PARTIAL"),
    )
    assert doc["State"] == "COMPLETED", doc
    return doc


def _register(ext: Ext, name: str, source: Path) -> str:
    status, doc = ext(
        "RegisterResource", {"ResourceType": "Directory", "Name": name, "Source": str(source)}
    )
    assert status == 200, doc
    return str(doc["ResourceArn"])


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Story]:
    server = new_server(tmp_path_factory)
    server.init(lease_seconds=10, sweep_seconds=1, poll_seconds=0.2)
    server.start()
    try:
        tmp = tmp_path_factory.mktemp("authz-http").resolve()
        source = tmp / "srcs" / "one"
        source.mkdir(parents=True)
        (source / "a.bin").write_bytes(random.Random(8).randbytes(20_000))
        root = server.client()
        root_ext = _signed_ext(
            server, server.creds["access_key_id"], server.creds["secret_access_key"]
        )
        root.create_backup_vault(BackupVaultName=VAULT)
        resource_arn = _register(root_ext, "one", source)
        first = _backup(root, resource_arn)
        doomed = _backup(root, resource_arn)
        restore = root.start_restore_job(
            RecoveryPointArn=first["RecoveryPointArn"],
            Metadata={"targetPath": str(tmp / "restored-by-root")},
            IamRoleArn=ROLE,
        )
        _wait(
            lambda: root.describe_restore_job(RestoreJobId=restore["RestoreJobId"]),
            "Status",
            ("COMPLETED", "FAILED", "ABORTED"),
        )
        yield Story(
            server,
            root,
            root_ext,
            tmp,
            resource_arn,
            first["RecoveryPointArn"],
            doomed["RecoveryPointArn"],
            first["BackupJobId"],
            restore["RestoreJobId"],
        )
    finally:
        server.stop()
    failures = [line for line in server.log.read_text().splitlines() if " status=5" in line]
    assert not failures, f"the server answered 5xx: {failures}"


def _outcome(call: Callable[[], Any]) -> tuple[str, int, str]:
    """("ok", 200, "") or the AWS error code, HTTP status and message."""
    try:
        call()
    except ClientError as exc:
        err = exc.response
        return (
            err["Error"]["Code"],
            err["ResponseMetadata"]["HTTPStatusCode"],
            err["Error"].get("Message", ""),
        )
    return "ok", 200, ""


def _ext_outcome(ext: Ext, action: str, body: dict[str, Any]) -> tuple[str, int, str]:
    status, doc = ext(action, body)
    if status == 200:
        return "ok", 200, ""
    return str(doc.get("__type")), status, str(doc.get("message", ""))


def _calls(story: Story, who: User | None, target: str) -> dict[str, Callable[[], Any]]:
    """The seven representative operations, by action, as ``who`` (None: the root)."""
    client = story.root if who is None else who.backup
    ext = story.root_ext if who is None else who.ext
    point = {"BackupVaultName": VAULT, "RecoveryPointArn": story.rp}
    return {
        "backup:StartRestoreJob": lambda: client.start_restore_job(
            RecoveryPointArn=story.rp, Metadata={"targetPath": target}, IamRoleArn=ROLE
        ),
        "backup:ListRecoveryPointContents": lambda: _raise_ext(
            ext, "ListRecoveryPointContents", {"RecoveryPointArn": story.rp}
        ),
        "backup:DescribeRecoveryPoint": lambda: client.describe_recovery_point(**point),
        "backup:DescribeBackupJob": lambda: client.describe_backup_job(
            BackupJobId=story.backup_job_id
        ),
        "backup:DescribeRestoreJob": lambda: client.describe_restore_job(
            RestoreJobId=story.restore_job_id
        ),
        "backup:GetRecoveryPointRestoreMetadata": lambda: (
            client.get_recovery_point_restore_metadata(**point)
        ),
        "backup:DeleteRecoveryPoint": lambda: client.delete_recovery_point(
            BackupVaultName=VAULT, RecoveryPointArn=story.doomed_rp
        ),
    }


def _raise_ext(ext: Ext, action: str, body: dict[str, Any]) -> None:
    """An extension call that raises a botocore-like ClientError on a refusal."""
    status, doc = ext(action, body)
    if status != 200:
        error = {"Code": doc.get("__type"), "Message": doc.get("message", "")}
        raise ClientError({"Error": error, "ResponseMetadata": {"HTTPStatusCode": status}}, action)


def test_a_vault_policy_deny_holds_for_every_way_of_naming_the_vault(story: Story) -> None:
    bob = story.user("bob", _doc({"Effect": "Allow", "Action": "backup:*", "Resource": "*"}))
    carol = story.user(
        "carol", _doc({"Effect": "Allow", "Action": "backup:ListBackupVaults", "Resource": "*"})
    )
    deny = {"Sid": "Hold", "Effect": "Deny", "Principal": "*", "Action": DENIED, "Resource": "*"}
    story.root.put_backup_vault_access_policy(BackupVaultName=VAULT, Policy=_doc(deny))

    for who, name in ((bob, "bob"), (None, "root")):
        calls = _calls(story, who, str(story.tmp / f"denied-{name}"))
        assert set(calls) == set(DENIED)
        for action, call in calls.items():
            code, status, message = _outcome(call)
            assert (code, status) == ("AccessDeniedException", 403), (name, action, message)
            assert action in message and "explicit deny in a resource-based policy" in message
    assert not (story.tmp / "denied-bob").exists() and not (story.tmp / "denied-root").exists()

    # without the vault's Deny: carol still lacks the actions; bob may do all of it
    story.root.delete_backup_vault_access_policy(BackupVaultName=VAULT)
    for action, call in _calls(story, carol, str(story.tmp / "denied-carol")).items():
        code, status, message = _outcome(call)
        assert (code, status) == ("AccessDeniedException", 403), (action, message)
        assert "because no identity-based policy allows" in message

    for action, call in _calls(story, bob, str(story.tmp / "allowed-bob")).items():
        assert _outcome(call) == ("ok", 200, ""), action
    points = story.root.list_recovery_points_by_backup_vault(BackupVaultName=VAULT)
    assert story.doomed_rp not in {p["RecoveryPointArn"] for p in points["RecoveryPoints"]}


def test_snowvault_path_confines_a_user_to_a_prefix(story: Story) -> None:
    base = story.tmp
    (base / "restores").mkdir()
    (base / "elsewhere").mkdir()
    os.symlink(base / "elsewhere", base / "restores" / "link")

    def confined(action: str, pattern: str) -> dict[str, Any]:
        return {
            "Effect": "Allow",
            "Action": action,
            "Resource": "*",
            "Condition": {"StringLike": {"snowvault:Path": pattern}},
        }

    dave = story.user(
        "dave",
        _doc(
            confined("backup:StartRestoreJob", f"{base}/restores/*"),
            confined("backup:RegisterResource", f"{base}/srcs/*"),
            confined("backup:StartBackupJob", f"{base}/srcs/*"),
        ),
    )

    def restore(target: str) -> tuple[str, int, str]:
        return _outcome(
            lambda: dave.backup.start_restore_job(
                RecoveryPointArn=story.rp, Metadata={"targetPath": target}, IamRoleArn=ROLE
            )
        )

    assert restore(f"{base}/restores/a") == ("ok", 200, "")
    for target in (
        f"{base}/elsewhere/a",
        f"{base}/restores/../elsewhere/b",
        f"{base}/restores/link/c",
        "/etc/cron.d",
    ):
        code, status, message = restore(target)
        assert (code, status) == ("AccessDeniedException", 403), (target, message)
        assert "backup:StartRestoreJob" in message
    assert sorted(os.listdir(base / "elsewhere")) == []

    def register(name: str, source: Path) -> tuple[str, int, str]:
        body = {"ResourceType": "Directory", "Name": name, "Source": str(source)}
        return _ext_outcome(dave.ext, "RegisterResource", body)

    (base / "srcs" / "two").mkdir()
    (base / "srcs" / "two" / "f.txt").write_text("two")
    assert register("two", base / "srcs" / "two") == ("ok", 200, "")
    code, status, message = register("else", base / "elsewhere")
    assert (code, status) == ("AccessDeniedException", 403), message
    code, status, _ = register("dots", base / "srcs" / ".." / "elsewhere")
    assert (code, status) == ("AccessDeniedException", 403)

    outside = _register(story.root_ext, "outside", base / "elsewhere")
    two = f"{story.resource_arn.rsplit('/', 1)[0]}/two"

    def start(resource_arn: str) -> tuple[str, int, str]:
        return _outcome(
            lambda: dave.backup.start_backup_job(
                BackupVaultName=VAULT, ResourceArn=resource_arn, IamRoleArn=ROLE
            )
        )

    assert start(two) == ("ok", 200, "")
    code, status, message = start(outside)
    assert (code, status) == ("AccessDeniedException", 403), message
