"""Agents at the service layer (issue 13, docs/design/agents.md): enrolment makes a
principal that may call the agent operations and nothing else, whatever a policy says;
nobody else may call them; revocation removes the key; host names are bounded.

The same through the real server, every operation of the API: tests/acceptance/
test_agent_keys.py.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from helpers.access_world import ACCOUNT, World
from snowvault.control import catalog
from snowvault.control.services import accounts, agents, authorization, iam
from snowvault.core.errors import AlreadyExists, InvalidInput, NotFound
from snowvault.testing import FakeClock


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path, FakeClock(datetime(2026, 12, 7, tzinfo=UTC)))


def _ask(world: World, who_arn: str, operation: str, service: str = "backup") -> None:
    who = world.caller(who_arn)
    authorization.authorize_operation(world.deps, who, operation, {}, service=service)


def test_an_agent_may_call_only_the_agent_operations_whatever_a_policy_says(
    world: World,
) -> None:
    creds = agents.enroll(world.deps, world.root, world.box, "web-1")
    assert creds.principal_arn == f"arn:aws:iam::{ACCOUNT}:user/snowvault-agent/web-1"
    world.vault("main")
    everyone = {"Effect": "Allow", "Principal": "*", "Action": "backup:*", "Resource": "*"}
    document = json.dumps({"Version": "2012-10-17", "Statement": [everyone]})
    iam.put_vault_access_policy(world.deps, world.root, "main", document)
    who = world.caller(creds.principal_arn)
    for operation in ("DescribeBackupVault", "ListRecoveryPointsByBackupVault", "StartBackupJob"):
        with pytest.raises(authorization.AccessDenied, match="may only call the agent"):
            authorization.authorize_operation(
                world.deps, who, operation, {"BackupVaultName": "main"}
            )
    for service, operation in (("snowvault", "EnrollAgent"), ("kms", "CreateKey")):
        with pytest.raises(authorization.AccessDenied, match="may only call the agent"):
            _ask(world, creds.principal_arn, operation, service)
    _ask(world, creds.principal_arn, "AgentHello", "snowvault")  # its own call passes


def test_nobody_else_may_call_the_agent_operations(world: World) -> None:
    admin = {"Effect": "Allow", "Action": ["backup:*", "snowvault:*"], "Resource": "*"}
    user = world.user("admin", json.dumps({"Version": "2012-10-17", "Statement": [admin]}))
    for who in (world.root, user):
        with pytest.raises(authorization.AccessDenied, match="only an enrolled agent"):
            _ask(world, who.principal_arn, "AgentHello", "snowvault")
    _ask(world, user.principal_arn, "EnrollAgent", "snowvault")  # snowvault:* grants it
    backup_only = {"Effect": "Allow", "Action": "backup:*", "Resource": "*"}
    iam.put_user_policy(
        world.deps,
        world.root,
        "admin",
        "p",
        json.dumps({"Version": "2012-10-17", "Statement": [backup_only]}),
    )
    with pytest.raises(authorization.AccessDenied):
        _ask(world, user.principal_arn, "EnrollAgent", "snowvault")


def test_enrol_list_hello_revoke(world: World) -> None:
    creds = agents.enroll(world.deps, world.root, world.box, "db-2")
    found = accounts.lookup_key(world.deps.engine, world.box, creds.access_key_id)
    assert found is not None and found.principal_arn == creds.principal_arn
    with pytest.raises(AlreadyExists):
        agents.enroll(world.deps, world.root, world.box, "db-2")
    [listed] = agents.list_agents(world.deps, world.root)
    assert (listed.host, listed.version, listed.last_seen_at) == ("db-2", None, None)
    assert iam.list_users(world.deps, world.root) == []  # agents are not IAM users
    world.clock.advance(timedelta(minutes=5))
    seen = agents.hello(world.deps, world.caller(creds.principal_arn), version="0.1.0")
    assert (seen.version, seen.last_seen_at) == ("0.1.0", world.clock.now())
    with pytest.raises(InvalidInput):
        agents.hello(world.deps, world.caller(creds.principal_arn), version="1 2")
    agents.revoke(world.deps, world.root, "db-2")
    assert accounts.lookup_key(world.deps.engine, world.box, creds.access_key_id) is None
    assert agents.list_agents(world.deps, world.root) == []
    with pytest.raises(NotFound):
        agents.revoke(world.deps, world.root, "db-2")
    with catalog.db.transaction(world.deps.engine) as conn:
        assert catalog.accounts.find_principal(conn, account_id=ACCOUNT, name="agent:db-2") is None


@pytest.mark.parametrize("host", ["", "-x", "a/b", "a:b", "x" * 64, "bad host", "../x"])
def test_host_names_are_bounded(world: World, host: str) -> None:
    with pytest.raises(InvalidInput, match="Host"):
        agents.enroll(world.deps, world.root, world.box, host)
    assert agents.list_agents(world.deps, world.root) == []
