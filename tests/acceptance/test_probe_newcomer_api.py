"""A new user's first session against a server started as `make run` starts it
(`snowvault run --data-dir DIR --port PORT`, wall clock, no test mode), with boto3 and
the AWS CLI signing with the wall clock (helper Q's probe): a second account, pagination
tokens from another account and another operation, forged tokens, huge MaxResults, and
malformed-but-well-typed input on ten operations the earlier probes did not cover
(PutBackupVaultLockConfiguration, CreateLegalHold, CreateBackupPlan, UpdateRegionSettings,
StartBackupJob, ListBackupJobs, PutBackupVaultAccessPolicy, PutBackupVaultNotifications,
StartCopyJob, GetBackupPlanFromJSON).

Found: a NextToken whose position holds a value of the wrong type (an object, a list, a
lone surrogate, a datetime without offset) answers 500 on every list
(``control/catalog/pagination.py``: ``_after``/``_from_json`` check the count of values
but not their types); KMS ListKeys/ListAliases markers too. Fixed: ``_from_json``
checks each value against its column's type (InvalidToken, 400). Everything else held.
"""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
import urllib3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from helpers.stories import AWS
from helpers.sv_server import SNOWVAULT, free_port

REGION = "us-east-1"


class RunServer:
    """`snowvault run` in a fresh data directory and HOME, as `make run` does."""

    def __init__(self, root: Path) -> None:
        self.home = root / "home"
        self.home.mkdir()
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.log = root / "run.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        self.env = env | {"HOME": str(self.home), "XDG_CONFIG_HOME": str(self.home / ".config")}
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [SNOWVAULT, "run", "--data-dir", str(root / "data"), "--port", str(self.port)],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60
        text = ""
        while time.monotonic() < deadline and "listening on" not in text:
            assert self.proc.poll() is None, self.log.read_text()
            time.sleep(0.1)
            text = self.log.read_text(errors="replace")
        exports = dict(re.findall(r"export (AWS_[A-Z_]+)=(\S+)", text))
        self.key = exports["AWS_ACCESS_KEY_ID"]
        self.secret = exports["AWS_SECRET_ACCESS_KEY"]
        assert exports["AWS_ENDPOINT_URL"] == self.endpoint

    def client(self, key: str | None = None, secret: str | None = None) -> Any:
        return boto3.client(
            "backup",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=key or self.key,
            aws_secret_access_key=secret or self.secret,
            config=Config(retries={"max_attempts": 1}, parameter_validation=False),
        )

    def ext(self, action: str, body: dict[str, Any]) -> dict[str, Any]:
        data = json.dumps(body).encode()
        url = f"{self.endpoint}/_snowvault/v1/{action}"
        req = AWSRequest("POST", url, data=data, headers={"Content-Type": "application/json"})
        SigV4Auth(Credentials(self.key, self.secret), "snowvault", REGION).add_auth(req)
        resp = urllib3.request("POST", url, body=data, headers=dict(req.headers), retries=False)
        assert resp.status == 200, resp.data
        doc: dict[str, Any] = json.loads(resp.data)
        return doc

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=20)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunServer]:
    server = RunServer(tmp_path_factory.mktemp("newcomer"))
    try:
        yield server
    finally:
        server.stop()
    fives = [line for line in server.log.read_text().splitlines() if " status=5" in line]
    assert not fives, fives  # no call of the whole session answered a 5xx


@pytest.fixture(scope="module")
def accounts(run: RunServer) -> dict[str, Any]:
    a = run.client()
    for name in ("alpha", "beta", "gamma"):
        a.create_backup_vault(BackupVaultName=name)
    key = run.ext("CreateAccount", {"AccountName": "second"})["AccessKey"]
    b = run.client(key["AccessKeyId"], key["SecretAccessKey"])
    b.create_backup_vault(BackupVaultName="bees")
    return {"a": a, "b": b}


def _code(call: Any, **kw: Any) -> tuple[str, int]:
    try:
        call(**kw)
    except ClientError as exc:
        return exc.response["Error"]["Code"], exc.response["ResponseMetadata"]["HTTPStatusCode"]
    return "ok", 200


def _forged(kind: str, values: list[Any]) -> str:
    raw = json.dumps({"k": kind, "v": values}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def test_a_token_of_another_account_or_operation_reveals_nothing(
    accounts: dict[str, Any],
) -> None:
    a, b = accounts["a"], accounts["b"]
    page = a.list_backup_vaults(MaxResults=1)
    token = page["NextToken"]
    seen = b.list_backup_vaults(NextToken=token)["BackupVaultList"]
    a_account = page["BackupVaultList"][0]["BackupVaultArn"].split(":")[4]
    assert all(v["BackupVaultArn"].split(":")[4] != a_account for v in seen), seen
    assert "bees" in {v["BackupVaultName"] for v in b.list_backup_vaults()["BackupVaultList"]}
    for call, kw in (
        (a.list_backup_jobs, {}),
        (a.list_restore_jobs, {}),
        (a.list_recovery_points_by_backup_vault, {"BackupVaultName": "alpha"}),
        (a.list_backup_plans, {}),
        (b.list_protected_resources, {}),
    ):
        assert _code(call, NextToken=token, **kw) == ("InvalidParameterValueException", 400)


@pytest.mark.parametrize("value", [0, -1, 1001, 2**31 - 1, 2**63 - 1, 10**30])
def test_huge_or_negative_max_results_are_refused(accounts: dict[str, Any], value: int) -> None:
    a = accounts["a"]
    for call, kw in (
        (a.list_backup_vaults, {}),
        (a.list_backup_jobs, {}),
        (a.list_recovery_points_by_backup_vault, {"BackupVaultName": "alpha"}),
        (a.list_legal_holds, {}),
    ):
        assert _code(call, MaxResults=value, **kw) == ("InvalidParameterValueException", 400)


FORGED = [
    ("list_backup_vaults", "vaults", {}, [{"a": 1}]),
    ("list_backup_vaults", "vaults", {}, ["\ud800"]),
    ("list_protected_resources", "resources", {}, [[1, 2]]),
    ("list_backup_jobs", "backup-jobs", {}, ["2026-01-01T00:00:00", "x"]),
    ("list_restore_jobs", "restore-jobs", {}, ["2026-01-01T00:00:00+00:00", {"a": 1}]),
    ("list_backup_plans", "backup-plans", {}, ["2026-01-01T00:00:00+00:00", "\ud800"]),
    ("list_legal_holds", "legal-holds", {}, ["2026-01-01T00:00:00", "x"]),
    ("list_copy_jobs", "copy-jobs", {}, ["2026-01-01T00:00:00+00:00", [1]]),
    (
        "list_recovery_points_by_backup_vault",
        "rp-by-vault",
        {"BackupVaultName": "alpha"},
        ["2026-01-01T00:00:00", "x"],
    ),
]


def test_a_forged_token_of_the_right_list_is_a_4xx(accounts: dict[str, Any]) -> None:
    a = accounts["a"]
    answers = {}
    for op, kind, kw, values in FORGED:
        answers[(op, str(values))] = _code(getattr(a, op), NextToken=_forged(kind, values), **kw)
    kms = boto3.client(
        "kms",
        endpoint_url=a.meta.endpoint_url,
        region_name=REGION,
        aws_access_key_id=a._request_signer._credentials.access_key,
        aws_secret_access_key=a._request_signer._credentials.secret_key,
        config=Config(retries={"max_attempts": 1}),
    )
    for kind, call, values in (
        ("kms-keys", kms.list_keys, ["2026-01-01T00:00:00", "x"]),
        ("kms-aliases", kms.list_aliases, ["\ud800"]),
    ):
        answers[(kind, str(values))] = _code(call, Marker=_forged(kind, values))
    fives = {k: v for k, v in answers.items() if v[1] >= 500}
    assert not fives, fives
    kms_codes = {v[0] for k, v in answers.items() if k[0].startswith("kms-")}
    assert kms_codes == {"InvalidMarkerException"}, kms_codes  # KMS's own code for a Marker


def _plan(**rule: Any) -> dict[str, Any]:
    base = {"RuleName": "r", "TargetBackupVaultName": "alpha"}
    return {"BackupPlanName": f"p{len(rule)}", "Rules": [base | rule]}


def _lock(**kw: Any) -> Any:
    return lambda c: c.put_backup_vault_lock_configuration(BackupVaultName="alpha", **kw)


def _policy(condition: dict[str, Any]) -> Any:
    doc = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Deny", "Principal": "*", "Action": "backup:*", "Resource": "*"}
            | {"Condition": condition}
        ],
    }
    return lambda c: c.put_backup_vault_access_policy(
        BackupVaultName="beta", Policy=json.dumps(doc)
    )


ROLE = "arn:aws:iam::123456789012:role/r"
MALFORMED: list[tuple[str, Any]] = [
    ("lock min above max", _lock(MinRetentionDays=10, MaxRetentionDays=5)),
    ("lock min 2**62", _lock(MinRetentionDays=2**62)),
    ("lock changeable 0", _lock(MinRetentionDays=1, ChangeableForDays=0)),
    (
        "legal hold FromDate after ToDate",
        lambda c: c.create_legal_hold(
            Title="t",
            Description="d",
            RecoveryPointSelection={
                "VaultNames": ["alpha"],
                "DateRange": {"FromDate": datetime(2030, 1, 1), "ToDate": datetime(2020, 1, 1)},
            },
        ),
    ),
    (
        "legal hold naming another account's vault",
        lambda c: c.create_legal_hold(
            Title="t",
            Description="d",
            RecoveryPointSelection={
                "VaultNames": ["arn:aws:backup:us-east-1:123456789012:backup-vault:x"]
            },
        ),
    ),
    (
        "plan time zone",
        lambda c: c.create_backup_plan(BackupPlan=_plan(ScheduleExpressionTimezone="Mars/Base")),
    ),
    (
        "plan start window",
        lambda c: c.create_backup_plan(BackupPlan=_plan(StartWindowMinutes=2**62)),
    ),
    (
        "plan completion before start",
        lambda c: c.create_backup_plan(
            BackupPlan=_plan(StartWindowMinutes=600, CompletionWindowMinutes=60)
        ),
    ),
    (
        "plan lifecycle",
        lambda c: c.create_backup_plan(BackupPlan=_plan(Lifecycle={"DeleteAfterDays": 2**63 - 1})),
    ),
    (
        "region settings unknown type",
        lambda c: c.update_region_settings(ResourceTypeOptInPreference={"Nope": True}),
    ),
    (
        "start backup negative lifecycle",
        lambda c: c.start_backup_job(
            BackupVaultName="alpha",
            ResourceArn="arn:aws:snowvault:us-east-1:123456789012:directory/none",
            IamRoleArn=ROLE,
            Lifecycle={"DeleteAfterDays": -5},
        ),
    ),
    ("list jobs in year 1", lambda c: c.list_backup_jobs(ByCreatedAfter=datetime(1, 1, 1))),
    ("list jobs unknown state", lambda c: c.list_backup_jobs(ByState="NOPE")),
    ("policy date condition", _policy({"DateLessThan": {"aws:CurrentTime": "not-a-date"}})),
    ("policy address condition", _policy({"IpAddress": {"aws:SourceIp": "999.1.1.1/99"}})),
    (
        "notifications unknown event",
        lambda c: c.put_backup_vault_notifications(
            BackupVaultName="alpha",
            SNSTopicArn="arn:aws:sns:us-east-1:123456789012:t",
            BackupVaultEvents=["NOPE"],
        ),
    ),
    (
        "plan from JSON without a name",
        lambda c: c.get_backup_plan_from_json(
            BackupPlanTemplateJson=json.dumps({"BackupPlan": {"Rules": []}})
        ),
    ),
]


@pytest.mark.parametrize("label,call", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_input_is_an_invalid_parameter_and_changes_nothing(
    accounts: dict[str, Any], label: str, call: Any
) -> None:
    a = accounts["a"]
    before = (
        a.list_backup_plans()["BackupPlansList"],
        a.list_legal_holds()["LegalHolds"],
        a.describe_backup_vault(BackupVaultName="alpha").get("Locked"),
    )
    code, status = _code(lambda: call(a))
    assert status == 400 and code in {"InvalidParameterValueException", "ValidationException"}, (
        label,
        code,
    )
    after = (
        a.list_backup_plans()["BackupPlansList"],
        a.list_legal_holds()["LegalHolds"],
        a.describe_backup_vault(BackupVaultName="alpha").get("Locked"),
    )
    assert after == before


def test_a_copy_to_a_malformed_destination_is_refused(accounts: dict[str, Any]) -> None:
    a = accounts["a"]
    code, status = _code(
        a.start_copy_job,
        RecoveryPointArn="arn:aws:backup:us-east-1:123456789012:recovery-point:x",
        SourceBackupVaultName="alpha",
        DestinationBackupVaultArn="not-an-arn",
        IamRoleArn=ROLE,
    )
    assert status in (400, 403) and code != "ok", code
    assert a.list_copy_jobs()["CopyJobs"] == []


@pytest.mark.skipif(not Path(AWS).exists(), reason="awscli (dev extra) missing")
def test_the_aws_cli_gets_one_clean_error(run: RunServer, accounts: dict[str, Any]) -> None:
    env = run.env | {
        "AWS_ACCESS_KEY_ID": run.key,
        "AWS_SECRET_ACCESS_KEY": run.secret,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ENDPOINT_URL": run.endpoint,
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        "AWS_PAGER": "",
        "AWS_MAX_ATTEMPTS": "1",
    }

    def aws(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [AWS, "backup", *args, "--output", "json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    token = accounts["a"].list_backup_vaults(MaxResults=1)["NextToken"]
    for args, expected in (
        (("list-backup-jobs", "--next-token", token), "InvalidParameterValueException"),
        (("list-backup-jobs", "--next-token", "%%%not-a-token"), "InvalidParameterValueException"),
        (
            ("put-backup-vault-lock-configuration", "--backup-vault-name", "alpha",
             "--min-retention-days", "10", "--max-retention-days", "5"),
            "InvalidParameterValueException",
        ),
        (
            ("create-legal-hold", "--title", "t", "--description", "d",
             "--recovery-point-selection",
             '{"VaultNames":["alpha"],"DateRange":{"FromDate":"2030-01-01","ToDate":"2020-01-01"}}'),
            "InvalidParameterValueException",
        ),
    ):  # fmt: skip
        done = aws(*args)
        assert done.returncode in (252, 254, 255), (args, done.stdout)
        assert expected in done.stderr, (args, done.stderr)
        assert "Traceback" not in done.stderr
    listed = json.loads(aws("list-backup-vaults", "--max-results", "2").stdout)
    assert len(listed["BackupVaultList"]) == 2 and listed["NextToken"]


def test_another_accounts_resource_lists_nothing(run: RunServer, accounts: dict[str, Any]) -> None:
    """B names A's protected resource in the by-resource calls: nothing of A's comes back
    (make run's default rule allows HOME, where the source lives)."""
    a, b = accounts["a"], accounts["b"]
    source = run.home / "photos"
    source.mkdir(exist_ok=True)
    (source / "cat.txt").write_text("meow\n")
    arn = run.ext(
        "RegisterResource", {"ResourceType": "Directory", "Name": "photos", "Source": str(source)}
    )["ResourceArn"]
    job_id = a.start_backup_job(BackupVaultName="alpha", ResourceArn=arn, IamRoleArn=ROLE)[
        "BackupJobId"
    ]
    deadline = time.monotonic() + 60
    while (job := a.describe_backup_job(BackupJobId=job_id))["State"] not in {
        "COMPLETED",
        "FAILED",
    }:
        assert time.monotonic() < deadline, job
        time.sleep(0.2)
    assert job["State"] == "COMPLETED", job.get("StatusMessage")
    rp = job["RecoveryPointArn"]
    assert a.list_recovery_points_by_resource(ResourceArn=arn)["RecoveryPoints"]
    for call, kw in (
        (b.list_recovery_points_by_resource, {"ResourceArn": arn}),
        (b.list_restore_jobs_by_protected_resource, {"ResourceArn": arn}),
        (b.describe_protected_resource, {"ResourceArn": arn}),
        (b.list_backup_jobs, {"ByResourceArn": arn}),
        (b.describe_recovery_point, {"BackupVaultName": "alpha", "RecoveryPointArn": rp}),
    ):
        try:
            answer = call(**kw)
        except ClientError as exc:
            status = exc.response["ResponseMetadata"]["HTTPStatusCode"]
            assert status in (400, 403, 404), (call, exc)
            continue
        text = json.dumps(answer, default=str)
        assert rp not in text and job_id not in text, (call, text[:300])
