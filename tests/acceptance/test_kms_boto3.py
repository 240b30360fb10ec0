"""KMS as boto3 and the snowvault CLI see it, against a real `snowvault server` subprocess:
every KMS operation, vaults under a customer key (rotation, disable/enable), the AWS
managed default key, and the offline recovery key read by `snowvault repo`.

Crypto-shredding after the waiting period needs the clock to move; the server has no
test clock endpoint yet, so that part is proven in tests/unit/services/test_kms.py.
"""

from __future__ import annotations

import base64
import filecmp
import json
import subprocess
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from helpers.stories import (
    AWS,
    aws_env,
    backed_up,
    code_of,
    make_tree,
    register,
    restored,
    sv,
    sv_json,
)
from helpers.sv_server import ExtCall, ServerProcess


@pytest.fixture
def kms(snowvault_server: ServerProcess) -> Any:
    creds = snowvault_server.creds
    return boto3.client(
        "kms",
        endpoint_url=snowvault_server.endpoint,
        region_name=creds["region"],
        aws_access_key_id=creds["access_key_id"],
        aws_secret_access_key=creds["secret_access_key"],
        config=Config(retries={"max_attempts": 1, "mode": "standard"}),
    )


def same_tree(a: Path, b: Path) -> bool:
    cmp = filecmp.dircmp(a, b)
    return not (cmp.left_only or cmp.right_only or cmp.diff_files)


def test_key_management_operations(kms: Any, snowvault_server: ServerProcess) -> None:
    account, region = snowvault_server.creds["account_id"], snowvault_server.creds["region"]
    meta = kms.create_key(Description="app key", Tags=[{"TagKey": "team", "TagValue": "ops"}])[
        "KeyMetadata"
    ]
    key_id, arn = meta["KeyId"], meta["Arn"]
    assert arn == f"arn:aws:kms:{region}:{account}:key/{key_id}"
    assert (meta["KeyState"], meta["Enabled"], meta["KeyManager"]) == ("Enabled", True, "CUSTOMER")
    assert {"KeyId": key_id, "KeyArn": arn} in kms.list_keys()["Keys"]

    kms.create_alias(AliasName="alias/app", TargetKeyId=key_id)
    alias_arn = f"arn:aws:kms:{region}:{account}:alias/app"
    for ref in (key_id, arn, "alias/app", alias_arn):
        assert kms.describe_key(KeyId=ref)["KeyMetadata"]["Arn"] == arn
    aliases = kms.list_aliases(KeyId=key_id)["Aliases"]
    assert [(a["AliasName"], a["AliasArn"], a["TargetKeyId"]) for a in aliases] == [
        ("alias/app", alias_arn, key_id)
    ]
    assert code_of(kms.create_alias, AliasName="alias/app", TargetKeyId=key_id)[0] == (
        "AlreadyExistsException"
    )
    assert code_of(kms.create_alias, AliasName="alias/aws/x", TargetKeyId=key_id)[0] == (
        "NotAuthorizedException"
    )
    kms.delete_alias(AliasName="alias/app")
    assert code_of(kms.describe_key, KeyId="alias/app")[0] == "NotFoundException"

    kms.tag_resource(KeyId=key_id, Tags=[{"TagKey": "env", "TagValue": "test"}])
    tags = kms.list_resource_tags(KeyId=key_id)["Tags"]
    assert {t["TagKey"]: t["TagValue"] for t in tags} == {"team": "ops", "env": "test"}

    assert kms.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"] is False
    kms.enable_key_rotation(KeyId=key_id, RotationPeriodInDays=180)
    status = kms.get_key_rotation_status(KeyId=key_id)
    assert (status["KeyRotationEnabled"], status["RotationPeriodInDays"]) == (True, 180)
    assert (status["NextRotationDate"] - meta["CreationDate"]).days in (179, 180)
    assert kms.rotate_key_on_demand(KeyId=key_id)["KeyId"] == key_id
    assert "OnDemandRotationStartDate" in kms.get_key_rotation_status(KeyId=key_id)

    kms.disable_key(KeyId=key_id)
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Disabled"
    assert code_of(kms.rotate_key_on_demand, KeyId=key_id)[0] == "DisabledException"
    kms.enable_key(KeyId=key_id)

    assert code_of(kms.schedule_key_deletion, KeyId=key_id, PendingWindowInDays=6)[0] == (
        "ValidationException"
    )
    scheduled = kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    assert (scheduled["KeyState"], scheduled["PendingWindowInDays"]) == ("PendingDeletion", 7)
    described = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    assert described["DeletionDate"] == scheduled["DeletionDate"]
    assert code_of(kms.enable_key, KeyId=key_id)[0] == "KMSInvalidStateException"
    assert kms.cancel_key_deletion(KeyId=key_id)["KeyId"] == arn
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Disabled"
    assert code_of(kms.describe_key, KeyId="00000000-0000-0000-0000-000000000000")[0] == (
        "NotFoundException"
    )


def test_encrypt_decrypt_and_data_keys(kms: Any) -> None:
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    context = {"purpose": "test"}
    out = kms.encrypt(KeyId=key_id, Plaintext=b"\x00secret", EncryptionContext=context)
    blob = out["CiphertextBlob"]
    assert b"secret" not in blob and out["EncryptionAlgorithm"] == "SYMMETRIC_DEFAULT"
    back = kms.decrypt(CiphertextBlob=blob, EncryptionContext=context)
    assert back["Plaintext"] == b"\x00secret" and back["KeyId"] == out["KeyId"]
    assert code_of(kms.decrypt, CiphertextBlob=blob)[0] == "InvalidCiphertextException"
    assert code_of(kms.decrypt, CiphertextBlob=b"garbage")[0] == "InvalidCiphertextException"
    other = kms.create_key()["KeyMetadata"]["KeyId"]
    wrong = code_of(kms.decrypt, CiphertextBlob=blob, EncryptionContext=context, KeyId=other)
    assert wrong[0] == "IncorrectKeyException"

    data_key = kms.generate_data_key(KeyId=key_id, KeySpec="AES_256")
    assert len(data_key["Plaintext"]) == 32
    assert (
        kms.decrypt(CiphertextBlob=data_key["CiphertextBlob"])["Plaintext"]
        == (data_key["Plaintext"])
    )

    kms.rotate_key_on_demand(KeyId=key_id)
    assert kms.decrypt(CiphertextBlob=blob, EncryptionContext=context)["Plaintext"] == (
        b"\x00secret"
    )
    kms.disable_key(KeyId=key_id)
    assert code_of(kms.encrypt, KeyId=key_id, Plaintext=b"x")[0] == "DisabledException"
    assert code_of(kms.decrypt, CiphertextBlob=blob, EncryptionContext=context)[0] == (
        "DisabledException"
    )


def test_describe_never_shows_key_material(kms: Any, snowvault_server: ServerProcess) -> None:
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    meta = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    assert set(meta) <= {
        "AWSAccountId", "KeyId", "Arn", "CreationDate", "Enabled", "Description", "KeyUsage",
        "KeyState", "Origin", "KeyManager", "CustomerMasterKeySpec", "KeySpec",
        "EncryptionAlgorithms", "MultiRegion",
    }  # fmt: skip
    log = snowvault_server.log.read_text(errors="replace")
    assert "sealed_material" not in log and base64.b64encode(b"material")[:6].decode() not in log


def test_default_vault_uses_the_aws_managed_backup_key(kms: Any, backup: Any) -> None:
    backup.create_backup_vault(BackupVaultName="kms-default")
    vault = backup.describe_backup_vault(BackupVaultName="kms-default")
    managed = kms.describe_key(KeyId="alias/aws/backup")["KeyMetadata"]
    assert managed["KeyManager"] == "AWS"
    assert vault["EncryptionKeyArn"] == managed["Arn"]
    assert vault["EncryptionKeyType"] == "AWS_OWNED_KMS_KEY"
    assert code_of(kms.disable_key, KeyId="alias/aws/backup")[0] == (
        "UnsupportedOperationException"
    )
    assert kms.get_key_rotation_status(KeyId="alias/aws/backup")["KeyRotationEnabled"] is True


def test_customer_key_vault_rotation_disable_enable(
    kms: Any, backup: Any, ext: ExtCall, tmp_path: Path
) -> None:
    key = kms.create_key(Description="vault key")["KeyMetadata"]
    backup.create_backup_vault(BackupVaultName="kms-cmk", EncryptionKeyArn=key["Arn"])
    vault = backup.describe_backup_vault(BackupVaultName="kms-cmk")
    assert (vault["EncryptionKeyArn"], vault["EncryptionKeyType"]) == (
        key["Arn"],
        "CUSTOMER_MANAGED_KMS_KEY",
    )
    source = tmp_path / "src"
    make_tree(source, seed=5, files=6, size=20_000)
    resource = register(ext, "kms-cmk-src", source)
    first = backed_up(backup, "kms-cmk", resource)
    assert first["State"] == "COMPLETED", first
    point = backup.describe_recovery_point(
        BackupVaultName="kms-cmk", RecoveryPointArn=first["RecoveryPointArn"]
    )
    assert (point["EncryptionKeyArn"], point["IsEncrypted"]) == (key["Arn"], True)
    assert point["EncryptionKeyType"] == "CUSTOMER_MANAGED_KMS_KEY"

    kms.rotate_key_on_demand(KeyId=key["KeyId"])
    assert backed_up(backup, "kms-cmk", resource)["State"] == "COMPLETED"

    kms.disable_key(KeyId=key["KeyId"])
    failed = backed_up(backup, "kms-cmk", resource)
    assert failed["State"] == "FAILED"
    assert "is disabled" in failed["StatusMessage"] and key["Arn"] in failed["StatusMessage"]
    refused = restored(backup, first["RecoveryPointArn"], tmp_path / "r-disabled")
    assert refused["Status"] == "FAILED" and "is disabled" in refused["StatusMessage"]

    kms.enable_key(KeyId=key["KeyId"])
    again = restored(backup, first["RecoveryPointArn"], tmp_path / "r-old")
    assert again["Status"] == "COMPLETED", again
    assert same_tree(source, tmp_path / "r-old")
    assert backed_up(backup, "kms-cmk", resource)["State"] == "COMPLETED"

    kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
    pending = restored(backup, first["RecoveryPointArn"], tmp_path / "r-pending")
    assert pending["Status"] == "FAILED" and "PendingDeletion" in pending["StatusMessage"]
    kms.cancel_key_deletion(KeyId=key["KeyId"])
    kms.enable_key(KeyId=key["KeyId"])


def test_vault_with_unknown_or_disabled_key_is_refused(kms: Any, backup: Any) -> None:
    missing = "arn:aws:kms:us-east-1:000000000000:key/00000000-0000-0000-0000-000000000000"
    # the backup API answers in its own model's codes; the KMS API keeps KMS's
    code = code_of(backup.create_backup_vault, BackupVaultName="x1", EncryptionKeyArn=missing)
    assert code == ("InvalidParameterValueException", 400)
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.disable_key(KeyId=key_id)
    code = code_of(backup.create_backup_vault, BackupVaultName="x2", EncryptionKeyArn=key_id)
    assert code == ("InvalidParameterValueException", 400)
    unknown = "00000000-0000-0000-0000-000000000000"  # a key id of the caller's account
    assert code_of(kms.describe_key, KeyId=unknown) == ("NotFoundException", 400)


def test_export_recovery_key_reads_the_vault_without_the_server(
    kms: Any, backup: Any, ext: ExtCall, snowvault_server: ServerProcess, tmp_path: Path
) -> None:
    key_arn = kms.create_key()["KeyMetadata"]["Arn"]
    backup.create_backup_vault(BackupVaultName="kms-dr", EncryptionKeyArn=key_arn)
    source = tmp_path / "src"
    source.mkdir()
    (source / "precious.txt").write_text("the one file we need back\n")
    assert backed_up(backup, "kms-dr", register(ext, "kms-dr-src", source))["State"] == (
        "COMPLETED"
    )
    secret = tmp_path / "recovery.pass"
    secret.write_text("a long recovery passphrase\n")
    out = sv_json(
        snowvault_server,
        "vault",
        "export-recovery-key",
        "--vault",
        "kms-dr",
        "--password-file",
        str(secret),
    )
    url = out["RepositoryUrl"]
    listed = sv(snowvault_server, "repo", "ls", "--repo", url, "--password-file", str(secret),
                "latest", "/", "-r", "--json")  # fmt: skip
    assert "precious.txt" in listed.stdout
    short = tmp_path / "short.pass"
    short.write_text("short\n")
    refused = sv(snowvault_server, "vault", "export-recovery-key", "--vault", "kms-dr",
                 "--password-file", str(short), ok=False)  # fmt: skip
    assert refused.returncode != 0 and "12" in refused.stderr


def test_iam_users_need_kms_permissions(
    kms: Any, ext: ExtCall, snowvault_server: ServerProcess
) -> None:
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "kms:Describe*", "Resource": "*"}],
    }
    ext("CreateUser", {"UserName": "kms-reader"})
    ext(
        "PutUserPolicy",
        {"UserName": "kms-reader", "PolicyName": "p", "PolicyDocument": json.dumps(policy)},
    )
    access = ext("CreateAccessKey", {"UserName": "kms-reader"})["AccessKey"]
    creds = snowvault_server.creds
    reader = boto3.client(
        "kms",
        endpoint_url=snowvault_server.endpoint,
        region_name=creds["region"],
        aws_access_key_id=access["AccessKeyId"],
        aws_secret_access_key=access["SecretAccessKey"],
        config=Config(retries={"max_attempts": 1, "mode": "standard"}),
    )
    assert reader.describe_key(KeyId=key_id)["KeyMetadata"]["KeyId"] == key_id
    code, status = code_of(reader.encrypt, KeyId=key_id, Plaintext=b"x")
    assert (code, status) == ("AccessDeniedException", 403)
    assert code_of(reader.create_key)[0] == "AccessDeniedException"


@pytest.mark.skipif(not Path(AWS).exists(), reason="awscli (dev extra) missing")
def test_the_aws_cli_speaks_kms(snowvault_server: ServerProcess, tmp_path: Path) -> None:
    def aws_kms(*args: str) -> Any:
        done = subprocess.run(
            [AWS, "kms", *args, "--endpoint-url", snowvault_server.endpoint, "--output", "json"],
            env=aws_env(snowvault_server),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout) if done.stdout.strip() else {}

    key_id = aws_kms("create-key", "--description", "cli")["KeyMetadata"]["KeyId"]
    aws_kms("create-alias", "--alias-name", "alias/cli", "--target-key-id", key_id)
    plain = tmp_path / "plain.bin"
    plain.write_bytes(b"from the aws cli")
    blob = aws_kms("encrypt", "--key-id", "alias/cli", "--plaintext", f"fileb://{plain}")
    sealed = tmp_path / "sealed.bin"
    sealed.write_bytes(base64.b64decode(blob["CiphertextBlob"]))
    back = aws_kms("decrypt", "--ciphertext-blob", f"fileb://{sealed}")
    assert base64.b64decode(back["Plaintext"]) == b"from the aws cli"
    assert key_id in [k["KeyId"] for k in aws_kms("list-keys")["Keys"]]


# ------------------------------------------------ operations real tools call (issue 10)


def _policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def _root_all(account: str) -> dict[str, Any]:
    return {
        "Sid": "Enable IAM User Permissions",
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
        "Action": "kms:*",
        "Resource": "*",
    }


def test_key_policies(kms: Any, snowvault_server: ServerProcess) -> None:
    account = snowvault_server.creds["account_id"]
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    default = kms.get_key_policy(KeyId=key_id, PolicyName="default")
    assert default["PolicyName"] == "default"
    assert json.loads(default["Policy"])["Statement"] == [_root_all(account)]
    assert kms.list_key_policies(KeyId=key_id)["PolicyNames"] == ["default"]
    assert code_of(kms.get_key_policy, KeyId=key_id, PolicyName="other")[0] == "NotFoundException"

    document = _policy(_root_all(account), dict(_root_all(account), Sid="Again"))
    kms.put_key_policy(KeyId=key_id, PolicyName="default", Policy=document)
    assert kms.get_key_policy(KeyId=key_id)["Policy"] == document
    created = kms.create_key(Policy=document)["KeyMetadata"]["KeyId"]
    assert kms.get_key_policy(KeyId=created)["Policy"] == document

    for bad in ("{", _policy({"Effect": "Allow", "Action": "kms:*", "Resource": "*"})):
        assert code_of(kms.create_key, Policy=bad)[0] == "MalformedPolicyDocumentException"
    stranger = _policy(
        dict(_root_all(account), Principal={"AWS": f"arn:aws:iam::{account}:user/nobody"})
    )
    code = code_of(kms.put_key_policy, KeyId=key_id, PolicyName="default", Policy=stranger)[0]
    assert code == "MalformedPolicyDocumentException"  # the lockout safety check


def test_a_key_policy_deny_binds_an_iam_user_with_kms_star(
    kms: Any, ext: ExtCall, snowvault_server: ServerProcess
) -> None:
    account = snowvault_server.creds["account_id"]
    allow_all = _policy({"Effect": "Allow", "Action": "kms:*", "Resource": "*"})
    ext("CreateUser", {"UserName": "kms-writer"})
    ext("PutUserPolicy", {"UserName": "kms-writer", "PolicyName": "p", "PolicyDocument": allow_all})
    access = ext("CreateAccessKey", {"UserName": "kms-writer"})["AccessKey"]
    writer = boto3.client(
        "kms",
        endpoint_url=snowvault_server.endpoint,
        region_name=snowvault_server.creds["region"],
        aws_access_key_id=access["AccessKeyId"],
        aws_secret_access_key=access["SecretAccessKey"],
        config=Config(retries={"max_attempts": 1, "mode": "standard"}),
    )
    deny = {
        "Sid": "NoWriterEncrypt",
        "Effect": "Deny",
        "Principal": {"AWS": f"arn:aws:iam::{account}:user/kms-writer"},
        "Action": "kms:Encrypt",
        "Resource": "*",
    }
    guarded = kms.create_key(Policy=_policy(_root_all(account), deny))["KeyMetadata"]["KeyId"]
    open_key = kms.create_key()["KeyMetadata"]["KeyId"]
    assert code_of(writer.encrypt, KeyId=guarded, Plaintext=b"x")[0] == "AccessDeniedException"
    assert writer.describe_key(KeyId=guarded)["KeyMetadata"]["KeyId"] == guarded
    assert writer.encrypt(KeyId=open_key, Plaintext=b"x")["KeyId"].endswith(open_key)
    assert kms.encrypt(KeyId=guarded, Plaintext=b"x")["KeyId"].endswith(guarded)


def test_description_alias_rotations_and_rotation_status_while_pending(kms: Any) -> None:
    first = kms.create_key(Description="before")["KeyMetadata"]["KeyId"]
    second = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.update_key_description(KeyId=first, Description="after")
    assert kms.describe_key(KeyId=first)["KeyMetadata"]["Description"] == "after"
    kms.create_alias(AliasName="alias/moving", TargetKeyId=first)
    kms.update_alias(AliasName="alias/moving", TargetKeyId=second)
    assert kms.describe_key(KeyId="alias/moving")["KeyMetadata"]["KeyId"] == second
    code = code_of(kms.update_alias, AliasName="alias/absent", TargetKeyId=second)[0]
    assert code == "NotFoundException"

    kms.rotate_key_on_demand(KeyId=first)
    [rotation] = kms.list_key_rotations(KeyId=first)["Rotations"]
    assert rotation["RotationType"] == "ON_DEMAND" and rotation["KeyId"].endswith(first)

    kms.enable_key_rotation(KeyId=first)
    kms.schedule_key_deletion(KeyId=first, PendingWindowInDays=7)
    assert kms.get_key_rotation_status(KeyId=first)["KeyRotationEnabled"] is False
    kms.cancel_key_deletion(KeyId=first)
    assert kms.get_key_rotation_status(KeyId=first)["KeyRotationEnabled"] is True


def test_grants(kms: Any, snowvault_server: ServerProcess) -> None:
    account = snowvault_server.creds["account_id"]
    role = f"arn:aws:iam::{account}:role/backup-service"
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    made = kms.create_grant(
        KeyId=key_id,
        GranteePrincipal=role,
        RetiringPrincipal=role,
        Operations=["Decrypt", "GenerateDataKey"],
        Constraints={"EncryptionContextSubset": {"vault": "v1"}},
        Name="vault-v1",
    )
    second = kms.create_grant(KeyId=key_id, GranteePrincipal=role, Operations=["Encrypt"])
    [listed, _] = kms.list_grants(KeyId=key_id)["Grants"]
    assert listed["GrantId"] == made["GrantId"] and listed["Name"] == "vault-v1"
    assert listed["Operations"] == ["Decrypt", "GenerateDataKey"]
    assert listed["Constraints"] == {"EncryptionContextSubset": {"vault": "v1"}}
    retirable = kms.list_retirable_grants(RetiringPrincipal=role)["Grants"]
    assert [g["GrantId"] for g in retirable] == [made["GrantId"]]
    code = code_of(kms.create_grant, KeyId=key_id, GranteePrincipal=role, Operations=["Fly"])[0]
    assert code == "ValidationException"

    kms.retire_grant(GrantToken=made["GrantToken"])  # the account's root may retire
    assert code_of(kms.retire_grant, GrantToken=made["GrantToken"])[0] == (
        "InvalidGrantTokenException"
    )
    kms.revoke_grant(KeyId=key_id, GrantId=second["GrantId"])
    assert kms.list_grants(KeyId=key_id)["Grants"] == []


def test_reencrypt_random_and_data_key_without_plaintext(kms: Any) -> None:
    a = kms.create_key()["KeyMetadata"]["KeyId"]
    b = kms.create_key()["KeyMetadata"]["KeyId"]
    assert len(kms.generate_random(NumberOfBytes=64)["Plaintext"]) == 64
    assert code_of(kms.generate_random, NumberOfBytes=2000)[0] == "ValidationException"
    blob = kms.generate_data_key_without_plaintext(KeyId=a, KeySpec="AES_256")
    assert "Plaintext" not in blob and blob["KeyId"].endswith(a)
    moved = kms.re_encrypt(CiphertextBlob=blob["CiphertextBlob"], DestinationKeyId=b)
    assert moved["SourceKeyId"].endswith(a) and moved["KeyId"].endswith(b)
    plain = kms.decrypt(CiphertextBlob=moved["CiphertextBlob"])
    assert plain["KeyId"].endswith(b) and len(plain["Plaintext"]) == 32


def test_backup_plans_take_tags_as_terraform_uses_them(backup: Any) -> None:
    backup.create_backup_vault(BackupVaultName="tagged-plan-target")
    rule = {
        "RuleName": "daily",
        "TargetBackupVaultName": "tagged-plan-target",
        "ScheduleExpression": "cron(0 5 ? * * *)",
    }
    plan = backup.create_backup_plan(
        BackupPlan={"BackupPlanName": "tagged-plan", "Rules": [rule]},
        BackupPlanTags={"owner": "platform"},
    )
    arn = plan["BackupPlanArn"]
    assert backup.list_tags(ResourceArn=arn)["Tags"] == {"owner": "platform"}
    backup.tag_resource(ResourceArn=arn, Tags={"cost": "42"})
    backup.untag_resource(ResourceArn=arn, TagKeyList=["owner"])
    assert backup.list_tags(ResourceArn=arn)["Tags"] == {"cost": "42"}
    absent = arn.rsplit(":", 1)[0] + ":00000000-0000-0000-0000-000000000000"
    assert code_of(backup.list_tags, ResourceArn=absent)[0] == "ResourceNotFoundException"


def test_get_backup_plan_answers_as_aws_for_idempotent_tools(backup: Any) -> None:
    backup.create_backup_vault(BackupVaultName="versioned-plan-target")
    rule = {
        "RuleName": "daily",
        "TargetBackupVaultName": "versioned-plan-target",
        "ScheduleExpression": "cron(0 5 ? * * *)",
    }
    doc = {"BackupPlanName": "versioned-plan", "Rules": [rule]}
    first = backup.create_backup_plan(BackupPlan=doc)
    plan_id = first["BackupPlanId"]
    got = backup.get_backup_plan(BackupPlanId=plan_id)
    assert got["BackupPlan"]["Rules"][0]["EnableContinuousBackup"] is False
    assert got["CreationDate"] == first["CreationDate"]
    second = backup.update_backup_plan(
        BackupPlanId=plan_id, BackupPlan=dict(doc, Rules=[dict(rule, StartWindowMinutes=120)])
    )
    versions = backup.list_backup_plan_versions(BackupPlanId=plan_id)["BackupPlanVersionsList"]
    dates = {v["VersionId"]: v["CreationDate"] for v in versions}
    assert (
        backup.get_backup_plan(BackupPlanId=plan_id)["CreationDate"] == (dates[second["VersionId"]])
    )
    old = backup.get_backup_plan(BackupPlanId=plan_id, VersionId=first["VersionId"])
    assert old["CreationDate"] == dates[first["VersionId"]]
