"""The agent's HTTP client tries again through network cuts and busy servers, and only
then (snowvault/agent/client.py): a real HTTP server on 127.0.0.1 answers a script of
statuses, hangs or is not there at all; the budget is measured on a FakeClock whose
``advance`` stands in for the backoff's sleep, so a minute's cut takes no time.
"""

from __future__ import annotations

import json
import random
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from snowvault.agent import client
from snowvault.core import errors
from snowvault.testing import FakeClock


@dataclass
class Answer:
    status: int = 200
    body: dict[str, Any] = field(default_factory=lambda: {"State": "RUNNING"})
    headers: dict[str, str] = field(default_factory=dict)
    hang: float = 0.0  # seconds to wait before answering (longer than a read timeout)


class Script:
    """What the server answers, in order (the last one again once the script ends), and
    what it was asked."""

    def __init__(self, *answers: Answer) -> None:
        self.answers = list(answers)
        self.asked: list[tuple[str, dict[str, str], bytes]] = []
        self.lock = threading.Lock()

    def next(self, path: str, headers: dict[str, str], body: bytes) -> Answer:
        with self.lock:
            self.asked.append((path, headers, body))
            return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


def _serve(script: Script, port: int = 0) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            answer = script.next(self.path, dict(self.headers.items()), body)
            if answer.hang:
                threading.Event().wait(answer.hang)
            data = json.dumps(answer.body).encode()
            try:
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except OSError:
                pass  # the client gave up on this try

        def log_message(self, format: str, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    return server


@pytest.fixture
def servers() -> Iterator[list[ThreadingHTTPServer]]:
    started: list[ThreadingHTTPServer] = []
    yield started
    for server in started:
        server.shutdown()
        server.server_close()


def _api(port: int, clock: FakeClock, sleeps: list[float], **kw: Any) -> client.AgentApi:
    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        clock.advance(seconds)

    return client.AgentApi(
        f"http://127.0.0.1:{port}",
        "us-east-1",
        "AKIDAGENT",
        "secret",
        clock=clock,
        sleep=sleep,
        rng=random.Random(13),
        **kw,
    )


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_minute_without_the_server_costs_only_the_wait(
    clock: FakeClock, servers: list[ThreadingHTTPServer]
) -> None:
    port = _closed_port()  # nothing listens: connection refused
    script = Script(Answer(body={"Stored": 3}))
    sleeps: list[float] = []
    api = _api(port, clock, sleeps)

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        clock.advance(seconds)
        if clock.monotonic() >= 60 and not servers:  # the cut ends after a minute
            servers.append(_serve(script, port))

    api.sleep = sleep
    assert api.call("AgentPutBlobs", {"JobId": "j"}) == {"Stored": 3}
    assert 60 <= clock.monotonic() < 60 + 8, clock.monotonic()
    assert len(script.asked) == 1 and api.tries == len(sleeps) + 1
    # exponential from 0.5 s, capped at 8 s, each drawn in [half, whole]
    for n, slept in enumerate(sleeps, start=1):
        whole = min(8.0, 0.5 * 2 ** (n - 1))
        assert whole / 2 <= slept <= whole, (n, slept)
    assert max(sleeps) > 4.0  # the cap was reached, the waits grew


def test_the_budget_bounds_a_call_to_a_server_that_never_comes_back(clock: FakeClock) -> None:
    sleeps: list[float] = []
    api = _api(_closed_port(), clock, sleeps)
    with pytest.raises(errors.Unavailable) as info:
        api.call("AgentHasBlobs", {"JobId": "j"})
    assert client.code_of(info.value) == client.UNREACHABLE
    assert "cannot reach" in str(info.value) and f"tried {api.tries} times" in str(info.value)
    assert sum(sleeps) <= client.DEFAULT_POLICY.budget
    assert sum(sleeps) > client.DEFAULT_POLICY.budget - 8.0  # it did use its time
    # a heartbeat gives up sooner: the next one follows
    beats: list[float] = []
    heart = _api(_closed_port(), FakeClock(), beats)
    with pytest.raises(errors.Unavailable):
        heart.call("AgentHeartbeat", {"JobId": "j"})
    assert sum(beats) <= client.POLICIES["AgentHeartbeat"].budget < 30


@pytest.mark.parametrize(
    "status,code",
    [
        (500, "InternalFailure"),
        (503, "ServiceUnavailableException"),
        (502, ""),
        (429, "TooManyRequestsException"),
        (400, "ThrottlingException"),
    ],
)
def test_server_trouble_and_throttling_are_tried_again(
    clock: FakeClock,
    servers: list[ThreadingHTTPServer],
    caplog: pytest.LogCaptureFixture,
    status: int,
    code: str,
) -> None:
    trouble = Answer(status, {"__type": code, "message": "busy"} if code else {})
    script = Script(trouble, trouble, Answer(body={"Present": ["ab"]}))
    servers.append(_serve(script))
    sleeps: list[float] = []
    api = _api(servers[0].server_address[1], clock, sleeps)
    assert api.call("AgentHasBlobs", {"JobId": "j", "BlobIds": ["ab"]}) == {"Present": ["ab"]}
    assert len(script.asked) == 3 and len(sleeps) == 2
    said = [r.getMessage() for r in caplog.records if r.name == client.__name__]
    assert len(said) == 2 and all("AgentHasBlobs: " in m and "trying again" in m for m in said)
    # each try is signed anew and carries the same body
    assert all("Authorization" in h for _, h, _ in script.asked)
    assert {b for _, _, b in script.asked} == {b'{"JobId": "j", "BlobIds": ["ab"]}'}


@pytest.mark.parametrize(
    "status,code,family",
    [
        (400, "ValidationException", errors.InvalidInput),
        (400, "InvalidParameterValueException", errors.InvalidInput),
        (404, client.NOT_FOUND, errors.NotFound),  # the lease is gone: stop, do not insist
        (400, client.NOT_FOUND, errors.NotFound),
        (403, "AccessDeniedException", errors.PermissionDenied),
        (403, "UnrecognizedClientException", errors.PermissionDenied),  # revoked
        (413, "RequestEntityTooLarge", errors.InvalidInput),
        (409, "ConflictException", errors.InvalidInput),
    ],
)
def test_other_client_errors_are_never_tried_again(
    clock: FakeClock,
    servers: list[ThreadingHTTPServer],
    status: int,
    code: str,
    family: type[errors.SnowvaultError],
) -> None:
    script = Script(Answer(status, {"__type": code, "message": "no"}), Answer())
    servers.append(_serve(script))
    sleeps: list[float] = []
    api = _api(servers[0].server_address[1], clock, sleeps)
    with pytest.raises(family) as info:
        api.call("AgentHeartbeat", {"JobId": "j"})
    assert client.code_of(info.value) == code and str(info.value) == f"{code}: no"
    assert len(script.asked) == 1 and sleeps == [] and api.tries == 1


def test_retry_after_is_honoured_within_bounds(
    clock: FakeClock, servers: list[ThreadingHTTPServer]
) -> None:
    slow = Answer(429, {"__type": "ThrottlingException"}, {"Retry-After": "7"})
    huge = Answer(503, {"__type": "SlowDown"}, {"Retry-After": "100000"})
    script = Script(slow, huge, Answer(body={}))
    servers.append(_serve(script))
    sleeps: list[float] = []
    api = _api(servers[0].server_address[1], clock, sleeps)
    api.call("AgentClaimJob", {"WaitSeconds": 0})
    assert sleeps[0] >= 7.0
    assert sleeps[1] <= 4 * client.DEFAULT_POLICY.cap  # a server cannot park the agent


def test_a_lost_answer_is_asked_again(servers: list[ThreadingHTTPServer]) -> None:
    """The server took the request but its answer never came (a cut after the request
    went out): the read times out and the call is sent again, with the same body."""
    script = Script(Answer(hang=2.0), Answer(body={"Stored": 1}))
    servers.append(_serve(script))
    fast = client.Policy(read_timeout=0.3, first=0.01, cap=0.02, budget=30)
    api = client.AgentApi(
        f"http://127.0.0.1:{servers[0].server_address[1]}",
        "us-east-1",
        "AKIDAGENT",
        "secret",
        default_policy=fast,
        rng=random.Random(1),
    )
    assert api.call("AgentPutBlobs", {"JobId": "j"}) == {"Stored": 1}
    assert len(script.asked) == 2 and script.asked[0][2] == script.asked[1][2]


def test_error_families() -> None:
    assert isinstance(client.error_of("SlowDown", "x", 400), errors.Unavailable)
    assert isinstance(client.error_of("InternalFailure", "x", 500), errors.Unavailable)
    assert isinstance(client.error_of("Anything", "x", 429), errors.Unavailable)
    assert isinstance(client.error_of("ValidationException", "x", 400), errors.InvalidInput)
    assert client.retryable(504, "GatewayTimeout") and not client.retryable(400, "Nope")
