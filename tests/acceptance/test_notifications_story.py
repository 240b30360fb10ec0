"""Vault notifications end to end (issue 16): a webhook subscribes to a snowvault-served
SNS topic, confirms, and receives a failed then a successful backup job's notification,
in order, across a server restart, each signature checked against the served certificate.

The receiver answers the first notification with HTTP 500, so that message waits in the
outbox for its retry while the server restarts: it is delivered after the restart, and
the later job's message only after it (order per subscriber)."""

from __future__ import annotations

import base64
import json
import queue
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest
import urllib3
from botocore.config import Config
from botocore.exceptions import ClientError
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from helpers.stories import ROLE, make_tree, poll, register
from helpers.sv_server import ServerProcess, move_clock, new_server

FINAL = {"COMPLETED", "PARTIAL", "FAILED", "ABORTED", "EXPIRED"}
SIGNED = {
    "Notification": ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"],
    "SubscriptionConfirmation": [
        "Message",
        "MessageId",
        "SubscribeURL",
        "Timestamp",
        "Token",
        "TopicArn",
        "Type",
    ],
}


class Receiver:
    """A webhook on 127.0.0.1: records every POST; answers 500 to the first ``fail``
    notifications, 200 otherwise."""

    def __init__(self, fail: int) -> None:
        self.posts: queue.Queue[tuple[dict[str, str], dict[str, Any]]] = queue.Queue()
        self.fail = fail
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                doc = json.loads(body)
                owner.posts.put(({k.lower(): v for k, v in self.headers.items()}, doc))
                failing = doc["Type"] == "Notification" and owner.fail > 0
                owner.fail -= 1 if failing else 0
                self.send_response(500 if failing else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def next(self, timeout: float = 30) -> tuple[dict[str, str], dict[str, Any]]:
        return self.posts.get(timeout=timeout)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def verify(doc: dict[str, Any]) -> None:
    """SNS SignatureVersion 2, checked from scratch against the SigningCertURL's cert."""
    assert doc["SignatureVersion"] == "2"
    cert_pem = urllib3.request("GET", doc["SigningCertURL"], retries=False).data
    public = x509.load_pem_x509_certificate(cert_pem).public_key()
    text = "".join(f"{k}\n{doc[k]}\n" for k in SIGNED[doc["Type"]] if k in doc)
    public.verify(  # type: ignore[union-attr]
        base64.b64decode(doc["Signature"]), text.encode(), padding.PKCS1v15(), hashes.SHA256()
    )


@pytest.fixture
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = new_server(tmp_path_factory)
    srv.init(lease_seconds=10, sweep_seconds=1, poll_seconds=0.2)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def _sns(server: ServerProcess) -> Any:
    return boto3.client(
        "sns",
        endpoint_url=server.endpoint,
        region_name=server.creds["region"],
        aws_access_key_id=server.creds["access_key_id"],
        aws_secret_access_key=server.creds["secret_access_key"],
        config=Config(retries={"max_attempts": 1, "mode": "standard"}),
    )


def _backup(server: ServerProcess, vault: str, resource: str) -> dict[str, Any]:
    client = server.client()
    job = client.start_backup_job(BackupVaultName=vault, ResourceArn=resource, IamRoleArn=ROLE)
    return poll(lambda: client.describe_backup_job(BackupJobId=job["BackupJobId"]), "State", FINAL)


def _attr(doc: dict[str, Any], name: str) -> str:
    return str(doc["MessageAttributes"][name]["Value"])


def test_webhook_gets_signed_job_notifications_in_order_across_a_restart(
    server: ServerProcess, tmp_path: Path
) -> None:
    receiver = Receiver(fail=1)
    try:
        sns = _sns(server)
        topic = sns.create_topic(Name="backup-events")["TopicArn"]
        assert (
            sns.subscribe(TopicArn=topic, Protocol="http", Endpoint=receiver.url)["SubscriptionArn"]
            == "pending confirmation"
        )
        headers, confirmation = receiver.next()
        assert headers["x-amz-sns-message-type"] == "SubscriptionConfirmation"
        assert confirmation["TopicArn"] == topic
        verify(confirmation)
        assert urllib3.request("GET", confirmation["SubscribeURL"], retries=False).status == 200
        subs = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
        assert [s["Endpoint"] for s in subs] == [receiver.url]
        assert subs[0]["SubscriptionArn"].startswith(topic + ":")

        backup = server.client()
        backup.create_backup_vault(BackupVaultName="watched")
        with pytest.raises(ClientError) as bad:
            backup.put_backup_vault_notifications(
                BackupVaultName="watched", SNSTopicArn=topic, BackupVaultEvents=["NO_SUCH_EVENT"]
            )
        assert bad.value.response["Error"]["Code"] == "InvalidParameterValueException"
        backup.put_backup_vault_notifications(
            BackupVaultName="watched", SNSTopicArn=topic, BackupVaultEvents=["BACKUP_JOB_COMPLETED"]
        )
        got = backup.get_backup_vault_notifications(BackupVaultName="watched")
        assert (got["SNSTopicArn"], got["BackupVaultEvents"]) == (topic, ["BACKUP_JOB_COMPLETED"])

        gone = tmp_path / "gone"
        gone.mkdir()
        failing = register(server.ext, "notify-bad", gone)
        gone.rmdir()
        failed_job = _backup(server, "watched", failing)
        assert failed_job["State"] == "FAILED"
        _, first_try = receiver.next()  # answered 500: it stays in the outbox
        assert _attr(first_try, "State") == "FAILED"

        server.stop()
        server.start()
        move_clock(server, advance_seconds=30)  # past the first retry delay
        _, retried = receiver.next()
        assert retried["MessageId"] == first_try["MessageId"]
        verify(retried)

        source = tmp_path / "src"
        make_tree(source, seed=7, files=2, size=1000)
        good = register(server.ext, "notify-good", source)
        ok_job = _backup(server, "watched", good)
        assert ok_job["State"] == "COMPLETED"
        headers, success = receiver.next()
        verify(success)
        assert headers["x-amz-sns-message-type"] == "Notification"
        assert headers["x-amz-sns-subscription-arn"] == subs[0]["SubscriptionArn"]
        assert (_attr(success, "State"), _attr(success, "Id")) == (
            "COMPLETED",
            ok_job["BackupJobId"],
        )
        assert _attr(retried, "Id") == failed_job["BackupJobId"]
        assert ok_job["RecoveryPointArn"] in success["Message"]
        assert receiver.posts.empty()
    finally:
        receiver.close()


def test_subscribe_refuses_an_endpoint_outside_the_allowed_networks(server: ServerProcess) -> None:
    sns = _sns(server)
    topic = sns.create_topic(Name="t")["TopicArn"]
    with pytest.raises(ClientError) as refused:
        sns.subscribe(TopicArn=topic, Protocol="http", Endpoint="http://192.0.2.1:8080/x")
    assert refused.value.response["Error"]["Code"] == "AuthorizationError"
    with pytest.raises(ClientError) as wrong:
        sns.subscribe(TopicArn=topic, Protocol="email", Endpoint="a@example.com")
    assert wrong.value.response["Error"]["Code"] == "InvalidParameter"
