"""The one sweeper list: its documented order, one registration per name, a failing sweep
does not stop the others, the tick and the worker run the same list, and the
completion window is decided by the abort-overdue sweep at the model's boundary second."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest

from snowvault.control import catalog
from snowvault.control.model import windows
from snowvault.control.scheduler import planner, runner, sweepers
from snowvault.control.services import scheduling
from snowvault.control.services.base import Caller, Deps
from snowvault.testing import FakeClock

ORDER = [
    "expire-unstarted",
    "abort-overdue",
    "recover-leases",
    "expire-points",
    "cold",
    "cold-data",
    "prune",
    "orphan-prune",
    "compact-index",
    "store-retention",
    "kms-keys",
    "integrity",
    "idempotency-tokens",
]


def test_the_sweeps_run_in_the_order_the_module_documents() -> None:
    assert [s.name for s in sweepers.SWEEPS] == ORDER
    documented = re.findall(r"^\d+\. ``([a-z-]+)``", sweepers.__doc__ or "", re.MULTILINE)
    assert documented == ORDER


def test_a_sweep_name_is_registered_once() -> None:
    def nothing(deps: Deps, now: datetime) -> list[str]:
        return []

    with pytest.raises(ValueError, match="prune"):
        sweepers.registry(
            sweepers.Sweep("prune", nothing, "x"), sweepers.Sweep("prune", nothing, "y")
        )


def test_a_failing_sweep_is_logged_and_the_next_one_runs(
    deps: Deps, caller: Caller, caplog: pytest.LogCaptureFixture
) -> None:
    ran: list[str] = []

    def boom(deps: Deps, now: datetime) -> list[str]:
        ran.append("boom")
        raise RuntimeError("storage unreachable")

    def after(deps: Deps, now: datetime) -> list[str]:
        ran.append("after")
        return ["vault-1"]

    chain = sweepers.registry(
        sweepers.Sweep("boom", boom, "x"), sweepers.Sweep("after", after, "vault(s) done")
    )
    caplog.set_level("INFO", logger="snowvault.sweepers")
    report = sweepers.run(deps, caller.now, chain)
    assert ran == ["boom", "after"]
    assert report.failed == ["boom"] and report.done == {"after": ["vault-1"]}
    assert "sweep boom failed" in caplog.text and "sweep after: 1 vault(s) done" in caplog.text


def test_the_tick_and_the_worker_run_the_same_list(deps: Deps, caller: Caller) -> None:
    report = runner.Worker(deps).sweep_once()
    assert list(report.done) == ORDER and report.failed == []
    assert planner.tick(deps) == planner.TickResult()  # nothing planned, nothing swept


def _running_job(deps: Deps, caller: Caller, due: windows.JobDeadlines) -> str:
    job_id = "0b1e5d1e-0000-4000-8000-0000000000c1"
    row = {
        "job_id": job_id,
        "account_id": caller.account_id,
        "region": caller.region,
        "backup_vault_name": "v",
        "backup_vault_arn": f"arn:aws:backup:{caller.region}:{caller.account_id}:backup-vault:v",
        "resource_arn": "arn:aws:backup:us-east-1:111122223333:resource:d",
        "resource_type": "Directory",
        "creation_date": due.scheduled_at,
        "start_date": due.scheduled_at,
        "state": "RUNNING",
        "start_by": due.start_by,
        "expected_completion_date": due.complete_by,
    }
    with catalog.db.transaction(deps.engine) as conn:
        catalog.schedule_runs.create_jobs(conn, [row])
    return job_id


def test_the_completion_window_ends_at_its_second_as_the_model_says(
    deps: Deps, caller: Caller, clock: FakeClock
) -> None:
    due = windows.deadlines(caller.now, windows.validate_windows(60, 120))
    job_id = _running_job(deps, caller, due)
    before = due.complete_by - timedelta(seconds=1)
    assert windows.job_fate(due, before, started=True) is windows.JobFate.CONTINUE
    assert scheduling.abort_overdue(deps, before) == []
    assert windows.job_fate(due, due.complete_by, started=True) is windows.JobFate.ABORT
    assert scheduling.abort_overdue(deps, due.complete_by) == [job_id]
    with catalog.db.transaction(deps.engine) as conn:
        job = catalog.jobs.get(conn, job_id)
    assert job.state == "ABORTING"
    assert job.status_message == catalog.schedule_runs.OVERDUE_MESSAGE


def test_idempotency_tokens_are_forgotten_after_a_week(deps: Deps, caller: Caller) -> None:
    now = deps.clock.now()
    with catalog.db.transaction(deps.engine) as conn:
        catalog.idempotency.remember(
            conn, account_id="1", operation="StartBackupJob", token="t", result={"J": 1}, now=now
        )

    def stored() -> object:
        with catalog.db.read_transaction(deps.engine) as conn:
            return catalog.idempotency.lookup(
                conn, account_id="1", operation="StartBackupJob", token="t"
            )

    [sweep] = [s for s in sweepers.SWEEPS if s.name == "idempotency-tokens"]
    assert list(sweep.run(deps, now + timedelta(days=6, hours=23))) == []
    assert stored() == {"J": 1}  # a retry within the week is still answered
    assert list(sweep.run(deps, now + timedelta(days=7, seconds=1))) == [
        "1 token(s) older than 7 days"
    ]
    assert stored() is None
