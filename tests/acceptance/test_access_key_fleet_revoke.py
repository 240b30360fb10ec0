"""A key deactivated or deleted through one server of a fleet is refused at once by
every other (helper K): SigV4 reads the key's row from the shared PostgreSQL catalog on
each request, and no server keeps a copy that could go on accepting it."""

from __future__ import annotations

import json

import pytest

from helpers.fleet import Fleet
from helpers.sv_server import ServerProcess


def _answers(server: ServerProcess, key: dict[str, str]) -> tuple[int, str]:
    status, doc = server.agent_call(key, "ListResources", {})
    return status, str(doc.get("__type", ""))


def test_every_server_refuses_a_revoked_key_at_once(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    with Fleet.start(tmp_path_factory, servers=2) as fleet:
        one, two = fleet.servers
        one.ext("CreateUser", {"UserName": "fleet-user"})
        policy = json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "backup:List*", "Resource": "*"}],
            }
        )
        one.ext(
            "PutUserPolicy", {"UserName": "fleet-user", "PolicyName": "p", "PolicyDocument": policy}
        )
        key = one.ext("CreateAccessKey", {"UserName": "fleet-user"})["AccessKey"]
        for server in (one, two):  # each has used (and could have kept) the key
            assert _answers(server, key) == (200, "")

        body = {"UserName": "fleet-user", "AccessKeyId": key["AccessKeyId"]}
        one.ext("UpdateAccessKey", body | {"Status": "Inactive"})
        for server in (two, one):
            status, error = _answers(server, key)
            assert status == 403 and error.endswith("UnrecognizedClientException")

        two.ext("UpdateAccessKey", body | {"Status": "Active"})
        assert _answers(one, key) == (200, "")

        two.ext("DeleteAccessKey", body)
        for server in (one, two):
            status, error = _answers(server, key)
            assert status == 403 and error.endswith("UnrecognizedClientException")
        assert not fleet.server_errors()
