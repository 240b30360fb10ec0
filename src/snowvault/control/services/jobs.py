"""Job kinds: what a worker needs to run one kind of job, the same for every kind.

A kind registers ONE :class:`JobKind` in :mod:`snowvault.control.services.job_kinds`:

- ``queue``: its table as a lease queue (``catalog.<kind>_jobs.QUEUE``), which carries
  the kind's state machine (:mod:`snowvault.control.model.jobs`) and the progress
  columns a heartbeat may write;
- ``run``: ``(deps, job, worker_id, control) -> final state``: does the work, reports
  progress through ``control.report(...)``, records the result and completes the job;
- ``end``: ``(deps, job, worker_id, state, *, status_message) -> state``: ends a job that
  made nothing (stopped, failed, crashed);
- ``on_lost`` (optional): ``(conn, jobs, now)``, in the transaction that recovered jobs
  whose worker died (backup jobs mark their vault for the orphan prune).

The worker path is runner -> JobKind -> Queue: :meth:`JobKind.claim`,
:meth:`JobKind.heartbeat`, :meth:`JobKind.execute` (``run``, with every error mapped to
``end``: a stop request ABORTED, a known error FAILED with its message, anything else
FAILED as an internal error) and :meth:`JobKind.recover` for the sweeper.

Must not depend on the scheduler, the composition root or any interface.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy.engine import Connection

from snowvault.control import catalog
from snowvault.control.model import agent_hosts
from snowvault.control.model import jobs as job_rules
from snowvault.control.services import notifications
from snowvault.control.services.base import Deps, JobControl
from snowvault.control.services.errors import JobStopped
from snowvault.core.errors import SnowvaultError

log = logging.getLogger("snowvault.jobs")

J = TypeVar("J", job_rules.BackupJob, job_rules.RestoreJob, job_rules.CopyJob)


@dataclass(frozen=True)
class JobKind(Generic[J]):
    """One kind of job as the worker runs it."""

    name: job_rules.Kind
    queue: catalog.queue.Queue[J]
    run: Callable[[Deps, J, str, JobControl], str]
    end: Callable[..., str]
    on_lost: Callable[[Connection, Sequence[J], datetime], None] | None = None

    @property
    def stopping(self) -> str | None:
        """The state a heartbeat reads when a stop was asked (None: cannot be stopped)."""
        return self.queue.machine.stopping

    def claim(
        self, deps: Deps, worker_id: str, labels: Sequence[str], lease_seconds: float
    ) -> J | None:
        # an agent's jobs (label agent:HOST) run on that host only, never in the server
        labels = [label for label in labels if not agent_hosts.is_agent_label(label)]
        with catalog.db.transaction(deps.engine) as conn:
            job = self.queue.claim(
                conn,
                worker_id=worker_id,
                labels=labels,
                lease_seconds=lease_seconds,
                now=deps.clock.now(),
            )
        if job is not None:
            self.notify(deps, job.id)
        return job

    def notify(self, deps: Deps, job_id: str, *, final_only: bool = False) -> None:
        """The vault events of the job's current state (the one place every kind's state
        changes pass: claim, execute, recover); never raises, never waits on the network."""
        notifications.job_changed(deps, self.name, self.queue.spec, job_id, final_only=final_only)

    def heartbeat(
        self,
        deps: Deps,
        job_id: str,
        worker_id: str,
        lease_seconds: float,
        progress: Mapping[str, Any],
    ) -> str | None:
        """Renew the lease, store progress; the job's state, None if the lease was lost."""
        with catalog.db.transaction(deps.engine) as conn:
            return self.queue.heartbeat(
                conn,
                job_id=job_id,
                worker_id=worker_id,
                now=deps.clock.now(),
                lease_seconds=lease_seconds,
                progress=progress,
            )

    def execute(self, deps: Deps, job: J, worker_id: str, control: JobControl) -> str:
        """Run a claimed job to its end; the final state it was given."""
        try:
            return self._execute(deps, job, worker_id, control)
        finally:
            self.notify(deps, job.id, final_only=True)

    def _execute(self, deps: Deps, job: J, worker_id: str, control: JobControl) -> str:
        machine = self.queue.machine
        try:
            return self.run(deps, job, worker_id, control)
        except JobStopped as exc:
            return self.end(deps, job, worker_id, machine.aborted, status_message=str(exc))
        except (SnowvaultError, OSError) as exc:
            return self.end(deps, job, worker_id, machine.failed, status_message=str(exc))
        except Exception as exc:
            log.exception("%s job %s failed", self.name, job.id)
            message = f"internal error: {exc}"
            return self.end(deps, job, worker_id, machine.failed, status_message=message)

    def recover(self, deps: Deps, now: datetime) -> list[catalog.queue.Recovered[J]]:
        """Jobs whose worker stopped heartbeating: retried, FAILED or ABORTED."""
        return self._recovered(deps, now, lambda conn: self.queue.recover_expired_leases(conn, now))

    def recover_held(
        self, deps: Deps, worker_id: str, message: str
    ) -> list[catalog.queue.Recovered[J]]:
        """Jobs still leased to ``worker_id``, which asks for new work and so runs none of
        them (an agent): retried, FAILED or ABORTED at once rather than when their lease
        runs out, with ``message`` as their status."""
        now = deps.clock.now()
        return self._recovered(
            deps,
            now,
            lambda conn: self.queue.recover_held(
                conn, worker_id=worker_id, message=message, now=now
            ),
        )

    def _recovered(
        self,
        deps: Deps,
        now: datetime,
        recover: Callable[[Connection], list[catalog.queue.Recovered[J]]],
    ) -> list[catalog.queue.Recovered[J]]:
        with catalog.db.transaction(deps.engine) as conn:
            recovered = recover(conn)
            if recovered and self.on_lost is not None:
                self.on_lost(conn, [r.job for r in recovered], now)
        for r in recovered:
            self.notify(deps, r.job.id, final_only=True)
        return recovered


class JobKinds:
    """The registry: every job kind, in claim order; a kind registered twice is an error."""

    def __init__(self, kinds: Iterable[JobKind[Any]]) -> None:
        self._kinds: dict[job_rules.Kind, JobKind[Any]] = {}
        for kind in kinds:
            if kind.name in self._kinds:
                raise ValueError(f"job kind {kind.name!r} registered twice")
            self._kinds[kind.name] = kind

    def __iter__(self) -> Iterator[JobKind[Any]]:
        return iter(self._kinds.values())

    def __len__(self) -> int:
        return len(self._kinds)

    def get(self, name: job_rules.Kind | str) -> JobKind[Any]:
        return self._kinds[job_rules.Kind(name)]

    def recover(self, deps: Deps, now: datetime) -> list[catalog.queue.Recovered[Any]]:
        """Lease recovery over every kind (the sweeper's step)."""
        return [r for kind in self for r in kind.recover(deps, now)]
