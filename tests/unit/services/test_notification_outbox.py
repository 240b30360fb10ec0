"""The notification outbox and SNS message signing, on a SQLite catalog and a FakeClock."""

from __future__ import annotations

import base64
import json
import stat
from datetime import timedelta
from pathlib import Path

import botocore.loaders
import pytest

from snowvault.control import catalog
from snowvault.control.model import notifications as rules
from snowvault.control.scheduler import delivery
from snowvault.control.services import sns
from snowvault.control.services.base import Caller, Deps
from snowvault.core.errors import PermissionDenied
from snowvault.engine.crypto import message_signing
from snowvault.testing import FakeClock

HOOK = "http://127.0.0.1:9/hook"


class FakePost:
    """Answers ``statuses`` in turn (then 200), recording what it was sent."""

    def __init__(self, *statuses: int) -> None:
        self.statuses = list(statuses)
        self.sent: list[dict[str, object]] = []

    def __call__(self, url: str, addresses: list[str], body: bytes, headers: dict[str, str]) -> int:
        assert addresses == ["127.0.0.1"]  # the rule's resolved address, not a second lookup
        self.sent.append(json.loads(body))
        return self.statuses.pop(0) if self.statuses else 200


def _confirmed_topic(deps: Deps, caller: Caller, key: message_signing.SigningKey) -> str:
    topic = sns.create_topic(deps, caller, "events")
    sns.subscribe(deps, caller, topic, "http", HOOK)
    post = FakePost()
    delivery.Deliverer(deps, key, "http://sv", post=post).deliver_once()
    (confirmation,) = post.sent
    assert confirmation["Type"] == "SubscriptionConfirmation"
    sns.confirm(deps, topic, str(confirmation["Token"]))
    return topic


@pytest.fixture(scope="module")
def key() -> message_signing.SigningKey:
    return message_signing.SigningKey.generate("test", FakeClock().now())


def _states(deps: Deps) -> list[tuple[str, int]]:
    with catalog.db.read_transaction(deps.engine) as conn:
        rows = [catalog.notifications.get_outgoing(conn, seq) for seq in range(1, 10)]
    return [
        (r.message, r.attempts) if r.state == "PENDING" else (r.state, r.attempts)
        for r in rows
        if r
    ]


def test_signature_is_sns_v2_and_checks_against_the_served_certificate(
    deps: Deps, caller: Caller, key: message_signing.SigningKey
) -> None:
    topic = _confirmed_topic(deps, caller, key)
    sns.publish(deps, caller, topic, "hello", subject="hi")
    post = FakePost()
    delivery.Deliverer(deps, key, "http://sv", post=post).deliver_once()
    (doc,) = post.sent
    assert (
        doc["SignatureVersion"] == "2" and doc["SigningCertURL"] == "http://sv" + delivery.CERT_PATH
    )
    text = "".join(
        f"{k}\n{doc[k]}\n"
        for k in ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
    )
    signature = base64.b64decode(str(doc["Signature"]))
    message_signing.verify(key.cert_pem, signature, text.encode())
    with pytest.raises(message_signing.InvalidSignature):
        message_signing.verify(key.cert_pem, signature, text.replace("hello", "hellO").encode())


def test_a_failed_delivery_is_retried_with_backoff_and_blocks_later_messages(
    deps: Deps, caller: Caller, clock: FakeClock, key: message_signing.SigningKey
) -> None:
    topic = _confirmed_topic(deps, caller, key)
    sns.publish(deps, caller, topic, "first")
    sns.publish(deps, caller, topic, "second")
    post = FakePost(500, 503)
    loop = delivery.Deliverer(deps, key, "http://sv", post=post)

    assert loop.deliver_once().retried == 1  # "second" waits behind "first"
    assert [d["Message"] for d in post.sent] == ["first"]
    clock.advance(timedelta(seconds=4))
    assert loop.deliver_once().retried == 0 and len(post.sent) == 1  # not due before 5 s
    clock.advance(timedelta(seconds=1))
    assert loop.deliver_once().retried == 1  # 503: next try 15 s later
    clock.advance(timedelta(seconds=15))
    assert loop.deliver_once().delivered == 1
    assert loop.deliver_once().delivered == 1
    assert [d["Message"] for d in post.sent] == ["first", "first", "first", "second"]
    assert _states(deps)[1:] == [("DELIVERED", 3), ("DELIVERED", 1)]
    with catalog.db.read_transaction(deps.engine) as conn:
        assert catalog.notifications.outbox_counts(conn) == {"DELIVERED": 3}


def test_delivery_gives_up_after_max_attempts(
    deps: Deps, caller: Caller, clock: FakeClock, key: message_signing.SigningKey
) -> None:
    topic = _confirmed_topic(deps, caller, key)
    sns.publish(deps, caller, topic, "doomed")
    loop = delivery.Deliverer(deps, key, "http://sv", post=FakePost(*[500] * rules.MAX_ATTEMPTS))
    for _ in range(rules.MAX_ATTEMPTS):
        loop.deliver_once()
        clock.advance(timedelta(hours=1))
    assert _states(deps)[-1] == ("FAILED", rules.MAX_ATTEMPTS)


def test_unconfirmed_subscriptions_get_nothing_and_foreign_hosts_are_refused(
    deps: Deps, caller: Caller
) -> None:
    topic = sns.create_topic(deps, caller, "quiet")
    sns.subscribe(deps, caller, topic, "http", HOOK)
    sns.publish(deps, caller, topic, "not for you")
    assert len(_states(deps)) == 1  # the confirmation only
    with pytest.raises(PermissionDenied):
        sns.subscribe(deps, caller, topic, "http", "http://192.0.2.1/hook")


def test_signing_key_is_made_once_and_kept_private(tmp_path: Path) -> None:
    now = FakeClock().now()
    first = delivery.signing_key(tmp_path, now)
    again = delivery.signing_key(tmp_path, now)
    assert first.cert_pem == again.cert_pem
    mode = (tmp_path / delivery.KEY_FILE).stat().st_mode
    assert stat.S_IMODE(mode) == 0o600


def test_vault_events_are_botocores() -> None:
    model = botocore.loaders.Loader().load_service_model("backup", "service-2")
    assert list(rules.BACKUP_VAULT_EVENTS) == model["shapes"]["BackupVaultEvent"]["enum"]
