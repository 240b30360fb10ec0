"""The delivery loop: POST the notification outbox to its subscribers, signed as SNS signs.

    key = signing_key(data_dir, clock.now())          # DATA_DIR/sns-signing.{key,crt}
    loop = Deliverer(deps, key, "http://127.0.0.1:8765")
    loop.start() ... loop.stop()                       # a thread: deliver_once() every second
    loop.deliver_once()                                # one pass (tests)

Each pass takes, per subscription, its oldest PENDING message when it is due
(``catalog.notifications.due``: order is kept per subscriber), builds SNS's JSON
(``Type``, ``MessageId``, ``TopicArn``, ``Message``, ``Timestamp``, ``SignatureVersion``
"2", ``Signature``: RSA-SHA256 over :func:`model.notifications.string_to_sign`,
``SigningCertURL`` on this server's endpoint, ``SubscribeURL``/``UnsubscribeURL``) and
POSTs it with SNS's ``x-amz-sns-*`` headers. A 2xx answer marks it DELIVERED; anything
else (refused connection, timeout, other status) is recorded in ``last_error`` and
tried again after :func:`model.notifications.retry_delay`, up to ``MAX_ATTEMPTS``
(then FAILED, kept). The outbox is in the catalog, so a restart loses nothing.

Abuse case: the URL was checked at Subscribe; it is checked again here (network-reach
rule, DNS may have changed) and the connection goes to the resolved address that passed,
for http and https alike (no second lookup: DNS rebinding; https still sends the URL's
name as SNI and checks the certificate against it). Redirects are not followed. Answers
are read up to 64 KiB and never stored. A POST has :data:`TIMEOUT_SECONDS` per socket
operation and :data:`DEADLINE_SECONDS` in all (a watchdog shuts the socket down), so an
endpoint that answers one byte at a time cannot hold the loop; up to :data:`PARALLEL`
subscribers are posted to at once, the accounts taking turns, so one slow endpoint (or
one tenant's many) does not delay the others. Jobs never wait on this loop: it only
reads the outbox.

A fleet (docs/operations/scale-out.md): one server delivers at a time, the one holding
the ``notification-delivery`` role (``catalog.leadership``); when it dies another takes
the role at its next pass. A message posted just before its server died and not yet
marked is posted again by the next one (SNS itself delivers at least once). Every
server of a fleet has the same signing key (``init --join`` copies it), so the
``SigningCertURL`` on the fleet's endpoint serves the key that signed, whichever
server answers.

Must not depend on the composition root or any interface.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import logging
import socket
import ssl
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from snowvault.control import catalog
from snowvault.control.catalog import leadership
from snowvault.control.model import net_reach
from snowvault.control.model import notifications as rules
from snowvault.control.services.base import Deps
from snowvault.core import private_files
from snowvault.engine.crypto import message_signing

log = logging.getLogger("snowvault.delivery")

KEY_FILE = "sns-signing.key"
CERT_FILE = "sns-signing.crt"
CERT_PATH = "/_snowvault/sns/SimpleNotificationService.pem"
CONFIRM_PATH = "/_snowvault/sns/confirm"
UNSUBSCRIBE_PATH = "/_snowvault/sns/unsubscribe"
BATCH = 50
ROLE = "notification-delivery"
"""The role (catalog.leadership) of the one server of a fleet that delivers."""
TIMEOUT_SECONDS = 10.0
"""Per socket operation of a POST (connect, each read)."""
DEADLINE_SECONDS = 30.0
"""A whole POST, however the endpoint drips its answer."""
PARALLEL = 8
"""Subscribers posted to at once in a pass (each keeps its own order: one message at a
time per subscription, ``catalog.notifications.due``)."""
READ_LIMIT = 64 * 1024


def signing_key(data_dir: Path, now: datetime) -> message_signing.SigningKey:
    """The server's notification signing key, made (0600) on first use and kept."""
    key_path, cert_path = data_dir / KEY_FILE, data_dir / CERT_FILE
    if key_path.exists() and cert_path.exists():
        return message_signing.SigningKey.load(key_path.read_bytes(), cert_path.read_bytes())
    key = message_signing.SigningKey.generate("snowvault notifications", now)
    key_path.unlink(missing_ok=True)
    cert_path.unlink(missing_ok=True)
    private_files.write_new(key_path, key.private_pem())
    private_files.write_new(cert_path, key.cert_pem)
    return key


def timestamp(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def envelope(
    row: catalog.notifications.Outgoing,
    sub: catalog.notifications.Subscription,
    key: message_signing.SigningKey,
    base_url: str,
) -> dict[str, Any]:
    """The JSON body SNS would POST for ``row``, signed (SignatureVersion 2)."""
    doc: dict[str, Any] = {
        "Type": row.message_type,
        "MessageId": row.message_id,
        "TopicArn": row.topic_arn,
        "Message": row.message,
        "Timestamp": timestamp(row.created_at),
    }
    if row.message_type == "SubscriptionConfirmation":
        doc["Token"] = sub.token
        doc["SubscribeURL"] = (
            base_url
            + CONFIRM_PATH
            + "?"
            + urlencode({"TopicArn": row.topic_arn, "Token": sub.token})
        )
    else:
        if row.subject:
            doc["Subject"] = row.subject
        doc["UnsubscribeURL"] = (
            base_url
            + UNSUBSCRIBE_PATH
            + "?"
            + urlencode({"SubscriptionArn": sub.subscription_arn, "Token": sub.token})
        )
        if row.attributes:
            doc["MessageAttributes"] = row.attributes
    signature = key.sign(rules.string_to_sign(doc).encode())
    doc["SignatureVersion"] = "2"
    doc["Signature"] = base64.b64encode(signature).decode()
    doc["SigningCertURL"] = base_url + CERT_PATH
    return doc


Post = Callable[[str, list[str], bytes, dict[str, str]], int]
"""(url, allowed addresses, body, headers) -> HTTP status; raises OSError on failure."""


def http_post(
    url: str,
    addresses: list[str],
    body: bytes,
    headers: dict[str, str],
    *,
    timeout: float | None = None,
    deadline: float | None = None,
    context: ssl.SSLContext | None = None,
) -> int:
    """POST ``body`` to ``url`` at ``addresses[0]`` (the address the network-reach rule
    passed: the name is never looked up again), TLS for https checked against the URL's
    name; the answer's status. OSError (TimeoutError past ``deadline``) on failure.
    ``timeout``/``deadline``: :data:`TIMEOUT_SECONDS`/:data:`DEADLINE_SECONDS` when None."""
    timeout = TIMEOUT_SECONDS if timeout is None else timeout
    deadline = DEADLINE_SECONDS if deadline is None else deadline
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    conn: http.client.HTTPConnection
    if parts.scheme == "https":
        context = context or ssl.create_default_context()
        conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=context)
    else:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
    address = addresses[0]

    def pinned(_: tuple[str, int], wait: float, source: tuple[str, int] | None = None) -> Any:
        return socket.create_connection((address, port), wait, source)

    conn._create_connection = pinned  # type: ignore[attr-defined]  # the checked address
    cut = threading.Event()

    def watchdog() -> None:
        cut.set()
        sock = conn.sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    timer = threading.Timer(deadline, watchdog)
    timer.daemon = True
    timer.start()
    response: http.client.HTTPResponse | None = None
    try:
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        try:
            conn.request("POST", path, body, {**headers, "Host": parts.netloc})
            response = conn.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            if cut.is_set():
                raise TimeoutError(f"no answer within {deadline:g} s") from None
            if isinstance(exc, OSError):
                raise
            raise ConnectionError(f"{type(exc).__name__}: {exc}") from None
        if cut.is_set():  # the headers ended only because the watchdog cut them
            raise TimeoutError(f"no answer within {deadline:g} s")
        # the status decides; the rest of the answer is only drained, never kept
        with contextlib.suppress(OSError, http.client.HTTPException):
            response.read(READ_LIMIT)
        return response.status
    finally:
        timer.cancel()
        if response is not None:
            response.close()
        conn.close()


def by_account_in_turn(
    rows: list[catalog.notifications.Outgoing],
) -> list[catalog.notifications.Outgoing]:
    """``rows`` with the accounts (of their topics) taking turns, each account's rows in
    their order: one tenant's many slow endpoints first in the outbox do not take every
    posting thread before another tenant's first message."""
    queues: dict[str, list[catalog.notifications.Outgoing]] = {}
    for row in rows:
        parts = row.topic_arn.split(":")  # arn:aws:sns:REGION:ACCOUNT:NAME
        queues.setdefault(parts[4] if len(parts) > 4 else "", []).append(row)
    turns: list[catalog.notifications.Outgoing] = []
    while any(queues.values()):
        for queue in queues.values():
            if queue:
                turns.append(queue.pop(0))
    return turns


@dataclass
class DeliveryResult:
    delivered: int = 0
    retried: int = 0
    failed: int = 0


class Deliverer:
    """The loop over the outbox (module doc)."""

    def __init__(
        self,
        deps: Deps,
        key: message_signing.SigningKey,
        base_url: str,
        *,
        poll_seconds: float = 1.0,
        post: Post = http_post,
        roles: leadership.Leadership | None = None,
    ) -> None:
        self.deps = deps
        self.key = key
        self.base_url = base_url.rstrip("/")
        self.poll_seconds = poll_seconds
        self.post = post
        self.roles = roles
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def deliver_once(self) -> DeliveryResult:
        """One pass over the due messages; in a fleet only on the server holding the
        delivery role (two loops would post every message twice)."""
        result = DeliveryResult()
        if self.roles is not None and not (self.roles.check() and self.roles.hold(ROLE)):
            return result
        now = self.deps.clock.now()
        with catalog.db.read_transaction(self.deps.engine) as conn:
            rows = catalog.notifications.due(conn, now, limit=BATCH)
        if len(rows) <= 1:
            outcomes = [self._deliver(row) for row in rows]
        else:  # one message per subscription: posting them at once keeps each one's order
            with ThreadPoolExecutor(min(PARALLEL, len(rows)), "delivery-post") as pool:
                outcomes = list(pool.map(self._deliver, by_account_in_turn(rows)))
        for outcome in outcomes:
            setattr(result, outcome, getattr(result, outcome) + 1)
        return result

    def _deliver(self, row: catalog.notifications.Outgoing) -> str:
        with catalog.db.read_transaction(self.deps.engine) as conn:
            sub = catalog.notifications.get_subscription(conn, row.subscription_arn)
        error = self._attempt(row, sub)
        now = self.deps.clock.now()
        with catalog.db.transaction(self.deps.engine) as conn:
            if error is None:
                catalog.notifications.delivered(conn, row.seq, now)
                return "delivered"
            if sub is None or row.attempts + 1 >= rules.MAX_ATTEMPTS:
                catalog.notifications.give_up(conn, row.seq, error)
                log.warning(
                    "notification %s to %s given up: %s", row.seq, row.subscription_arn, error
                )
                return "failed"
            at = now + rules.retry_delay(row.attempts + 1)
            catalog.notifications.retry(conn, row.seq, error, at)
            return "retried"

    def _attempt(
        self,
        row: catalog.notifications.Outgoing,
        sub: catalog.notifications.Subscription | None,
    ) -> str | None:
        """None when delivered, else one line saying why not."""
        if sub is None:
            return "the subscription no longer exists"
        try:
            parts = urlsplit(sub.endpoint)
            port = parts.port or (443 if parts.scheme == "https" else 80)
            addresses = net_reach.check(  # looked up now: DNS may have changed
                parts.hostname or "", port, self.deps.path_policy, socket.getaddrinfo
            )
            body = json.dumps(envelope(row, sub, self.key, self.base_url)).encode()
            headers = {
                "Content-Type": "text/plain; charset=UTF-8",
                "x-amz-sns-message-type": row.message_type,
                "x-amz-sns-message-id": row.message_id,
                "x-amz-sns-topic-arn": row.topic_arn,
                "User-Agent": "snowvault-sns",
            }
            if row.message_type == "Notification":
                headers["x-amz-sns-subscription-arn"] = sub.subscription_arn
            status = self.post(sub.endpoint, list(addresses), body, headers)
        except Exception as exc:  # refused, unreachable, timed out, rule: all retried
            return f"{type(exc).__name__}: {exc}"[:500]
        return None if 200 <= status < 300 else f"the endpoint answered HTTP {status}"

    def wake(self) -> None:
        """Look at the outbox now (a job just queued something)."""
        self._wake.set()

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="delivery", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.deliver_once()
            except Exception:
                log.exception("notification delivery pass failed; continuing")
            self._wake.wait(self.poll_seconds)
            self._wake.clear()
