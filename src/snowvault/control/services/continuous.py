"""Continuous backup and point-in-time restore (PostgreSQL), AWS's CONTINUOUS points.

A plan rule with ``EnableContinuousBackup: true`` gives each PostgreSQL resource its
selections choose ONE continuous recovery point in the rule's vault. The worker side's
:class:`Streamers` keeps it going, one supervision pass (:meth:`Streamers.tick`) at a time:

1. targets: every (resource, vault, rule) a live continuous rule selects;
2. the point: created on first sight (status CREATING) with its replication slot;
3. the streamer: a ``pg_receivewal`` child on the slot into a spool directory (0700)
   under the server's data directory, restarted when it died (the slot kept the WAL,
   so no gap; a slot that vanished is a gap, said in the point's StatusMessage, and a
   fresh base backup starts a new window);
4. base backups on the rule's ScheduleExpression (the first at once), into the vault as
   engine recovery points of the chain, written by the PostgreSQL plugin as snapshot
   points; the rule's CopyActions queue a copy of each (a SNAPSHOT, ``copy_jobs``);
5. shipping, at least every ``ship_seconds`` (30): a mark on the source (its clock, a
   commit after it), wait for the streamer to confirm that WAL, then every completed WAL
   file and the current partial segment go into the vault; the window's latest end
   becomes the mark's time;
6. retention: pieces older than the rule's DeleteAfterDays go (never while a legal hold
   covers the point), the window's start moves on; DeleteAt = latest + retention.

Targets no rule selects any more: the streamer stops, the slot is dropped, the point
becomes STOPPED (restorable within its window until it expires).

Restore: :func:`check_restore` (StartRestoreJob: ``pointInTime`` inside the window, the
target directory allowed) and :func:`restore` (in the worker: the newest base backup
before the instant, the WAL after it, recovery settings; ``pg_ctl -D DIR start`` comes
up at that instant, promoted).

Must not depend on the scheduler, the composition root or any interface.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from snowvault.control import catalog
from snowvault.control.catalog import continuous as store
from snowvault.control.catalog import leadership
from snowvault.control.catalog.db import Record
from snowvault.control.model import agent_hosts, host_paths, net_reach
from snowvault.control.model import continuous as rules
from snowvault.control.model import legal_holds as hold_rules
from snowvault.control.model import schedule as schedule_rules
from snowvault.control.model.jobs import RecoveryPoint
from snowvault.control.services import (
    copy_jobs,
    legal_holds,
    plans,
    plugin_io,
    selections,
    vault_lock,
    vaults,
)
from snowvault.control.services.base import Deps
from snowvault.core import arn as arns
from snowvault.core import ids
from snowvault.core.errors import InvalidInput
from snowvault.engine import errors as engine_errors
from snowvault.engine import prune, restorer
from snowvault.plugins import base, pg_tools
from snowvault.plugins import postgresql_wal as pg

log = logging.getLogger("snowvault.continuous")

CAPABLE_TYPES: tuple[str, ...] = ("PostgreSQL",)
SHIP_SECONDS = 30.0
FLUSH_WAIT_SECONDS = 20.0
TARGET_DIRECTORY = "targetDirectory"
OVERWRITE = "overwrite"
RUNNING = "continuous backup running"


@dataclass(frozen=True)
class Assignment:
    """One resource a live continuous rule selects, with the rule's vault."""

    resource: Record
    vault: Record
    rule: Record
    plan_id: str

    @property
    def retention_days(self) -> int:
        lc = self.rule.get("Lifecycle") or {}
        return int(lc.get("DeleteAfterDays") or 35)


def assignments(deps: Deps) -> list[Assignment]:
    """Every (resource, vault) a live plan's continuous rule selects; the first rule
    (by plan creation, then rule order) wins a pair two rules name."""
    out: dict[tuple[str, str], Assignment] = {}
    with catalog.db.transaction(deps.engine) as conn:
        for account in catalog.accounts.list_accounts(conn):
            for region in deps.storage.regions:
                _scope(deps, conn, account["account_id"], region, out)
        stopped = catalog.settings.get(conn, STOPPED_KEY) or {}
        live = {_pair_key(*pair) for pair in out}
        kept = {k: v for k, v in stopped.items() if k in live}
        if kept != stopped:  # a pair no rule selects any more may start again later
            catalog.settings.put(conn, STOPPED_KEY, kept)
    return [a for pair, a in out.items() if _pair_key(*pair) not in kept]


STOPPED_KEY = "continuous-stopped"
"""Settings key: the (resource, vault) pairs whose continuous point DeleteRecoveryPoint
deleted; AWS stops future continuous backup for them, until no rule selects the pair."""


def _pair_key(resource_arn: str, vault_arn: str) -> str:
    return f"{resource_arn} {vault_arn}"


def stop_future(deps: Deps, rp_arn: str) -> None:
    """DeleteRecoveryPoint of a continuous point: no new one is started for its resource
    and vault while a rule still selects them (the streamer stops, its slot is dropped)."""
    with catalog.db.transaction(deps.engine) as conn:
        point = store.find(conn, rp_arn)
        if point is None:
            return
        stopped = dict(catalog.settings.get(conn, STOPPED_KEY) or {})
        stopped[_pair_key(point.resource_arn, point.backup_vault_arn)] = point.rule_id
        catalog.settings.put(conn, STOPPED_KEY, stopped)


def _scope(
    deps: Deps, conn: Any, account_id: str, region: str, out: dict[tuple[str, str], Assignment]
) -> None:
    docs = catalog.plans.current_documents(conn, account_id=account_id, region=region)
    rules_ = [
        (d, r) for d in docs for r in d["document"]["Rules"] if r.get("EnableContinuousBackup")
    ]
    if not rules_:
        return
    inventory = catalog.selections.inventory(conn, account_id=account_id, region=region)
    index = selections.Inventory(inventory, deps.plugins.types())
    for plan, rule in rules_:
        chosen = [
            s["document"] for s in catalog.selections.for_plans(conn, [plan["backup_plan_id"]])
        ]
        vault = _vault(conn, account_id, region, rule["TargetBackupVaultName"])
        if vault is None:
            continue
        for arn in sorted(index.resolve(chosen)):
            resource = catalog.resources.find(conn, arn)
            if resource is None or resource["resource_type"] not in CAPABLE_TYPES:
                continue
            if agent_hosts.is_agent_label(resource.get("worker_label")):
                _say_not_on_agents(arn)  # its rule's snapshots still run, by its agent
                continue
            out.setdefault(
                (arn, vault["arn"]), Assignment(resource, vault, rule, plan["backup_plan_id"])
            )


_TOLD_AGENT_HOSTS: set[str] = set()


def _say_not_on_agents(arn: str) -> None:
    """Continuous backup streams WAL from the server's own pg_receivewal: a cluster on an
    agent's host is reached only by its agent, so it gets none (said once per resource
    and process); the server must not connect to that address from its own side."""
    if arn not in _TOLD_AGENT_HOSTS:
        _TOLD_AGENT_HOSTS.add(arn)
        log.warning(
            "continuous backup of %s skipped: it is on an agent's host (agents take "
            "snapshot backups only)",
            arn,
        )


def _vault(conn: Any, account_id: str, region: str, name: str) -> Record | None:
    return catalog.vaults.find(conn, account_id=account_id, region=region, name=name)


# --- the source -----------------------------------------------------------------------


ResourceOf = Callable[[Record], base.Resource]
"""A catalog resource row -> the plugin's view, secrets unsealed (the worker's)."""


def _target(deps: Deps, resource: base.Resource) -> pg.Target:
    """Reach the source: its host judged by the network-reach rule now, right before
    connecting, and the allowed address used (never the name again)."""
    host, port, _user = pg.parse_source(resource.source)
    addresses = net_reach.check(host, port, deps.path_policy)
    return pg.target_of(resource.source, resource.secrets, addresses)


# --- the supervisor -------------------------------------------------------------------


class Streamers:
    """The streamers and shippers of every continuous point this worker serves.

    ``tick()`` is one supervision pass (idempotent; the worker calls it every few
    seconds, tests call it directly); ``stop()`` ends every child process."""

    def __init__(
        self,
        deps: Deps,
        spool_root: str,
        *,
        resource_of: ResourceOf | None = None,
        ship_seconds: float = SHIP_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
        roles: leadership.Leadership | None = None,
    ) -> None:
        self.deps, self.spool_root = deps, spool_root
        self.roles = roles
        """A fleet: serve only the points whose role this server holds (None: all)."""
        self.resource_of = resource_of or (lambda row: plugin_io.worker_resource(deps, row))
        self.ship_seconds = ship_seconds
        self._monotonic = monotonic
        self._streamers: dict[str, pg.Streamer] = {}
        self._shipped_at: dict[str, float] = {}
        self.restarts: dict[str, int] = {}
        self._lock = threading.Lock()

    def streamer(self, rp_arn: str) -> pg.Streamer | None:
        return self._streamers.get(rp_arn)

    def spool(self, slot: str) -> str:
        return os.path.join(self.spool_root, slot)

    def tick(self, *, ship: bool = False, base_backup: bool = False) -> list[str]:
        """One pass over every assignment; returns the continuous point ARNs served.
        ``ship``/``base_backup`` force a shipment / a base backup now."""
        with self._lock:
            os.makedirs(self.spool_root, mode=0o700, exist_ok=True)
            if self.roles is not None and not self.roles.check():
                self._let_go(list(self._streamers))  # the roles went with the connection
            served: list[str] = []
            selected: set[tuple[str, str]] = set()
            for a in assignments(self.deps):
                selected.add((a.resource["arn"], a.vault["arn"]))
                if self.roles is not None and not self.roles.hold(role(a)):
                    continue  # another server of the fleet receives this point's WAL
                try:
                    served.append(self._serve(a, ship=ship, base_backup=base_backup))
                except Exception as exc:  # one broken source does not stop the others
                    log.exception("continuous backup of %s failed", a.resource["arn"])
                    failing = self._note_failure(a, exc)
                    if failing is not None:  # still selected: a failed pass retires nothing
                        served.append(failing)
            self._retire(set(served), selected)
            return served

    def run_forever(self, stop: threading.Event, every: float = 5.0) -> None:
        while not stop.is_set():
            try:
                self.tick()
            except Exception:
                log.exception("continuous supervision pass failed; continuing")
            stop.wait(every)
        self.stop()

    def stop(self) -> None:
        with self._lock:
            for streamer in self._streamers.values():
                streamer.stop()
            self._streamers.clear()

    def _let_go(self, arns: list[str]) -> None:
        """Stop receiving these points here (another server now holds their role): the
        streamer ends, the slot and the spool stay (the slot is the new holder's)."""
        for arn in arns:
            streamer = self._streamers.pop(arn, None)
            if streamer is not None:
                streamer.stop()
                log.warning("continuous point %s: no longer this server's; streamer stopped", arn)

    # one assignment ------------------------------------------------------------------

    def _serve(self, a: Assignment, *, ship: bool, base_backup: bool) -> str:
        now = self.deps.clock.now()
        vault_lock.check_job_retention(self.deps, a.vault, a.rule.get("Lifecycle"))
        point, created = self._point(a, now)
        resource = self.resource_of(a.resource)
        target = _target(self.deps, resource)
        gap = self._ensure_streaming(point, target, created)
        pieces = self._pieces(point.recovery_point_arn)
        if gap or base_backup or not rules.bases(pieces) or _due(point.next_base_at, now):
            self._base_backup(a, point, target, resource)
            point = self._reload(point)
            if gap:  # the WAL before the gap cannot carry a restore past it
                self._forget(
                    a.vault,
                    point.recovery_point_arn,
                    [p.engine_id for p in pieces],
                    prune_later=True,
                )
        last = self._shipped_at.get(point.recovery_point_arn)
        if ship or gap or last is None or self._monotonic() - last >= self.ship_seconds:
            self._ship(a, point, target)
        self._trim(a, point)
        self._refresh(a, point, gap=gap)
        return point.recovery_point_arn

    def _point(self, a: Assignment, now: datetime) -> tuple[store.ContinuousPoint, bool]:
        with catalog.db.transaction(self.deps.engine) as conn:
            found = store.find_for(conn, a.resource["arn"], a.vault["arn"])
            if found is not None:
                if found.retention_days != a.retention_days or found.rule_id != a.rule["RuleId"]:
                    store.update(
                        conn,
                        found.recovery_point_arn,
                        now=now,
                        retention_days=a.retention_days,
                        rule_id=a.rule["RuleId"],
                    )
                    found = store.find(conn, found.recovery_point_arn)
                assert found is not None
                return found, False
            catalog.vaults.lock(conn, a.vault["arn"])  # exclusive: the point count updates it
            arn = arns.build(
                "backup",
                a.vault["region"],
                a.vault["account_id"],
                f"recovery-point:{ids.new_uuid()}",
            )
            catalog.recovery_points.create(
                conn,
                arn=arn,
                account_id=a.vault["account_id"],
                region=a.vault["region"],
                backup_vault_name=a.vault["name"],
                backup_vault_arn=a.vault["arn"],
                vault_type=a.vault["vault_type"],
                resource_arn=a.resource["arn"],
                resource_type=a.resource["resource_type"],
                resource_name=a.resource["name"],
                status="CREATING",
                status_message="continuous backup starting: first base backup",
                creation_date=now,
                initiation_date=now,
                lifecycle=dict(a.rule.get("Lifecycle") or {}),
                delete_at=rules.delete_at(None, now, a.retention_days),
                encryption_key_arn=a.vault["encryption_key_arn"],
                encryption_key_type=a.vault["encryption_key_type"],
                created_by={
                    "BackupPlanId": a.plan_id,
                    "BackupRuleId": a.rule["RuleId"],
                },
                backup_plan_id=a.plan_id,
            )
            slot = pg.slot_name(arn.rsplit(":", 1)[-1].replace("-", "")[:32])
            point = store.create(
                conn,
                recovery_point_arn=arn,
                resource_arn=a.resource["arn"],
                backup_vault_arn=a.vault["arn"],
                rule_id=a.rule["RuleId"],
                slot_name=slot,
                retention_days=a.retention_days,
                now=now,
            )
            return point, True

    def _reload(self, point: store.ContinuousPoint) -> store.ContinuousPoint:
        with catalog.db.read_transaction(self.deps.engine) as conn:
            found = store.find(conn, point.recovery_point_arn)
        assert found is not None
        return found

    def _pieces(self, rp_arn: str) -> list[rules.Piece]:
        with catalog.db.read_transaction(self.deps.engine) as conn:
            return store.pieces(conn, rp_arn)

    def _ensure_streaming(
        self, point: store.ContinuousPoint, target: pg.Target, created: bool
    ) -> bool:
        """Start (or restart) the streamer; True when WAL was lost (a gap)."""
        arn = point.recovery_point_arn
        current = self._streamers.get(arn)
        if current is not None and current.alive():
            return False
        existed = pg.ensure_slot(target, point.slot_name)
        if existed:
            pg.release_slot(target, point.slot_name)
        gap = not existed and not created and point.shipped_lsn is not None
        spool = self.spool(point.slot_name)
        message = (
            f"WAL gap: the replication slot {point.slot_name} was lost after "
            f"{pg.format_lsn(point.shipped_lsn or 0)}; "
            "a new base backup starts the window again"
        )
        if existed and current is None:
            lost = self._taken_over_gap(point, target, spool)
            if lost is not None:
                gap, message = True, lost
        if gap:  # the WAL since the last shipment is gone: start over from a new base
            shutil.rmtree(spool, ignore_errors=True)
            with catalog.db.transaction(self.deps.engine) as conn:
                store.update(conn, arn, now=self.deps.clock.now(), gap_message=message)
            log.warning("continuous point %s: %s", arn, message)
        if current is not None:
            self.restarts[arn] = self.restarts.get(arn, 0) + 1
            log.warning(
                "continuous point %s: streamer exited (%s); restarting on slot %s",
                arn,
                current.last_error() or "no message",
                point.slot_name,
            )
        streamer = pg.Streamer(target, point.slot_name, spool)
        streamer.start()
        self._streamers[arn] = streamer
        return gap

    def _taken_over_gap(
        self, point: store.ContinuousPoint, target: pg.Target, spool: str
    ) -> str | None:
        """A point whose WAL another server received (this spool holds no segment: the
        role moved here, or this server's spool was lost): the new streamer starts at
        the segment holding the slot's restart position, and WAL before that segment
        which the vault lacks existed only in the other server's spool. Returns the gap's
        description, or None when the vault has every segment before it."""
        if point.shipped_lsn is None or pg.spool_files(spool):
            return None
        restart = pg.flushed_lsn(target, point.slot_name)
        pieces = self._pieces(point.recovery_point_arn)
        segments = [p for p in pieces if p.kind != rules.BASE and p.end_lsn > p.begin_lsn]
        bases = rules.bases(pieces)
        if restart is None or not segments or not bases:
            return None
        size = segments[0].end_lsn - segments[0].begin_lsn
        resume = restart - restart % size
        first_base = min(b.begin_lsn for b in bases)
        have = max(
            [p.end_lsn for p in segments if p.kind == rules.WAL] + [first_base - first_base % size]
        )
        if resume <= have:
            return None
        return (
            f"WAL gap: {pg.format_lsn(have)} to {pg.format_lsn(resume)} was received by a "
            "server that stopped before shipping it; a new base backup starts the window again"
        )

    def _sink(self, a: Assignment, rp_arn: str, piece: str) -> plugin_io.EngineSink:
        return plugin_io.EngineSink(
            self.deps,
            a.vault,
            parent=None,
            tags={},
            metadata={
                "resource_arn": a.resource["arn"],
                "resource_type": a.resource["resource_type"],
                "continuous_recovery_point_arn": rp_arn,
                "continuous_piece": piece,
            },
        )

    def _base_backup(
        self,
        a: Assignment,
        point: store.ContinuousPoint,
        target: pg.Target,
        resource: base.Resource,
    ) -> None:
        """A base backup into the chain, written by the PostgreSQL plugin exactly as a
        snapshot point (``base.tar``, ``backup_manifest``, ``backup_info.json``, the
        server's facts as the note): a copy of it is an ordinary snapshot point."""
        before_time, before_lsn = pg.clock(target)
        sink = self._sink(a, point.recovery_point_arn, rules.BASE)
        plugin = self.deps.plugins.get(a.resource["resource_type"])
        plugin.backup(base.BackupRequest(resource, self.deps.path_policy, sink, lambda p: None))
        after_time, after_lsn = pg.clock(target)
        mark = pg.mark(target)
        piece = rules.Piece(
            engine_id=sink.result.rp_id,
            kind=rules.BASE,
            name="base.tar",
            timeline=mark.timeline,
            begin_lsn=before_lsn,
            end_lsn=after_lsn,
            begin_time=before_time,
            end_time=after_time,
            size=sink.result.manifest.summary.total_size,
        )
        now = self.deps.clock.now()
        rule = plans.model_rule(a.rule)
        next_at = schedule_rules.next_run(rule.schedule, now, rule.schedule_expression_timezone)
        with catalog.db.transaction(self.deps.engine) as conn:
            store.add_piece(conn, point.recovery_point_arn, piece, now=now)
            store.update(
                conn,
                point.recovery_point_arn,
                now=now,
                last_base_at=now,
                next_base_at=next_at,
            )
            catalog.recovery_points.update(
                conn, point.recovery_point_arn, engine_recovery_point_id=sink.result.rp_id
            )
            copy_jobs.queue_continuous_copies(conn, point.recovery_point_arn, a.rule, now)

    def _ship(self, a: Assignment, point: store.ContinuousPoint, target: pg.Target) -> None:
        """Move completed WAL files and the current partial segment into the vault; the
        window's end moves to the mark's time once the streamer confirmed its WAL."""
        arn = point.recovery_point_arn
        mark = pg.mark(target)
        flushed = pg.wait_flushed(
            target, point.slot_name, mark.lsn, FLUSH_WAIT_SECONDS, lambda: self._alive(arn)
        )
        covered = flushed is not None and flushed >= mark.lsn
        spool = self.spool(point.slot_name)
        files = pg.spool_files(spool, mark.segment_size)
        log.info(
            "continuous point %s: mark %s at %s, streamer flushed %s, covered %s",
            arn,
            pg.format_lsn(mark.lsn),
            mark.time.isoformat(),
            None if flushed is None else pg.format_lsn(flushed),
            covered,
        )
        with catalog.db.read_transaction(self.deps.engine) as conn:
            shipped = store.shipped_names(conn, arn)
            old_partials = [p for p in store.pieces(conn, arn) if p.kind == rules.PARTIAL]
        new = [f for f in files if f.kind == rules.WAL and f.name not in shipped]
        partials = [f for f in files if f.kind == rules.PARTIAL]
        for f in new:
            self._ship_file(a, arn, f)
        for f in partials:
            try:
                self._ship_file(a, arn, f)
            except FileNotFoundError:
                # pg_receivewal completed the segment (renamed its .partial) between the
                # listing and the open: ship the completed segment and the new partial
                files = pg.spool_files(spool, mark.segment_size)
                done = shipped | {g.name for g in new}
                for g in files:
                    if g.kind == rules.WAL and g.name not in done:
                        self._ship_file(a, arn, g)
                        new.append(g)
                for g in files:
                    if g.kind == rules.PARTIAL and g.name != f.name:
                        try:
                            self._ship_file(a, arn, g)
                        except FileNotFoundError:  # completed again: the next pass ships it
                            covered = False
        self._forget(a.vault, arn, [p.engine_id for p in old_partials], prune_later=False)
        _clean_spool(files, shipped | {f.name for f in new})
        now = self.deps.clock.now()
        with catalog.db.transaction(self.deps.engine) as conn:
            values: dict[str, Any] = {"shipped_lsn": max([f.end_lsn for f in files] or [0])}
            if covered:
                values["latest"] = mark.time
            store.update(conn, arn, now=now, **values)
        self._shipped_at[arn] = self._monotonic()

    def _alive(self, arn: str) -> bool:
        streamer = self._streamers.get(arn)
        return streamer is not None and streamer.alive()

    def _ship_file(self, a: Assignment, arn: str, f: pg.SpoolFile) -> None:
        sink = self._sink(a, arn, f.kind)
        with open(f.path, "rb") as body:
            sink.stream(f.name, body, lambda p: None)
        piece = rules.Piece(
            engine_id=sink.result.rp_id,
            kind=f.kind,
            name=f.name,
            timeline=f.timeline,
            begin_lsn=f.begin_lsn,
            end_lsn=f.end_lsn,
            begin_time=None,
            end_time=None,
            size=f.size,
        )
        with catalog.db.transaction(self.deps.engine) as conn:
            store.add_piece(conn, arn, piece, now=self.deps.clock.now())

    def _forget(self, vault: Record, arn: str, engine_ids: list[str], *, prune_later: bool) -> None:
        if not engine_ids:
            return
        with vaults.open_repository(self.deps, vault) as repo:
            present = set(repo.list_manifests())
            gone = [i for i in engine_ids if i in present]
            if gone:
                prune.forget(repo, gone)
        now = self.deps.clock.now()
        with catalog.db.transaction(self.deps.engine) as conn:
            store.drop_pieces(conn, arn, engine_ids)
            if prune_later:
                catalog.maintenance.mark_prune_pending(conn, vault["arn"], now)

    def _trim(self, a: Assignment, point: store.ContinuousPoint) -> None:
        """Retention: drop what the window no longer needs, unless a legal hold or the
        vault lock keeps the point whole (the hold freezes its contents)."""
        now = self.deps.clock.now()
        with catalog.db.read_transaction(self.deps.engine) as conn:
            rp = catalog.recovery_points.find(conn, point.recovery_point_arn)
            pieces = store.pieces(conn, point.recovery_point_arn)
        if rp is None:
            return
        drop = rules.expired(pieces, now=now, retention_days=point.retention_days)
        if drop and _held(self.deps, rp, now):
            return
        self._forget(a.vault, rp.arn, [p.engine_id for p in drop], prune_later=True)

    def _refresh(self, a: Assignment, point: store.ContinuousPoint, *, gap: bool) -> None:
        """The point's window, status, size and DeleteAt from its pieces."""
        now = self.deps.clock.now()
        with catalog.db.transaction(self.deps.engine) as conn:
            current = store.find(conn, point.recovery_point_arn)
            if current is None:
                return
            pieces = store.pieces(conn, point.recovery_point_arn)
            win = rules.window(
                pieces, latest=current.latest, now=now, retention_days=current.retention_days
            )
            store.update(
                conn,
                point.recovery_point_arn,
                now=now,
                earliest=None if win is None else win.earliest,
                latest=current.latest,
            )
            status = "CREATING" if win is None else "COMPLETED"
            message = RUNNING if win is None else f"{RUNNING}; restorable {win.describe()}"
            if current.gap_message:
                message = f"{message}; {current.gap_message}"
            catalog.recovery_points.update(
                conn,
                point.recovery_point_arn,
                status=status,
                status_message=message,
                backup_size_in_bytes=sum(p.size for p in pieces),
                delete_at=rules.delete_at(current.latest, now, current.retention_days),
                completion_date=current.latest,
            )

    def _note_failure(self, a: Assignment, exc: BaseException) -> str | None:
        """Say the failure in the point's status message; the point's ARN (None when the
        assignment has no point yet), which stays served: its streamer and slot are kept
        for the next pass, not retired as if no rule selected the resource."""
        with catalog.db.transaction(self.deps.engine) as conn:
            point = store.find_for(conn, a.resource["arn"], a.vault["arn"])
            if point is None:
                return None
            message = f"continuous backup failing: {_one_line(exc)}"
            try:
                rp = catalog.recovery_points.get(conn, point.recovery_point_arn)
            except Exception:
                return point.recovery_point_arn
            catalog.recovery_points.update(conn, rp.arn, status_message=message)
            return point.recovery_point_arn

    def _retire(self, served: set[str], selected: set[tuple[str, str]]) -> None:
        """Stop the streamers of points no rule serves any more; their points STOP.
        A point still selected but not served here is another server's: only this
        server's streamer of it (if any) stops."""
        with catalog.db.read_transaction(self.deps.engine) as conn:
            points = store.list_points(conn)
        for point in points:
            arn = point.recovery_point_arn
            if arn in served:
                continue
            if (point.resource_arn, point.backup_vault_arn) in selected:
                self._let_go([arn])
                continue
            if self.roles is not None:
                self.roles.release(_role_name(point.resource_arn, point.backup_vault_arn))
            streamer = self._streamers.pop(arn, None)
            if streamer is not None:
                streamer.stop()
                try:
                    pg.drop_slot(streamer.target, point.slot_name)
                except Exception as exc:
                    log.warning("continuous point %s: slot not dropped: %s", arn, _one_line(exc))
                shutil.rmtree(self.spool(point.slot_name), ignore_errors=True)
            with catalog.db.transaction(self.deps.engine) as conn:
                rp = catalog.recovery_points.find(conn, arn)
                if rp is not None and rp.status not in ("STOPPED", "DELETING"):
                    catalog.recovery_points.set_status(
                        conn,
                        arn,
                        "STOPPED",
                        "continuous backup stopped: no rule selects the resource",
                    )
        for arn in set(self._streamers) - served:  # its point was deleted
            streamer = self._streamers.pop(arn)
            streamer.stop()
            try:  # a slot nobody reads would keep WAL on the source forever
                pg.drop_slot(streamer.target, streamer.slot)
            except Exception as exc:
                log.warning("continuous point %s: slot not dropped: %s", arn, _one_line(exc))
            shutil.rmtree(streamer.spool, ignore_errors=True)


def _role_name(resource_arn: str, vault_arn: str) -> str:
    return f"continuous:{resource_arn} {vault_arn}"


def role(a: Assignment) -> str:
    """The fleet role (catalog.leadership) of receiving this assignment's WAL: one
    server holds it at a time, another takes it when that server dies."""
    return _role_name(a.resource["arn"], a.vault["arn"])


def _clean_spool(files: list[pg.SpoolFile], shipped: set[str]) -> None:
    """Remove shipped completed segments from the spool, but the newest segment file
    (pg_receivewal resumes after the newest file it finds there)."""
    segments = [f for f in files if f.kind != rules.PARTIAL and not f.name.endswith(".history")]
    names = [f.name.removesuffix(pg.PARTIAL_SUFFIX) for f in files]
    newest = max((n for n in names if not n.endswith(".history")), default="")
    for f in segments:
        if f.name in shipped and f.name != newest:
            os.remove(f.path)


def _due(at: datetime | None, now: datetime) -> bool:
    return at is not None and at <= now


def _held(deps: Deps, rp: RecoveryPoint, now: datetime) -> bool:
    """An active legal hold covering the point keeps it whole: nothing of it is
    trimmed (as nothing of it may be deleted). The vault lock's MinRetentionDays is
    judged against the rule's retention when the rule's points are made."""
    with catalog.db.read_transaction(deps.engine) as conn:
        holds = legal_holds.restraining(conn, account_id=rp.account_id, region=rp.region)
    facts = hold_rules.RecoveryPointFacts(rp.backup_vault_name, rp.resource_arn, rp.creation_date)
    return hold_rules.is_held(facts, holds)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


# --- reads ----------------------------------------------------------------------------


def find(deps: Deps, rp_arn: str) -> store.ContinuousPoint | None:
    with catalog.db.read_transaction(deps.engine) as conn:
        return store.find(conn, rp_arn)


def window_field(deps: Deps, rp_arn: str) -> dict[str, Any] | None:
    """The extension member DescribeRecoveryPoint adds for a continuous point:
    ``{"Earliest": ..., "Latest": ...}`` (ISO 8601 UTC), or None for other points."""
    point = find(deps, rp_arn)
    if point is None:
        return None
    win = point.window
    if win is None:
        return {"Earliest": None, "Latest": None}
    return {"Earliest": _iso(win.earliest), "Latest": _iso(win.latest)}


def _iso(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


def restore_defaults(deps: Deps, rp_arn: str) -> dict[str, str]:
    """GetRecoveryPointRestoreMetadata's extra key for a continuous point: the latest
    restorable instant."""
    point = find(deps, rp_arn)
    if point is None or point.window is None:
        return {}
    return {rules.METADATA_KEY: _iso(point.window.latest)}


# --- restore --------------------------------------------------------------------------


def check_restore(deps: Deps, rp_arn: str, metadata: Mapping[str, str]) -> None:
    """StartRestoreJob for a continuous point: ``targetDirectory`` allowed by the
    host-path rule (and new or empty unless ``overwrite=true``), ``pointInTime`` (default:
    the latest) inside the window — InvalidInput naming the window otherwise."""
    point = find(deps, rp_arn)
    if point is None:
        raise InvalidInput(detail=f"{rp_arn} is not a continuous recovery point")
    _target_directory(deps, metadata)
    when = _when(point, metadata)
    rules.check_point_in_time(point.window, when)


def _when(point: store.ContinuousPoint, metadata: Mapping[str, str]) -> datetime:
    raw = metadata.get(rules.METADATA_KEY)
    if raw is None:
        if point.window is None:
            rules.check_point_in_time(None, point.updated_at)
        assert point.window is not None
        return point.window.latest
    return rules.parse_point_in_time(raw)


def _target_directory(deps: Deps, metadata: Mapping[str, str]) -> str:
    if "targetDsn" in metadata and TARGET_DIRECTORY not in metadata:
        raise InvalidInput(
            detail="a point-in-time restore writes a data directory: give targetDirectory "
            "(targetDsn restores snapshot points)"
        )
    raw = metadata.get(TARGET_DIRECTORY)
    if not raw:
        raise InvalidInput(detail="Metadata needs targetDirectory for a point-in-time restore")
    path = host_paths.check(raw, deps.path_policy, os.path.realpath)
    overwrite = str(metadata.get(OVERWRITE, "")).lower() == "true"
    if os.path.isdir(path) and os.listdir(path) and not overwrite:
        raise InvalidInput(
            detail=f"targetDirectory {path} is not empty (overwrite=true to replace)"
        )
    if os.path.exists(path) and not os.path.isdir(path):
        raise InvalidInput(detail=f"targetDirectory {path} is not a directory")
    user = pg_tools.server_user()
    if not pg_tools.accessible_by(user, path):
        raise InvalidInput(
            detail=f"Metadata.targetDirectory {path}: the {user.name} user cannot enter a "
            "parent directory (the restored cluster could not start there)"
        )
    return path


def restore(
    deps: Deps,
    rp: RecoveryPoint,
    vault: Record,
    metadata: Mapping[str, str],
    report: base.ProgressCallback,
) -> restorer.RestoreResult:
    """In the worker: check again, then base backup + WAL + recovery settings into the
    target directory."""
    point = find(deps, rp.arn)
    if point is None:
        raise InvalidInput(detail=f"{rp.arn} is not a continuous recovery point")
    target = _target_directory(deps, metadata)
    when = _when(point, metadata)
    rules.check_point_in_time(point.window, when)
    with catalog.db.read_transaction(deps.engine) as conn:
        pieces = store.pieces(conn, rp.arn)
    chosen = rules.base_for(pieces, when)
    if chosen is None:
        rules.check_point_in_time(None, when)
    assert chosen is not None
    wal = rules.wal_for(pieces, chosen)
    total = chosen.size + sum(p.size for p in wal)
    done = 0
    os.makedirs(target, mode=0o700, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".snowvault-base-", dir=target) as scratch:
        source = plugin_io.EngineSource(deps, vault, chosen.engine_id)
        source.to_directory(scratch, include=[], overwrite=True, progress=lambda p: None)
        pg.extract_base(os.path.join(scratch, "base.tar"), target)
        done += chosen.size
        report(base.Progress(done, total))
        bodies = _fetch_wal(deps, vault, rp.arn, chosen, scratch, wal)
        done += sum(p.size for p in wal)
        report(base.Progress(done, total))
        pg.write_recovery(target, bodies, when)
    return restorer.RestoreResult(1 + len(wal), done)


WAL_FETCH_ATTEMPTS = 5


def _fetch_wal(
    deps: Deps,
    vault: Record,
    rp_arn: str,
    chosen: rules.Piece,
    scratch: str,
    wal: list[rules.Piece],
) -> dict[str, str]:
    """Restore the WAL pieces into ``scratch``: name -> host file. The shipper replaces
    the partial segment while a restore runs (the old one is forgotten once the new one
    is in), so a piece that vanished is looked up again: its successor holds more."""
    bodies: dict[str, str] = {}
    for attempt in range(WAL_FETCH_ATTEMPTS):
        try:
            for piece in wal:
                if piece.name in bodies and piece.kind == rules.WAL:
                    continue
                source = plugin_io.EngineSource(deps, vault, piece.engine_id)
                source.to_directory(scratch, include=[], overwrite=True, progress=lambda p: None)
                bodies[piece.name] = os.path.join(scratch, piece.name)
            return bodies
        except engine_errors.RecoveryPointNotFound:
            if attempt == WAL_FETCH_ATTEMPTS - 1:
                raise
            with catalog.db.read_transaction(deps.engine) as conn:
                wal = rules.wal_for(store.pieces(conn, rp_arn), chosen)
            bodies = {k: v for k, v in bodies.items() if not k.endswith(pg.PARTIAL_SUFFIX)}
    return bodies


def forget_chain(conn: Any, rp_arn: str) -> list[str]:
    """DeleteRecoveryPoint / expiry of a continuous point: its rows go, and the engine
    ids of its pieces are returned for the caller to forget in the vault."""
    return store.delete(conn, rp_arn)
