"""The sweeps: every background upkeep of the catalog and the vaults, in ONE ordered list.

    report = sweepers.run(deps, now)          # each sweep once, in the order below
    report.done["expire-points"]              # what one sweep touched (ids, ARNs)

A sweep is a registration: a name and a function ``(deps, now) -> what it touched``,
listed in :data:`SWEEPS` — adding one is a line there plus its function in services
(and its tests). The scheduler's one loop (:class:`planner.Scheduler`) runs the list
after planning the due rules, every pass; test mode's clock steps run it through
:func:`planner.tick`; ``Worker.sweep_once`` runs it too (an embedding without a
scheduler). Every sweep is safe to run concurrently on several servers (the catalog's
records decide who does what), so the list needs no leader; a sweep that is disruptive
when all servers run it at once names a ``role`` and runs on the server holding it
(``catalog.leadership``: ``compact-index``).

The order, and why:

1. ``expire-unstarted`` — waiting backup jobs past StartBy become EXPIRED
   (the start-window rule of ``model/windows``).
2. ``abort-overdue`` — running backup jobs past their completion window go ABORTING.
   This is the ONE place the completion window is checked: the job's heartbeat reads
   ABORTING and the worker ends it ABORTED.
3. ``recover-leases`` — jobs whose worker stopped heartbeating are retried, FAILED or
   ABORTED (after the windows, so a lost job past its window is not retried).
4. ``expire-points`` — recovery points past DeleteAt that no legal hold or vault lock
   keeps are forgotten (services/expiry.py, the one expiry path).
5. ``cold`` — cold-storage transitions of the points that remain.
6. ``cold-data`` — in regions with a cold location, the packs only COLD points need
   move to the vault's cold store (services/cold_storage.py; after ``cold``, which
   labels them, and before the prunes, which read across both tiers).
7. ``prune`` — vaults marked after DeleteRecoveryPoint or an expiry (step 4 included)
   are pruned; a vault whose repository is locked waits for the next pass.
8. ``orphan-prune`` — vaults marked after a failed, stopped or lost backup (step 3
   included) are pruned once the grace period has passed.
9. ``compact-index`` — vaults with many index segments get them merged into one
   (``engine/index_compaction``, under a shared lock: backups and agent uploads go on;
   after the prunes, which merge what they read themselves). Every backup adds a
   segment and every open of a vault reads them all, so without this a run of N
   backups into one vault costs N² store reads. The replaced segments are deleted at a
   pass :data:`COMPACT_GRACE_SECONDS` later (readers elsewhere may have listed them),
   all at once, by one server of a fleet (role ``index-compaction``). At most
   :data:`COMPACT_VAULTS_PER_PASS` vaults are looked at per pass (one listing each),
   in turn.
10. ``store-retention`` — locked vaults whose points or lock changed get their store
   retention re-applied (after expiry and prune, so it sees the points that stay).
11. ``kms-keys`` — automatic key rotation, deletion after the waiting period (and the
    crypto-shredding of the vaults that used a deleted key).
12. ``integrity`` — the integrity watch: one vault not reconciled for a day has its
    recovery points compared with the manifests in its store; a missing one is reported
    (after the expiries and prunes of this pass, so it sees what should remain).
13. ``idempotency-tokens`` — client tokens (StartBackupJob's IdempotencyToken, ...) and
    repeated agent manifests are answered from a table; entries older than
    :data:`TOKEN_DAYS` are forgotten, so it does not grow with every job ever started.

A sweep that raises is logged and the next one runs: one broken vault does not stop
the others' upkeep. Must not depend on the composition root or any interface.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from snowvault.control import catalog
from snowvault.control.catalog import leadership
from snowvault.control.catalog.db import Record
from snowvault.control.services import (
    agents,
    cold_storage,
    expiry,
    integrity,
    job_kinds,
    recovery_points,
    scheduling,
    trail,
    vault_lock,
    vaults,
)
from snowvault.control.services.base import Deps
from snowvault.engine import index_compaction

log = logging.getLogger("snowvault.sweepers")

SweepFn = Callable[[Deps, datetime], Sequence[str]]


@dataclass(frozen=True)
class Sweep:
    """One registered sweep: ``run(deps, now)`` returns what it touched; ``what`` says
    it in the log line (``"<count> <what>"``). ``role``: a sweep that is safe on
    several servers but wasteful or disruptive when they all run it at once runs only on
    the server holding that role (``catalog.leadership``; none given: every server)."""

    name: str
    run: SweepFn
    what: str
    role: str | None = None


@dataclass
class SweepReport:
    """What one pass of the list did: per sweep name, what it touched; the names of the
    sweeps that failed (logged)."""

    done: dict[str, list[str]] = field(default_factory=dict)
    failed: list[str] = field(default_factory=list)

    def get(self, name: str) -> list[str]:
        return self.done.get(name, [])


def _recover_leases(deps: Deps, now: datetime) -> list[str]:
    recovered = job_kinds.build().recover(deps, now)
    agents.release_locks_of_lost(deps, recovered)
    return [f"{r.job.kind} job {r.job.id}: {r.state}" for r in recovered]


def _expire_points(deps: Deps, now: datetime) -> list[str]:
    deleted, _waiting = expiry.expire_due(deps, now)
    return deleted


def _prune(deps: Deps, now: datetime) -> list[str]:
    return recovery_points.prune_pending(deps)


COMPACT_VAULTS_PER_PASS = 50
COMPACT_GRACE_SECONDS = 10.0
"""How long replaced index segments stay before they are deleted (readers on other
servers that listed them before the merge read them meanwhile)."""
_compact_cursor: list[str] = [""]  # the last vault ARN looked at, across passes
_replaced: dict[str, tuple[float, list[str]]] = {}  # vault ARN -> (when, segment names)


def _compact_index(deps: Deps, now: datetime) -> list[str]:
    """Merge the index segments of the next vaults in turn (ARN order, wrapping); the
    segments a merge replaced are deleted at a pass after the grace period."""
    arns: list[str] = []
    with catalog.db.read_transaction(deps.engine) as conn:
        for account in catalog.accounts.list_accounts(conn):
            for region in deps.storage.regions:
                token = None
                while True:  # every page: a region may hold more vaults than one page
                    page = catalog.vaults.list_vaults(
                        conn, account_id=account["account_id"], region=region, token=token
                    )
                    arns += [vault["arn"] for vault in page.items]
                    token = page.next_token
                    if not token:
                        break
    arns.sort()
    after = [a for a in arns if a > _compact_cursor[0]]
    turn = (after + [a for a in arns if a <= _compact_cursor[0]])[:COMPACT_VAULTS_PER_PASS]
    done = []
    for arn in turn:
        _compact_cursor[0] = arn
        with catalog.db.read_transaction(deps.engine) as conn:
            vault = catalog.vaults.find_by_arn(conn, arn)
        if vault is None:
            _replaced.pop(arn, None)
            continue
        try:
            if _compact_vault(deps, vault):
                done.append(arn)
        except Exception as exc:  # one unreachable store does not stop the others
            log.warning("index compaction of %s failed; retried later: %s", arn, exc)
    return done


def _compact_vault(deps: Deps, vault: Record) -> bool:
    since, replaced = _replaced.get(vault["arn"], (0.0, []))
    if replaced and deps.clock.monotonic() - since < COMPACT_GRACE_SECONDS:
        return False  # the last merge's segments are still being read elsewhere
    with vaults.open_repository(deps, vault, cached=True, load_index=False) as repo:
        if replaced:  # (merge reads only the listing and, cached, the new segments)
            index_compaction.delete_replaced(repo, replaced)
            del _replaced[vault["arn"]]
        merged = index_compaction.merge(repo, deps.clock)
    if merged:
        _replaced[vault["arn"]] = (deps.clock.monotonic(), merged)
    return bool(merged)


def _kms_keys(deps: Deps, now: datetime) -> list[str]:
    deps.vault_keys.sweep(now)  # logs the keys it rotates and deletes
    return []


TOKEN_DAYS = 7
"""How long an idempotency token is honoured: far beyond any client's or agent's retries
(AWS documents no window for StartBackupJob's token; a retry comes within minutes)."""


def _forget_tokens(deps: Deps, now: datetime) -> list[str]:
    with catalog.db.transaction(deps.engine) as conn:
        gone = catalog.idempotency.purge_before(conn, now - timedelta(days=TOKEN_DAYS))
    return [f"{gone} token(s) older than {TOKEN_DAYS} days"] if gone else []


def registry(*sweeps: Sweep) -> tuple[Sweep, ...]:
    """The sweeps in the order given; raises on a duplicate name."""
    names = [s.name for s in sweeps]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"sweeps registered twice: {', '.join(dupes)}")
    return tuple(sweeps)


SWEEPS: tuple[Sweep, ...] = registry(
    Sweep(
        "expire-unstarted",
        scheduling.expire_unstarted,
        "backup job(s) expired: their start window passed",
    ),
    Sweep(
        "abort-overdue",
        scheduling.abort_overdue,
        "running backup job(s) asked to stop: their completion window passed",
    ),
    Sweep("recover-leases", _recover_leases, "job(s) of lost workers recovered"),
    Sweep("expire-points", _expire_points, "recovery point(s) expired at DeleteAt"),
    Sweep("cold", scheduling.move_to_cold, "recovery point(s) moved to cold storage"),
    Sweep("cold-data", cold_storage.move_due, "vault(s) with packs moved to their cold store"),
    Sweep("prune", _prune, "vault(s) pruned after deleted or expired points"),
    Sweep("orphan-prune", vaults.prune_orphans, "vault(s) pruned of a failed backup's data"),
    Sweep(
        "compact-index",
        _compact_index,
        "vault(s) with their index segments merged",
        role="index-compaction",  # several servers deleting segments break readers' relists
    ),
    Sweep(
        "store-retention", vault_lock.sweep_store_retention, "vault(s) store retention re-applied"
    ),
    Sweep("kms-keys", _kms_keys, "KMS key(s) rotated or deleted"),
    Sweep("integrity", integrity.reconcile, "recovery point(s) found without their manifest"),
    Sweep("idempotency-tokens", _forget_tokens, "idempotency token batch(es) forgotten"),
)
"""The one ordered list (see the module docstring for the order and why)."""


def run(
    deps: Deps,
    now: datetime,
    sweeps: Sequence[Sweep] = SWEEPS,
    roles: leadership.Leadership | None = None,
) -> SweepReport:
    """Run each sweep once at ``now``, in order; with ``roles`` (a fleet), a sweep with
    a role only where it is held or can be taken."""
    report = SweepReport()
    for sweep in sweeps:
        if sweep.role and roles is not None and not (roles.check() and roles.hold(sweep.role)):
            continue
        try:
            touched = list(sweep.run(deps, now))
        except Exception:
            log.exception("sweep %s failed; the next pass retries it", sweep.name)
            report.failed.append(sweep.name)
            continue
        report.done[sweep.name] = touched
        trail.sweep_done(deps, sweep.name, touched, now)  # one AwsServiceEvent per ARN
        if touched:
            log.info("sweep %s: %d %s", sweep.name, len(touched), sweep.what)
    return report
