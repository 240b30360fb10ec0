"""``snowvault resource add <type>`` for every type of the seam's table: what it sends as
RegisterResource, secrets taken from stdin (never needed on the command line), and
``resource describe`` showing Properties and Discovery."""

from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import CliRunner, Result

from helpers.fake_api import ENV, FakeApi
from snowvault.interfaces.cli import client, errors, main, resource_cmd

ARN = "arn:aws:snowvault:us-east-1:123456789012:x/n"


def run(api: FakeApi, *args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(
        main.cli, list(args), input=stdin, obj={"api_factory": lambda p: api, "env": ENV}
    )


def _sent(*args: str, stdin: str | None = None) -> dict[str, Any]:
    api = FakeApi({"RegisterResource": {"ResourceArn": ARN}})
    result = run(api, "resource", "add", *args, "--name", "n", "--json", stdin=stdin)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.strip().splitlines()[-1])["ResourceArn"] == ARN
    return api.params("RegisterResource")


@pytest.mark.parametrize(
    ("args", "stdin", "expected"),
    [
        (
            ["postgresql", "--dsn", "postgresql://u@127.0.0.1:5432", "--sslmode", "disable"],
            "pw-from-stdin\n",
            {"sslmode": "disable", "password": "pw-from-stdin"},
        ),
        (["mysql", "--dsn", "mysql://root@127.0.0.1:3306"], None, None),
        (["redis", "--url", "redis://127.0.0.1:6379"], "r-pw\n", {"password": "r-pw"}),
    ],
)
def test_database_types_send_the_dsn_and_a_password_read_from_stdin(
    args: list[str], stdin: str | None, expected: dict[str, str] | None
) -> None:
    flags = ["--password-stdin"] if stdin else []
    body = _sent(*args, *flags, stdin=stdin)
    assert body["ResourceType"] == resource_cmd.RESOURCE_TYPES[args[0]]
    assert body["Source"] == args[2]
    assert body.get("Properties") == expected


def test_s3_sends_its_properties_and_reads_the_secret_from_stdin() -> None:
    body = _sent(
        "s3",
        "--bucket",
        "b",
        "--prefix",
        "/p/",
        "--endpoint",
        "http://127.0.0.1:9000",
        "--access-key-id",
        "AK",
        "--secret-access-key",
        "-",
        "--versions",
        "--bucket-region",
        "eu-west-1",
        stdin="SK-secret\n",
    )
    assert body["Source"] == "s3://b/p/"
    assert body["Properties"] == {
        "endpoint": "http://127.0.0.1:9000",
        "access_key_id": "AK",
        "secret_access_key": "SK-secret",
        "versions": "true",
        "region": "eu-west-1",
    }


def test_path_types_send_absolute_paths(tmp_path: Any, monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)
    assert _sent("sqlite", "--path", "app.db")["Source"] == str(tmp_path / "app.db")
    block = _sent("block", "--path", "disk.img", "--tag", "k=v")
    assert (block["ResourceType"], block["Source"]) == ("BlockDevice", str(tmp_path / "disk.img"))
    assert block["Tags"] == {"k": "v"}


def test_group_resolves_member_names_to_arns() -> None:
    listing = {"Resources": [{"Name": "pg", "ResourceArn": "arn:pg"}]}
    api = FakeApi({"ListResources": listing, "RegisterResource": {"ResourceArn": ARN}})
    result = run(
        api, "resource", "add", "group", "--member", "pg", "--member", "arn:x", "--name", "app"
    )
    assert result.exit_code == 0, result.output
    body = api.params("RegisterResource")
    assert body["Source"] == "group:app"
    assert json.loads(body["Properties"]["members"]) == ["arn:pg", "arn:x"]


def test_an_unsupported_type_answers_one_line_and_exit_2() -> None:
    def refuse(params: dict[str, Any]) -> dict[str, Any]:
        raise client.ApiInvalidInput(
            code="InvalidParameterValueException", detail="resource type 'Redis' is not supported"
        )

    result = run(
        FakeApi({"RegisterResource": refuse}),
        "resource",
        "add",
        "redis",
        "--url",
        "redis://127.0.0.1:6379",
        "--name",
        "r",
    )
    assert isinstance(result.exception, client.ApiInvalidInput)
    assert errors.EXIT_CODES[errors.class_name(type(result.exception))] == 2
    assert "not supported" in str(result.exception) and "Traceback" not in result.output


def test_describe_shows_properties_and_discovery() -> None:
    doc = {
        "ResourceArn": ARN,
        "Name": "pg",
        "Properties": {"sslmode": "disable"},
        "Discovery": {"ServerVersion": "16.4"},
    }
    result = run(FakeApi({"DescribeResource": doc}), "resource", "describe", ARN)
    assert result.exit_code == 0, result.output
    assert "sslmode=disable" in result.output and '"ServerVersion": "16.4"' in result.output


@pytest.mark.parametrize(
    ("args", "source"),
    [
        (["directory", "/srv/www"], "/srv/www"),
        (["sqlite", "--path", "/srv/app.db"], "/srv/app.db"),
        (["block", "--path", "/dev/vdb"], "/dev/vdb"),
        (["postgresql", "--dsn", "postgresql://u@127.0.0.1:5432"], "postgresql://u@127.0.0.1:5432"),
        (["mysql", "--dsn", "mysql://root@127.0.0.1:3306"], "mysql://root@127.0.0.1:3306"),
        (["redis", "--url", "redis://127.0.0.1:6379"], "redis://127.0.0.1:6379"),
    ],
)
def test_every_type_registers_on_an_agent_host_with_host(args: list[str], source: str) -> None:
    body = _sent(*args, "--host", "web-1")
    assert body["WorkerLabel"] == "agent:web-1"
    assert body["Source"] == source  # as given: never made absolute against this machine


@pytest.mark.parametrize("args", [["directory", "srv"], ["sqlite", "--path", "app.db"]])
def test_a_relative_path_on_an_agent_host_is_refused(args: list[str]) -> None:
    api = FakeApi({"RegisterResource": {"ResourceArn": ARN}})
    result = run(api, "resource", "add", *args, "--host", "web-1", "--name", "n")
    assert result.exit_code != 0
    assert "with --host, the path must be absolute" in str(result.exception)
    assert errors.EXIT_CODES[errors.class_name(type(result.exception))] == 2
    assert not api.calls
