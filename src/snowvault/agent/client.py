"""The agent operations of the extension API, signed with SigV4 (service ``snowvault``)
with the agent's access key pair, tried again through network cuts and busy servers.

    api = AgentApi("http://backup:8080", "us-east-1", key_id, secret)
    api.call("AgentHello", {"Version": "0.1.0"})

An error answer raises the core error of its family (:func:`error_of`: NotFound,
PermissionDenied, Unavailable, InvalidInput) carrying the AWS error code in
``exc.fields["code"]``; a refused or unknown job is ``ResourceNotFoundException`` (the
lease is gone: stop working on it). The server still unreachable when the call's time
is up is Unavailable with code :data:`UNREACHABLE`.

When a call is tried again (:func:`retryable`, :class:`Policy`): the connection failed
or broke (refused, unreachable, reset, timed out), the server answered 5xx, 429 or a
throttling code. Never on any other 4xx: a refused signature, a denied action, a bad
body or a lost lease answer the same however often they are asked. Each try is signed
anew (SigV4's 15-minute window), after an exponential, jittered backoff, until the
call's time budget is spent; then the last error is raised. Every retry is logged
(a warning: an agent that only waits says why).

Every agent operation may be asked twice: the data calls are idempotent (a blob stored
twice is stored once, a heartbeat renews the same lease); AgentPutManifest answers a
repeat of the call that completed the job (same agent, attempt and manifest) with the
same State and RecoveryPointArn; AgentFinishRestore and AgentFailJob answer a repeat
after the first landed with ResourceNotFoundException, since the job is no longer
running under this agent's lease: the runner then drops the job, which has ended. A
claim whose answer is lost leaves a job leased to this agent that it never hears of;
the agent's next claim ends that attempt and the job is retried: a network cut costs a
retry, never a job.

Dead connections are found by TCP keepalive and ``TCP_USER_TIMEOUT``
(:data:`SOCKET_OPTIONS`) in about half a minute, so read timeouts can stay long enough
for a busy server without a silently cut link holding a call for that long.

Abuse case: the endpoint (or anything between) decides the answers, so it decides
nothing about time: a Retry-After is honoured up to four backoff caps, and no try
starts once a call's budget is spent (so a call ends within its budget plus one try's
timeouts), whatever the server says.
"""

from __future__ import annotations

import json
import logging
import random
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import urllib3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from urllib3.connection import HTTPConnection

from snowvault.core import errors
from snowvault.core.clock import Clock, SystemClock

log = logging.getLogger(__name__)

PREFIX = "/_snowvault/v1/"
SERVICE = "snowvault"
NOT_FOUND = "ResourceNotFoundException"
UNREACHABLE = "Unreachable"

THROTTLING_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "ThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "RequestThrottledException",
        "SlowDown",
        "ProvisionedThroughputExceededException",
    }
)


def _socket_options() -> list[tuple[int, int, int]]:
    """TCP keepalive after 10 s idle, probes every 5 s, 3 lost: a dead path is found in
    about 25 s; ``TCP_USER_TIMEOUT`` bounds data sent and never acknowledged alike."""
    options = list(HTTPConnection.default_socket_options)
    options.append((socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1))
    for name, value in (
        ("TCP_KEEPIDLE", 10),
        ("TCP_KEEPINTVL", 5),
        ("TCP_KEEPCNT", 3),
        ("TCP_USER_TIMEOUT", 25_000),  # milliseconds
    ):
        if hasattr(socket, name):  # Linux; elsewhere the read timeout alone bounds a call
            options.append((socket.IPPROTO_TCP, getattr(socket, name), value))
    return options


SOCKET_OPTIONS = _socket_options()


@dataclass(frozen=True)
class Policy:
    """How long one call keeps trying (``budget``, seconds from its first try; no try
    starts after it), how long one try may wait to connect and for the answer, and the
    backoff between tries: ``first`` doubling up to ``cap``, each drawn in [half, whole]
    (jitter, so agents cut off together do not come back in step)."""

    budget: float = 180.0
    connect_timeout: float = 5.0
    read_timeout: float = 120.0
    first: float = 0.5
    cap: float = 8.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        """The wait before try ``attempt + 1`` (``attempt`` >= 1)."""
        whole = min(self.cap, self.first * 2.0 ** (attempt - 1))
        return whole * rng.uniform(0.5, 1.0)


DEFAULT_POLICY = Policy()
POLICIES: dict[str, Policy] = {
    # a heartbeat that does not get through is followed by the next one (a third of the
    # lease later): trying one for longer than that only delays it
    "AgentHeartbeat": Policy(budget=20.0, read_timeout=20.0),
    # the calls that end a job: wait long for the answer rather than ask again while
    # the server still works on the first (it may be waiting for the vault's lock)
    "AgentPutManifest": Policy(read_timeout=300.0),
    "AgentFinishRestore": Policy(read_timeout=300.0),
}


def error_of(code: str, message: str, status: int) -> errors.SnowvaultError:
    """The server's error answer as a core error, its code in ``fields["code"]``."""
    text = f"{code}: {message}"
    if code == NOT_FOUND:
        return errors.NotFound(text, code=code)
    if status == 403:
        return errors.PermissionDenied(text, code=code)
    if status >= 500 or status == 429 or code in THROTTLING_CODES:
        return errors.Unavailable(text, code=code)
    return errors.InvalidInput(text, code=code)


def code_of(exc: BaseException) -> str | None:
    return exc.fields.get("code") if isinstance(exc, errors.SnowvaultError) else None


def retryable(status: int, code: str) -> bool:
    """Whether an error answer may go away when asked again: the server's trouble
    (5xx) or throttling; never another 4xx."""
    return status >= 500 or status == 429 or code in THROTTLING_CODES


def _transient(exc: urllib3.exceptions.HTTPError) -> bool:
    """Whether a transport failure may go away: not a malformed URL, not a certificate
    the agent refuses (the same server would present it again)."""
    if isinstance(exc, urllib3.exceptions.LocationValueError):
        return False
    if isinstance(exc, urllib3.exceptions.SSLError):
        return "CERTIFICATE_VERIFY_FAILED" not in str(exc)
    return True


def _retry_after(value: str | None) -> float | None:
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None  # an HTTP date: not sent by snowvault; the backoff decides
    return seconds if seconds is not None and seconds >= 0 else None


@dataclass
class AgentApi:
    """``call`` sends one agent operation, trying again as :class:`Policy` allows.
    ``clock`` and ``sleep`` are the time the budget is measured in and how backoffs
    wait (tests pass a FakeClock and its ``advance``); ``policies`` per action."""

    endpoint: str
    region: str
    access_key_id: str
    secret_access_key: str = field(repr=False)
    timeout: float | None = None
    policies: dict[str, Policy] = field(default_factory=lambda: dict(POLICIES))
    default_policy: Policy = DEFAULT_POLICY
    clock: Clock = field(default_factory=SystemClock)
    sleep: Callable[[float], None] = time.sleep
    rng: random.Random = field(default_factory=random.Random)
    tries: int = field(default=0, init=False)
    """Tries sent in all, first ones included (for logs and tests)."""

    def __post_init__(self) -> None:
        self._pool = urllib3.PoolManager(maxsize=4, socket_options=SOCKET_OPTIONS)
        self._lock = threading.Lock()

    def policy(self, action: str) -> Policy:
        return self.policies.get(action, self.default_policy)

    def call(self, action: str, body: dict[str, Any], *, timeout: float | None = None) -> Any:
        """Send ``action`` with ``body``; its answer. ``timeout``: the read timeout of
        each try (a long poll's wait and then some), else the action's policy's."""
        policy = self.policy(action)
        read_timeout = timeout or self.timeout or policy.read_timeout
        data = json.dumps(body).encode()
        url = f"{self.endpoint.rstrip('/')}{PREFIX}{action}"
        started = self.clock.monotonic()
        attempt = 0
        while True:
            attempt += 1
            tried = self._try(url, data, policy, read_timeout)
            if tried.error is None:
                return tried.answer
            delay = policy.delay(attempt, self.rng)
            if tried.retry_after is not None:
                delay = max(delay, min(tried.retry_after, policy.cap * 4))
            spent = self.clock.monotonic() - started
            if not tried.transient:
                raise tried.error
            if spent + delay > policy.budget:
                raise _given_up(tried.error, attempt, spent)
            log.warning("%s: %s; trying again in %.1f s", action, tried.error, delay)
            self.sleep(delay)

    def _try(self, url: str, data: bytes, policy: Policy, read_timeout: float) -> _Tried:
        """One try, signed now."""
        req = AWSRequest("POST", url, data=data, headers={"Content-Type": "application/json"})
        creds = Credentials(self.access_key_id, self.secret_access_key)
        SigV4Auth(creds, SERVICE, self.region).add_auth(req)
        with self._lock:
            self.tries += 1
        try:
            resp = self._pool.request(
                "POST",
                url,
                body=data,
                headers=dict(req.headers.items()),
                retries=False,
                timeout=urllib3.Timeout(connect=policy.connect_timeout, read=read_timeout),
            )
        except urllib3.exceptions.HTTPError as exc:
            text = f"cannot reach the snowvault server at {self.endpoint}: {exc}"
            return _Tried(
                error=errors.Unavailable(text, code=UNREACHABLE), transient=_transient(exc)
            )
        try:
            doc = json.loads(resp.data or b"{}")
        except ValueError:
            doc = {}
        if not isinstance(doc, dict):
            doc = {}
        if resp.status == 200:
            return _Tried(answer=doc)
        code = str(doc.get("__type") or resp.headers.get("x-amzn-ErrorType") or resp.status)
        code = code.split(":")[0].rpartition("#")[2]
        return _Tried(
            error=error_of(code, str(doc.get("message", "")), resp.status),
            transient=retryable(resp.status, code),
            retry_after=_retry_after(resp.headers.get("Retry-After")),
        )


def _given_up(error: errors.SnowvaultError, tries: int, spent: float) -> errors.SnowvaultError:
    """``error`` saying how long it was tried."""
    return type(error)(f"{error} (tried {tries} times in {spent:.0f} s)", **error.fields)


@dataclass(frozen=True)
class _Tried:
    """What one try came to: the answer, or the error, whether it may go away when asked
    again, and how long the server asked to wait (Retry-After)."""

    answer: dict[str, Any] = field(default_factory=dict)
    error: errors.SnowvaultError | None = None
    transient: bool = False
    retry_after: float | None = None
