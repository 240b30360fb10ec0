"""Scale-out (issue 13): N `snowvault server` processes on one PostgreSQL catalog and one
S3 vault store (moto), behind one endpoint (a round-robin TCP proxy), agents as
processes. What must hold across servers: the scheduler creates each (rule, occurrence,
resource) job once, a job runs under one lease at a time, and a server killed at any
moment loses nothing (docs/operations/scale-out.md).

The servers run on the wall clock (one clock for the fleet), so a scheduled run is a
daily rule whose time is the next whole minute at least 10 s away: a test waits up to
~70 s for it. Three tests share one module fleet (each on a vault of its own); the scale
test, first in the file, starts a fleet of its own. `make test` runs a file on one xdist
worker (--dist loadfile), so the shared fleet is started once.
"""

from __future__ import annotations

import os
import random
import re
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from helpers.fleet import Fleet, wait_until
from snowvault.control import catalog
from snowvault.control.services import vaults
from snowvault.engine import check

ROLE = "arn:aws:iam::123456789012:role/backup"
VAULT = "fleet"
PLAN_MARGIN = timedelta(seconds=10)
"""From choosing the minute to the plan's selection in the catalog: two calls."""
FINAL = {"COMPLETED", "FAILED", "ABORTED", "EXPIRED", "PARTIAL"}


def _cron_next_minute(now: datetime) -> tuple[str, datetime]:
    """A daily rule firing at the next whole minute at least :data:`PLAN_MARGIN` away."""
    at = (now + PLAN_MARGIN + timedelta(seconds=59)).replace(second=0, microsecond=0)
    return f"cron({at.minute} {at.hour} * * ? *)", at


def _plan(fleet: Fleet, tag: str, vault: str = VAULT) -> tuple[str, datetime]:
    """A plan whose one rule runs at the next whole minute, selecting tag fleet=``tag``."""
    backup = fleet.front.client()
    expression, at = _cron_next_minute(datetime.now(UTC))
    plan = backup.create_backup_plan(
        BackupPlan={
            "BackupPlanName": f"fleet-{tag}",
            "Rules": [
                {
                    "RuleName": "daily",
                    "TargetBackupVaultName": vault,
                    "ScheduleExpression": expression,
                    "StartWindowMinutes": 60,
                    "CompletionWindowMinutes": 180,
                }
            ],
        }
    )
    backup.create_backup_selection(
        BackupPlanId=plan["BackupPlanId"],
        BackupSelection={
            "SelectionName": "tagged",
            "IamRoleArn": ROLE,
            "ListOfTags": [
                {"ConditionType": "STRINGEQUALS", "ConditionKey": "fleet", "ConditionValue": tag}
            ],
        },
    )
    late = datetime.now(UTC)
    assert late < at, f"the plan was made at {late}, after its occurrence {at} (overloaded?)"
    return str(plan["BackupPlanId"]), at


def _sources(root: Path, count: int, seed: int) -> list[Path]:
    rng = random.Random(seed)
    out = []
    for n in range(count):
        source = root / f"res{n:04d}"
        (source / "sub").mkdir(parents=True)
        (source / "a.txt").write_text(f"resource {n}\n")
        (source / "sub" / "b.bin").write_bytes(rng.randbytes(rng.randint(1, 4096)))
        out.append(source)
    return out


def _register(fleet: Fleet, sources: list[Path], tag: str, host: str | None = None) -> list[str]:
    arns = []
    for source in sources:
        body: dict[str, Any] = {
            "ResourceType": "Directory",
            "Name": f"{tag}-{source.name}",  # tags differ where a fleet is shared
            "Source": str(source),
            "Tags": {"fleet": tag},
        }
        if host is not None:
            body["WorkerLabel"] = f"agent:{host}"
        arns.append(fleet.front.ext("RegisterResource", body)["ResourceArn"])
    return arns


def _jobs(fleet: Fleet, vault: str = VAULT) -> list[dict[str, Any]]:
    backup = fleet.front.client()
    out: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"ByBackupVaultName": vault, "MaxResults": 1000}
    while True:
        try:
            page = backup.list_backup_jobs(**kwargs)
        except ClientError:  # a server killed mid-call: ask again
            time.sleep(0.5)
            continue
        out += page["BackupJobs"]
        if not page.get("NextToken"):
            return out
        kwargs["NextToken"] = page["NextToken"]


def _settled(fleet: Fleet, expected: int, vault: str = VAULT) -> list[dict[str, Any]] | None:
    jobs = _jobs(fleet, vault)
    if len(jobs) >= expected and all(j["State"] in FINAL for j in jobs):
        return jobs
    return None


def _created_per_server(fleet: Fleet) -> int:
    """Jobs the scheduler logged as created, summed over every server and run."""
    pattern = re.compile(r"tick \S+: (\d+) jobs created")
    return sum(int(m) for text in fleet.logs() for m in pattern.findall(text))


def _check_vault(fleet: Fleet, completed: list[dict[str, Any]], name: str = VAULT) -> None:
    """The vault passes check --read-data, and the catalog's points are exactly the
    completed jobs' (one each) and exactly the manifests in the store."""
    with fleet.inspect() as app, catalog.db.read_transaction(app.deps.engine) as conn:
        vault = catalog.vaults.find(
            conn, account_id=fleet.front.creds["account_id"], region="us-east-1", name=name
        )
        assert vault is not None
        points = catalog.recovery_points.list_by_vault(conn, vault_arn=vault["arn"], limit=1000)
    assert points.next_token is None
    by_job = Counter(p.source_job_id for p in points.items)
    assert sorted(map(str, by_job)) == sorted(j["BackupJobId"] for j in completed)
    assert set(by_job.values()) == {1}, "a job made two recovery points"
    with fleet.inspect() as app, vaults.open_repository(app.deps, vault) as repo:
        report = check.check(repo, read_data=True)
        assert report.problems == []
        manifests = set(repo.list_manifests())
    assert {p.engine_recovery_point_id for p in points.items} <= manifests


SCALE_RESOURCES = int(os.environ.get("SNOWVAULT_SCALE_RESOURCES", "24"))
"""The issue's scale test is 1,000 (``SNOWVAULT_SCALE_RESOURCES=1000``: about 11 minutes
here, 120 jobs/min); `make test` runs 24, because 1,000 takes longer than the 5 minutes
a test may (measured times and where they go: docs/operations/scale-out.md)."""
SCALE_AGENTS = 4


def _register_parallel(fleet: Fleet, sources: list[Path], hosts: list[str]) -> list[str]:
    """Resource n on host n % len(hosts), four callers at once (through the proxy)."""
    chunks = [sources[n :: len(hosts)] for n in range(len(hosts))]
    with ThreadPoolExecutor(len(hosts)) as pool:
        done = pool.map(lambda n: _register(fleet, chunks[n], "scale", hosts[n]), range(len(hosts)))
        return [arn for chunk in done for arn in chunk]


@pytest.mark.timeout(600 + 20 * SCALE_RESOURCES)  # bounds, not targets (loaded machines)
def test_scale_three_servers_four_agents_many_resources(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """The issue's scale test: 3 servers + 4 agents on PostgreSQL + S3, SCALE_RESOURCES
    small directories on the agents' hosts selected by one plan's tag, one scheduled run
    with one server killed in the middle: exactly one job per resource, all COMPLETED.
    Agents talk round robin to every server; their blobs are small (no multi-part
    uploads, the one thing a server keeps in memory across an agent's calls)."""
    with Fleet.start(
        tmp_path_factory, servers=3, lease_seconds=15, sweep_seconds=1, poll_seconds=0.5
    ) as fleet:
        began = time.monotonic()
        fleet.front.client().create_backup_vault(BackupVaultName=VAULT)
        hosts = [f"host-{n}" for n in range(SCALE_AGENTS)]
        sources = _sources(fleet.tmp / "hosts", SCALE_RESOURCES, seed=1000)
        arns = _register_parallel(fleet, sources, hosts)
        registered = time.monotonic()
        _plan_id, at = _plan(fleet, "scale")
        for host in hosts:  # they start while the occurrence is awaited
            fleet.agent(host, allow=fleet.tmp / "hosts", lease_seconds=15)
        wait_until(lambda: datetime.now(UTC) >= at, 120, "the occurrence")
        fired = time.monotonic()
        wait_until(
            lambda: sum(j["State"] == "COMPLETED" for j in _jobs(fleet)) >= SCALE_RESOURCES // 3,
            120 + 6 * SCALE_RESOURCES,
            "a third of the jobs",
            every=2,
        )
        fleet.kill(1)  # in the middle of the run, for good
        jobs = wait_until(
            lambda: _settled(fleet, SCALE_RESOURCES), 240 + 15 * SCALE_RESOURCES, "the run", every=3
        )
        finished = time.monotonic()
        assert len(jobs) == SCALE_RESOURCES
        assert sorted(j["ResourceArn"] for j in jobs) == sorted(arns)  # one job each
        states = Counter(j["State"] for j in jobs)
        assert states == {"COMPLETED": SCALE_RESOURCES}, (states, _messages(jobs))
        assert _created_per_server(fleet) == SCALE_RESOURCES
        _check_vault(fleet, jobs)
        print(
            f"\nscale: register {registered - began:.0f} s, run {finished - fired:.0f} s "
            f"({SCALE_RESOURCES / (finished - fired) * 60:.0f} jobs/min), "
            f"check {time.monotonic() - finished:.0f} s, replayed {fleet.proxy.replayed}"
        )


def _messages(jobs: list[dict[str, Any]]) -> Counter[str]:
    return Counter(str(j.get("StatusMessage")) for j in jobs if j["State"] != "COMPLETED")


SHARED = pytest.mark.xdist_group("scale-out-fleet")
"""The tests on the module's :func:`fleet`: one worker, so one fleet is started (under
--dist loadgroup; pytest 9.2 makes xdist ignore the mark, xdist #1386, so `make test`
uses --dist loadfile, which keeps the whole file on one worker)."""


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    """Three servers, shared by the module's tests marked :data:`SHARED` (a fleet takes
    ~15 s to start and stop); each test works in a vault of its own and asserts on it."""
    with Fleet.start(
        tmp_path_factory, servers=3, lease_seconds=8, sweep_seconds=1, poll_seconds=0.2
    ) as fleet:
        yield fleet


@SHARED
def test_three_servers_create_each_scheduled_job_once(fleet: Fleet) -> None:
    """One plan, one scheduled run, three schedulers and three workers on one catalog:
    every selected resource gets exactly one job, each ends COMPLETED with one point,
    in S3 through whichever server ran it; the schedulers' own counts add up to it."""
    vault = "fleet-once"
    fleet.front.client().create_backup_vault(BackupVaultName=vault)
    created_before = _created_per_server(fleet)  # the fleet's other tests schedule nothing
    errors_before = fleet.server_errors()
    sources = _sources(fleet.tmp / "data-once", 24, seed=13)
    arns = _register(fleet, sources, "once")
    plan_id, at = _plan(fleet, "once", vault)
    jobs = wait_until(lambda: _settled(fleet, len(arns), vault), 240, "the scheduled run to finish")
    time.sleep(3)  # every scheduler ticks again past the occurrence: still no new job
    jobs = _jobs(fleet, vault)
    assert len(jobs) == len(arns)
    assert sorted(j["ResourceArn"] for j in jobs) == sorted(arns)
    assert {j["State"] for j in jobs} == {"COMPLETED"}, [j.get("StatusMessage") for j in jobs]
    assert {j["CreatedBy"]["BackupPlanId"] for j in jobs} == {plan_id}
    assert {j["CreationDate"] >= at for j in jobs} == {True}
    assert _created_per_server(fleet) - created_before == len(arns)
    ids = {j["BackupJobId"] for j in jobs}
    ran = Counter(
        m
        for text in fleet.logs()
        for m in re.findall(r"backup job (\S+) ended COMPLETED", text)
        if m in ids
    )
    assert sorted(ran) == sorted(ids)
    assert set(ran.values()) == {1}, "a job ran to its end twice"
    _check_vault(fleet, jobs, vault)
    assert fleet.server_errors() == errors_before


@SHARED
def test_sigv4_through_the_one_endpoint(fleet: Fleet) -> None:
    """Clients sign for the proxy's host; every server checks that signature and
    answers the same catalog, whichever one the connection lands on."""
    before = Counter(fleet.proxy.per_backend)
    for n in range(6):  # a new client, a new connection: round robin over the servers
        backup = fleet.front.client()
        backup.create_backup_vault(BackupVaultName=f"sig{n}")
        names = {v["BackupVaultName"] for v in backup.list_backup_vaults()["BackupVaultList"]}
        assert {f"sig{k}" for k in range(n + 1)} <= names
    given = fleet.proxy.per_backend - before
    assert sorted(given) == sorted(s.port for s in fleet.servers)  # each server answered
    forged = fleet.front.client(secret="not-the-secret")
    with pytest.raises(ClientError) as refused:
        forged.list_backup_vaults()
    assert refused.value.response["Error"]["Code"] in (
        "InvalidSignatureException",
        "SignatureDoesNotMatch",
        "UnrecognizedClientException",
    )
    direct = fleet.servers[1]  # its own address works as well (another Host header)
    seen = {v["BackupVaultName"] for v in direct.client().list_backup_vaults()["BackupVaultList"]}
    listed = fleet.front.client().list_backup_vaults()["BackupVaultList"]
    front = {v["BackupVaultName"] for v in listed}
    assert seen == front and {f"sig{k}" for k in range(6)} | {"Default"} <= seen


@SHARED
def test_servers_killed_at_random_points_lose_no_job(fleet: Fleet) -> None:
    """Backups started through the one endpoint while servers are SIGKILLed and started
    again at random points (fixed seed): every job ends COMPLETED or FAILED (a lost
    lease is retried by another server, never RUNNING forever), no job made two points,
    and the vault passes check --read-data."""
    rng = random.Random(1313)
    vault = "fleet-kill"
    fleet.front.client().create_backup_vault(BackupVaultName=vault)
    sources = _sources(fleet.tmp / "data-kill", 8, seed=7)
    for source in sources:  # a few MiB each, so that kills land inside backups
        (source / "big.bin").write_bytes(rng.randbytes(3 << 20))
    arns = _register(fleet, sources, "kill")
    backup = fleet.front.client()
    started = 0
    for _round in range(4):
        for arn in arns:
            while True:
                try:
                    backup.start_backup_job(BackupVaultName=vault, ResourceArn=arn, IamRoleArn=ROLE)
                    break
                except ClientError:  # every server but one may be down for a moment
                    time.sleep(0.2)
            started += 1
        victim = rng.randrange(len(fleet.servers))
        time.sleep(rng.uniform(0.2, 2.0))
        fleet.kill(victim)
        time.sleep(rng.uniform(0.5, 3.0))
        fleet.restart(victim)
    jobs = wait_until(lambda: _settled(fleet, started, vault), 240, "every job to end")
    assert len(jobs) == started
    states = Counter(j["State"] for j in jobs)
    assert set(states) <= {"COMPLETED", "FAILED"}, states
    assert states["COMPLETED"] >= started // 2, states
    failed = {j.get("StatusMessage") for j in jobs if j["State"] == "FAILED"}
    assert failed <= {"the worker running this job stopped answering"}, failed
    _check_vault(fleet, [j for j in jobs if j["State"] == "COMPLETED"], vault)
