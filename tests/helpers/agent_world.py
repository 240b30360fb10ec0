"""The agent operations served in-process, for the agent service tests: an agent's
``Api`` (snowvault.agent.runner) whose calls go straight to ``services.agents`` as the
extension API would route them (bodies through JSON, as on the wire), and a world with
one vault and sealable secrets.

    world = agent_world.make_world(tmp_path)
    api = agent_world.InProcessApi(world, agent_caller)
    api = agent_world.InProcessApi(world, agent_caller, servers=[deps_a, deps_b])
        # each call answered by the next server in turn, its memory dropped first
"""

from __future__ import annotations

import base64
import dataclasses
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from helpers.access_world import World
from snowvault.control.services import agents
from snowvault.control.services.base import Caller, Deps
from snowvault.engine import crypto
from snowvault.interfaces.api import agent_actions
from snowvault.testing import FakeClock


class InProcessApi:
    """The agent operations as the extension API serves them, called in-process."""

    def __init__(self, world: World, who: Caller, servers: list[Deps] | None = None) -> None:
        self.world, self.who = world, who
        self.servers = servers
        self.answered_by: list[int] = []
        self.calls: list[tuple[str, int]] = []
        """(action, request body bytes as JSON) of every call, in order."""

    def _deps(self) -> Deps:
        if not self.servers:
            return self.world.deps
        n = len(self.answered_by) % len(self.servers)
        self.answered_by.append(n)
        agents.drop_caches()  # another server: none of this one's memory
        return self.servers[n]

    def call(self, action: str, body: dict[str, Any], **_: Any) -> dict[str, Any]:
        wire = json.dumps(body)
        self.calls.append((action, len(wire)))
        out = self._call(action, json.loads(wire))
        return dict(json.loads(json.dumps(out)))

    def _call(self, action: str, body: dict[str, Any]) -> dict[str, Any]:
        deps, who = self._deps(), self.world.caller(self.who.principal_arn)
        job_id = body.get("JobId")
        if action == "AgentClaimJob":
            claimed = agents.claim(deps, who, wait_seconds=0, lease_seconds=60)
            return {} if claimed is None else {"Job": agent_actions.claim_answer(claimed)}
        if action == "AgentHeartbeat":
            return {"State": agents.heartbeat(deps, who, job_id, lease_seconds=60, progress={})}
        if action == "AgentHasBlobs":
            return {"Present": agents.has_blobs(deps, who, job_id, body["BlobIds"])}
        if action == "AgentPutBlobs":
            assert all("Part" not in b and "Parts" not in b for b in body["Blobs"])
            whole = [
                agents.BlobPart(bytes.fromhex(b["BlobId"]), b["Kind"], base64.b64decode(b["Data"]))
                for b in body["Blobs"]
            ]
            return {"Stored": agents.put_blobs(deps, who, job_id, whole)}
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
