"""What the agent's runner does when the server stays out of reach longer than a call's
retry budget (snowvault/agent/client.py gives up with Unavailable): issue 13 asks that a
network cut cost a retry, never the job: the runner (agent/runner.py) leaves a job
whose upload gave up to its lease (no AgentFailJob), and `agent run` keeps asking after
a server error answered to a claim.
"""

from __future__ import annotations

import base64
import threading
from pathlib import Path
from typing import Any

import pytest

from snowvault.agent import client, runner
from snowvault.core import errors
from snowvault.engine.chunker import ChunkerParams
from snowvault.testing import FakeClock


class OutageApi:
    """The agent operations of a server that answered the claim, then went away for
    longer than a call's budget: every data call gives up as the client does; the
    server is back by the time the runner reports a failure (AgentFailJob lands)."""

    def __init__(
        self,
        claim_error: errors.SnowvaultError | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self.asked: list[str] = []
        self.claim_error = claim_error
        self.stop = stop  # set at the second claim: the agent asked again

    def call(self, action: str, body: dict[str, Any], **_: Any) -> Any:
        self.asked.append(action)
        if action == "AgentHello":
            return {"Agent": {"Host": "web-1"}}
        if action == "AgentClaimJob" and self.claim_error is not None:
            error, self.claim_error = self.claim_error, None
            raise error
        if action == "AgentClaimJob":
            if self.stop is not None:
                self.stop.set()
            return {}
        if action == "AgentFailJob":
            return {}  # and the job is FAILED for good
        raise errors.Unavailable(
            "cannot reach the snowvault server (tried 30 times in 181 s)",
            code=client.UNREACHABLE,
        )


def _job(source: Path) -> dict[str, Any]:
    return {
        "JobId": "job-1",
        "ResourceArn": "arn:aws:backup:us-east-1:111122223333:resource:www",
        "ResourceType": "Directory",
        "Source": str(source),
        "LeaseSeconds": 60,
        "Keys": {
            "JobKey": base64.b64encode(b"j" * 32).decode(),
            "IdKey": base64.b64encode(b"i" * 32).decode(),
            "Chunker": ChunkerParams().to_dict(),
        },
    }


def _options(root: Path, **kw: Any) -> runner.Options:
    return runner.Options(
        "http://127.0.0.1:9", "web-1", "us-east-1", "AKID", "secret", [str(root)], **kw
    )


def test_an_upload_that_gives_up_leaves_the_job_to_its_lease(tmp_path: Path) -> None:
    source = tmp_path / "www"
    source.mkdir()
    (source / "index.html").write_bytes(b"<p>hello</p>" * 1000)
    api = OutageApi()
    said: list[str] = []
    state = runner.run_job(
        api,  # type: ignore[arg-type]
        _options(tmp_path),
        _job(source),
        said.append,
        FakeClock(),
    )
    assert "AgentFailJob" not in api.asked, said  # a later attempt may still finish it
    assert state != "FAILED", said


def test_a_server_error_to_a_claim_does_not_stop_the_agent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stop = threading.Event()
    busy = errors.Unavailable("ServiceUnavailableException: busy", code="ServiceUnavailable")
    api = OutageApi(claim_error=busy, stop=stop)
    monkeypatch.setattr(client, "AgentApi", lambda *a, **k: api)
    said: list[str] = []
    runner.run(_options(tmp_path, wait_seconds=0.0), stop=stop, say=said.append)
    assert api.asked.count("AgentClaimJob") == 2, (api.asked, said)
