"""ListAgents in pages (AWS style: MaxResults, NextToken): a fleet of thousands of hosts
is not one answer. Pages follow host names; a token is opaque, and one the server did
not issue is refused (400), never a 500."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from helpers.access_world import World
from snowvault.control.catalog import pagination
from snowvault.control.services import agents
from snowvault.core.errors import InvalidInput
from snowvault.interfaces.api import agent_actions
from snowvault.interfaces.api import errors as api_errors
from snowvault.interfaces.api.asgi import RequestContext
from snowvault.testing import FakeClock

HOSTS = ["web-3", "db-1", "web-10", "cache-2", "web-2"]


@pytest.fixture
def world(tmp_path: Path) -> World:
    w = World(tmp_path, FakeClock(datetime(2026, 12, 7, tzinfo=UTC)))
    for host in HOSTS:
        agents.enroll(w.deps, w.root, w.box, host)
    return w


class _App:
    def __init__(self, deps: Any) -> None:
        self.deps = deps


def _api(world: World, params: dict[str, Any]) -> dict[str, Any]:
    root = world.root
    ctx = RequestContext(
        "r", root.account_id, root.region, "snowvault", root.principal_arn, "k", "", root.now, ""
    )
    return dict(agent_actions.ACTIONS["ListAgents"](_App(world.deps), ctx, params))  # type: ignore[arg-type]


def test_pages_cover_every_agent_once_in_host_order(world: World) -> None:
    seen: list[str] = []
    params: dict[str, Any] = {"MaxResults": 2}
    pages = 0
    while True:
        out = _api(world, params)
        pages += 1
        assert len(out["Agents"]) <= 2
        seen += [a["Host"] for a in out["Agents"]]
        if "NextToken" not in out:
            break
        params = {"MaxResults": 2, "NextToken": out["NextToken"]}
    assert pages == 3
    assert seen == sorted(HOSTS)


def test_without_max_results_one_page_has_them_all(world: World) -> None:
    out = _api(world, {})
    assert [a["Host"] for a in out["Agents"]] == sorted(HOSTS)
    assert "NextToken" not in out


def test_a_page_starts_after_the_token_even_when_that_host_was_revoked(world: World) -> None:
    first, token = agents.list_agents_page(world.deps, world.root, limit=2)
    assert [a.host for a in first] == ["cache-2", "db-1"]
    agents.revoke(world.deps, world.root, "db-1")
    rest, nxt = agents.list_agents_page(world.deps, world.root, limit=10, token=token)
    assert [a.host for a in rest] == ["web-10", "web-2", "web-3"]
    assert nxt is None


@pytest.mark.parametrize(
    "params",
    [{"MaxResults": 0}, {"MaxResults": 1001}, {"MaxResults": "2"}, {"MaxResults": True}],
)
def test_bad_max_results_is_refused(world: World, params: dict[str, Any]) -> None:
    with pytest.raises((InvalidInput, api_errors.ApiError)):
        _api(world, params)


def test_a_token_of_another_list_or_of_nobody_is_refused(world: World) -> None:
    other = pagination.encode_token("plan-templates", ["db-1"])
    for token in (other, "not a token", 7):
        with pytest.raises((InvalidInput, api_errors.ApiError)):
            _api(world, {"NextToken": token})
