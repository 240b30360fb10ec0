"""DescribeResource of a resource on an agent's host looks at nothing on the server's
host: its source names a path or an address on the agent's host, and the plugin run on
the server would read the server's own path or connect, with the resource's password, to
whatever listens at that address on the server's side."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from snowvault.control.services import resources, root_key
from snowvault.control.services.base import Caller, Deps

ROOT = b"k" * 32  # the services conftest's root key


class Spy:
    """A plugin registry whose every describe is recorded (and would fail the test)."""

    def __init__(self, deps: Deps, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[str] = []
        for rtype in ("PostgreSQL", "Directory"):
            plugin = deps.plugins.get(rtype)
            monkeypatch.setattr(plugin, "describe", self._record(rtype), raising=False)

    def _record(self, rtype: str):  # type: ignore[no-untyped-def]
        def describe(resource, policy):  # type: ignore[no-untyped-def]
            self.calls.append(rtype)
            return {"Looked": True}

        return describe


def test_an_agent_hosts_resources_are_not_looked_at_on_the_server(
    deps: Deps, caller: Caller, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    deps = dataclasses.replace(deps, resource_secrets=root_key.resource_secret_box(ROOT))
    spy = Spy(deps, monkeypatch)
    pg = resources.register(
        deps, caller, resource_type="PostgreSQL", name="pg",
        source="postgresql://backup:secret-pw@127.0.0.1:5432/postgres",
        worker_label="agent:web-1",
    )  # fmt: skip
    files = resources.register(
        deps, caller, resource_type="Directory", name="etc", source=str(tmp_path),
        worker_label="agent:web-1",
    )  # fmt: skip
    for row in (pg, files):
        doc = resources.describe(deps, caller, row["arn"])
        assert doc["discovery"] == {"AgentHost": "web-1", "Note": resources.ON_AGENT_HOST}
        assert "secret-pw" not in repr(doc)
    assert spy.calls == []
    # the same type on the server's own host is described by its plugin, as before
    (tmp_path / "src").mkdir()
    local = resources.register(
        deps, caller, resource_type="Directory", name="here", source=str(tmp_path / "src")
    )
    assert resources.describe(deps, caller, local["arn"])["discovery"] == {"Looked": True}
    assert spy.calls == ["Directory"]
