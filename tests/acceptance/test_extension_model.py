"""The extension API through its shipped botocore model: ``snowvault.client()`` (boto3)
and ``aws snowvault ...`` (the AWS CLI with AWS_DATA_PATH) against a real server.

Every answer's raw JSON is checked against the model's output shape, so a member the
server sends but the model lacks (boto3 would silently drop it) fails here.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from botocore.config import Config

import snowvault
from helpers.stories import aws_env, backed_up, make_tree
from helpers.sv_server import ServerProcess

AWS = str(Path(sys.executable).with_name("aws"))


def unmodelled(shape: Any, value: Any, where: str = "") -> list[str]:
    """Paths of members in ``value`` that ``shape`` (a botocore shape) does not model."""
    if shape.type_name == "structure" and not getattr(shape, "is_document_type", False):
        out = [f"{where}.{k}" for k in value if k not in shape.members]
        for key, member in shape.members.items():
            if key in value:
                out += unmodelled(member, value[key], f"{where}.{key}")
        return out
    if shape.type_name == "list":
        return [
            p for i, v in enumerate(value) for p in unmodelled(shape.member, v, f"{where}[{i}]")
        ]
    if shape.type_name == "map":
        return [p for k, v in value.items() for p in unmodelled(shape.value, v, f"{where}[{k}]")]
    return []


@pytest.fixture
def raw_bodies() -> list[tuple[str, list[str]]]:
    return []


@pytest.fixture
def sv(snowvault_server: ServerProcess, raw_bodies: list[tuple[str, list[str]]]) -> Any:
    """A boto3 ``snowvault`` client signed with the root key (wall clock), recording for
    each 200 answer the members its raw body has that the model does not."""
    creds = snowvault_server.creds
    client = snowvault.client(
        endpoint_url=snowvault_server.endpoint,
        region_name=creds["region"],
        aws_access_key_id=creds["access_key_id"],
        aws_secret_access_key=creds["secret_access_key"],
        config=Config(retries={"max_attempts": 1, "mode": "standard"}),
    )

    def check(operation_model: Any, response_dict: Any, **_: Any) -> None:
        if response_dict["status_code"] == 200 and operation_model.output_shape is not None:
            body = json.loads(response_dict["body"] or b"{}")
            raw_bodies.append(
                (operation_model.name, unmodelled(operation_model.output_shape, body))
            )

    client.meta.events.register("before-parse.snowvault.*", check)
    return client


def dirs(root: Path, count: int) -> list[Path]:
    out = []
    for i in range(count):
        path = root / f"src{i}"
        path.mkdir(parents=True)
        (path / "a.txt").write_text(f"file {i}\n")
        out.append(path)
    return out


def test_register_page_describe_tag_and_modelled_errors(
    sv: Any, tmp_path: Path, raw_bodies: list[tuple[str, list[str]]]
) -> None:
    arns = []
    for i, path in enumerate(dirs(tmp_path, 3)):
        doc = sv.register_resource(
            ResourceType="Directory", Name=f"model-{i}", Source=str(path), Tags={"team": "a"}
        )
        assert doc["ResourceArn"].startswith("arn:") and doc["Name"] == f"model-{i}"
        assert isinstance(doc["CreationDate"], datetime)
        arns.append(doc["ResourceArn"])

    pages = list(
        sv.get_paginator("list_resources").paginate(
            ResourceType="Directory", PaginationConfig={"PageSize": 1}
        )
    )
    listed = [r["ResourceArn"] for page in pages for r in page["Resources"]]
    assert len(pages) >= 3 and all(len(p["Resources"]) <= 1 for p in pages)
    assert set(arns) <= set(listed) and len(listed) == len(set(listed))

    sv.tag_resource(ResourceArn=arns[0], Tags={"env": "prod"})
    sv.untag_resource(ResourceArn=arns[0], TagKeys=["team"])
    described = sv.describe_resource(ResourceArn=arns[0])
    assert described["Tags"] == {"env": "prod"} and described["Source"] == str(tmp_path / "src0")

    missing = arns[0] + "-gone"
    with pytest.raises(sv.exceptions.ResourceNotFoundException) as info:
        sv.describe_resource(ResourceArn=missing)
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    with pytest.raises(sv.exceptions.AlreadyExistsException):
        sv.register_resource(ResourceType="Directory", Name="model-0", Source=str(tmp_path))
    with pytest.raises(sv.exceptions.AccessDeniedException):  # outside the allowed roots
        sv.register_resource(ResourceType="Directory", Name="etc", Source="/etc")

    sv.deregister_resource(ResourceArn=arns[2])
    with pytest.raises(sv.exceptions.ResourceNotFoundException):
        sv.describe_resource(ResourceArn=arns[2])

    assert {op for op, _ in raw_bodies} >= {"RegisterResource", "ListResources"}
    assert [(op, extra) for op, extra in raw_bodies if extra] == []


def test_recovery_point_contents_and_users(
    sv: Any, backup: Any, tmp_path: Path, raw_bodies: list[tuple[str, list[str]]]
) -> None:
    source = tmp_path / "tree"
    make_tree(source, seed=7, files=6, size=2000)
    arn = sv.register_resource(ResourceType="Directory", Name="tree", Source=str(source))[
        "ResourceArn"
    ]
    backup.create_backup_vault(BackupVaultName="model-vault")
    job = backed_up(backup, "model-vault", arn)
    assert job["State"] == "COMPLETED", job

    top = sv.list_recovery_point_contents(RecoveryPointArn=job["RecoveryPointArn"])["Entries"]
    every = sv.list_recovery_point_contents(
        RecoveryPointArn=job["RecoveryPointArn"], Recursive=True
    )["Entries"]
    files = {e["Path"]: e for e in every if e["Type"] == "file"}
    expected = {"/" + str(p.relative_to(source)) for p in source.rglob("*") if p.is_file()}
    assert set(files) == expected and len(top) < len(every)
    sample = files["/empty.txt"]
    assert sample["Size"] == 0 and isinstance(sample["ModifiedTime"], datetime)

    user = sv.create_user(UserName="model-user")["User"]
    assert user["UserName"] == "model-user" and isinstance(user["CreateDate"], datetime)
    sv.put_user_policy(
        UserName="model-user",
        PolicyName="ro",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "backup:List*", "Resource": "*"}],
            }
        ),
    )
    got = sv.get_user_policy(UserName="model-user", PolicyName="ro")
    assert json.loads(got["PolicyDocument"])["Statement"][0]["Action"] == "backup:List*"
    key = sv.create_access_key(UserName="model-user")["AccessKey"]
    assert key["AccessKeyId"] and key["SecretAccessKey"]
    assert "model-user" in [u["UserName"] for u in sv.list_users()["Users"]]
    sv.delete_user_policy(UserName="model-user", PolicyName="ro")
    sv.delete_user(UserName="model-user")
    with pytest.raises(sv.exceptions.ResourceNotFoundException):
        sv.get_user_policy(UserName="model-user", PolicyName="ro")

    assert [(op, extra) for op, extra in raw_bodies if extra] == []


def test_the_aws_cli_speaks_snowvault_with_aws_data_path(
    snowvault_server: ServerProcess, tmp_path: Path
) -> None:
    source = dirs(tmp_path, 1)[0]
    env = dict(aws_env(snowvault_server), AWS_DATA_PATH=snowvault.DATA_PATH)
    base = [AWS, "--endpoint-url", snowvault_server.endpoint, "--output", "json", "snowvault"]
    done = subprocess.run(
        [*base, "register-resource", "--resource-type", "Directory", "--name", "by-cli",
         "--source", str(source), "--tags", "via=cli"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    arn = json.loads(done.stdout)["ResourceArn"]

    listed = subprocess.run(
        [*base, "list-resources", "--page-size", "1"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    resources = json.loads(listed.stdout)["Resources"]
    assert arn in [r["ResourceArn"] for r in resources]
    assert [r["Tags"] for r in resources if r["ResourceArn"] == arn] == [{"via": "cli"}]

    missing = subprocess.run(
        [*base, "describe-resource", "--resource-arn", arn + "-gone"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert missing.returncode != 0 and "ResourceNotFoundException" in missing.stderr


def test_agents_page_through_the_models_paginator(
    sv: Any, raw_bodies: list[tuple[str, list[str]]]
) -> None:
    """ListAgents pages with MaxResults/NextToken, and boto3's paginator (the shipped
    paginators-1.json) follows them to every enrolled host, each once."""
    hosts = [f"page-host-{i}" for i in range(5)]
    for host in hosts:
        sv.enroll_agent(Host=host)
    pages = list(sv.get_paginator("list_agents").paginate(PaginationConfig={"PageSize": 2}))
    listed = [a["Host"] for page in pages for a in page["Agents"]]
    assert len(pages) >= 3 and all(len(p["Agents"]) <= 2 for p in pages)
    assert set(hosts) <= set(listed) and len(listed) == len(set(listed))
    assert [(op, extra) for op, extra in raw_bodies if extra] == []
