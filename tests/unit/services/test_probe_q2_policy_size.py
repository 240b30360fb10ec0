"""A user's inline policies and a vault access policy are bounded (helper Q's probe):
every request of the user evaluates its policies, and a 3.3 MB policy made each of its
calls cost the server 1.1 s and slowed another account's calls to 1.5 s."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from helpers.access_world import World
from snowvault.control.services import iam
from snowvault.core.errors import InvalidInput, NotFound
from snowvault.testing import FakeClock


def _policy(statements: int, tag: str = "a") -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": f"backup:Describe{tag}{i}*", "Resource": "*"}
            for i in range(statements)
        ],
    }


def _chars(doc: dict[str, Any]) -> int:
    return len(json.dumps(doc, separators=(",", ":")))


@pytest.fixture
def world(tmp_path: Path, clock: FakeClock) -> World:
    w = World(tmp_path, clock)
    iam.create_user(w.deps, w.root, "bob")
    return w


def test_the_inline_policies_of_a_user_are_bounded_together(world: World) -> None:
    one = _policy(100)
    assert iam.USER_POLICIES_MAX_CHARS / 2 < _chars(one) < iam.USER_POLICIES_MAX_CHARS
    iam.put_user_policy(world.deps, world.root, "bob", "first", json.dumps(one))
    iam.put_user_policy(world.deps, world.root, "bob", "first", one)  # replacing it is fine
    with pytest.raises(InvalidInput, match="LimitExceeded"):
        iam.put_user_policy(world.deps, world.root, "bob", "second", _policy(100, "b"))
    iam.delete_user_policy(world.deps, world.root, "bob", "first")
    iam.put_user_policy(world.deps, world.root, "bob", "second", _policy(100, "b"))


def test_a_huge_policy_is_refused_before_it_is_parsed(world: World) -> None:
    huge = json.dumps(_policy(17_000))
    with pytest.raises(InvalidInput, match="LimitExceeded"):
        iam.put_user_policy(world.deps, world.root, "bob", "huge", huge)
    with pytest.raises(NotFound):
        iam.get_user_policy(world.deps, world.root, "bob", "huge")  # nothing was stored
    whitespace = json.dumps(_policy(60), indent=40)  # whitespace is not counted
    assert len(whitespace) > iam.USER_POLICIES_MAX_CHARS
    iam.put_user_policy(world.deps, world.root, "bob", "spaced", whitespace)


def test_a_vault_access_policy_is_bounded(world: World) -> None:
    world.vault("main")
    statement = {
        "Effect": "Deny",
        "Principal": {"AWS": "*"},
        "Action": "backup:DeleteRecoveryPoint",
        "Resource": "*",
    }
    small = {"Version": "2012-10-17", "Statement": [statement]}
    iam.put_vault_access_policy(world.deps, world.root, "main", json.dumps(small))
    big = dict(small, Statement=[dict(statement, Sid=f"s{i}") for i in range(400)])
    assert len(json.dumps(big)) > iam.VAULT_POLICY_MAX_BYTES
    with pytest.raises(InvalidInput, match="LimitExceeded"):
        iam.put_vault_access_policy(world.deps, world.root, "main", json.dumps(big))
