"""ListRecoveryPointContents in pages (helper Q's newcomer probe): a recursive listing
of a point of 100,100 files answered one 11.9 MB body and cost the server 129 MB more
memory for 11.8 s, for anyone allowed to list. Now at most MaxResults (1-1000, default
1000) entries a page with a NextToken, through boto3's paginator (the shipped model) and
the CLI's ``recovery-point ls -r``, which follows it; a token of another listing, a
forged one and a bad MaxResults answer 400, never 500. Server on the wall clock.
"""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.config import Config

import snowvault
from helpers import stories
from helpers.sv_server import SNOWVAULT, ServerProcess, user_server

FILES = 1_050  # past one default page


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    yield from user_server(tmp_path_factory)  # wall-clock SigV4, no 5xx


@pytest.fixture(scope="module")
def sv(server: ServerProcess) -> Any:
    creds = server.creds
    return snowvault.client(
        endpoint_url=server.endpoint,
        region_name=creds["region"],
        aws_access_key_id=creds["access_key_id"],
        aws_secret_access_key=creds["secret_access_key"],
        config=Config(retries={"max_attempts": 1, "mode": "standard"}),
    )


@pytest.fixture(scope="module")
def point(server: ServerProcess, sv: Any, tmp_path_factory: pytest.TempPathFactory) -> str:
    source = tmp_path_factory.mktemp("many")
    for d in range(3):
        (source / f"d{d}").mkdir()
        for f in range(FILES // 3):
            (source / f"d{d}" / f"f{f:04d}").touch()
    arn = sv.register_resource(ResourceType="Directory", Name="many", Source=str(source))[
        "ResourceArn"
    ]
    backup = server.client()
    backup.create_backup_vault(BackupVaultName="pages")
    job = backup.start_backup_job(BackupVaultName="pages", ResourceArn=arn, IamRoleArn=stories.ROLE)
    done = stories.poll(
        lambda: backup.describe_backup_job(BackupJobId=job["BackupJobId"]),
        "State",
        {"COMPLETED", "FAILED", "ABORTED", "EXPIRED"},
        timeout=120,
    )
    assert done["State"] == "COMPLETED", done
    return str(done["RecoveryPointArn"])


def test_a_recursive_listing_comes_in_bounded_pages(sv: Any, point: str) -> None:
    first = sv.list_recovery_point_contents(RecoveryPointArn=point, Recursive=True)
    assert len(first["Entries"]) == 1000 and first["NextToken"]
    rest = sv.list_recovery_point_contents(
        RecoveryPointArn=point, Recursive=True, NextToken=first["NextToken"]
    )
    assert "NextToken" not in rest
    paths = [e["Path"] for e in first["Entries"] + rest["Entries"]]
    assert len(paths) == len(set(paths)) == FILES + 3
    assert paths[:2] == ["/d0", "/d0/f0000"] and paths[-1] == f"/d2/f{FILES // 3 - 1:04d}"

    pages = sv.get_paginator("list_recovery_point_contents").paginate(
        RecoveryPointArn=point, Recursive=True, PaginationConfig={"PageSize": 100}
    )
    sizes = [len(p["Entries"]) for p in pages]
    assert sizes == [100] * 10 + [FILES + 3 - 1000]
    flat = sv.list_recovery_point_contents(RecoveryPointArn=point, Path="/d1", MaxResults=5)
    assert [e["Path"] for e in flat["Entries"]] == [f"/d1/f{i:04d}" for i in range(5)]


def _forged(values: list[Any]) -> str:
    raw = json.dumps({"k": "rp-contents", "v": values}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def test_a_token_of_another_listing_forged_or_a_bad_size_is_400(
    server: ServerProcess, sv: Any, point: str
) -> None:
    token = sv.list_recovery_point_contents(RecoveryPointArn=point, Path="/d0", MaxResults=2)[
        "NextToken"
    ]
    b64 = base64.b64encode
    bodies: list[dict[str, Any]] = [
        {"NextToken": token, "Path": "/d1"},  # another path
        {"NextToken": token, "Path": "/d0", "Recursive": True},
        {"NextToken": "garbage"},
        {"NextToken": _forged([point, "/", True, b64(b"/nope").decode()])},
        {"NextToken": _forged([point, "/", True, b64(b"/d0/f0001/x").decode()])},
        {"NextToken": _forged([point, "/", True, "%%%"])},
        {"NextToken": _forged([point, "/", True, 5])},
        {"NextToken": _forged([point, "/", True])},
        {"MaxResults": 0},
        {"MaxResults": 1001},
        {"MaxResults": "10"},
    ]
    for body in bodies:
        full = {"RecoveryPointArn": point, "Recursive": True} | body
        if "Path" in body:
            full["Recursive"] = body.get("Recursive", False)
        resp = server.signed(
            "POST",
            "/_snowvault/v1/ListRecoveryPointContents",
            json.dumps(full).encode(),
            **{"Content-Type": "application/json"},
        )
        assert resp.status == 400, (body, resp.status, resp.data)


def test_the_cli_lists_every_entry(server: ServerProcess, point: str, tmp_path: Path) -> None:
    done = subprocess.run(
        [SNOWVAULT, "recovery-point", "ls", point, "/", "-r", "--json"],
        env=server.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert len(json.loads(done.stdout)) == FILES + 3
