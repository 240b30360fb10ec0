"""The scheduler's bulk writes on each catalog kind: the run ledger claims each triple
once, and jobs written by the bulk path read back exactly as written (JSON, timestamps,
NULLs, shared documents)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy.engine import Connection

from helpers.catalog_db import ACCOUNT, REGION, T0, make_vault
from snowvault.control import catalog

RULE = "rule-0001"


def _runs(n: int, job_prefix: str) -> list[dict[str, Any]]:
    return [
        {
            "rule_id": RULE,
            "scheduled_at": T0,
            "resource_arn": f"arn:res:{i}",
            "job_id": f"{job_prefix}-{i:04d}",
            "created_at": T0 + timedelta(minutes=1),
        }
        for i in range(n)
    ]


def test_claim_runs_hands_out_each_triple_once(conn: Connection) -> None:
    first = catalog.schedule_runs.claim_runs(conn, _runs(3, "a"))
    again = catalog.schedule_runs.claim_runs(conn, _runs(5, "b"))
    assert [r["job_id"] for r in first] == ["a-0000", "a-0001", "a-0002"]
    assert [r["job_id"] for r in again] == ["b-0003", "b-0004"]
    ledger = catalog.schedule_runs.runs_for_rule(conn, RULE)
    assert [r["job_id"] for r in ledger] == ["a-0000", "a-0001", "a-0002", "b-0003", "b-0004"]
    assert ledger[0]["scheduled_at"] == T0


def _job(i: int, vault: dict[str, Any], shared: dict[str, Any]) -> dict[str, Any]:
    return {
        "job_id": f"job-{i}",
        "account_id": ACCOUNT,
        "region": REGION,
        "backup_vault_name": "main",
        "backup_vault_arn": vault["arn"],
        "resource_arn": f"arn:res:{i}",
        "resource_type": "Directory",
        "state": "CREATED",
        "status_message": None if i else "first",
        "creation_date": T0,
        "start_by": T0 + timedelta(hours=8 + i),
        "created_by": shared,
        "lifecycle": {"DeleteAfterDays": 35 + i},
        "recovery_point_tags": {},
        "percent_done": 0.0,
    }


def test_create_jobs_bulk_reads_back_as_written(conn: Connection) -> None:
    vault = make_vault(conn)
    shared = {"BackupPlanId": "p1", "BackupRuleId": RULE}
    catalog.schedule_runs.create_jobs(conn, [_job(i, vault, shared) for i in range(3)])
    rows = [catalog.jobs.get(conn, f"job-{i}") for i in range(3)]
    assert [r.start_by for r in rows] == [T0 + timedelta(hours=8 + i) for i in range(3)]
    assert [r.lifecycle for r in rows] == [{"DeleteAfterDays": 35 + i} for i in range(3)]
    assert all(r.created_by == shared and r.creation_date == T0 for r in rows)
    assert [r.status_message for r in rows] == ["first", None, None]
    assert rows[1].recovery_point_tags == {} and rows[2].percent_done == 0.0
