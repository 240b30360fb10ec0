"""Agents on other hosts and across a network that fails (issue 13 "Failure semantics",
docs/design/agents.md "Failure and networks"). The agent's host is made of namespaces
(tests/helpers/netns.py): its files live in a tmpfs of a private mount namespace the
server's processes do not have at all, and it reaches the server, which listens on the
root side of a veth pair, through its own network namespace. Then:

- a backup there and a restore back there, with the server's host paths untouched;
- the link cut (silently: packets lost, no reset) in the middle of a backup or a
  restore, for longer than several heartbeats: inside the lease the job just waits and
  goes on (one attempt, nothing sent twice); for longer than the lease (the test-mode
  clock moved past it during the cut) the server gives the backup to a new attempt,
  the agent drops the old one on the server's answer and runs the new one, skipping
  what was stored: a retry, never the job; one recovery point either way;
- a job for a host whose agent is away waits in CREATED until its start window ends,
  then is EXPIRED, and an agent coming later does not run it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from helpers import netns, stories
from helpers.sv_server import SNOWVAULT, free_port, move_clock
from snowvault.control import catalog

VAULT = "hosts"
HOST = "db-7"
LEASE = 5  # the agent's lease: heartbeats every ~1.7 s
CUT_SECONDS = float(os.environ.get("SNOWVAULT_TEST_CUT_SECONDS", "10"))
"""How long the link stays cut (real seconds): about six heartbeats, two leases. The
client's own tests (tests/unit/test_agent_client_retries.py) take a minute's cut on a
fake clock; SNOWVAULT_TEST_CUT_SECONDS=60 runs this one with a real minute."""
WAIT = 240.0
"""How long a step may take before the test fails: a bound, not a measure (CI runs this
beside other tests on two cores, where a shaped link's upload takes minutes)."""
RATE = "24mbit"  # the host's link: 24 MiB take about 11 s, long enough to cut
FINAL = stories.FINAL_BACKUP


@dataclass
class Site:
    server: netns.VethServer
    host: netns.Host
    server_area: Path
    base: Path
    key: dict[str, str]
    backup: Any
    agents: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start_agent(
        self, name: str, host: str = HOST, key: dict[str, str] | None = None, inside: bool = True
    ) -> Path:
        """``snowvault agent run`` for ``host`` (``key``: its key pair, else HOST's), on
        the namespaced host (``inside``) or in the root namespaces; its log file."""
        key = key or self.key
        log = self.base / f"agent-{name}.log"
        env = self.server.env | {
            "AWS_ACCESS_KEY_ID": key["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"],
        }
        argv = [
            SNOWVAULT, "agent", "run", "--endpoint", self.server.endpoint, "--host", host,
            "--allow-path", str(self.host.root), "--region", self.server.creds["region"],
            "--lease-seconds", str(LEASE), "--wait-seconds", "1",
        ]  # fmt: skip
        with log.open("wb") as out:
            if inside:
                proc = self.host.popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
            else:
                proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
        self.agents.append(proc)
        return log

    def stop_agents(self) -> None:
        for proc in self.agents:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=20)
        self.agents.clear()

    def register(self, source: Path, name: str, host: str = HOST) -> str:
        doc = stories.sv_json(
            self.server, "resource", "add", "directory", str(source), "--host", host,
            "--name", name,
        )  # fmt: skip
        return str(doc["ResourceArn"])

    def job(self, job_id: str) -> dict[str, Any]:
        doc: dict[str, Any] = self.backup.describe_backup_job(BackupJobId=job_id)
        return doc

    def wait(self, job_id: str, states: set[str], timeout: float = WAIT) -> dict[str, Any]:
        return stories.poll(lambda: self.job(job_id), "State", states, timeout)

    def attempts(self, job_id: str, *, restore: bool = False) -> int:
        """The catalog's attempt count of a backup (restore) job (not in the AWS API)."""
        config = json.loads((self.server.data_dir / "config.json").read_text())
        engine = catalog.db.create_engine(config["catalog_url"])
        try:
            with catalog.db.read_transaction(engine) as conn:
                if restore:
                    return catalog.restore_jobs.get(conn, job_id).attempts
                return catalog.jobs.get(conn, job_id).attempts
        finally:
            engine.dispose()

    def points_of(self, resource_arn: str) -> list[dict[str, Any]]:
        doc = self.backup.list_recovery_points_by_resource(ResourceArn=resource_arn)
        points: list[dict[str, Any]] = doc["RecoveryPoints"]
        return points

    def packs(self) -> int:
        data = self.server.data_dir
        return sum(1 for p in data.rglob("*") if p.parent.parent.name == "data")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    base = tmp_path_factory.mktemp("hosts").resolve()
    server_area = base / "server-area"
    server_area.mkdir()
    with netns.Host.create(base / "host-root") as host:
        server = netns.VethServer(
            data_dir=tmp_path_factory.mktemp("data") / "snowvault",
            home=tmp_path_factory.mktemp("home"),
            port=free_port(),
            address=host.gateway,
        )
        server.init(
            allow_paths=(str(server_area),), lease_seconds=10, sweep_seconds=1, poll_seconds=0.2
        )
        server.listen_on_address()
        server.start()
        try:
            backup = server.client()
            backup.create_backup_vault(BackupVaultName=VAULT)
            key = stories.sv_json(server, "agent", "enroll", "--host", HOST)["AccessKey"]
            yield Site(server, host, server_area, base, key, backup)
        finally:
            server.stop()


@pytest.fixture
def fresh(site: Site) -> Iterator[Site]:
    """The site with no agent running before and after the test, the link up."""
    site.host.mend()
    site.host.unshape()
    try:
        yield site
    finally:
        site.stop_agents()
        site.host.mend()
        site.host.unshape()


def test_an_agent_on_another_host_backs_up_and_restores_what_the_server_cannot_see(
    fresh: Site,
) -> None:
    site, host, server = fresh, fresh.host, fresh.server
    source = host.root / "srv" / "www"
    host.write_files(source, seed=21, sizes=[1 + 3_917 * i for i in range(16)])
    original = host.digest(source)
    assert len(original) == 16

    # the server's namespace does not hold the files at all (not merely unreadable)
    assert server.proc is not None
    server_ns = os.readlink(f"/proc/{server.proc.pid}/ns/mnt")
    assert server_ns != host.mount_namespace()
    assert not os.path.lexists(f"/proc/{server.proc.pid}/root{source}")
    assert not source.exists() and os.listdir(host.root) == []

    arn = site.register(source, "www")
    log = site.start_agent("another-host")
    done = stories.backed_up(site.backup, VAULT, arn)
    assert done["State"] == "COMPLETED", (done, log.read_text())

    target = host.root / "restored" / "www"
    restore = stories.restored(site.backup, done["RecoveryPointArn"], target)
    assert restore["Status"] == "COMPLETED", (restore, log.read_text())
    assert host.digest(target) == original  # byte for byte, on the agent's host

    # nothing of it on the server's side: not the source, not the restore, not a trace
    # in the server's own allowed area
    assert os.listdir(host.root) == [] and os.listdir(site.server_area) == []
    assert not os.path.lexists(f"/proc/{server.proc.pid}/root{target}")


def _big_backup(site: Site, name: str, seed: int) -> tuple[str, str, int, Path]:
    """Three 8 MiB files on the host behind a slow uplink; a started job of them once
    its first pack is stored: (resource ARN, job id, packs before, agent log)."""
    source = site.host.root / name
    site.host.write_files(source, seed=seed, sizes=[8 * 1024 * 1024] * 3)
    arn = site.register(source, name)
    site.host.shape(RATE)
    log = site.start_agent(name)
    before = site.packs()
    job_id = site.backup.start_backup_job(
        BackupVaultName=VAULT, ResourceArn=arn, IamRoleArn=stories.ROLE
    )["BackupJobId"]
    deadline = time.monotonic() + WAIT  # a loaded machine (CI beside other work) is slow
    while site.packs() <= before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert site.packs() > before, (site.job(job_id), log.read_text())
    assert site.job(job_id)["State"] == "RUNNING"
    return arn, job_id, before, log


def _lines(log: Path, job_id: str) -> list[str]:
    return [line for line in log.read_text().splitlines() if f"job {job_id}:" in line]


def test_a_cut_inside_the_lease_costs_a_wait(fresh: Site) -> None:
    site = fresh
    arn, job_id, _, log = _big_backup(site, "cut-short", seed=31)
    site.host.cut()
    time.sleep(2)  # a pack whose request was all sent before the cut may still land
    stored = site.packs()
    time.sleep(CUT_SECONDS - 2)
    assert site.packs() == stored  # nothing got through
    assert site.job(job_id)["State"] == "RUNNING"  # the lease's clock did not move
    site.host.mend()

    done = site.wait(job_id, FINAL)
    assert done["State"] == "COMPLETED", (done, log.read_text())
    assert site.attempts(job_id) == 1
    lines = _lines(log, job_id)
    assert not [line for line in lines if "lease is gone" in line or "FAILED" in line], lines
    assert sum("backing up" in line for line in lines) == 1, lines
    [point] = site.points_of(arn)
    assert point["RecoveryPointArn"] == done["RecoveryPointArn"]


def test_a_cut_longer_than_the_lease_costs_a_retry_not_the_job(fresh: Site) -> None:
    site = fresh
    arn, job_id, _, log = _big_backup(site, "cut-long", seed=41)
    site.host.cut()
    # the lease runs on the test-mode clock: a minute passes for the server while the
    # agent cannot heartbeat; the sweeper gives the job to a new attempt
    move_clock(site.server, advance_seconds=60)
    lost = site.wait(job_id, {"PENDING", "CREATED"} | FINAL, timeout=30)
    assert lost["State"] in ("PENDING", "CREATED"), lost
    assert "stopped answering" in lost.get("StatusMessage", ""), lost
    time.sleep(max(0.0, CUT_SECONDS - 5))
    site.host.mend()

    done = site.wait(job_id, FINAL, timeout=WAIT)
    assert done["State"] == "COMPLETED", (done, log.read_text())
    assert site.attempts(job_id) == 2
    lines = _lines(log, job_id)
    # the server's "not yours any more" stopped the first attempt cleanly: dropped, not
    # failed; the second one skipped what the first had stored
    assert sum("lease is gone" in line for line in lines) == 1, lines
    assert not [line for line in lines if "FAILED" in line], lines
    assert sum("backing up" in line for line in lines) == 2, lines
    [summary] = [line for line in lines if "blob(s) uploaded" in line]
    skipped = int(summary.split(", ")[-1].split()[0])
    assert skipped > 0, summary
    [point] = site.points_of(arn)
    assert point["RecoveryPointArn"] == done["RecoveryPointArn"]


def test_a_cut_inside_the_lease_during_a_restore_costs_a_wait(fresh: Site) -> None:
    site, host = fresh, fresh.host
    source = host.root / "cut-restore"
    host.write_files(source, seed=51, sizes=[6 * 1024 * 1024] * 3)
    arn = site.register(source, "cut-restore")
    log = site.start_agent("cut-restore")
    made = stories.backed_up(site.backup, VAULT, arn)
    assert made["State"] == "COMPLETED", (made, log.read_text())

    host.shape(RATE, down=True)  # the blobs come down to the host slowly
    target = host.root / "cut-restored"
    job_id = site.backup.start_restore_job(
        RecoveryPointArn=made["RecoveryPointArn"],
        Metadata={"targetPath": str(target)},
        IamRoleArn=stories.ROLE,
    )["RestoreJobId"]

    def written() -> int:
        found = host.run(["find", str(host.root), "-path", f"{target}/*", "-type", "f"])
        return len(found.stdout.split())

    deadline = time.monotonic() + WAIT
    while written() < 1 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert written() >= 1, log.read_text()
    state = site.backup.describe_restore_job(RestoreJobId=job_id)["Status"]
    assert state == "RUNNING", (state, log.read_text())  # cut in its middle
    host.cut()
    time.sleep(CUT_SECONDS)
    assert site.backup.describe_restore_job(RestoreJobId=job_id)["Status"] == "RUNNING"
    host.mend()

    done = stories.poll(
        lambda: site.backup.describe_restore_job(RestoreJobId=job_id),
        "Status",
        stories.FINAL_RESTORE,
        timeout=WAIT,
    )
    assert done["Status"] == "COMPLETED", (done, log.read_text())
    assert site.attempts(job_id, restore=True) == 1
    assert host.digest(target) == host.digest(source)
    lines = _lines(log, job_id)
    assert not [line for line in lines if "lease is gone" in line or "FAILED" in line], lines


def test_a_job_for_a_host_whose_agent_is_away_expires(fresh: Site) -> None:
    site, host = fresh, "away-1"
    key = stories.sv_json(site.server, "agent", "enroll", "--host", host)["AccessKey"]
    arn = site.register(site.host.root / "away", "away", host=host)
    job_id = site.backup.start_backup_job(
        BackupVaultName=VAULT,
        ResourceArn=arn,
        IamRoleArn=stories.ROLE,
        StartWindowMinutes=60,
        CompleteWindowMinutes=120,
    )["BackupJobId"]
    move_clock(site.server, advance_seconds=59 * 60)
    assert site.job(job_id)["State"] == "CREATED"  # waiting: not failed, not taken
    move_clock(site.server, advance_seconds=2 * 60)
    expired = site.job(job_id)
    assert expired["State"] == "EXPIRED", expired
    assert "start window" in expired.get("StatusMessage", ""), expired

    # the agent coming back later finds nothing to run
    log = site.start_agent("away", host=host, key=key, inside=False)
    deadline = time.monotonic() + 30
    while "connected" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(3)  # three claim polls
    assert site.job(job_id)["State"] == "EXPIRED"
    assert "connected" in log.read_text() and not _lines(log, job_id), log.read_text()
    assert site.points_of(arn) == []
