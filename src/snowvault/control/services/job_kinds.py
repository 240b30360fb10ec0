"""The registry of job kinds, built in one place (restic's ``all.go`` style): no kind
registers itself as an import side effect.

Adding a kind: its table (catalog/tables.py + a migration), its record and state machine
(model/jobs.py), its queue (``QUEUE`` in its catalog module), its services module with a
``JOB_KIND`` (run + end), and one line here.

Must not depend on the scheduler, the composition root or any interface.
"""

from __future__ import annotations

from snowvault.control.services import backup_jobs, copy_jobs, jobs, restore_jobs


def build() -> jobs.JobKinds:
    """Every job kind the worker runs, in claim order (backups first)."""
    return jobs.JobKinds([backup_jobs.JOB_KIND, restore_jobs.JOB_KIND, copy_jobs.JOB_KIND])
