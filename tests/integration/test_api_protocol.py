"""The API protocol layer under uvicorn, driven by the real boto3 clients.

Dummy handlers stand in for the services; what is under test is HTTP <-> (ctx, params):
routing, parsing, validation, SigV4, error codes, status codes, request ids.
"""

from __future__ import annotations

import itertools
import logging
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import httpx
import pytest
import uvicorn
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from snowvault.core import errors as core_errors
from snowvault.interfaces.api import asgi, sigv4

REGION = "eu-central-1"
ALICE = sigv4.Principal(
    "AKIAALICE0000000", "alice-secret-key", "111122223333", "arn:aws:iam::111122223333:user/alice"
)


class OffsetClock:
    """The wall clock moved by ``offset``: lets a test make every request look stale."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def monotonic(self) -> float:
        return time.monotonic()


class Vaults:
    """Thin dummy handlers over a dict; records the contexts they were called with."""

    def __init__(self) -> None:
        self.vaults: dict[str, dict[str, Any]] = {}
        self.contexts: list[asgi.RequestContext] = []
        self.lock = threading.Lock()

    def create(self, ctx: asgi.RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        self.contexts.append(ctx)
        name = params["BackupVaultName"]
        with self.lock:
            if name in self.vaults:
                raise core_errors.AlreadyExists(kind="backup vault", name=name)
            arn = f"arn:aws:backup:{ctx.region}:{ctx.account_id}:backup-vault:{name}"
            self.vaults[name] = {
                "BackupVaultName": name,
                "BackupVaultArn": arn,
                "CreationDate": ctx.now,
            }
        return {"BackupVaultName": name, "BackupVaultArn": arn, "CreationDate": ctx.now}

    def list(self, ctx: asgi.RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        names = sorted(self.vaults)
        start = int(params.get("NextToken", "0"))
        size = params.get("MaxResults", 1000)
        page = names[start : start + size]
        out: dict[str, Any] = {"BackupVaultList": [self.vaults[n] for n in page]}
        if start + size < len(names):
            out["NextToken"] = str(start + size)
        return out

    def describe(self, ctx: asgi.RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = params["BackupVaultName"]
        if name.startswith("missing"):
            raise core_errors.NotFound(kind="backup vault", name=name)
        return {"BackupVaultName": name, "NumberOfRecoveryPoints": 7, "Locked": False}

    def delete(self, ctx: asgi.RequestContext, params: dict[str, Any]) -> None:
        self.vaults.pop(params["BackupVaultName"], None)

    def never(self, ctx: asgi.RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        raise AssertionError(f"handler must not run for invalid input: {params}")


def _kms_handlers() -> dict[str, asgi.Handler]:
    def list_keys(ctx: asgi.RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        limit = params.get("Limit", 100)
        keys = [
            {"KeyId": f"k{i}", "KeyArn": f"arn:aws:kms:{ctx.region}:1:key/k{i}"}
            for i in range(limit)
        ]
        return {"Keys": keys, "Truncated": False}

    def encrypt(ctx: asgi.RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return {"KeyId": params["KeyId"], "CiphertextBlob": params["Plaintext"][::-1]}

    def describe_key(ctx: asgi.RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return {
            "KeyMetadata": {
                "KeyId": params["KeyId"],
                "CreationDate": ctx.now,
                "Enabled": True,
                "AWSAccountId": ctx.account_id,
            }
        }

    return {"ListKeys": list_keys, "Encrypt": encrypt, "DescribeKey": describe_key}


async def _health(request: Request, ctx: asgi.RequestContext | None) -> Response:
    return JSONResponse({"ok": True, "authenticated": ctx is not None})


async def _whoami(request: Request, ctx: asgi.RequestContext | None) -> Response:
    assert ctx is not None
    return JSONResponse({"arn": ctx.principal_arn, "region": ctx.region})


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self) -> None:
        self.clock = OffsetClock()
        self.vaults = Vaults()
        v = self.vaults
        backup = {
            "CreateBackupVault": v.create,
            "ListBackupVaults": v.list,
            "DescribeBackupVault": v.describe,
            "DeleteBackupVault": v.delete,
            "DeleteRestoreTestingPlan": lambda ctx, params: None,
            "CreateBackupPlan": v.never,
        }
        app = asgi.build_app(
            [asgi.ServiceEndpoint("backup", backup), asgi.ServiceEndpoint("kms", _kms_handlers())],
            lookup_secret=lambda key: ALICE if key == ALICE.access_key_id else None,
            clock=self.clock,
            extra_routes=[
                asgi.ExtraRoute("/_snowvault/health", _health, authenticated=False),
                asgi.ExtraRoute("/_snowvault/whoami", _whoami),
            ],
            allowed_regions={REGION, "us-east-1"},
        )
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off", ws="none"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Server:
        self.thread.start()
        for _ in range(500):
            if self.server.started:
                return self
            time.sleep(0.01)
        raise RuntimeError("uvicorn did not start")

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    with Server() as s:
        yield s


@pytest.fixture(autouse=True)
def _reset_clock(server: Server) -> None:
    server.clock.offset = timedelta(0)


def client(
    server: Server,
    service: str = "backup",
    secret: str = ALICE.secret_access_key,
    key: str = ALICE.access_key_id,
    region: str = REGION,
    validate: bool = True,
) -> Any:
    config = Config(parameter_validation=validate, retries={"total_max_attempts": 1})
    return boto3.client(
        service,
        endpoint_url=server.url,
        region_name=region,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        config=config,
    )


def _code(err: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    response = err.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


_names = (f"vault-{i}" for i in itertools.count())


# -- round trips ---------------------------------------------------------------------------


def test_create_describe_delete_round_trip(server: Server) -> None:
    backup = client(server)
    name = next(_names)
    created = backup.create_backup_vault(BackupVaultName=name, BackupVaultTags={"a": "b"})
    assert created["BackupVaultArn"] == f"arn:aws:backup:{REGION}:111122223333:backup-vault:{name}"
    assert isinstance(created["CreationDate"], datetime)
    assert created["ResponseMetadata"]["RequestId"]
    ctx = server.vaults.contexts[-1]
    assert (ctx.operation, ctx.service, ctx.region) == ("CreateBackupVault", "backup", REGION)
    assert ctx.principal_arn == ALICE.arn and ctx.source_ip == "127.0.0.1"
    assert ctx.request_id == created["ResponseMetadata"]["RequestId"]

    deleted = backup.delete_backup_vault(BackupVaultName=name)
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert name not in server.vaults.vaults


def test_name_needing_percent_encoding_round_trips(server: Server) -> None:
    name = "weird name/with+plus%and?ä"
    described = client(server).describe_backup_vault(BackupVaultName=name)
    assert described["BackupVaultName"] == name
    assert described["NumberOfRecoveryPoints"] == 7
    assert described["Locked"] is False


def test_pagination_through_the_real_paginator(server: Server) -> None:
    backup = client(server)
    made = [next(_names) for _ in range(5)]
    for name in made:
        backup.create_backup_vault(BackupVaultName=name)
    pages = list(
        backup.get_paginator("list_backup_vaults").paginate(PaginationConfig={"PageSize": 2})
    )
    listed = [v["BackupVaultName"] for p in pages for v in p["BackupVaultList"]]
    assert set(made) <= set(listed)
    assert len(listed) == len(set(listed))
    assert all(len(p["BackupVaultList"]) <= 2 for p in pages)


def test_204_from_the_model(server: Server) -> None:
    out = client(server).delete_restore_testing_plan(RestoreTestingPlanName="plan")
    assert out["ResponseMetadata"]["HTTPStatusCode"] == 204


def test_kms_json_protocol_round_trip(server: Server) -> None:
    kms = client(server, "kms")
    keys = kms.list_keys(Limit=3)
    assert [k["KeyId"] for k in keys["Keys"]] == ["k0", "k1", "k2"]
    assert kms.encrypt(KeyId="k1", Plaintext=b"\x00abc")["CiphertextBlob"] == b"cba\x00"
    meta = kms.describe_key(KeyId="k1")["KeyMetadata"]
    assert meta["AWSAccountId"] == "111122223333"
    assert isinstance(meta["CreationDate"], datetime)


# -- errors ----------------------------------------------------------------------------------


def test_snowvault_errors_map_to_aws_codes(server: Server) -> None:
    backup = client(server)
    with pytest.raises(ClientError) as err:
        backup.describe_backup_vault(BackupVaultName="missing-one")
    assert _code(err) == ("ResourceNotFoundException", 400)
    assert "missing-one" in err.value.response["Error"]["Message"]
    name = next(_names)
    backup.create_backup_vault(BackupVaultName=name)
    with pytest.raises(backup.exceptions.AlreadyExistsException):
        backup.create_backup_vault(BackupVaultName=name)


def test_server_side_validation_missing_and_invalid(server: Server) -> None:
    backup = client(server, validate=False)
    with pytest.raises(ClientError) as err:
        backup.create_backup_plan()
    assert _code(err) == ("MissingParameterValueException", 400)
    assert "BackupPlan" in err.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as err:
        backup.create_backup_vault(BackupVaultName="no spaces allowed")
    assert _code(err) == ("InvalidParameterValueException", 400)
    assert "BackupVaultName" in err.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as err:
        backup.list_backup_vaults(MaxResults=0)
    assert _code(err) == ("InvalidParameterValueException", 400)
    assert "MaxResults" in err.value.response["Error"]["Message"]


def test_kms_validation_uses_validation_exception(server: Server) -> None:
    with pytest.raises(ClientError) as err:
        client(server, "kms", validate=False).list_keys(Limit=0)
    assert _code(err) == ("ValidationException", 400)


def test_bad_signature(server: Server) -> None:
    with pytest.raises(ClientError) as err:
        client(server, secret="wrong").list_backup_vaults()
    assert _code(err) == ("InvalidSignatureException", 403)


def test_unknown_access_key(server: Server) -> None:
    with pytest.raises(ClientError) as err:
        client(server, key="AKIANOBODY000000").list_backup_vaults()
    assert _code(err) == ("UnrecognizedClientException", 403)


def test_expired_request(server: Server) -> None:
    server.clock.offset = timedelta(hours=1)
    with pytest.raises(ClientError) as err:
        client(server).list_backup_vaults()
    assert _code(err) == ("InvalidSignatureException", 403)
    assert "Signature expired" in err.value.response["Error"]["Message"]


def test_region_not_served(server: Server) -> None:
    with pytest.raises(ClientError) as err:
        client(server, region="ap-south-2").list_backup_vaults()
    assert _code(err) == (asgi.REGION_ERROR_CODE, 400)
    assert "ap-south-2" in err.value.response["Error"]["Message"]


def test_unimplemented_operation_is_a_4xx_naming_it(server: Server) -> None:
    with pytest.raises(ClientError) as err:
        client(server).list_frameworks()
    assert _code(err) == ("UnknownOperationException", 400)
    assert "ListFrameworks" in err.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as err:
        client(server, "kms").create_key()
    assert _code(err) == ("UnknownOperationException", 400)
    assert "CreateKey" in err.value.response["Error"]["Message"]


def _signed(
    server: Server,
    method: str,
    path: str,
    body: bytes,
    service: str = "backup",
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    request = AWSRequest(method=method, url=server.url + path, data=body, headers=headers or {})
    creds = Credentials(ALICE.access_key_id, ALICE.secret_access_key)
    SigV4Auth(creds, service, REGION).add_auth(request)
    prepared = request.prepare()
    return httpx.request(method, prepared.url, content=body, headers=dict(prepared.headers))


def test_malformed_json_is_a_serialization_error(server: Server) -> None:
    response = _signed(server, "PUT", "/backup-vaults/json-test", b'{"BackupVaultTags": {')
    assert response.status_code == 400
    assert response.json()["__type"] == "SerializationException"
    assert response.headers["x-amzn-errortype"].startswith("SerializationException")
    assert response.headers["x-amzn-requestid"]


def test_unroutable_path_is_a_4xx(server: Server) -> None:
    response = _signed(server, "GET", "/no/such/route", b"")
    assert response.status_code == 400
    assert response.json()["code"] == "UnknownOperationException"


def test_missing_authentication(server: Server) -> None:
    response = httpx.get(server.url + "/backup-vaults/")
    assert response.status_code == 403
    assert response.json()["__type"] == "MissingAuthenticationTokenException"


def test_extra_routes_authenticated_or_not(server: Server) -> None:
    health = httpx.get(server.url + "/_snowvault/health")
    assert health.json() == {"ok": True, "authenticated": False}
    assert httpx.get(server.url + "/_snowvault/whoami").status_code == 403
    whoami = _signed(server, "GET", "/_snowvault/whoami", b"", service="snowvault")
    assert whoami.json() == {"arn": ALICE.arn, "region": REGION}
    wrong_scope = _signed(server, "GET", "/_snowvault/whoami", b"", service="backup")
    assert wrong_scope.status_code == 403


def test_each_request_is_logged_with_its_id(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="snowvault.api")
    out = client(server).describe_backup_vault(BackupVaultName="logged")
    request_id = out["ResponseMetadata"]["RequestId"]
    lines = [r.getMessage() for r in caplog.records if request_id in r.getMessage()]
    assert len(lines) == 1
    assert "op=DescribeBackupVault" in lines[0] and "status=200" in lines[0]
