"""Terraform's hashicorp/aws provider against a real server: apply, plan (no changes),
update, destroy.

The configuration has a KMS key with a key policy and an alias, two backup vaults (one
encrypted with that key), a plan with a rule (schedule, lifecycle, recovery point tags)
and plan tags, a selection by tag, a vault lock and a vault access policy. boto3 checks
what Terraform made, changed and removed.

Needs the ``terraform`` binary and the provider in a filesystem mirror (the directory
holding ``registry.terraform.io/hashicorp/aws``; ``SNOWVAULT_TF_MIRROR`` or a usual
place); without either the module is skipped and says which is missing. Network: the
provider talks to 127.0.0.1 only (every endpoint is the server, nothing else is asked).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

SNOWVAULT = str(Path(sys.executable).with_name("snowvault"))
PROVIDER = Path("registry.terraform.io") / "hashicorp" / "aws"
MIRRORS = [
    os.environ.get("SNOWVAULT_TF_MIRROR", ""),
    "/opt/tf-plugins",
    str(Path.home() / ".terraform.d" / "plugins"),
    "/usr/local/share/terraform/plugins",
    "/usr/share/terraform/plugins",
]
TERRAFORM_TIMEOUT = 240  # seconds per terraform command
ROLE_ARN = "arn:aws:iam::123456789012:role/service-role/AWSBackupDefaultServiceRole"

CLI_CONFIG = """
provider_installation {
  filesystem_mirror {
    path    = "%(mirror)s"
    include = ["registry.terraform.io/hashicorp/aws"]
  }
  direct {
    exclude = ["registry.terraform.io/hashicorp/aws"]
  }
}
"""

MAIN_TF = """
terraform {
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "%(version)s"
    }
  }
}

variable "endpoint" { type = string }
variable "access_key" { type = string }
variable "secret_key" { type = string }
variable "account_id" { type = string }
variable "key_description" { type = string }
variable "plan_owner" { type = string }

provider "aws" {
  region                      = "us-east-1"
  access_key                  = var.access_key
  secret_key                  = var.secret_key
  skip_credentials_validation = true
  skip_metadata_api_check     = true
  skip_requesting_account_id  = true
  skip_region_validation      = true
  endpoints {
    backup = var.endpoint
    kms    = var.endpoint
    sts    = var.endpoint
    iam    = var.endpoint
  }
}

resource "aws_kms_key" "vault" {
  description             = var.key_description
  deletion_window_in_days = 7
  enable_key_rotation     = true
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "Enable IAM User Permissions"
        Effect    = "Allow"
        Principal = { AWS = "arn:aws:iam::${var.account_id}:root" }
        Action    = "kms:*"
        Resource  = "*"
      },
      {
        Sid       = "NoRandomGuests"
        Effect    = "Deny"
        Principal = { AWS = "arn:aws:iam::${var.account_id}:user/guest" }
        Action    = "kms:*"
        Resource  = "*"
      }
    ]
  })
  tags = {
    team = "storage"
  }
}

resource "aws_kms_alias" "vault" {
  name          = "alias/terraform-vault"
  target_key_id = aws_kms_key.vault.key_id
}

resource "aws_backup_vault" "primary" {
  name        = "tf-primary"
  kms_key_arn = aws_kms_key.vault.arn
  tags = {
    env = "test"
  }
}

resource "aws_backup_vault" "secondary" {
  name = "tf-secondary"
}

resource "aws_backup_plan" "daily" {
  name = "tf-daily"
  rule {
    rule_name         = "daily"
    target_vault_name = aws_backup_vault.primary.name
    schedule          = "cron(0 5 ? * * *)"
    lifecycle {
      delete_after = 35
    }
    recovery_point_tags = {
      made_by = "terraform"
    }
  }
  tags = {
    owner = var.plan_owner
  }
}

resource "aws_backup_selection" "tagged" {
  name         = "tf-tagged"
  plan_id      = aws_backup_plan.daily.id
  iam_role_arn = "%(role)s"
  selection_tag {
    type  = "STRINGEQUALS"
    key   = "backup"
    value = "daily"
  }
}

resource "aws_backup_vault_lock_configuration" "secondary" {
  backup_vault_name  = aws_backup_vault.secondary.name
  min_retention_days = 1
  max_retention_days = 365
}

resource "aws_backup_vault_policy" "primary" {
  backup_vault_name = aws_backup_vault.primary.name
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "DenyDeleteRecoveryPoints"
      Effect    = "Deny"
      Principal = { AWS = "*" }
      Action    = ["backup:DeleteRecoveryPoint"]
      Resource  = aws_backup_vault.primary.arn
    }]
  })
}
"""


def _mirror() -> tuple[Path, str] | None:
    """(mirror directory, provider version) of the first mirror holding hashicorp/aws."""
    for candidate in filter(None, MIRRORS):
        versions = Path(candidate) / PROVIDER
        if versions.is_dir():
            found = sorted(p.name for p in versions.iterdir() if p.is_dir())
            if found:
                return Path(candidate), found[-1]
    return None


def _missing() -> str | None:
    """What this machine lacks to run Terraform here, or None."""
    missing = []
    if TERRAFORM is None:
        missing.append("the terraform binary (not on PATH)")
    if MIRROR is None:
        where = ", ".join(filter(None, MIRRORS))
        missing.append(f"the hashicorp/aws provider in a filesystem mirror (looked in {where})")
    return " and ".join(missing) or None


TERRAFORM = shutil.which("terraform")
MIRROR = _mirror()
MISSING = _missing()
pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(600),  # ~2 min; each terraform command starts the provider anew
    pytest.mark.skipif(MISSING is not None, reason=f"Terraform test skipped: missing {MISSING}"),
]


# --------------------------------------------------------------------------- server


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    endpoint: str
    creds: dict[str, str]
    log: Path

    def client(self, service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=self.creds["region"],
            aws_access_key_id=self.creds["access_key_id"],
            aws_secret_access_key=self.creds["secret_access_key"],
            config=Config(retries={"max_attempts": 1, "mode": "standard"}),
        )


def _clean_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "TF_"))}
    return env | {"HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config")}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`snowvault init` + `snowvault server` (no test mode: the wall clock, as `make run`)."""
    home = tmp_path_factory.mktemp("tf-home")
    data = home / "data"
    port = _free_port()
    env = _clean_env(home)
    done = subprocess.run(
        [SNOWVAULT, "init", "--data-dir", str(data), "--port", str(port), "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    creds = json.loads(done.stdout.strip().splitlines()[-1])
    log = home / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [SNOWVAULT, "server", "--data-dir", str(data)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while "snowvault listening on" not in log.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"server did not start:\n{log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.05)
        yield Server(f"http://127.0.0.1:{port}", creds, log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=20)
    failures = [line for line in log.read_text().splitlines() if " status=5" in line]
    assert not failures, f"the server answered 5xx: {failures}"


# --------------------------------------------------------------------------- terraform


@dataclass
class Terraform:
    workdir: Path
    env: dict[str, str]
    log: Path

    def run(self, *args: str, **variables: str) -> subprocess.CompletedProcess[str]:
        var_args = [f"-var={k}={v}" for k, v in variables.items()]
        assert TERRAFORM is not None
        return subprocess.run(
            [TERRAFORM, *args, "-input=false", "-no-color", *var_args],
            cwd=self.workdir,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=TERRAFORM_TIMEOUT,
        )

    def explain(self, done: subprocess.CompletedProcess[str]) -> str:
        """The command's output and the provider's failed API calls, for a failed assert."""
        failed = [
            line[:600]
            for line in self.log.read_text(errors="replace").splitlines()
            if "api error" in line or "StatusCode: 4" in line or "StatusCode: 5" in line
        ]
        return f"{done.stdout[-4000:]}\n{done.stderr[-4000:]}\nfailed calls:\n" + "\n".join(
            failed[-20:]
        )


@pytest.fixture(scope="module")
def terraform(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Terraform:
    assert MIRROR is not None
    mirror, version = MIRROR
    workdir = tmp_path_factory.mktemp("tf")
    (workdir / "cli.tfrc").write_text(CLI_CONFIG % {"mirror": mirror})
    (workdir / "main.tf").write_text(MAIN_TF % {"version": version, "role": ROLE_ARN})
    env = _clean_env(workdir / "home")
    env |= {
        "TF_CLI_CONFIG_FILE": str(workdir / "cli.tfrc"),
        "TF_IN_AUTOMATION": "1",
        "CHECKPOINT_DISABLE": "1",
        "TF_LOG": "DEBUG",
        "TF_LOG_PATH": str(workdir / "terraform.log"),
        "TF_VAR_endpoint": server.endpoint,
        "TF_VAR_access_key": server.creds["access_key_id"],
        "TF_VAR_secret_key": server.creds["secret_access_key"],
        "TF_VAR_account_id": server.creds["account_id"],
    }
    tf = Terraform(workdir, env, workdir / "terraform.log")
    done = tf.run("init")
    assert done.returncode == 0, tf.explain(done)
    return tf


FIRST = {"key_description": "terraform vault key", "plan_owner": "platform"}
SECOND = {"key_description": "terraform vault key, renamed", "plan_owner": "storage-team"}


def _plan_named(backup: Any, name: str) -> dict[str, Any] | None:
    plans = backup.list_backup_plans()["BackupPlansList"]
    return next((p for p in plans if p["BackupPlanName"] == name), None)


def _check_applied(server: Server, description: str, owner: str) -> None:
    backup, kms = server.client("backup"), server.client("kms")
    alias = next(
        a for a in kms.list_aliases()["Aliases"] if a["AliasName"] == "alias/terraform-vault"
    )
    key = kms.describe_key(KeyId=alias["TargetKeyId"])["KeyMetadata"]
    assert key["Description"] == description and key["KeyState"] == "Enabled"
    assert kms.get_key_rotation_status(KeyId=key["KeyId"])["KeyRotationEnabled"] is True
    policy = json.loads(kms.get_key_policy(KeyId=key["KeyId"], PolicyName="default")["Policy"])
    assert [s["Sid"] for s in policy["Statement"]] == [
        "Enable IAM User Permissions",
        "NoRandomGuests",
    ]
    tags = kms.list_resource_tags(KeyId=key["KeyId"])["Tags"]
    assert tags == [{"TagKey": "team", "TagValue": "storage"}]

    primary = backup.describe_backup_vault(BackupVaultName="tf-primary")
    assert primary["EncryptionKeyArn"] == key["Arn"]
    secondary = backup.describe_backup_vault(BackupVaultName="tf-secondary")
    assert (secondary["MinRetentionDays"], secondary["MaxRetentionDays"]) == (1, 365)
    access = json.loads(
        backup.get_backup_vault_access_policy(BackupVaultName="tf-primary")["Policy"]
    )
    assert access["Statement"][0]["Sid"] == "DenyDeleteRecoveryPoints"

    plan = _plan_named(backup, "tf-daily")
    assert plan is not None
    assert backup.list_tags(ResourceArn=plan["BackupPlanArn"])["Tags"] == {"owner": owner}
    rule = backup.get_backup_plan(BackupPlanId=plan["BackupPlanId"])["BackupPlan"]["Rules"][0]
    assert rule["TargetBackupVaultName"] == "tf-primary"
    assert rule["Lifecycle"]["DeleteAfterDays"] == 35
    assert rule["RecoveryPointTags"] == {"made_by": "terraform"}
    selections = backup.list_backup_selections(BackupPlanId=plan["BackupPlanId"])
    [selection] = selections["BackupSelectionsList"]
    assert (selection["SelectionName"], selection["IamRoleArn"]) == ("tf-tagged", ROLE_ARN)


def test_apply_plan_update_destroy(server: Server, terraform: Terraform) -> None:
    done = terraform.run("apply", "-auto-approve", **FIRST)
    assert done.returncode == 0, terraform.explain(done)
    _check_applied(server, FIRST["key_description"], FIRST["plan_owner"])

    done = terraform.run("plan", "-detailed-exitcode", **FIRST)
    assert done.returncode == 0, terraform.explain(done)  # 2 would mean a diff

    # an in-place update: UpdateKeyDescription, and the plan's tags through Tag/UntagResource
    done = terraform.run("apply", "-auto-approve", **SECOND)
    assert done.returncode == 0, terraform.explain(done)
    assert "2 changed, 0 destroyed" in done.stdout, done.stdout[-2000:]
    _check_applied(server, SECOND["key_description"], SECOND["plan_owner"])

    done = terraform.run("destroy", "-auto-approve", **SECOND)
    assert done.returncode == 0, terraform.explain(done)
    backup, kms = server.client("backup"), server.client("kms")
    for name in ("tf-primary", "tf-secondary"):
        with pytest.raises(ClientError) as missing:
            backup.describe_backup_vault(BackupVaultName=name)
        assert missing.value.response["Error"]["Code"] in (
            "ResourceNotFoundException",
            "AccessDeniedException",  # AWS's answer for a vault that does not exist
        )
    assert _plan_named(backup, "tf-daily") is None
    aliases = [a["AliasName"] for a in kms.list_aliases()["Aliases"]]
    assert "alias/terraform-vault" not in aliases
    keys = [kms.describe_key(KeyId=k["KeyId"])["KeyMetadata"] for k in kms.list_keys()["Keys"]]
    mine = [k for k in keys if k["Description"] == SECOND["key_description"]]
    assert [k["KeyState"] for k in mine] == ["PendingDeletion"]
