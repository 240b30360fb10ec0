"""A user's access keys can be listed, deactivated, reactivated and deleted, as in AWS
IAM, and a user holds at most two (helper K; the defect helper Q's probe found: a leaked
key could only be stopped by deleting its user). SigV4's lookup reads the catalog on
each request, so a key set Inactive or deleted is refused on its very next one."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers.access_world import ACCOUNT, World
from snowvault.control.services import accounts, iam
from snowvault.control.services.errors import QuotaExceeded
from snowvault.core.errors import InvalidInput, NotFound
from snowvault.interfaces.api import errors as api_errors
from snowvault.testing import FakeClock


def _ids(world: World, user: str | None, who: object = None) -> dict[str, str]:
    caller = who if who is not None else world.root
    name, page = iam.page_access_keys(world.deps, caller, user)  # type: ignore[arg-type]
    assert name == (user or name)
    return {k["access_key_id"]: k["status"] for k in page.items}


def test_deactivate_reactivate_delete_and_the_lookup_follows(
    tmp_path: Path, clock: FakeClock
) -> None:
    world = World(tmp_path, clock)
    world.user("alice")
    key = iam.create_access_key(world.deps, world.root, "alice", world.box)
    lookup = accounts.lookup_key
    assert lookup(world.deps.engine, world.box, key.access_key_id) == key
    assert _ids(world, "alice") == {key.access_key_id: "Active"}

    iam.update_access_key(world.deps, world.root, "alice", key.access_key_id, "Inactive")
    assert _ids(world, "alice") == {key.access_key_id: "Inactive"}
    assert lookup(world.deps.engine, world.box, key.access_key_id) is None

    iam.update_access_key(world.deps, world.root, "alice", key.access_key_id, "Active")
    assert lookup(world.deps.engine, world.box, key.access_key_id) == key

    iam.delete_access_key(world.deps, world.root, "alice", key.access_key_id)
    assert _ids(world, "alice") == {}
    assert lookup(world.deps.engine, world.box, key.access_key_id) is None
    with pytest.raises(NotFound):
        iam.delete_access_key(world.deps, world.root, "alice", key.access_key_id)


def test_a_third_key_is_limit_exceeded_and_a_deleted_one_frees_its_place(
    tmp_path: Path, clock: FakeClock
) -> None:
    world = World(tmp_path, clock)
    world.user("bob")
    first = iam.create_access_key(world.deps, world.root, "bob", world.box)
    second = iam.create_access_key(world.deps, world.root, "bob", world.box)
    iam.update_access_key(world.deps, world.root, "bob", second.access_key_id, "Inactive")
    with pytest.raises(QuotaExceeded, match="already has 2 access keys") as caught:
        iam.create_access_key(world.deps, world.root, "bob", world.box)  # Inactive counts
    assert api_errors.lookup(caught.value) == ("LimitExceededException", 400)
    assert set(_ids(world, "bob")) == {first.access_key_id, second.access_key_id}
    iam.delete_access_key(world.deps, world.root, "bob", second.access_key_id)
    third = iam.create_access_key(world.deps, world.root, "bob", world.box)
    assert set(_ids(world, "bob")) == {first.access_key_id, third.access_key_id}


def test_a_key_is_found_only_under_its_own_user(tmp_path: Path, clock: FakeClock) -> None:
    world = World(tmp_path, clock)
    alice = world.user("alice")
    world.user("bob")
    bobs = iam.create_access_key(world.deps, world.root, "bob", world.box)
    for call in (
        lambda: iam.update_access_key(world.deps, alice, "alice", bobs.access_key_id, "Inactive"),
        lambda: iam.update_access_key(world.deps, alice, None, bobs.access_key_id, "Inactive"),
        lambda: iam.delete_access_key(world.deps, alice, None, bobs.access_key_id),
    ):
        with pytest.raises(NotFound, match="access key"):
            call()
    other_root = world.other_account()  # the same key id named from another account
    with pytest.raises(NotFound):
        iam.delete_access_key(world.deps, other_root, "bob", bobs.access_key_id)
    assert _ids(world, "bob") == {bobs.access_key_id: "Active"}


def test_without_user_name_the_callers_own_user(tmp_path: Path, clock: FakeClock) -> None:
    world = World(tmp_path, clock)
    carol = world.user("carol")
    key = iam.create_access_key(world.deps, world.root, "carol", world.box)
    name, page = iam.page_access_keys(world.deps, carol, None)
    assert name == "carol" and [k["access_key_id"] for k in page.items] == [key.access_key_id]
    iam.update_access_key(world.deps, carol, None, key.access_key_id, "Inactive")
    assert _ids(world, "carol") == {key.access_key_id: "Inactive"}
    with pytest.raises(InvalidInput, match="UserName is required"):
        iam.page_access_keys(world.deps, world.root, None)
    agent = world.caller(f"arn:aws:iam::{ACCOUNT}:user/snowvault-agent/host1")
    with pytest.raises(InvalidInput):
        iam.key_owner(agent, None)
    with pytest.raises(InvalidInput, match="Status"):
        iam.update_access_key(world.deps, carol, None, key.access_key_id, "Disabled")
    with pytest.raises(NotFound):
        iam.page_access_keys(world.deps, world.root, "nobody")


def test_list_pages_by_max_items_and_marker(tmp_path: Path, clock: FakeClock) -> None:
    world = World(tmp_path, clock)
    world.user("dave")
    made = sorted(
        iam.create_access_key(world.deps, world.root, "dave", world.box).access_key_id
        for _ in range(2)
    )
    _, first = iam.page_access_keys(world.deps, world.root, "dave", max_items=1)
    assert [k["access_key_id"] for k in first.items] == made[:1] and first.next_token
    _, rest = iam.page_access_keys(
        world.deps, world.root, "dave", max_items=1, marker=first.next_token
    )
    assert [k["access_key_id"] for k in rest.items] == made[1:] and rest.next_token is None
