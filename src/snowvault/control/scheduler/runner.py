"""The in-process worker: claim jobs by lease, heartbeat, run them.

    worker = Worker(deps, WorkerOptions(lease_seconds=60))
    worker.start()          # threads: `threads` job runners
    ...
    worker.stop()           # running jobs are handed back to the queue

While a job runs, a heartbeat thread stores the latest progress (PercentDone,
BytesTransferred, BackupSizeInBytes) every ``progress_seconds`` (default 1 s; at most
``lease_seconds / 3``, so the lease is renewed on the same beat). Before, progress went
out only with the lease renewal every 20 s, and a backup shorter than that showed 0% until
it ended. The job
stops (ABORTED) when the heartbeat reads ``ABORTING`` (StopBackupJob, or the
``abort-overdue`` sweep: the one place the completion window is decided) or when the lease
is lost. Expiring late jobs, recovering jobs whose worker died, prunes, store retention
and KMS keys are the sweeps of ``scheduler/sweepers.py``, run by the scheduler's loop
(:meth:`Worker.sweep_once` runs them too). One backup per resource at a time is the
catalog's claim rule.

Must not depend on the composition root or any interface.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from snowvault.control.catalog import leadership
from snowvault.control.model import jobs as job_rules
from snowvault.control.model import windows
from snowvault.control.scheduler import sweepers
from snowvault.control.services import continuous, job_kinds, jobs
from snowvault.control.services.base import Deps
from snowvault.control.services.errors import JobStopped
from snowvault.core import ids

log = logging.getLogger("snowvault.worker")


@dataclass(frozen=True)
class WorkerOptions:
    lease_seconds: float = 60.0
    poll_seconds: float = 1.0
    sweep_seconds: float = 5.0
    threads: int = 2
    labels: Sequence[str] = field(default_factory=tuple)
    worker_id: str = ""
    progress_seconds: float = 1.0
    continuous_spool: str | None = None
    """Where the continuous-backup streamers spool WAL (a directory under the data
    directory, 0700); None: this worker runs no streamers."""
    continuous_seconds: float = 5.0
    continuous_ship_seconds: float = 30.0


class JobLease:
    """A claimed job's control: progress in, stop requests out, lease kept alive."""

    def __init__(
        self,
        deps: Deps,
        kind: jobs.JobKind[Any],
        job: job_rules.Job,
        worker_id: str,
        lease: float,
        *,
        progress_seconds: float = 1.0,
    ):
        self._deps = deps
        self._interval = max(0.05, min(lease / 3, progress_seconds))
        self._kind = kind
        self._job = job
        self._job_id = job.id
        self._worker_id = worker_id
        self._lease = lease
        self._progress: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._done = threading.Event()
        self.stop_reason: str | None = None
        self._thread = threading.Thread(
            target=self._beat_forever, name=f"heartbeat-{self._job_id[:8]}", daemon=True
        )

    def __enter__(self) -> JobLease:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()

    def report(self, **progress: Any) -> None:
        with self._lock:
            self._progress.update(progress)
        if self.stop_reason is not None:
            raise JobStopped(job_id=self._job_id, detail=self.stop_reason)

    def beat(self) -> None:
        """One heartbeat: store progress, renew the lease, notice stop requests."""
        with self._lock:
            progress = dict(self._progress)
        state = self._kind.heartbeat(
            self._deps, self._job_id, self._worker_id, self._lease, progress
        )
        if state is None:
            self.stop_reason = "the worker lost its lease on the job"
        elif self._kind.stopping and state == self._kind.stopping:
            self.stop_reason = _why_stopping(self._job, self._deps.clock.now())

    def _beat_forever(self) -> None:
        while not self._done.wait(self._interval):
            try:
                self.beat()
            except Exception:  # a missed beat is retried; the lease is the safety net
                log.exception("heartbeat for job %s failed", self._job_id)


def _why_stopping(job: job_rules.Job, now: datetime) -> str:
    """The words for a job read back ABORTING. Whether to stop was decided elsewhere
    (StopBackupJob, or the abort-overdue sweep: the one check of the completion window);
    this only tells the two apart for the job's StatusMessage."""
    if job_rules.fate(job, now) is windows.JobFate.ABORT:
        return "the completion window has passed"
    return "stopped by request"


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{ids.new_hex(4)}"


class Worker:
    """Job runner threads over the catalog's job queues."""

    def __init__(
        self,
        deps: Deps,
        options: WorkerOptions | None = None,
        kinds: jobs.JobKinds | None = None,
        *,
        roles: leadership.Leadership | None = None,
    ) -> None:
        self.deps = deps
        self.roles = roles  # a fleet: one WAL receiver per continuous point across servers
        self.options = options or WorkerOptions()
        self.kinds = kinds or job_kinds.build()
        self.worker_id = self.options.worker_id or default_worker_id()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for n in range(self.options.threads):
            self._spawn(self._run_forever, f"worker-{n}")
        if self.options.continuous_spool is not None:  # WAL streamers and shippers
            streamers = continuous.Streamers(
                self.deps,
                self.options.continuous_spool,
                ship_seconds=self.options.continuous_ship_seconds,
                roles=self.roles,
            )
            every = self.options.continuous_seconds
            self._spawn(lambda: streamers.run_forever(self._stop, every), "continuous")

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def alive(self) -> bool:
        """Started, not stopped, and every runner thread still running (health probe)."""
        threads = list(self._threads)
        return bool(threads) and not self._stop.is_set() and all(t.is_alive() for t in threads)

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout)
        self._threads.clear()

    def run_once(self) -> str | None:
        """Claim and run one job (in the registry's order: backups first); its final
        state, or None if idle."""
        for kind in self.kinds:
            job = kind.claim(
                self.deps, self.worker_id, self.options.labels, self.options.lease_seconds
            )
            if job is not None:
                with JobLease(
                    self.deps,
                    kind,
                    job,
                    self.worker_id,
                    self.options.lease_seconds,
                    progress_seconds=self.options.progress_seconds,
                ) as lease:
                    log.info("running %s job %s", kind.name, job.id)
                    state = kind.execute(self.deps, job, self.worker_id, lease)
                log.info("%s job %s ended %s", kind.name, job.id, state)
                return state
        return None

    def sweep_once(self) -> sweepers.SweepReport:
        """Run the sweeps once (the scheduler's loop runs them in a server)."""
        return sweepers.run(self.deps, self.deps.clock.now())

    def _run_forever(self) -> None:
        while not self._stop.is_set():
            try:
                if self.run_once() is None:
                    self._stop.wait(self.options.poll_seconds)
            except Exception:
                log.exception("worker loop failed; continuing")
                self._stop.wait(self.options.poll_seconds)
