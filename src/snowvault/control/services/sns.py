"""The SNS subset snowvault serves so vault notifications have somewhere to go.

    topic = create_topic(deps, caller, "backup-events")     # arn:aws:sns:REGION:ACCOUNT:NAME
    sub = subscribe(deps, caller, topic, "http", "http://127.0.0.1:9000/hook")
    confirm(deps, topic, token)                              # the endpoint's callback
    publish(deps, caller, topic, "hello", subject="hi")

Subscriptions are ``http``/``https`` endpoints only. A new one is "pending confirmation":
a SubscriptionConfirmation message carrying a random token goes out first, and nothing
else is delivered until the endpoint confirms (ConfirmSubscription with the token, or a
GET of the SubscribeURL), as on AWS.

Abuse case: Subscribe makes the SERVER send HTTP requests to a URL a caller names, with
the server's network position. The URL's host and port must pass the network-reach rule
(``control.model.net_reach``: resolved addresses inside ``allowed_networks``, loopback
only by default) at Subscribe and again before every delivery (DNS may change). Who may
ask: ``sns:<Action>`` on the topic ARN (authorization in the API); a topic belongs to one
account and only that account's callers reach it. The confirmation token is 32 random
bytes (hex): knowing a subscription ARN is not enough to confirm it.

Must not depend on the scheduler or any interface.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit

from snowvault.control import catalog
from snowvault.control.model import net_reach
from snowvault.control.model import notifications as rules
from snowvault.control.services import notifications
from snowvault.control.services.base import Caller, Deps
from snowvault.core.errors import InvalidInput, NotFound

PROTOCOLS = ("http", "https")
MAX_ENDPOINT = 2048
MAX_MESSAGE_BYTES = 256 * 1024
PAGE = 100


def topic_arn(caller: Caller, name: str) -> str:
    return f"arn:aws:sns:{caller.region}:{caller.account_id}:{name}"


def _own_topic(conn: object, caller: Caller, arn: str) -> catalog.notifications.Topic:
    topic = catalog.notifications.get_topic(conn, arn)  # type: ignore[arg-type]
    if topic is None or topic.account_id != caller.account_id or topic.region != caller.region:
        raise NotFound(kind="topic", name=arn)
    return topic


def create_topic(deps: Deps, caller: Caller, name: str) -> str:
    if not isinstance(name, str) or not rules.TOPIC_NAME.match(name):
        raise InvalidInput(
            detail="Topic names must be 1-256 characters: letters, digits, '-' and '_'"
        )
    with catalog.db.transaction(deps.engine) as conn:
        topic = catalog.notifications.create_topic(
            conn,
            arn=topic_arn(caller, name),
            account_id=caller.account_id,
            region=caller.region,
            name=name,
            now=caller.now,
        )
    return topic.topic_arn


def list_topics(deps: Deps, caller: Caller, token: str | None) -> tuple[list[str], str | None]:
    with catalog.db.read_transaction(deps.engine) as conn:
        topics = catalog.notifications.list_topics(
            conn, account_id=caller.account_id, region=caller.region, after=token, limit=PAGE + 1
        )
    arns = [t.topic_arn for t in topics]
    return arns[:PAGE], (arns[PAGE - 1] if len(arns) > PAGE else None)


def delete_topic(deps: Deps, caller: Caller, arn: str) -> None:
    """DeleteTopic (a missing topic is not an error, as on AWS)."""
    with catalog.db.transaction(deps.engine) as conn:
        topic = catalog.notifications.get_topic(conn, arn)
        if topic is not None and topic.account_id == caller.account_id:
            catalog.notifications.delete_topic(conn, arn)


def check_endpoint(deps: Deps, protocol: str, endpoint: str) -> None:
    """The endpoint is an http(s) URL whose host and port pass the network-reach rule.

    No control character or space anywhere (``urlsplit`` silently drops CR, LF and tab,
    so ``.../hook\r\n/admin`` was stored as given and POSTed to as ``/hook/admin``),
    at most :data:`MAX_ENDPOINT` characters, and a port from 1 to 65535 when one is
    written (``:0`` meant the default port)."""
    if protocol not in PROTOCOLS:
        raise InvalidInput(detail=f"Protocol {protocol!r} is not supported here (http, https)")
    if len(endpoint) > MAX_ENDPOINT:
        raise InvalidInput(detail=f"Endpoint must be at most {MAX_ENDPOINT} characters")
    if any(ord(c) <= 0x20 or ord(c) == 0x7F for c in endpoint):
        raise InvalidInput(detail="Endpoint must not contain spaces or control characters")
    parts = urlsplit(endpoint)
    if parts.scheme != protocol or not parts.hostname:
        raise InvalidInput(detail=f"Endpoint must be an {protocol}:// URL")
    try:
        if parts.port == 0:
            raise ValueError("port 0")
        port = parts.port or (443 if protocol == "https" else 80)
    except ValueError:
        raise InvalidInput(detail="Endpoint has an invalid port") from None
    if parts.username or parts.password:
        raise InvalidInput(detail="Endpoint must not carry credentials")
    net_reach.check(parts.hostname, port, deps.path_policy)


@dataclass(frozen=True)
class Subscribed:
    subscription_arn: str  # "pending confirmation" until confirmed, as AWS answers


def subscribe(deps: Deps, caller: Caller, arn: str, protocol: str, endpoint: str) -> Subscribed:
    check_endpoint(deps, protocol, endpoint)
    with catalog.db.transaction(deps.engine) as conn:
        _own_topic(conn, caller, arn)
        found = catalog.notifications.find_subscription(
            conn, topic_arn=arn, protocol=protocol, endpoint=endpoint
        )
        if found is not None:
            return Subscribed(found.subscription_arn if found.confirmed else "pending confirmation")
        sub = catalog.notifications.subscribe(
            conn,
            arn=f"{arn}:{uuid.uuid4()}",
            topic_arn=arn,
            account_id=caller.account_id,
            protocol=protocol,
            endpoint=endpoint,
            token=secrets.token_hex(32),
            now=caller.now,
        )
        catalog.notifications.enqueue(
            conn,
            message_id=str(uuid.uuid4()),
            message_type="SubscriptionConfirmation",
            topic_arn=arn,
            subscription_arn=sub.subscription_arn,
            subject=None,
            message=(
                f"You have chosen to subscribe to the topic {arn}.\n"
                "To confirm the subscription, visit the SubscribeURL included in this message."
            ),
            attributes={"Token": sub.token},
            now=caller.now,
        )
    return Subscribed("pending confirmation")


def confirm(deps: Deps, arn: str, token: str) -> str:
    """ConfirmSubscription: the token is the credential (the SubscribeURL is a plain GET).
    Answers the subscription ARN; NotFound-like InvalidInput for a wrong token."""
    with catalog.db.transaction(deps.engine) as conn:
        for sub in catalog.notifications.subscriptions_of(conn, arn):
            if secrets.compare_digest(sub.token, str(token)):
                catalog.notifications.confirm(conn, sub.subscription_arn)
                return sub.subscription_arn
    raise InvalidInput(detail="Invalid token")


def list_subscriptions(
    deps: Deps, caller: Caller, arn: str
) -> list[catalog.notifications.Subscription]:
    with catalog.db.read_transaction(deps.engine) as conn:
        _own_topic(conn, caller, arn)
        return catalog.notifications.subscriptions_of(conn, arn)


def unsubscribe(
    deps: Deps, caller: Caller | None, subscription_arn: str, token: str | None = None
) -> None:
    """Unsubscribe by the owner (``caller``) or by the subscription's token (the
    UnsubscribeURL); an unknown subscription is not an error."""
    with catalog.db.transaction(deps.engine) as conn:
        sub = catalog.notifications.get_subscription(conn, subscription_arn)
        if sub is None:
            return
        owner = caller is not None and sub.account_id == caller.account_id
        if not owner and not (token and secrets.compare_digest(sub.token, token)):
            raise NotFound(kind="subscription", name=subscription_arn)
        catalog.notifications.unsubscribe(conn, subscription_arn)


def publish(deps: Deps, caller: Caller, arn: str, message: str, subject: str | None = None) -> str:
    if not message or len(message.encode()) > MAX_MESSAGE_BYTES:
        raise InvalidInput(detail=f"Message must be 1 to {MAX_MESSAGE_BYTES} bytes")
    if subject is not None and (not subject or len(subject) > 100 or "\n" in subject):
        raise InvalidInput(detail="Subject must be 1-100 characters on one line")
    with catalog.db.transaction(deps.engine) as conn:
        _own_topic(conn, caller, arn)
        return notifications.publish(conn, arn, subject, message, None, caller.now)
