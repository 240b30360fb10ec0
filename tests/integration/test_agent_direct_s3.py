"""Agents upload pack bytes straight to an S3 store (issue 13, docs/design/agents.md
"Direct uploads to S3"): a `snowvault server` with a moto S3 vault store
(tests/helpers/fleet.py) and a `snowvault agent run` process whose every byte to the
server goes through a counting TCP forwarder. A backup's packs land in S3 as keyed
packs while the server receives a small fraction of the data (trees, ids, manifests,
presign and commit calls); a restore through the server is byte for byte; check
--read-data is clean; a second backup uploads nothing; a copy to another vault is
written by the server and checks clean; deleting the points and pruning removes the
keyed packs and their records.
"""

from __future__ import annotations

import base64
import gzip
import os
import random
import select
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import urllib3

from helpers import stories
from helpers.fleet import REGION, S3_KEYS, Fleet
from helpers.sv_server import SNOWVAULT
from snowvault.agent import client
from snowvault.control import catalog
from snowvault.control.services import vaults
from snowvault.core.clock import SystemClock
from snowvault.core.errors import SnowvaultError
from snowvault.engine import check, compression, keyed_packs, locks, packs, prune
from snowvault.engine.crypto import agent_blobs, primitives

VAULT = "direct"
COPIES = "direct-copies"
HOST = "direct-1"
FINAL_BACKUP = {"COMPLETED", "FAILED", "ABORTED", "EXPIRED", "PARTIAL"}
FINAL = {"COMPLETED", "FAILED", "ABORTED"}
MiB = 1024 * 1024


class Counter:
    """A TCP forwarder on 127.0.0.1 that counts the bytes clients send through it."""

    def __init__(self, target_port: int) -> None:
        self.sent = 0
        self._lock = threading.Lock()
        self._target = target_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self._target))
            threading.Thread(target=self._pipe, args=(client, server), daemon=True).start()

    def _pipe(self, client: socket.socket, server: socket.socket) -> None:
        try:
            while not self._stop.is_set():
                ready, _, _ = select.select([client, server], [], [], 1.0)
                for sock in ready:
                    data = sock.recv(65536)
                    if not data:
                        return
                    if sock is client:
                        with self._lock:
                            self.sent += len(data)
                        server.sendall(data)
                    else:
                        client.sendall(data)
        except OSError:
            return
        finally:
            client.close()
            server.close()

    def close(self) -> None:
        self._stop.set()
        self._listener.close()


@pytest.fixture
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    with Fleet.start(tmp_path_factory, servers=1, lease_seconds=10, poll_seconds=0.2) as fleet:
        client = fleet.front.client()
        client.create_backup_vault(BackupVaultName=VAULT)
        client.create_backup_vault(BackupVaultName=COPIES)
        yield fleet


def _agent(fleet: Fleet, counter: Counter, allow: Path) -> subprocess.Popen[bytes]:
    keys = fleet.enroll(HOST)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env |= {"AWS_ACCESS_KEY_ID": keys["key"], "AWS_SECRET_ACCESS_KEY": keys["secret"]}
    args = [SNOWVAULT, "agent", "run", "--endpoint", f"http://127.0.0.1:{counter.port}"]
    args += ["--host", HOST, "--allow-path", str(allow), "--wait-seconds", "2"]
    with (fleet.tmp / "agent.log").open("wb") as log:
        return subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT)


def _backup(backup: Any, arn: str) -> dict[str, Any]:
    job = backup.start_backup_job(BackupVaultName=VAULT, ResourceArn=arn, IamRoleArn=stories.ROLE)
    return stories.poll(
        lambda: backup.describe_backup_job(BackupJobId=job["BackupJobId"]),
        "State",
        FINAL_BACKUP,
        timeout=120,
    )


def _s3(fleet: Fleet) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=fleet.s3_endpoint,
        region_name=REGION,
        aws_access_key_id=S3_KEYS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=S3_KEYS["AWS_SECRET_ACCESS_KEY"],
    )


def _s3_objects(fleet: Fleet) -> list[tuple[str, int]]:
    s3 = _s3(fleet)
    out = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=fleet.bucket):
        out += [(o["Key"], int(o["Size"])) for o in page.get("Contents", ())]
    return out


def _vault(app: Any, fleet: Fleet, name: str) -> Any:
    with catalog.db.read_transaction(app.deps.engine) as conn:
        return catalog.vaults.find(
            conn, account_id=fleet.front.creds["account_id"], region=REGION, name=name
        )


def _prune_when_free(repo: Any) -> None:
    """Prune, waiting (up to a minute) for the server's own work on the vault: its prune
    of deleted points holds the exclusive lock, and its background index compaction and
    usage sweeps a shared one, which refuses prune's as well (RepositoryLocked once on CI)."""
    deadline = time.monotonic() + 60
    while True:
        try:
            prune.prune(repo, SystemClock())
            return
        except locks.RepositoryLocked:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def test_an_agent_puts_packs_straight_to_s3(fleet: Fleet) -> None:
    host = fleet.tmp / "host"
    files = host / "files"
    (files / "small").mkdir(parents=True)
    rng = random.Random(7)
    for n in range(3):
        (files / f"big{n}.bin").write_bytes(rng.randbytes(5 * MiB))
    for n in range(40):
        (files / "small" / f"f{n}.txt").write_bytes(rng.randbytes(3000))
    data_bytes = sum(p.stat().st_size for p in files.rglob("*") if p.is_file())
    body = {"ResourceType": "Directory", "Name": "files", "Source": str(files)}
    body["WorkerLabel"] = f"agent:{HOST}"
    arn = str(fleet.front.ext("RegisterResource", body)["ResourceArn"])
    counter = Counter(fleet.proxy.port)
    agent = _agent(fleet, counter, host)
    log = fleet.tmp / "agent.log"
    backup = fleet.front.client()
    try:
        before = counter.sent
        done = _backup(backup, arn)
        assert done["State"] == "COMPLETED", (done, log.read_text())
        to_server = counter.sent - before
        objects = _s3_objects(fleet)
        assert [k for k, _ in objects if keyed_packs.PREFIX in k], objects
        data = [(k, size) for k, size in objects if "/data/" in k]
        assert sum(size for _, size in data) >= data_bytes  # random bytes: no smaller
        # the server got trees, ids, the manifest and the calls: not the 15 MiB of data
        assert to_server < data_bytes / 20, (to_server, data_bytes)

        target = host / "restored"
        job = backup.start_restore_job(
            RecoveryPointArn=done["RecoveryPointArn"],
            Metadata={"targetPath": str(target)},
            IamRoleArn=stories.ROLE,
        )
        restored = stories.poll(
            lambda: backup.describe_restore_job(RestoreJobId=job["RestoreJobId"]),
            "Status",
            FINAL,
            timeout=120,
        )
        assert restored["Status"] == "COMPLETED", (restored, log.read_text())
        for path in files.rglob("*"):
            if path.is_file():
                assert (target / path.relative_to(files)).read_bytes() == path.read_bytes()

        before, packs_before = counter.sent, len(data)
        again = _backup(backup, arn)
        assert again["State"] == "COMPLETED", (again, log.read_text())
        assert len([k for k, _ in _s3_objects(fleet) if "/data/" in k]) == packs_before
        assert counter.sent - before < data_bytes / 20

        with fleet.inspect() as app:
            source = _vault(app, fleet, VAULT)
            with vaults.open_repository(app.deps, source) as repo:
                assert repo.pack_keys()  # the agent's packs are keyed
                report = check.check(repo, read_data=True)
                assert report.problems == [], report.problems
            copies_arn = _vault(app, fleet, COPIES)["arn"]

        copy = backup.start_copy_job(
            RecoveryPointArn=done["RecoveryPointArn"],
            SourceBackupVaultName=VAULT,
            DestinationBackupVaultArn=copies_arn,
            IamRoleArn=stories.ROLE,
        )
        copied = stories.poll(
            lambda: backup.describe_copy_job(CopyJobId=copy["CopyJobId"])["CopyJob"],
            "State",
            {"COMPLETED", "FAILED"},
            timeout=120,
        )
        assert copied["State"] == "COMPLETED", copied
        with (
            fleet.inspect() as app,
            vaults.open_repository(app.deps, _vault(app, fleet, COPIES)) as repo,
        ):
            assert repo.pack_keys() == {}  # a copy is written by the server, under enc_key
            assert check.check(repo, read_data=True).problems == []
            assert len(repo.list_manifests()) == 1

        for point in (done, again):
            backup.delete_recovery_point(
                BackupVaultName=VAULT, RecoveryPointArn=point["RecoveryPointArn"]
            )
        with (
            fleet.inspect() as app,
            vaults.open_repository(app.deps, _vault(app, fleet, VAULT)) as repo,
        ):
            for rp_id in repo.list_manifests():  # if the server has not forgotten it yet
                repo.delete_manifest(rp_id)
            _prune_when_free(repo)
        with (
            fleet.inspect() as app,
            vaults.open_repository(app.deps, _vault(app, fleet, VAULT)) as repo,
        ):
            assert repo.pack_keys() == {}
            assert list(repo.list_packs()) == []
        assert [k for k, _ in _s3_objects(fleet) if keyed_packs.PREFIX in k] == []
    finally:
        agent.terminate()
        agent.wait(30)
        counter.close()
    assert fleet.server_errors() == []
    # the trail records the presign calls, never the presigned URLs they answered
    recorded = [
        gzip.decompress(p.read_bytes()) if p.suffix == ".gz" else p.read_bytes()
        for p in fleet.servers[0].data_dir.rglob("*")
        if p.is_file()
    ]
    assert any(b"AgentPutBlobs" in data for data in recorded)
    assert not any(b"X-Amz-Signature" in data for data in recorded)


def test_a_malicious_agents_packs_reach_no_other_resource(fleet: Fleet) -> None:
    """An agent (its key pair in this test's hands) that somehow knows the id the vault
    gives some content commits a keyed pack holding garbage under that id; the server
    then backs up a directory of its own holding that content: the point restores the
    real bytes, and after a prune the vault checks clean. The same key cannot have a
    pack the vault holds, or a name of its choosing, presigned."""
    content = random.Random(3).randbytes(300_000)
    with (
        fleet.inspect() as app,
        vaults.open_repository(app.deps, _vault(app, fleet, VAULT)) as repo,
    ):
        known_id = repo.blob_id(content)  # the server's scope: never an agent's to compute
    keys = fleet.enroll("evil-1")
    body = {"ResourceType": "Directory", "Name": "evil", "Source": "/srv/evil"}
    body["WorkerLabel"] = "agent:evil-1"
    evil_arn = str(fleet.front.ext("RegisterResource", body)["ResourceArn"])
    backup = fleet.front.client()
    backup.start_backup_job(BackupVaultName=VAULT, ResourceArn=evil_arn, IamRoleArn=stories.ROLE)
    api = client.AgentApi(fleet.proxy.endpoint, REGION, keys["key"], keys["secret"])
    job = api.call("AgentClaimJob", {"WaitSeconds": 5})["Job"]
    assert job["Keys"]["Direct"] is True
    job_key = base64.b64decode(job["Keys"]["JobKey"])
    sealer = primitives.Sealer(job_key)
    blob = sealer.seal(compression.pack(b"garbage"), packs.blob_aad(packs.KIND_DATA, known_id))
    entries = [packs.PackEntry(packs.KIND_DATA, known_id, 0, len(blob), 7)]
    pack = blob + packs.encode_header(sealer, entries)
    declared = {
        "PackId": primitives.content_hash(pack).hex(),
        "Size": len(pack),
        "ContentMD5": agent_blobs.content_md5(pack),
    }
    upload = api.call("AgentPutBlobs", {"JobId": job["JobId"], "Presign": [declared]})
    put = urllib3.request(
        "PUT",
        upload["Uploads"][0]["Credential"]["Url"],
        body=pack,
        headers=upload["Uploads"][0]["Credential"]["Headers"],
    )
    assert put.status == 200
    assert api.call("AgentPutBlobs", {"JobId": job["JobId"], "Commit": [declared]}) == {"Stored": 1}

    source = fleet.servers[0].home / "server-side"
    source.mkdir()
    (source / "same.bin").write_bytes(content)
    body = {"ResourceType": "Directory", "Name": "server-side", "Source": str(source)}
    server_arn = str(fleet.front.ext("RegisterResource", body)["ResourceArn"])
    done = _backup(backup, server_arn)
    assert done["State"] == "COMPLETED", done
    target = fleet.servers[0].home / "restored"
    restore = backup.start_restore_job(
        RecoveryPointArn=done["RecoveryPointArn"],
        Metadata={"targetPath": str(target)},
        IamRoleArn=stories.ROLE,
    )
    restored = stories.poll(
        lambda: backup.describe_restore_job(RestoreJobId=restore["RestoreJobId"]),
        "Status",
        FINAL,
        timeout=120,
    )
    assert restored["Status"] == "COMPLETED", restored
    assert (target / "same.bin").read_bytes() == content

    # the same key: a pack the vault holds, a name of its choosing
    server_pack = next(
        k.rsplit("/", 1)[-1]
        for k, _ in _s3_objects(fleet)
        if "/data/" in k and not k.endswith(declared["PackId"])
    )
    for pack_id in (server_pack, "../../config"):
        ask = {"PackId": pack_id, "Size": 10, "ContentMD5": declared["ContentMD5"]}
        with pytest.raises(SnowvaultError):
            api.call("AgentPutBlobs", {"JobId": job["JobId"], "Presign": [ask]})
    # nor commit the vault's own pack (its real size and MD5): its header does not
    # open with the job's key, and no record gives that pack the job's key
    head = _s3(fleet).head_object(
        Bucket=fleet.bucket,
        Key=next(k for k, _ in _s3_objects(fleet) if k.endswith(server_pack)),
    )
    md5 = base64.b64encode(bytes.fromhex(head["ETag"].strip('"'))).decode()
    theirs = {"PackId": server_pack, "Size": head["ContentLength"], "ContentMD5": md5}
    with pytest.raises(SnowvaultError, match="pack header fails authentication"):
        api.call("AgentPutBlobs", {"JobId": job["JobId"], "Commit": [theirs]})
    api.call("AgentFailJob", {"JobId": job["JobId"], "StatusMessage": "done lying"})
    with (
        fleet.inspect() as app,
        vaults.open_repository(app.deps, _vault(app, fleet, VAULT)) as repo,
    ):
        report = check.check(repo, read_data=True)  # the garbage fails in its own scope
        assert [p.object for p in report.problems] == [packs.pack_name(declared["PackId"])]
        _prune_when_free(repo)  # nothing names the agent's pack: it goes
    with (
        fleet.inspect() as app,
        vaults.open_repository(app.deps, _vault(app, fleet, VAULT)) as repo,
    ):
        assert check.check(repo, read_data=True).problems == []
        assert repo.pack_keys() == {}
    assert fleet.server_errors() == []
