"""Notification delivery from the attacker's side (helper Q's probe): an SNS subscriber
chooses the endpoint URL and how its server answers. Real sockets on loopback (127.0.0.1
and 127.0.0.2: only loopback exists here), a monkeypatched resolver for DNS rebinding.

Found and fixed (``control/scheduler/delivery.py``):
- an https endpoint's name was looked up a second time by ``http.client`` after the
  network-reach rule had passed the first answer (DNS rebinding: the POST went where the
  second answer said); now http and https both connect to the checked address, and
  https still sends the name as SNI and checks the certificate against it;
- an endpoint answering one byte at a time held the delivery loop (10 s per read, no
  overall limit: hours), and since subscribers were posted to one after another, it held
  every other tenant's notifications too; now a POST has a deadline, and up to
  ``PARALLEL`` subscribers are posted to at once.
Held: a name that resolves somewhere refused at delivery time is not contacted at all;
redirects are not followed; a huge or endless answer is read to 64 KiB; a flood of
headers is an error, not a crash.
"""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from snowvault.control import catalog
from snowvault.control.scheduler import delivery
from snowvault.control.services import sns
from snowvault.control.services.base import Caller, Deps
from snowvault.core.errors import InvalidInput
from snowvault.engine.crypto import message_signing
from snowvault.testing import FakeClock

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


class Endpoint:
    """A TCP server on ``address``: ``answer(conn)`` runs per connection; every accepted
    connection and the bytes received are recorded (with the time of acceptance)."""

    def __init__(self, address: str, answer: Any, port: int = 0, tls: Any = None) -> None:
        self.accepted: list[float] = []
        self.received = bytearray()
        self.answer = answer
        self.tls = tls
        self.sock = socket.create_server((address, port))
        self.sock.settimeout(0.1)
        self.port = int(self.sock.getsockname()[1])
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            self.accepted.append(time.monotonic())
            t = threading.Thread(target=self._one, args=(conn,), daemon=True)
            t.start()
            self._threads.append(t)

    def _one(self, conn: socket.socket) -> None:
        try:
            if self.tls is not None:
                conn = self.tls.wrap_socket(conn, server_side=True)
            conn.settimeout(5)
            self._request(conn)
            self.answer(conn, self._stop)
        except (OSError, ssl.SSLError):
            pass
        finally:
            conn.close()

    def _request(self, conn: socket.socket) -> None:
        """Read one request: the headers, then Content-Length bytes of body."""
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                break
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        while len(body) < length:
            chunk = conn.recv(65536)
            if not chunk:
                break
            body += chunk
        self.received += head + b"\r\n\r\n" + body

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for t in self._threads:
            t.join(timeout=5)
        self.sock.close()


def _ok(conn: socket.socket, stop: threading.Event) -> None:
    conn.sendall(OK)


def _drip(conn: socket.socket, stop: threading.Event) -> None:
    """A status line, then one header byte every 0.2 s for up to 20 s."""
    conn.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
    deadline = time.monotonic() + 20
    while not stop.is_set() and time.monotonic() < deadline:
        conn.sendall(b"a")
        time.sleep(0.2)


@pytest.fixture
def endpoints() -> Iterator[list[Endpoint]]:
    made: list[Endpoint] = []
    yield made
    for e in made:
        e.close()


def _post(url: str, addresses: list[str], **kw: Any) -> int:
    return delivery.http_post(url, addresses, b"{}", {"Content-Type": "text/plain"}, **kw)


def _timed(fn: Any, limit: float) -> tuple[Any, float]:
    """(result or exception, seconds) of ``fn()`` run in a thread, waiting at most
    ``limit`` seconds (the pre-fix code would hang for minutes)."""
    out: list[Any] = []

    def run() -> None:
        try:
            out.append(fn())
        except Exception as exc:
            out.append(exc)

    start = time.monotonic()
    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(limit)
    assert out, f"still running after {limit} s"
    return out[0], time.monotonic() - start


def _two_loopbacks(endpoints: list[Endpoint], answer: Any, tls: Any = None) -> tuple[Any, Any]:
    """The same port on 127.0.0.1 and 127.0.0.2."""
    for _ in range(20):
        first = Endpoint("127.0.0.1", answer, tls=tls)
        try:
            second = Endpoint("127.0.0.2", answer, port=first.port, tls=tls)
        except OSError:
            first.close()
            continue
        endpoints += [first, second]
        return first, second
    raise AssertionError("no port free on both loopback addresses")


def _rebinding_resolver(monkeypatch: pytest.MonkeyPatch, *answers: str) -> list[str]:
    """``localhost`` resolves to each of ``answers`` in turn (then the last): a DNS server
    that changes its answer between two lookups. Returns the log of lookups."""
    real = socket.getaddrinfo
    looked: list[str] = []

    def fake(host: Any, port: Any, *args: Any, **kw: Any) -> Any:
        if host != "localhost":
            return real(host, port, *args, **kw)
        address = answers[min(len(looked), len(answers) - 1)]
        looked.append(address)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    return looked


def test_https_connects_to_the_checked_address_not_a_second_lookup(
    endpoints: list[Endpoint], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(cert, key)
    checked, rebound = _two_loopbacks(endpoints, _ok, tls=server_tls)
    looked = _rebinding_resolver(monkeypatch, "127.0.0.1", "127.0.0.2")
    client_tls = ssl.create_default_context(cafile=str(cert))
    addresses = [socket.getaddrinfo("localhost", checked.port)[0][4][0]]  # the rule's lookup
    status = _post(f"https://localhost:{checked.port}/hook", addresses, context=client_tls)
    assert status == 200  # TLS checked against the name, over the checked address
    assert looked == ["127.0.0.1"], looked  # no second lookup
    assert len(checked.accepted) == 1 and rebound.accepted == []
    assert b"POST /hook" in checked.received
    # a certificate for another name is still refused on the pinned address
    with pytest.raises(ssl.SSLCertVerificationError):
        _post(f"https://127.0.0.1:{checked.port}/hook", ["127.0.0.1"], context=client_tls)


def test_a_name_rebound_to_a_refused_address_is_not_contacted_at_delivery(
    deps: Deps, caller: Caller, endpoints: list[Endpoint], monkeypatch: pytest.MonkeyPatch
) -> None:
    hook = Endpoint("127.0.0.1", _ok)
    endpoints.append(hook)
    key = message_signing.SigningKey.generate("probe", FakeClock().now())
    topic = sns.create_topic(deps, caller, "rebind")
    sns.subscribe(deps, caller, topic, "http", f"http://localhost:{hook.port}/hook")
    loop = delivery.Deliverer(deps, key, "http://sv")
    assert loop.deliver_once().delivered == 1  # the confirmation, to the real address
    body = json.loads(bytes(hook.received).split(b"\r\n\r\n", 1)[1])
    sns.confirm(deps, topic, body["Token"])
    sns.publish(deps, caller, topic, "after the rebinding")
    looked = _rebinding_resolver(monkeypatch, "169.254.169.254")
    connects: list[Any] = []
    real_connect = socket.create_connection
    monkeypatch.setattr(
        socket, "create_connection", lambda *a, **k: connects.append(a) or real_connect(*a, **k)
    )
    result = loop.deliver_once()
    assert (result.delivered, result.retried) == (0, 1)
    assert looked == ["169.254.169.254"] and connects == []
    with catalog.db.read_transaction(deps.engine) as conn:
        (row,) = catalog.notifications.due(conn, deps.clock.now() + _days(1), limit=5)
    assert "169.254.169.254" in str(row.last_error) and "allowed network" in str(row.last_error)
    assert len(hook.accepted) == 1


def _days(n: int) -> Any:
    from datetime import timedelta

    return timedelta(days=n)


def test_a_dripping_endpoint_is_cut_at_the_deadline(endpoints: list[Endpoint]) -> None:
    slow = Endpoint("127.0.0.1", _drip)
    endpoints.append(slow)
    url = f"http://127.0.0.1:{slow.port}/hook"
    outcome, took = _timed(lambda: _post(url, ["127.0.0.1"], timeout=1.0, deadline=1.5), 10)
    assert isinstance(outcome, TimeoutError), outcome
    assert 1.4 < took < 4, took


def test_one_slow_subscriber_does_not_hold_the_others(
    deps: Deps,
    caller: Caller,
    endpoints: list[Endpoint],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(delivery, "DEADLINE_SECONDS", 3.0)
    slow, fast = Endpoint("127.0.0.1", _drip), Endpoint("127.0.0.1", _ok)
    endpoints += [slow, fast]
    key = message_signing.SigningKey.generate("probe", FakeClock().now())
    topic = sns.create_topic(deps, caller, "mixed")
    sns.subscribe(deps, caller, topic, "http", f"http://127.0.0.1:{slow.port}/slow")  # first
    sns.subscribe(deps, caller, topic, "http", f"http://127.0.0.1:{fast.port}/fast")
    loop = delivery.Deliverer(deps, key, "http://sv")
    start = time.monotonic()
    result, took = _timed(loop.deliver_once, 30)
    assert (result.delivered, result.retried) == (1, 1), result
    assert fast.accepted and fast.accepted[0] - start < 1.0, fast.accepted
    assert took < 3.0 + 2.0, took


def test_redirects_huge_answers_and_header_floods(endpoints: list[Endpoint]) -> None:
    other = Endpoint("127.0.0.1", _ok)

    def redirect(conn: socket.socket, stop: threading.Event) -> None:
        conn.sendall(
            b"HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:%d/x\r\n"
            b"Content-Length: 0\r\n\r\n" % other.port
        )

    sent = [0]

    def huge(conn: socket.socket, stop: threading.Event) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 10000000000\r\n\r\n")
        block = b"\0" * 65536
        while not stop.is_set():
            conn.sendall(block)
            sent[0] += len(block)

    def headers(conn: socket.socket, stop: threading.Event) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\n" + b"X-H: v\r\n" * 5000 + b"\r\n")

    for answer in (redirect, huge, headers):
        endpoints.append(Endpoint("127.0.0.1", answer))
    endpoints.append(other)
    red, big, flood = endpoints[0], endpoints[1], endpoints[2]
    assert _post(f"http://127.0.0.1:{red.port}/", ["127.0.0.1"]) == 302
    assert other.accepted == []  # not followed
    outcome, took = _timed(lambda: _post(f"http://127.0.0.1:{big.port}/", ["127.0.0.1"]), 10)
    assert outcome == 200 and took < 5, (outcome, took)
    assert sent[0] < 64 * 1024 * 1024  # read 64 KiB, closed: the sender stalled, then broke
    outcome, _ = _timed(lambda: _post(f"http://127.0.0.1:{flood.port}/", ["127.0.0.1"]), 10)
    assert isinstance(outcome, OSError), outcome


def test_one_tenants_many_slow_endpoints_do_not_take_every_thread(
    deps: Deps,
    caller: Caller,
    endpoints: list[Endpoint],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Ten slow subscribers of one account come first in the outbox; another account's
    one subscriber is still posted to in the first round (accounts take turns)."""
    monkeypatch.setattr(delivery, "DEADLINE_SECONDS", 2.0)
    key = message_signing.SigningKey.generate("probe", FakeClock().now())
    topic = sns.create_topic(deps, caller, "noisy")
    for n in range(delivery.PARALLEL + 2):
        slow = Endpoint("127.0.0.1", _drip)
        endpoints.append(slow)
        sns.subscribe(deps, caller, topic, "http", f"http://127.0.0.1:{slow.port}/s{n}")
    other = Caller("222233334444", caller.region, "arn:aws:iam::222233334444:root", caller.now)
    fast = Endpoint("127.0.0.1", _ok)
    endpoints.append(fast)
    quiet = sns.create_topic(deps, other, "quiet")
    sns.subscribe(deps, other, quiet, "http", f"http://127.0.0.1:{fast.port}/fast")
    start = time.monotonic()
    result, _ = _timed(delivery.Deliverer(deps, key, "http://sv").deliver_once, 60)
    assert result.delivered == 1 and result.retried == delivery.PARALLEL + 2, result
    assert fast.accepted and fast.accepted[0] - start < 1.0, fast.accepted


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://127.0.0.1:9/x\r\nX-Evil: 1",  # urlsplit drops CR/LF: stored, then POSTed
        "http://127.0.0.1:9/a b",
        "http://127.0.0.1:9/\x00",
        "http://127.0.0.1:0/x",  # port 0 silently meant 80
        "http://127.0.0.1:9/" + "x" * 5000,
    ],
)
def test_subscribe_refuses_endpoints_that_are_no_plain_url(
    deps: Deps, caller: Caller, endpoint: str
) -> None:
    topic = sns.create_topic(deps, caller, "strict")
    with pytest.raises(InvalidInput):
        sns.subscribe(deps, caller, topic, "http", endpoint)
    with catalog.db.read_transaction(deps.engine) as conn:
        assert catalog.notifications.due(conn, deps.clock.now(), limit=5) == []
