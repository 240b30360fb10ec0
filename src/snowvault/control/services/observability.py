"""Is this server fit to serve, and what does it hold: the health probe and the scrape.

    checks = readiness(deps, worker_alive=worker.alive())   # [Check("catalog", True, "ok"), ...]
    snap = snapshot(deps, now)                              # job counts, vault sizes, ...

Who may ask: anyone who reaches the probe or the metrics address (they are served
without a signature, for load balancers and Prometheus). What they learn: whether the
catalog answers, the storage takes a write and the worker runs (readiness: no names,
no paths in the answer), and (metrics) counts, sizes and ages labelled with account
ids, regions, vault names and resource ARNs — no secrets, no data. Bounded: the
catalog reads are aggregates or capped (``catalog.observability``); the storage probe
writes and removes one empty file per local region.

Must not depend on the scheduler or any interface.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from snowvault.control import catalog
from snowvault.control.services import integrity
from snowvault.control.services.base import Deps

RECENT = timedelta(hours=24)
"""The window of finished jobs the duration summaries cover."""


@dataclass(frozen=True)
class Check:
    """One readiness check: its name, whether it passed, one line without secrets."""

    name: str
    ok: bool
    detail: str


def readiness(deps: Deps, *, worker_alive: bool) -> list[Check]:
    """The catalog answers, every local storage location takes a write, the worker runs."""
    return [_catalog_check(deps), *_storage_checks(deps), _worker_check(worker_alive)]


def _catalog_check(deps: Deps) -> Check:
    try:
        with catalog.db.read_transaction(deps.engine) as conn:
            catalog.observability.ping(conn)
    except Exception as exc:  # any driver error means "not ready"
        return Check("catalog", False, f"unreachable ({type(exc).__name__})")
    return Check("catalog", True, "ok")


def local_directory(location: str) -> str | None:
    """The directory of a local storage location (``/x``, ``file:///x``), else None."""
    path = location.removeprefix("file://")
    return None if "://" in path else path


def _storage_checks(deps: Deps) -> list[Check]:
    out = []
    for region, location in sorted(deps.storage.regions.items()):
        name = f"storage:{region}"
        directory = local_directory(location)
        if directory is None:
            out.append(Check(name, True, "remote store (not probed)"))
            continue
        try:
            fd, probe = tempfile.mkstemp(prefix=".snowvault-health-", dir=directory)
            try:
                os.write(fd, b"ok")
                os.fsync(fd)
            finally:
                os.close(fd)
                os.unlink(probe)
        except OSError as exc:
            out.append(Check(name, False, f"not writable ({exc.strerror or type(exc).__name__})"))
        else:
            out.append(Check(name, True, "ok"))
    return out


def _worker_check(alive: bool) -> Check:
    return Check("worker", alive, "running" if alive else "not running")


@dataclass(frozen=True)
class Snapshot:
    """What one scrape reads from the catalog, at ``now``."""

    now: datetime
    job_counts: list[catalog.observability.JobCount]
    finished_jobs: list[catalog.observability.FinishedJob]
    vault_sizes: list[catalog.observability.VaultSize]
    resources: list[catalog.observability.ResourceBackup]
    scheduler_lag_seconds: float
    notifications: dict[str, int]  # outbox messages by state
    missing_manifests: list[tuple[str, str, str, int]]  # (account, region, vault, count)
    damaged_points: list[tuple[str, str, str, int]] = field(default_factory=list)  # same
    class_sizes: list[tuple[str, str, str, str, int]] = field(default_factory=list)
    """(account, region, vault, storage class, bytes)"""
    agents: list[tuple[str, str, datetime | None, datetime]] = field(default_factory=list)
    """(account, host, last seen, enrolled)"""


def snapshot(deps: Deps, now: datetime) -> Snapshot:
    """The catalog's numbers at ``now``, in one read transaction."""
    with catalog.db.read_transaction(deps.engine) as conn:
        due = catalog.observability.earliest_due_rule(conn)
        return Snapshot(
            now=now,
            job_counts=catalog.observability.job_counts(conn),
            finished_jobs=catalog.observability.finished_jobs(conn, since=now - RECENT),
            vault_sizes=catalog.observability.vault_sizes(conn),
            resources=catalog.observability.resource_backups(conn),
            scheduler_lag_seconds=max(0.0, (now - due).total_seconds()) if due else 0.0,
            notifications=catalog.notifications.outbox_counts(conn),
            missing_manifests=catalog.observability.missing_manifests(conn),
            damaged_points=catalog.observability.points_by_message(conn, integrity.DAMAGED),
            class_sizes=catalog.observability.class_sizes(conn),
            agents=catalog.observability.agents_seen(conn),
        )


def backup_age_seconds(resource: catalog.observability.ResourceBackup, now: datetime) -> float:
    """Seconds since the resource's newest successful backup; since its registration
    when it never had one (so a resource nobody backs up also crosses the alert line)."""
    since = resource.last_success or resource.registered_at
    return max(0.0, (now - since).total_seconds())
