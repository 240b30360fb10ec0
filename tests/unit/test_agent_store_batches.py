"""An agent's uploads to a local-store vault respect the server's limit of blobs per
AgentPutBlobs call: a tree of many small files fills a 2 MiB batch with far more than
256 blobs, and the whole job once failed "Blobs must be a list of 1-256 blobs"."""

from __future__ import annotations

from typing import Any

from snowvault.agent import store
from snowvault.engine.chunker import ChunkerParams
from snowvault.interfaces.api import agent_actions


class CountingApi:
    """HasBlobs: nothing is present; PutBlobs: refused above the server's limit, as the
    API refuses it."""

    def __init__(self) -> None:
        self.put_sizes: list[int] = []

    def call(self, action: str, body: dict[str, Any], **_: Any) -> dict[str, Any]:
        if action == "AgentHasBlobs":
            return {"Present": []}
        assert action == "AgentPutBlobs", action
        assert 0 < len(body["Blobs"]) <= agent_actions.MAX_BLOBS_PER_CALL, len(body["Blobs"])
        self.put_sizes.append(len(body["Blobs"]))
        return {}


def test_many_small_blobs_go_in_calls_the_server_accepts() -> None:
    api = CountingApi()
    keys = store.JobKeys(b"j" * 32, b"i" * 32, ChunkerParams())
    blobs = store.RemoteBlobStore(api, "job-1", keys)  # type: ignore[arg-type]
    for i in range(1500):  # small files: ~100 bytes sealed each, one 2 MiB batch
        blobs.add_blob("data", f"file {i}\n".encode() * 8)
    blobs.flush()
    assert sum(api.put_sizes) == 1500
    assert max(api.put_sizes) == store.MAX_BLOBS_PER_PUT == agent_actions.MAX_BLOBS_PER_CALL
    assert blobs.uploaded_blobs == 1500
