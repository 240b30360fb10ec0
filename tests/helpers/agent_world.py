"""The agent operations served in-process, for the agent service tests: an agent's
``Api`` (snowvault.agent.runner) whose calls go straight to ``services.agents`` as the
extension API would route them, and a world with one vault and sealable secrets.

    world = agent_world.make_world(tmp_path)
    api = agent_world.InProcessApi(world, agent_caller)
"""

from __future__ import annotations

import base64
import dataclasses
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from helpers.access_world import World
from snowvault.control.services import agents
from snowvault.control.services.base import Caller
from snowvault.engine import crypto
from snowvault.testing import FakeClock


class InProcessApi:
    """The agent operations as the extension API serves them, called in-process."""

    def __init__(self, world: World, who: Caller) -> None:
        self.world, self.who = world, who

    def call(self, action: str, body: dict[str, Any], **_: Any) -> dict[str, Any]:
        deps, who = self.world.deps, self.world.caller(self.who.principal_arn)
        job_id = body.get("JobId")
        if action == "AgentHeartbeat":
            return {"State": agents.heartbeat(deps, who, job_id, lease_seconds=60, progress={})}
        if action == "AgentHasBlobs":
            return {"Present": agents.has_blobs(deps, who, job_id, body["BlobIds"])}
        if action == "AgentPutBlobs":
            parts = [
                agents.BlobPart(
                    bytes.fromhex(b["BlobId"]),
                    b["Kind"],
                    base64.b64decode(b["Data"]),
                    b.get("Part", 0),
                    b.get("Parts", 1),
                )
                for b in body["Blobs"]
            ]
            return {"Stored": agents.put_blobs(deps, who, job_id, parts)}
        if action == "AgentPutManifest":
            state, arn = agents.put_manifest(deps, who, job_id, body["Manifest"], 0)
            return {"State": state, "RecoveryPointArn": arn}
        if action == "AgentReadBlobs":
            got = agents.read_blobs(deps, who, job_id, body["BlobIds"])
            blobs = [{"BlobId": i.hex(), "Data": base64.b64encode(d).decode()} for i, d in got]
            return {"Blobs": blobs}
        if action == "AgentFinishRestore":
            files, size = body["FilesRestored"], body["BytesRestored"]
            return {"State": agents.finish_restore(deps, who, job_id, files=files, size=size)}
        if action == "AgentFailJob":
            agents.fail(deps, who, job_id, body.get("StatusMessage"))
            return {}
        raise AssertionError(action)


def make_world(tmp_path: Path) -> World:
    """A world at 2026-12-07 with vault "main" and a resource-secrets box."""
    w = World(tmp_path, FakeClock(datetime(2026, 12, 7, tzinfo=UTC)))
    w.deps = dataclasses.replace(w.deps, resource_secrets=crypto.SecretBox(b"k" * 32, "rs"))
    w.vault("main")
    return w


def agent(world: World, host: str) -> Caller:
    """A newly enrolled agent of ``host``, as a caller."""
    return world.caller(agents.enroll(world.deps, world.root, world.box, host).principal_arn)
