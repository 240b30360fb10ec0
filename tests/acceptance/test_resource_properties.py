"""Resource Properties through the real server: RegisterResource/DescribeResource/
ListResources carry Properties and Discovery; from the attacker's side, a secret sent in
Properties or a DSN is never echoed (error answers, listings, the server log), hosts
outside allowed_networks are refused before any connection, and malformed Properties are
a ValidationException."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from helpers.sv_server import ServerProcess

SECRET = "s3cr3t-never-echoed"


def _call(server: ServerProcess, action: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    resp = server.signed(
        "POST",
        f"/_snowvault/v1/{action}",
        json.dumps(body).encode(),
        **{"Content-Type": "application/json"},
    )
    return resp.status, json.loads(resp.data or b"{}")


def test_directory_properties_round_trip_and_discovery(
    snowvault_server: ServerProcess, tmp_path: Path
) -> None:
    src = tmp_path / "docs"
    src.mkdir()
    body = {"ResourceType": "Directory", "Name": "docs", "Source": str(src), "Properties": {}}
    registered = snowvault_server.ext("RegisterResource", body)
    assert registered["Properties"] == {}
    described = snowvault_server.ext("DescribeResource", {"ResourceArn": registered["ResourceArn"]})
    assert (described["Source"], described["Properties"]) == (str(src), {})
    assert described["Discovery"] == {}
    listed = snowvault_server.ext("ListResources", {"ResourceType": "Directory"})["Resources"]
    assert [r["Properties"] for r in listed if r["Name"] == "docs"] == [{}]
    # a Directory takes no Properties: refused naming the key, never the value
    status, doc = _call(
        snowvault_server,
        "RegisterResource",
        dict(body, Name="docs2", Properties={"password": SECRET}),
    )
    assert (status, doc["__type"]) == (400, "InvalidParameterValueException")
    assert "password" in doc["message"] and SECRET not in json.dumps(doc)


@pytest.mark.parametrize(
    ("body", "code", "status"),
    [
        (  # no plugin for the type: the secret is not echoed
            {"ResourceType": "Oracle", "Source": "oracle://u@127.0.0.1:1521"},
            "InvalidParameterValueException",
            400,
        ),
        (  # a host outside allowed_networks (loopback only by default), password in the DSN
            {"ResourceType": "PostgreSQL", "Source": f"postgresql://u:{SECRET}@10.9.8.7:5432"},
            "AccessDeniedException",
            403,
        ),
    ],
)
def test_secret_bearing_registrations_refused_without_echo(
    snowvault_server: ServerProcess, body: dict[str, Any], code: str, status: int
) -> None:
    request = dict(body, Name="bad", Properties={"password": SECRET})
    got_status, doc = _call(snowvault_server, "RegisterResource", request)
    assert (got_status, doc["__type"]) == (status, code)
    assert SECRET not in json.dumps(doc)
    listed = snowvault_server.ext("ListResources", {})["Resources"]
    assert "bad" not in [r["Name"] for r in listed]
    assert SECRET not in snowvault_server.log.read_text(errors="replace")


@pytest.mark.parametrize(
    "properties",
    [
        {"sslmode": 1},
        {f"k{i}": "v" for i in range(65)},
        {"sslmode": "x" * 4097},
        ["not", "a", "map"],
    ],
    ids=["non-string", "65-keys", "long-value", "not-a-map"],
)
def test_malformed_properties_are_a_validation_error(
    snowvault_server: ServerProcess, tmp_path: Path, properties: Any
) -> None:
    body = {"ResourceType": "Directory", "Name": "m", "Source": str(tmp_path)}
    status, doc = _call(snowvault_server, "RegisterResource", dict(body, Properties=properties))
    assert (status, doc["__type"]) == (400, "ValidationException")
