"""ListUsers pages as AWS IAM's does (helper Q's probe): ``MaxItems`` (1-1000, default
100), ``Marker``, ``IsTruncated``, through boto3 with the shipped ``snowvault`` model and
its paginator, against a server on the wall clock (no test mode), and through the CLI.

Found: ListUsers ignored ``MaxItems`` and ``Marker`` and answered every user in one
page. A Marker this server did not issue answers 400, never 500.
"""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.config import Config

import snowvault
from helpers.sv_server import SNOWVAULT, ServerProcess, user_server

USERS = 103  # past IAM's default page of 100


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    yield from user_server(tmp_path_factory)  # wall-clock SigV4, no 5xx


@pytest.fixture(scope="module")
def sv(server: ServerProcess) -> Any:
    creds = server.creds
    client = snowvault.client(
        endpoint_url=server.endpoint,
        region_name=creds["region"],
        aws_access_key_id=creds["access_key_id"],
        aws_secret_access_key=creds["secret_access_key"],
        config=Config(retries={"max_attempts": 1, "mode": "standard"}),
    )
    for i in range(USERS):
        client.create_user(UserName=f"user-{i:03d}")
    return client


def names(page: dict[str, Any]) -> list[str]:
    return [u["UserName"] for u in page["Users"]]


def test_max_items_marker_and_is_truncated(sv: Any) -> None:
    first = sv.list_users()
    assert len(first["Users"]) == 100 and first["IsTruncated"] is True
    rest = sv.list_users(Marker=first["Marker"])
    assert rest["IsTruncated"] is False and "Marker" not in rest
    assert names(first) + names(rest) == [f"user-{i:03d}" for i in range(USERS)]

    small = sv.list_users(MaxItems=2)
    assert names(small) == ["user-000", "user-001"] and small["IsTruncated"] is True
    after = sv.list_users(MaxItems=2, Marker=small["Marker"])
    assert names(after) == ["user-002", "user-003"]
    assert len(sv.list_users(MaxItems=1000)["Users"]) == USERS


def test_the_boto3_paginator_walks_every_page(sv: Any) -> None:
    pages = list(sv.get_paginator("list_users").paginate(PaginationConfig={"PageSize": 7}))
    assert [len(p["Users"]) for p in pages] == [7] * 14 + [5]
    assert [n for p in pages for n in names(p)] == [f"user-{i:03d}" for i in range(USERS)]
    capped = sv.get_paginator("list_users").paginate(PaginationConfig={"MaxItems": 10})
    assert len(capped.build_full_result()["Users"]) == 10


def _forged(kind: str, values: list[Any]) -> str:
    raw = json.dumps({"k": kind, "v": values}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    "body",
    [
        {"Marker": "not-a-token"},
        {"Marker": "%%%"},
        {"Marker": _forged("resources", ["x", "y"])},  # another list's
        {"Marker": _forged("iam-users", [{"name": 1}])},
        {"Marker": _forged("iam-users", [1])},
        {"Marker": _forged("iam-users", ["a", "b"])},
        {"Marker": 5},
        {"MaxItems": 0},
        {"MaxItems": 1001},
        {"MaxItems": -1},
        {"MaxItems": "5"},
        {"MaxItems": True},
    ],
)
def test_a_forged_marker_or_bad_max_items_is_400(
    server: ServerProcess, sv: Any, body: dict[str, Any]
) -> None:
    resp = server.signed(
        "POST",
        "/_snowvault/v1/ListUsers",
        json.dumps(body).encode(),
        **{"Content-Type": "application/json"},
    )
    assert resp.status == 400, (resp.status, resp.data)
    code = json.loads(resp.data)["__type"].split("#")[-1]
    assert code in {"ValidationException", "InvalidParameterValueException"}


def test_the_cli_lists_every_user_across_pages(server: ServerProcess, sv: Any) -> None:
    done = subprocess.run(
        [SNOWVAULT, "iam", "user", "list", "--json"],
        env=server.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    listed = [u["UserName"] for u in json.loads(done.stdout)]
    assert listed == [f"user-{i:03d}" for i in range(USERS)]
