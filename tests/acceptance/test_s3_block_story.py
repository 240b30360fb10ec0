"""An S3 prefix and a sparse disk image protected end to end through the real server:
registered over the extension API (the S3 secret sealed, never shown or logged), backed
up and restored with boto3 — the objects into another bucket of a moto server on
loopback with their metadata, the image into a new file with its bytes and holes —
and targets outside the operator's rules refused before any job exists."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import boto3

from helpers.stories import ROLE, backed_up, code_of, restored_with
from helpers.sv_server import ExtCall, ServerProcess

SECRET = "st0ry-s3cr3t-key"
MiB = 1024 * 1024


def test_an_s3_prefix_round_trips_into_another_bucket(
    snowvault_server: ServerProcess, backup: Any, ext: ExtCall, s3_server: str
) -> None:
    s3 = boto3.client(
        "s3",
        endpoint_url=s3_server,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    s3.create_bucket(Bucket="story-media")
    s3.create_bucket(Bucket="story-media-back")
    s3.put_object(
        Bucket="story-media",
        Key="m/cat.jpg",
        Body=b"\xff\xd8 a cat",
        ContentType="image/jpeg",
        Metadata={"by": "ana"},
        Tagging="album=pets",
    )
    properties = {"endpoint": s3_server, "access_key_id": "AK", "secret_access_key": SECRET}
    registered = ext(
        "RegisterResource",
        {
            "ResourceType": "S3",
            "Name": "media",
            "Source": "s3://story-media/m",
            "Properties": properties,
        },
    )
    arn = registered["ResourceArn"]
    assert arn.endswith(":s3/media") and registered["Source"] == "s3://story-media/m/"
    listed = ext("ListResources", {"ResourceType": "S3"})
    assert SECRET not in str(registered) + str(listed)

    backup.create_backup_vault(BackupVaultName="s3story")
    job = backed_up(backup, "s3story", arn)
    assert job["State"] == "COMPLETED", job.get("StatusMessage")
    rp_arn = job["RecoveryPointArn"]
    defaults = backup.get_recovery_point_restore_metadata(
        BackupVaultName="s3story", RecoveryPointArn=rp_arn
    )["RestoreMetadata"]
    assert (defaults["targetBucket"], defaults["targetPrefix"]) == ("story-media", "m/")

    for bad, code in (
        (
            {"targetBucket": "x-y-z", "targetEndpoint": "http://10.20.30.40:9000"},
            "AccessDeniedException",
        ),
        (
            {"targetBucket": "x-y-z", "targetSecretAccessKey": SECRET},
            "InvalidParameterValueException",
        ),
    ):
        refused = code_of(
            backup.start_restore_job, RecoveryPointArn=rp_arn, Metadata=bad, IamRoleArn=ROLE
        )
        assert refused[0] == code

    done = restored_with(backup, rp_arn, {"targetBucket": "story-media-back"})
    assert done["Status"] == "COMPLETED", done.get("StatusMessage")
    got = s3.get_object(Bucket="story-media-back", Key="cat.jpg")
    assert (got["Body"].read(), got["ContentType"], got["Metadata"]) == (
        b"\xff\xd8 a cat",
        "image/jpeg",
        {"by": "ana"},
    )
    tags = s3.get_object_tagging(Bucket="story-media-back", Key="cat.jpg")["TagSet"]
    assert tags == [{"Key": "album", "Value": "pets"}]
    assert SECRET not in snowvault_server.log.read_text()


def test_a_sparse_image_round_trips_with_its_holes(
    snowvault_server: ServerProcess, backup: Any, ext: ExtCall, tmp_path: Path
) -> None:
    image = tmp_path / "disk.img"
    with open(image, "wb") as f:
        f.truncate(16 * MiB)
        f.seek(3 * MiB)
        f.write(bytes(range(256)) * 4096)
    arn = ext(
        "RegisterResource", {"ResourceType": "BlockDevice", "Name": "disk", "Source": str(image)}
    )["ResourceArn"]
    assert arn.endswith(":block/disk")
    backup.create_backup_vault(BackupVaultName="blockstory")
    job = backed_up(backup, "blockstory", arn)
    assert job["State"] == "COMPLETED", job.get("StatusMessage")
    rp_arn = job["RecoveryPointArn"]
    refused = code_of(
        backup.start_restore_job,
        RecoveryPointArn=rp_arn,
        Metadata={"targetPath": "/etc/disk.img"},
        IamRoleArn=ROLE,
    )
    assert refused[0] == "AccessDeniedException"
    target = tmp_path / "back.img"
    done = restored_with(backup, rp_arn, {"targetPath": str(target)})
    assert done["Status"] == "COMPLETED", done.get("StatusMessage")
    assert target.read_bytes() == image.read_bytes()
    assert os.stat(target).st_blocks * 512 < 2 * MiB  # the 15 MiB of holes stayed holes
