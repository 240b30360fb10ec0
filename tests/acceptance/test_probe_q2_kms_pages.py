"""KMS ListResourceTags, ListKeyRotations and ListKeyPolicies page as KMS does (Limit,
Marker, Truncated, NextMarker), through boto3's kms client and its paginators (helper
Q's probe: the three ignored Limit and Marker); a Marker this server did not issue is
InvalidMarkerException and a Limit out of range ValidationException, never a 500.
"""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from helpers.sv_server import ServerProcess

TAGS = [{"TagKey": f"k{i}", "TagValue": f"v{i}"} for i in range(5)]


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


def test_tags_rotations_and_policies_page(kms: Any) -> None:
    key = kms.create_key(Tags=TAGS)["KeyMetadata"]["KeyId"]
    first = kms.list_resource_tags(KeyId=key, Limit=2)
    assert len(first["Tags"]) == 2 and first["Truncated"] is True and first["NextMarker"]
    pages = kms.get_paginator("list_resource_tags").paginate(
        KeyId=key, PaginationConfig={"PageSize": 2}
    )
    assert [t for p in pages for t in p["Tags"]] == TAGS

    for _ in range(3):
        kms.rotate_key_on_demand(KeyId=key)
    whole = kms.list_key_rotations(KeyId=key)
    assert len(whole["Rotations"]) == 3 and whole["Truncated"] is False
    pages = kms.get_paginator("list_key_rotations").paginate(
        KeyId=key, PaginationConfig={"PageSize": 1}
    )
    assert [r for p in pages for r in p["Rotations"]] == whole["Rotations"]  # oldest first

    one = kms.list_key_policies(KeyId=key, Limit=1)
    assert one["PolicyNames"] == ["default"] and one["Truncated"] is False


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"Marker": "forged"}, "InvalidMarkerException"),
        ({"Limit": 51}, "ValidationException"),
    ],
)
def test_a_forged_marker_or_a_bad_limit_is_a_kms_error(
    kms: Any, params: dict[str, Any], code: str
) -> None:
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    with pytest.raises(ClientError) as info:
        kms.list_resource_tags(KeyId=key, **params)
    assert info.value.response["Error"]["Code"] == code
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
