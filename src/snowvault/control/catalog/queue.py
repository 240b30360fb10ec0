"""The lease protocol shared by the job tables (they ARE the queue): one :class:`Queue`
per job kind, built from a :class:`QueueSpec` (the table, its columns and the kind's
state machine from :mod:`snowvault.control.model.jobs`).

A worker claims the oldest waiting job it may run, holds it by a lease it renews with
heartbeats, and ends it (complete) or hands it back (release). A job whose lease runs
out is recovered by the sweeper: retried while attempts remain, else FAILED; a job being
stopped when its worker died becomes ABORTED. No job stays RUNNING forever.

    >>> # job = catalog.jobs.QUEUE.claim(conn, worker_id="w1", labels=["host-a"],
    >>> #                                lease_seconds=60, now=clock.now())

PostgreSQL picks the candidate with ``SELECT ... FOR UPDATE SKIP LOCKED``; SQLite runs
one ``UPDATE ... WHERE id = (SELECT ... LIMIT 1) RETURNING`` inside ``BEGIN IMMEDIATE``
(writers are serialised, so the statement is atomic). Where a table allows one active
job per resource, a partial unique index enforces it; a claim that loses that race
returns None and the worker simply asks again. A job with a start window is claimable
while ``now < start_by`` (:func:`startable`): at exactly StartBy it has expired, as
:func:`snowvault.control.model.windows.job_fate` says.

Must not depend on anything above ``snowvault.control.model``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from snowvault.control.catalog.db import is_sqlite
from snowvault.control.model import jobs as job_rules

LOST_WORKER_MESSAGE = "the worker running this job stopped answering"

J = TypeVar("J")


def startable(start_by: sa.ColumnElement[Any], now: datetime) -> sa.ColumnElement[bool]:
    """SQL for "the start window is still open at ``now``" (no window: always open)."""
    return sa.or_(start_by.is_(None), start_by > now)


def start_window_closed(start_by: sa.ColumnElement[Any], now: datetime) -> sa.ColumnElement[bool]:
    """SQL for "the start window closed at or before ``now``" (the EXPIRE fate)."""
    return start_by <= now


@dataclass(frozen=True)
class QueueSpec:
    """How one job table plays the queue."""

    table: sa.Table
    id_column: str
    state_column: str
    machine: job_rules.StateMachine
    progress: frozenset[str]
    """Columns a heartbeat may write (PercentDone, BytesTransferred...)."""
    resource_column: str | None = None
    start_by_column: str | None = None

    @property
    def id(self) -> sa.Column[Any]:
        return self.table.c[self.id_column]

    @property
    def state(self) -> sa.Column[Any]:
        return self.table.c[self.state_column]


@dataclass(frozen=True)
class Recovered(Generic[J]):
    """A job whose lease ran out, as it was before recovery, and the state it was given."""

    job: J
    state: str


class Queue(Generic[J]):
    """One job table as a lease queue; rows come back as ``load(row)`` (a job record)."""

    def __init__(self, spec: QueueSpec, load: Callable[[Mapping[Any, Any]], J]) -> None:
        self.spec = spec
        self.machine = spec.machine
        self._load = load

    def _candidate(
        self, labels: Sequence[str], now: datetime, labelled_only: bool = False
    ) -> sa.Select[Any]:
        spec, t = self.spec, self.spec.table
        label: sa.ColumnElement[bool] = t.c.worker_label.is_(None)
        if labels:
            label = sa.or_(label, t.c.worker_label.in_(list(labels)))
        if labelled_only:  # an agent: its own host's jobs and nothing else
            label = t.c.worker_label.in_(list(labels))
        stmt = sa.select(spec.id).where(spec.state.in_(self.machine.waiting), label)
        if spec.start_by_column:
            stmt = stmt.where(startable(t.c[spec.start_by_column], now))
        if spec.resource_column:
            other = t.alias("other")
            busy = sa.exists().where(
                other.c[spec.resource_column] == t.c[spec.resource_column],
                other.c[spec.state_column].in_(self.machine.active),
            )
            stmt = stmt.where(~busy)
        return stmt.order_by(t.c.creation_date, spec.id).limit(1)

    def claim(
        self,
        conn: Connection,
        *,
        worker_id: str,
        labels: Sequence[str],
        lease_seconds: float,
        now: datetime,
        labelled_only: bool = False,
    ) -> J | None:
        """Claim the oldest waiting job this worker may run (RUNNING, leased to
        ``worker_id``), or None if there is none. ``labelled_only``: only jobs carrying
        one of ``labels`` (not the unlabelled ones every worker may run)."""
        spec, t = self.spec, self.spec.table
        candidate = self._candidate(labels, now, labelled_only)
        if is_sqlite(conn):
            target: Any = candidate.correlate(None).scalar_subquery()
        else:
            target = conn.execute(candidate.with_for_update(skip_locked=True)).scalar()
            if target is None:
                return None
        values = {
            spec.state_column: self.machine.running,
            "lease_owner": worker_id,
            "lease_expires_at": now + timedelta(seconds=lease_seconds),
            "heartbeat_at": now,
            "attempts": t.c.attempts + 1,
            "start_date": sa.func.coalesce(t.c.start_date, now),
        }
        stmt = (
            t.update()
            .where(spec.id == target, spec.state.in_(self.machine.waiting))
            .values(**values)
            .returning(*t.c)
        )
        try:
            with conn.begin_nested():
                row = conn.execute(stmt).first()
        except IntegrityError:
            return None  # another worker just started a job for the same resource
        if row is None or row._mapping["lease_owner"] != worker_id:
            return None
        return self._load(row._mapping)

    def _owned(self, job_id: str, worker_id: str) -> sa.ColumnElement[bool]:
        spec = self.spec
        return sa.and_(
            spec.id == job_id,
            spec.table.c.lease_owner == worker_id,
            spec.state.in_(self.machine.active),
        )

    def heartbeat(
        self,
        conn: Connection,
        *,
        job_id: str,
        worker_id: str,
        now: datetime,
        lease_seconds: float,
        progress: Mapping[str, Any] | None = None,
    ) -> str | None:
        """Renew the lease and store progress; the job's state, None if the lease is lost.

        A worker that reads back the stopping state (ABORTING) should stop and complete
        the job as ABORTED.
        """
        unknown = set(progress or {}) - self.spec.progress
        if unknown:
            raise ValueError(f"not a progress column of {self.spec.table.name}: {sorted(unknown)}")
        values = dict(
            progress or {},
            heartbeat_at=now,
            lease_expires_at=now + timedelta(seconds=lease_seconds),
        )
        stmt = (
            self.spec.table.update()
            .where(self._owned(job_id, worker_id))
            .values(**values)
            .returning(self.spec.state)
        )
        state = conn.execute(stmt).scalar()
        return None if state is None else str(state)

    def complete(
        self,
        conn: Connection,
        *,
        job_id: str,
        worker_id: str,
        now: datetime,
        state: str,
        **fields: Any,
    ) -> bool:
        """End the job in a final ``state`` (COMPLETED, FAILED, ABORTED...); False if the
        lease is lost. Raises ValueError for a state a running job cannot move to."""
        if state not in self.machine.final or not self.machine.can(self.machine.running, state):
            raise ValueError(f"not a final {self.machine.kind} job state: {state}")
        values = dict(fields, lease_owner=None, lease_expires_at=None, completion_date=now)
        values[self.spec.state_column] = state
        stmt = self.spec.table.update().where(self._owned(job_id, worker_id)).values(**values)
        return bool(conn.execute(stmt).rowcount)

    def release(
        self, conn: Connection, *, job_id: str, worker_id: str, status_message: str | None = None
    ) -> bool:
        """Hand a running job back to the queue (worker shutting down); False if not ours."""
        values = {
            self.spec.state_column: self.machine.retry,
            "lease_owner": None,
            "lease_expires_at": None,
            "status_message": status_message,
        }
        stmt = (
            self.spec.table.update()
            .where(self._owned(job_id, worker_id), self.spec.state == self.machine.running)
            .values(**values)
        )
        return bool(conn.execute(stmt).rowcount)

    def _expired(self, now: datetime) -> sa.Select[Any]:
        t = self.spec.table
        return (
            sa.select(t)
            .where(self.spec.state.in_(self.machine.active), t.c.lease_expires_at < now)
            .order_by(t.c.lease_expires_at, self.spec.id)
        )

    def find_expired_leases(self, conn: Connection, now: datetime) -> list[J]:
        """Active jobs whose lease ran out before ``now`` (their worker is presumed dead)."""
        return [self._load(r) for r in conn.execute(self._expired(now)).mappings()]

    def _recovered_state(self, state: str, attempts: int, max_attempts: int) -> str:
        if state == self.machine.stopping:
            return self.machine.aborted
        return self.machine.retry if attempts < max_attempts else self.machine.failed

    def recover_expired_leases(self, conn: Connection, now: datetime) -> list[Recovered[J]]:
        """Retry, fail or abort every job with an expired lease.

        Each update re-checks owner and expiry, so a heartbeat that lands first wins.
        """
        expired = self.spec.table.c.lease_expires_at < now
        return self._recover(conn, self._expired(now), expired, LOST_WORKER_MESSAGE, now)

    def recover_held(
        self, conn: Connection, *, worker_id: str, message: str, now: datetime
    ) -> list[Recovered[J]]:
        """Retry, fail or abort every active job leased to ``worker_id``, expired or not:
        for a worker that runs one job at a time and asks for the next, what it still
        holds is work it no longer knows of (a claim whose answer it never read, a run
        it did not finish before restarting)."""
        t = self.spec.table
        held = (
            sa.select(t)
            .where(self.spec.state.in_(self.machine.active), t.c.lease_owner == worker_id)
            .order_by(self.spec.id)
        )
        return self._recover(conn, held, sa.true(), message, now)

    def _recover(
        self,
        conn: Connection,
        rows: sa.Select[Any],
        still: sa.ColumnElement[bool],
        message: str,
        now: datetime,
    ) -> list[Recovered[J]]:
        """Each job of ``rows`` retried (attempts left), FAILED (none) or ABORTED (it was
        being stopped); an update applies only while the row still has the owner it was
        read with and ``still`` holds."""
        t, spec = self.spec.table, self.spec
        recovered = []
        for row in conn.execute(rows).mappings().all():
            new_state = self._recovered_state(
                row[spec.state_column], row["attempts"], row["max_attempts"]
            )
            values: dict[str, Any] = {
                spec.state_column: new_state,
                "lease_owner": None,
                "lease_expires_at": None,
                "status_message": message,
            }
            if new_state != self.machine.retry:
                values["completion_date"] = now
            update = (
                t.update()
                .where(
                    spec.id == row[spec.id_column],
                    t.c.lease_owner == row["lease_owner"],
                    still,
                    spec.state.in_(self.machine.active),
                )
                .values(**values)
            )
            if conn.execute(update).rowcount:
                recovered.append(Recovered(self._load(row), new_state))
        return recovered
