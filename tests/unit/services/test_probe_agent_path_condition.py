"""``snowvault:Path`` of a path on an agent's host is folded lexically, never resolved on
the server's file system (docs/design/agents.md, docs/security.md).

Abuse case: a user confined to ``/…/restores/*`` by an IAM condition. Before the fix the
server ran ``os.path.realpath`` on an agent host's path, on its *own* file system: a
symlink on the server named ``/…/other/inside`` -> ``/…/restores`` made the condition
see ``/…/restores/x`` for a registration or restore of ``/…/other/inside/x`` on the
agent's host, where that path is something else entirely; and a symlink on the server
could refuse a path the host would take. Paths on the server's own host keep realpath
(tests/unit/services/test_security_authz_table.py).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from helpers import agent_world
from helpers.access_world import ROLE, World
from snowvault.agent import runner, store
from snowvault.control.services import agents, authorization, backup_jobs, resources, restore_jobs
from snowvault.control.services.base import Caller
from snowvault.core.errors import InvalidInput


@pytest.fixture
def world(tmp_path: Path) -> World:
    return agent_world.make_world(tmp_path)


@pytest.fixture
def base(tmp_path: Path) -> Path:
    """``restores/``, ``other/inside`` -> ``restores`` and ``restores/link`` -> ``elsewhere``,
    all on the server's file system."""
    root = tmp_path.resolve()
    for name in ("restores", "elsewhere", "other"):
        (root / name).mkdir()
    (root / "other" / "inside").symlink_to(root / "restores")
    (root / "restores" / "link").symlink_to(root / "elsewhere")
    return root


def _confined(world: World, action: str, pattern: str) -> Caller:
    statement = {
        "Effect": "Allow",
        "Action": action,
        "Resource": "*",
        "Condition": {"StringLike": {"snowvault:Path": pattern}},
    }
    return world.user("confined", json.dumps({"Version": "2012-10-17", "Statement": [statement]}))


def _refused(world: World, who: Caller, name: str, params: dict[str, Any]) -> bool:
    try:
        authorization.authorize_operation(world.deps, who, name, params)
    except authorization.AccessDenied:
        return True
    return False


def _path(world: World, name: str, params: dict[str, Any]) -> object:
    with world.deps.engine.connect() as conn:
        target = authorization.target_for(conn, world.root, name, params)
    return target.context.get(authorization.PATH_KEY)


def test_register_resource_on_an_agent_host_sees_the_path_lexically(
    world: World, base: Path
) -> None:
    who = _confined(world, "backup:RegisterResource", f"{base}/restores/*")

    def register(source: str, label: str | None = "agent:h1") -> bool:
        params = {"ResourceType": "Directory", "Name": "n", "Source": source}
        return _refused(world, who, "RegisterResource", params | {"WorkerLabel": label})

    # the server's symlink other/inside -> restores must not let this through
    assert register(f"{base}/other/inside/x")
    # nor may the server's symlink restores/link -> elsewhere refuse the host's path
    assert not register(f"{base}/restores/link/x")
    assert not register(f"{base}/restores//a/./b/")
    assert register(f"{base}/restores/../elsewhere")  # `..` cannot climb out
    assert register(f"{base}/restores/a\x00b")
    assert register("restores/a")
    # on the server's own host: realpath, as before
    params = {"ResourceType": "Directory", "Name": "n", "Source": f"{base}/other/inside/x"}
    assert _path(world, "RegisterResource", params) == f"{base}/restores/x"
    agent_params = params | {"WorkerLabel": "agent:h1"}
    assert _path(world, "RegisterResource", agent_params) == f"{base}/other/inside/x"


def _agent_point(world: World, source: Path) -> tuple[str, str]:
    """(resource ARN, point ARN) of ``source`` on h1, backed up by h1's agent."""
    h1 = agent_world.agent(world, "h1")
    row = resources.register(world.deps, world.root, resource_type="Directory", name="r",
                             source=str(source), worker_label="agent:h1")  # fmt: skip
    backup_jobs.start(world.deps, world.root, backup_jobs.StartRequest("main", row["arn"], ROLE))
    claimed = agents.claim(world.deps, world.caller(h1.principal_arn), wait_seconds=0,
                           lease_seconds=60)  # fmt: skip
    assert isinstance(claimed, agents.ClaimedJob)
    keys = claimed.keys
    job = {
        "JobId": claimed.job.job_id, "ResourceArn": row["arn"], "ResourceType": "Directory",
        "Source": str(source), "LeaseSeconds": 60,
        "Keys": {"JobKey": base64.b64encode(keys.job_key).decode(),
                 "IdKey": base64.b64encode(keys.id_key).decode(), "Chunker": keys.chunker},
    }  # fmt: skip
    api: Any = agent_world.InProcessApi(world, h1)
    blobs = store.RemoteBlobStore(api, claimed.job.job_id, store.JobKeys.from_api(job["Keys"]))
    options = runner.Options("in-process", "h1", "us-east-1", "k", "s", (str(source),))
    assert runner.run_job(api, options, job, print, world.clock, blobs=blobs) == "COMPLETED"
    return str(row["arn"]), str(claimed.job.recovery_point_arn)


def test_restores_and_backups_on_an_agent_host_see_the_path_lexically(
    world: World, base: Path
) -> None:
    (base / "restores" / "on-h1").mkdir()
    source = base / "other" / "inside" / "on-h1"  # through the symlink, on this machine
    (source / "f.txt").write_text("h1's file\n")
    resource_arn, rp_arn = _agent_point(world, source)
    who = _confined(world, "backup:StartRestoreJob", f"{base}/restores/*")

    def restore(target: str) -> bool:
        params = {"RecoveryPointArn": rp_arn, "Metadata": {"targetPath": target}}
        return _refused(world, who, "StartRestoreJob", params)

    assert restore(f"{base}/other/inside/x")  # the server's symlink is not the host's
    assert not restore(f"{base}/restores/link/x")
    assert restore(f"{base}/restores/../elsewhere/x")
    assert restore(f"{base}/restores/x\x00")
    assert not restore(f"{base}/restores/a")
    params = {"RecoveryPointArn": rp_arn, "Metadata": {"targetPath": f"{base}/other/inside/y"}}
    assert _path(world, "StartRestoreJob", params) == f"{base}/other/inside/y"
    # StartBackupJob of the agent's resource: its registered source, lexically
    start = {"BackupVaultName": "main", "ResourceArn": resource_arn}
    assert _path(world, "StartBackupJob", start) == str(source)


def test_every_path_resource_and_restore_target_carries_the_key(world: World, base: Path) -> None:
    """SQLite and BlockDevice sources are host paths too, and PostgreSQL's
    ``targetDirectory`` is a host path a restore writes: a Deny on a prefix must see
    them (before, the key was absent and a Deny with a condition on it did not apply)."""
    deny = {
        "Effect": "Deny",
        "Action": ["backup:RegisterResource", "backup:StartRestoreJob"],
        "Resource": "*",
        "Condition": {"StringLike": {"snowvault:Path": f"{base}/elsewhere/*"}},
    }
    allow = {"Effect": "Allow", "Action": "backup:*", "Resource": "*"}
    doc = {"Version": "2012-10-17", "Statement": [allow, deny]}
    who = world.user("denied", json.dumps(doc))
    for kind in ("SQLite", "BlockDevice", "Directory"):
        params = {"ResourceType": kind, "Name": "n", "Source": f"{base}/restores/link/x"}
        assert _refused(world, who, "RegisterResource", params), kind
        assert _path(world, "RegisterResource", params) == f"{base}/elsewhere/x"  # realpath
        params["Source"] = f"{base}/restores/y"
        assert not _refused(world, who, "RegisterResource", params), kind
    rp = f"arn:aws:backup:us-east-1:{world.root.account_id}:recovery-point:none"
    for key in ("targetPath", "targetDirectory"):
        params = {"RecoveryPointArn": rp, "Metadata": {key: f"{base}/restores/link/z"}}
        assert _refused(world, who, "StartRestoreJob", params), key
    params = {"RecoveryPointArn": rp, "Metadata": {"targetDsn": "postgresql://u@h:5432"}}
    assert _path(world, "StartRestoreJob", params) is None


def test_a_dot_dot_part_in_an_agent_restore_target_is_refused_at_the_call(
    world: World, base: Path
) -> None:
    source = base / "restores"
    (source / "f.txt").write_text("h1's file\n")
    _, rp_arn = _agent_point(world, source)
    with pytest.raises(InvalidInput):
        restore_jobs.start(
            world.deps,
            world.root,
            recovery_point_arn=rp_arn,
            metadata={"targetPath": f"{base}/restores/link/../x"},
            iam_role_arn=ROLE,
        )
