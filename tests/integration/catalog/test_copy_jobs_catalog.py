"""Copy jobs in the catalog (SQLite and PostgreSQL): every ListCopyJobs filter, pages,
summaries, and the lease queue (claim, heartbeat, complete, lost worker retried then
failed, a finished state a running copy cannot reach refused)."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.engine import Connection

from helpers.catalog_db import ACCOUNT, REGION, T0
from snowvault.control import catalog
from snowvault.control.catalog.copy_jobs import CopyJobFilters
from snowvault.control.model import jobs as job_rules

cj = catalog.copy_jobs
Q = cj.QUEUE
SOURCE_VAULT = f"arn:aws:backup:{REGION}:{ACCOUNT}:backup-vault:main"
DEST = "arn:aws:backup:eu-west-1:{}:backup-vault:dr"


def _point(n: int) -> job_rules.RecoveryPoint:
    return job_rules.RecoveryPoint(
        **{f.name: None for f in dataclasses.fields(job_rules.RecoveryPoint)}
        | {
            "arn": f"arn:aws:backup:{REGION}:{ACCOUNT}:recovery-point:rp-{n}",
            "account_id": ACCOUNT,
            "region": REGION,
            "backup_vault_name": "main",
            "backup_vault_arn": SOURCE_VAULT,
            "resource_arn": f"arn:res:{n % 2}",
            "resource_type": "Directory" if n % 3 else "SQLite",
            "status": job_rules.RecoveryPointStatus.COMPLETED,
            "storage_class": "WARM",
            "creation_date": T0,
            "backup_size_in_bytes": 100 * n,
            "is_encrypted": True,
            "is_parent": False,
        }
    )


def _job(conn: Connection, n: int, account: str = ACCOUNT, **fields: Any) -> job_rules.CopyJob:
    new = job_rules.new_copy_job(
        job_id=f"cj-{n:04d}",
        source=job_rules.CopySource(_point(n), DEST.format(account), None, None),
        now=T0 + timedelta(seconds=n),
        destination_recovery_point_arn=f"arn:aws:backup:eu-west-1:{account}:recovery-point:{n}",
        iam_role_arn=None,
        lifecycle={"DeleteAfterDays": 7} if n == 1 else None,
    )
    return cj.create(conn, dataclasses.replace(new, **fields))


def _ids(filters: CopyJobFilters, conn: Connection) -> list[str]:
    page = cj.list_jobs(conn, region=REGION, account_ids=[ACCOUNT], filters=filters)
    return [j.copy_job_id for j in page.items]


def test_every_list_copy_jobs_filter_and_pages(conn: Connection) -> None:
    late = T0 + timedelta(hours=1)
    for n in range(6):
        done = n in (2, 3)
        _job(
            conn,
            n,
            account="444455556666" if n == 5 else ACCOUNT,
            state="COMPLETED" if done else "CREATED",
            completion_date=late + timedelta(seconds=n) if done else None,
            message_category="SUCCESS" if done else None,
            parent_job_id="cj-0000" if n == 4 else None,
        )
    assert _job(conn, 9).destination_recovery_point_lifecycle is None
    assert cj.get(conn, "cj-0001").destination_recovery_point_lifecycle == {"DeleteAfterDays": 7}
    everything = ["cj-0009", "cj-0005", "cj-0004", "cj-0003", "cj-0002", "cj-0001", "cj-0000"]
    assert _ids(CopyJobFilters(), conn) == everything
    cases: list[tuple[CopyJobFilters, list[str]]] = [
        (CopyJobFilters(resource_arn="arn:res:0"), ["cj-0004", "cj-0002", "cj-0000"]),
        (CopyJobFilters(state="COMPLETED"), ["cj-0003", "cj-0002"]),
        (CopyJobFilters(created_before=T0 + timedelta(seconds=2)), ["cj-0001", "cj-0000"]),
        (CopyJobFilters(created_after=T0 + timedelta(seconds=4)), ["cj-0009", "cj-0005"]),
        (CopyJobFilters(resource_type="SQLite"), ["cj-0009", "cj-0003", "cj-0000"]),
        (CopyJobFilters(destination_vault_arn=DEST.format("444455556666")), ["cj-0005"]),
        (CopyJobFilters(complete_before=late + timedelta(seconds=3)), ["cj-0002"]),
        (CopyJobFilters(complete_after=late + timedelta(seconds=2)), ["cj-0003"]),
        (CopyJobFilters(parent_job_id="cj-0000"), ["cj-0004"]),
        (CopyJobFilters(message_category="SUCCESS"), ["cj-0003", "cj-0002"]),
        (CopyJobFilters(source_recovery_point_arn=_point(1).arn), ["cj-0001"]),
    ]
    for filters, expected in cases:
        assert _ids(filters, conn) == expected, filters
    other = cj.list_jobs(conn, region=REGION, account_ids=["999999999999"])
    assert other.items == []
    page = cj.list_jobs(conn, region=REGION, account_ids=[ACCOUNT], limit=3)
    rest = cj.list_jobs(conn, region=REGION, account_ids=[ACCOUNT], token=page.next_token)
    assert [j.copy_job_id for j in page.items + rest.items] == everything
    assert [u.job_id for u in cj.using_vault(conn, DEST.format(ACCOUNT), limit=9)] == [
        "cj-0000",
        "cj-0001",
        "cj-0004",
        "cj-0009",
    ]


def test_summaries_count_per_state_and_aggregate(conn: Connection) -> None:
    for n in range(4):
        _job(conn, n, state="FAILED" if n == 3 else "COMPLETED")
    window = [(T0, T0 + timedelta(days=1))]
    rows = cj.summaries(conn, region=REGION, account_ids=[ACCOUNT], windows=window)
    by_state: dict[str, int] = {}
    for row in rows:
        by_state[row["state"]] = by_state.get(row["state"], 0) + row["count"]
    assert by_state == {"COMPLETED": 3, "FAILED": 1}
    summed = cj.summaries(
        conn,
        region=REGION,
        account_ids=[ACCOUNT],
        windows=window,
        aggregate={"state", "resource_type"},
    )
    assert [(r["state"], r["count"]) for r in summed] == [("AGGREGATE_ALL", 4)]


def _claim(conn: Connection, worker: str, now: datetime) -> job_rules.CopyJob | None:
    return Q.claim(conn, worker_id=worker, labels=[], lease_seconds=10, now=now)


def test_the_copy_queue_claims_completes_and_recovers(conn: Connection) -> None:
    for n in range(2):
        _job(conn, n)
    job = _claim(conn, "w1", T0)
    assert job is not None and (job.copy_job_id, job.state, job.attempts) == (
        "cj-0000",
        "RUNNING",
        1,
    )
    progress = {"percent_done": 50.0, "bytes_transferred": 10}
    beat = Q.heartbeat(
        conn, job_id="cj-0000", worker_id="w1", now=T0, lease_seconds=10, progress=progress
    )
    assert beat == "RUNNING"
    with pytest.raises(ValueError, match="not a final copy job state"):
        Q.complete(conn, job_id="cj-0000", worker_id="w1", now=T0, state="CREATED")
    assert not Q.complete(conn, job_id="cj-0000", worker_id="w2", now=T0, state="COMPLETED")
    assert Q.complete(conn, job_id="cj-0000", worker_id="w1", now=T0, state="COMPLETED")
    assert cj.get(conn, "cj-0000").bytes_transferred == 10

    when = T0
    for attempt in range(1, 4):  # a worker that dies each time: retried, then FAILED
        claimed = _claim(conn, f"dead-{attempt}", when)
        assert claimed is not None and claimed.attempts == attempt
        when += timedelta(seconds=11)
        recovered = Q.recover_expired_leases(conn, when)
        expected = "CREATED" if attempt < 3 else "FAILED"
        assert [(r.job.id, r.state) for r in recovered] == [("cj-0001", expected)]
    final = cj.get(conn, "cj-0001")
    assert final.state == "FAILED" and final.status_message == catalog.queue.LOST_WORKER_MESSAGE
    assert _claim(conn, "w3", when) is None
