"""Backup and restore jobs: lists and filters, summaries, stop, and the lease queue."""

from __future__ import annotations

import dataclasses
import threading
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.engine import Connection, Engine

from helpers.catalog_db import ACCOUNT, REGION, T0, make_vault
from snowvault.control import catalog
from snowvault.control.catalog.jobs import BackupJobFilters
from snowvault.control.catalog.restore_jobs import RestoreJobFilters
from snowvault.control.model import jobs as job_rules
from snowvault.control.model import windows
from snowvault.control.model.jobs import BackupJob
from snowvault.core.errors import Conflict

jobs = catalog.jobs
Q = catalog.jobs.QUEUE
RQ = catalog.restore_jobs.QUEUE
VAULT_ARN = f"arn:aws:backup:{REGION}:{ACCOUNT}:backup-vault:main"


def _job(conn: Connection, n: int, resource: str | None = None, **fields: Any) -> BackupJob:
    if catalog.vaults.find(conn, account_id=ACCOUNT, region=REGION, name="main") is None:
        if not any(a["account_id"] == ACCOUNT for a in catalog.accounts.list_accounts(conn)):
            catalog.accounts.create_account(conn, account_id=ACCOUNT, name="main", created_at=T0)
        make_vault(conn)  # a job is only queued into a vault that exists
    created = T0 + timedelta(seconds=n)
    new = job_rules.new_backup_job(
        job_id=f"job-{n:04d}",
        account_id=ACCOUNT,
        region=REGION,
        target=job_rules.Target(
            resource_arn=resource or f"arn:res:{n}",
            resource_type="Directory",
            resource_name=None,
            worker_label=None,
            vault_name="main",
            vault_arn=VAULT_ARN,
            vault_type="BACKUP_VAULT",
            encryption_key_arn=None,
        ),
        now=created,
        deadlines=windows.JobDeadlines(
            created, start_by=T0 + timedelta(days=1), complete_by=T0 + timedelta(days=7)
        ),
        recovery_point_arn=f"arn:rp:{n}",
        iam_role_arn=None,
        lifecycle=None,
        recovery_point_tags=None,
    )
    return jobs.create(conn, dataclasses.replace(new, **fields))


def _ids(page: catalog.pagination.RecordPage[BackupJob]) -> list[str]:
    return [r.job_id for r in page.items]


def _recovered(rows: list[catalog.queue.Recovered[Any]]) -> list[tuple[str, str]]:
    return [(r.job.id, r.state) for r in rows]


def test_list_backup_jobs_filters_and_pages(conn: Connection) -> None:
    for n in range(12):
        _job(
            conn,
            n,
            resource_type="SQLite" if n % 3 == 0 else "Directory",
            parent_job_id="job-0000" if n in (4, 5) else None,
            message_category="ACCESS_DENIED" if n == 7 else None,
        )
    _job(conn, 99, account_id="444455556666")
    jobs.update(conn, "job-0002", state="COMPLETED", completion_date=T0 + timedelta(hours=1))
    jobs.update(conn, "job-0003", state="FAILED", completion_date=T0 + timedelta(hours=3))

    def ids(limit: int = 100, **f: Any) -> list[str]:
        out, token = [], None
        while True:
            page = jobs.list_jobs(
                conn,
                region=REGION,
                account_ids=[ACCOUNT],
                filters=BackupJobFilters(**f),
                limit=limit,
                token=token,
            )
            out += _ids(page)
            if (token := page.next_token) is None:
                return out

    assert ids(limit=5) == [f"job-{n:04d}" for n in reversed(range(12))]
    assert ids(state="FAILED") == ["job-0003"]
    assert ids(resource_type="SQLite") == ["job-0009", "job-0006", "job-0003", "job-0000"]
    assert ids(resource_arn="arn:res:1") == ["job-0001"]
    assert ids(parent_job_id="job-0000") == ["job-0005", "job-0004"]
    assert ids(message_category="ACCESS_DENIED") == ["job-0007"]
    assert ids(created_after=T0 + timedelta(seconds=9)) == ["job-0011", "job-0010"]
    assert ids(created_before=T0 + timedelta(seconds=1)) == ["job-0000"]
    assert ids(complete_after=T0 + timedelta(hours=2)) == ["job-0003"]
    assert ids(complete_before=T0 + timedelta(hours=2)) == ["job-0002"]
    assert ids(backup_vault_name="other") == []
    both = jobs.list_jobs(conn, region=REGION, account_ids=[ACCOUNT, "444455556666"])
    assert len(both.items) == 13


def test_summaries_count_by_state_and_type(conn: Connection) -> None:
    for n in range(6):
        _job(conn, n, resource_type="SQLite" if n < 2 else "Directory")
    _job(conn, 50, creation_date=T0 + timedelta(days=3))  # outside the period
    jobs.update(conn, "job-0001", state="COMPLETED")
    day = [(T0, T0 + timedelta(days=1))]
    got = jobs.summaries(conn, region=REGION, account_ids=[ACCOUNT], windows=day)
    counts = {(r["state"], r["resource_type"]): r["count"] for r in got}
    assert counts == {
        ("COMPLETED", "SQLite"): 1,
        ("CREATED", "SQLite"): 1,
        ("CREATED", "Directory"): 4,
    }
    only = jobs.summaries(
        conn, region=REGION, account_ids=[ACCOUNT], windows=day, state="COMPLETED"
    )
    assert [r["count"] for r in only] == [1]
    summed = jobs.summaries(
        conn, region=REGION, account_ids=[ACCOUNT], windows=day, aggregate={"state"}
    )
    counts = {(r["state"], r["resource_type"]): r["count"] for r in summed}
    assert counts == {("AGGREGATE_ALL", "SQLite"): 2, ("AGGREGATE_ALL", "Directory"): 4}
    days = [(T0 + timedelta(days=n), T0 + timedelta(days=n + 1)) for n in range(4)]
    per_day = jobs.summaries(
        conn, region=REGION, account_ids=[ACCOUNT], windows=days, aggregate=jobs.SUMMARY_DIMENSIONS
    )
    assert [(r["start_time"], r["count"]) for r in per_day] == [(T0, 6), (days[3][0], 1)]


def test_stop_waiting_running_and_finished_jobs(conn: Connection) -> None:
    _job(conn, 1)
    _job(conn, 2)
    assert jobs.stop(conn, "job-0001", now=T0).state == "ABORTED"
    claimed = Q.claim(conn, worker_id="w1", labels=[], lease_seconds=60, now=T0)
    assert claimed is not None and claimed.job_id == "job-0002"
    assert jobs.stop(conn, "job-0002", now=T0).state == "ABORTING"
    assert (
        Q.heartbeat(conn, job_id="job-0002", worker_id="w1", now=T0, lease_seconds=60) == "ABORTING"
    )
    assert Q.complete(conn, job_id="job-0002", worker_id="w1", now=T0, state="ABORTED")
    with pytest.raises(Conflict):
        jobs.stop(conn, "job-0002", now=T0)


def test_claim_order_labels_and_start_window(conn: Connection) -> None:
    _job(conn, 1, worker_label="host-b")
    _job(conn, 2, start_by=T0 - timedelta(seconds=1))  # window closed
    _job(conn, 3)
    first = Q.claim(conn, worker_id="w1", labels=["host-a"], lease_seconds=60, now=T0)
    assert first is not None and first.job_id == "job-0003"
    assert (first.state, first.lease_owner, first.attempts) == ("RUNNING", "w1", 1)
    assert first.lease_expires_at == T0 + timedelta(seconds=60) and first.start_date == T0
    assert Q.claim(conn, worker_id="w1", labels=["host-a"], lease_seconds=60, now=T0) is None
    on_b = Q.claim(conn, worker_id="w2", labels=["host-b"], lease_seconds=60, now=T0)
    assert on_b is not None and on_b.job_id == "job-0001"
    assert jobs.expire_unstarted(conn, T0) == ["job-0002"]
    assert jobs.get(conn, "job-0002").state == "EXPIRED"


@pytest.mark.parametrize("offset", [-1, 0, 1])
def test_start_window_boundary_second_is_the_models(conn: Connection, offset: int) -> None:
    """At exactly StartBy a waiting job has expired (model.windows.job_fate): the claim no
    longer hands it out and expire_unstarted takes it; one second before, the reverse."""
    job = _job(conn, 1, start_by=T0)
    now = T0 + timedelta(seconds=offset)
    fate = job_rules.fate(job, now)
    claimed = Q.claim(conn, worker_id="w", labels=[], lease_seconds=60, now=now)
    with conn.begin_nested() as undo:  # look at the expiry without keeping the claim's effect
        expired = jobs.expire_unstarted(conn, now)
        undo.rollback()
    if offset < 0:
        assert fate is windows.JobFate.WAIT
        assert claimed is not None and expired == []
    else:
        assert fate is windows.JobFate.EXPIRE
        assert claimed is None and expired == ["job-0001"]


def test_one_running_job_per_resource(conn: Connection) -> None:
    _job(conn, 1, resource="arn:res:same")
    _job(conn, 2, resource="arn:res:same")
    _job(conn, 3, resource="arn:res:other")
    got = [Q.claim(conn, worker_id=f"w{i}", labels=[], lease_seconds=60, now=T0) for i in range(3)]
    assert [g.job_id if g else None for g in got] == ["job-0001", "job-0003", None]
    assert Q.complete(
        conn, job_id="job-0001", worker_id="w0", now=T0, state="COMPLETED", percent_done=100.0
    )
    nxt = Q.claim(conn, worker_id="w9", labels=[], lease_seconds=60, now=T0)
    assert nxt is not None and nxt.job_id == "job-0002"


def test_heartbeat_complete_and_release_need_the_lease(conn: Connection) -> None:
    _job(conn, 1)
    Q.claim(conn, worker_id="w1", labels=[], lease_seconds=60, now=T0)
    assert (
        Q.heartbeat(conn, job_id="job-0001", worker_id="intruder", now=T0, lease_seconds=60) is None
    )
    later = T0 + timedelta(seconds=50)
    assert (
        Q.heartbeat(
            conn,
            job_id="job-0001",
            worker_id="w1",
            now=later,
            lease_seconds=60,
            progress={"percent_done": 40.0},
        )
        == "RUNNING"
    )
    row = jobs.get(conn, "job-0001")
    assert row.percent_done == 40.0 and row.lease_expires_at == later + timedelta(seconds=60)
    assert not Q.complete(
        conn, job_id="job-0001", worker_id="intruder", now=later, state="COMPLETED"
    )
    assert Q.release(conn, job_id="job-0001", worker_id="w1", status_message="shutting down")
    row = jobs.get(conn, "job-0001")
    assert (row.state, row.lease_owner) == ("PENDING", None)
    again = Q.claim(conn, worker_id="w2", labels=[], lease_seconds=60, now=later)
    assert again is not None and again.attempts == 2 and again.start_date == T0
    with pytest.raises(ValueError):
        Q.complete(conn, job_id="job-0001", worker_id="w2", now=later, state="RUNNING")


def test_expired_leases_are_retried_then_failed(conn: Connection) -> None:
    _job(conn, 1, max_attempts=2)
    now = T0
    for attempt, expected in [(1, "PENDING"), (2, "FAILED")]:
        claimed = Q.claim(conn, worker_id="dead", labels=[], lease_seconds=30, now=now)
        assert claimed is not None and claimed.attempts == attempt
        assert Q.find_expired_leases(conn, now + timedelta(seconds=30)) == []
        now += timedelta(seconds=31)
        assert [j.job_id for j in Q.find_expired_leases(conn, now)] == ["job-0001"]
        assert _recovered(Q.recover_expired_leases(conn, now)) == [("job-0001", expected)]
    row = jobs.get(conn, "job-0001")
    assert row.state == "FAILED" and row.completion_date == now
    assert row.status_message == catalog.queue.LOST_WORKER_MESSAGE
    assert Q.claim(conn, worker_id="w", labels=[], lease_seconds=30, now=now) is None


def test_expired_lease_of_a_stopping_job_aborts_it(conn: Connection) -> None:
    _job(conn, 1)
    Q.claim(conn, worker_id="dead", labels=[], lease_seconds=30, now=T0)
    jobs.stop(conn, "job-0001", now=T0)
    later = T0 + timedelta(minutes=5)
    assert _recovered(Q.recover_expired_leases(conn, later)) == [("job-0001", "ABORTED")]


def _claim_all(engine: Engine, worker: str, out: list[str], errors: list[BaseException]) -> None:
    try:
        while True:
            with catalog.db.transaction(engine) as c:
                job = Q.claim(c, worker_id=worker, labels=[], lease_seconds=60, now=T0)
            if job is None:
                return
            out.append(job.job_id)
    except BaseException as exc:  # surfaced by the test thread
        errors.append(exc)


def test_concurrent_claims_are_exclusive(engine: Engine) -> None:
    with catalog.db.transaction(engine) as c:
        for n in range(60):
            _job(c, n)
    claimed: list[list[str]] = [[] for _ in range(4)]
    errors: list[BaseException] = []
    threads = [
        threading.Thread(target=_claim_all, args=(engine, f"w{i}", claimed[i], errors))
        for i in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    counts = Counter(j for per_worker in claimed for j in per_worker)
    assert sorted(counts) == [f"job-{n:04d}" for n in range(60)]
    assert set(counts.values()) == {1}
    with catalog.db.transaction(engine) as c:
        owners = {
            r.job_id: r.lease_owner
            for r in jobs.list_jobs(c, region=REGION, account_ids=[ACCOUNT], limit=100).items
        }
    for i, per_worker in enumerate(claimed):
        assert all(owners[j] == f"w{i}" for j in per_worker)


def test_skip_locked_passes_over_a_job_another_transaction_holds(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("row locks are a PostgreSQL matter; SQLite serialises writers")
    with catalog.db.transaction(engine) as c:
        _job(c, 1)
        _job(c, 2)
    with catalog.db.transaction(engine) as first:
        a = Q.claim(first, worker_id="w1", labels=[], lease_seconds=60, now=T0)
        with catalog.db.transaction(engine) as second:
            b = Q.claim(second, worker_id="w2", labels=[], lease_seconds=60, now=T0)
    assert a is not None and b is not None
    assert (a.job_id, b.job_id) == ("job-0001", "job-0002")


# --- restore jobs --------------------------------------------------------------------


def _restore(conn: Connection, n: int, **fields: Any) -> job_rules.RestoreJob:
    return catalog.restore_jobs.create(
        conn,
        restore_job_id=f"rj-{n:04d}",
        account_id=ACCOUNT,
        region=REGION,
        recovery_point_arn=f"arn:rp:{n}",
        creation_date=T0 + timedelta(seconds=n),
        source_resource_arn=fields.pop("source_resource_arn", "arn:res:1"),
        resource_type="Directory",
        recovery_point_creation_date=T0 - timedelta(days=n),
        **fields,
    )


def test_restore_jobs_list_and_queue(conn: Connection) -> None:
    rj = catalog.restore_jobs
    for n in range(5):
        _restore(conn, n, source_resource_arn="arn:res:2" if n == 4 else "arn:res:1")
    page = rj.list_jobs(conn, region=REGION, account_ids=[ACCOUNT], limit=2)
    rest = rj.list_jobs(conn, region=REGION, account_ids=[ACCOUNT], limit=10, token=page.next_token)
    ids = [r.restore_job_id for r in page.items + rest.items]
    assert ids == ["rj-0004", "rj-0003", "rj-0002", "rj-0001", "rj-0000"]
    by_res = rj.list_by_protected_resource(
        conn,
        account_id=ACCOUNT,
        resource_arn="arn:res:1",
        filters=RestoreJobFilters(recovery_point_created_after=T0 - timedelta(days=2)),
    )
    assert [r.restore_job_id for r in by_res.items] == ["rj-0001", "rj-0000"]
    job = RQ.claim(conn, worker_id="w1", labels=[], lease_seconds=60, now=T0)
    assert job is not None and job.restore_job_id == "rj-0000"
    assert (
        RQ.heartbeat(
            conn,
            job_id="rj-0000",
            worker_id="w1",
            now=T0,
            lease_seconds=60,
            progress={"percent_done": 10.0},
        )
        == "RUNNING"
    )
    assert RQ.complete(
        conn,
        job_id="rj-0000",
        worker_id="w1",
        now=T0,
        state="COMPLETED",
        created_resource_arn="arn:new",
    )
    running = rj.list_jobs(
        conn, region=REGION, account_ids=[ACCOUNT], filters=RestoreJobFilters(status="COMPLETED")
    )
    assert [r.created_resource_arn for r in running.items] == ["arn:new"]
    RQ.claim(conn, worker_id="dead", labels=[], lease_seconds=10, now=T0)
    recovered = RQ.recover_expired_leases(conn, T0 + timedelta(seconds=11))
    assert _recovered(recovered) == [("rj-0001", "PENDING")]
