"""The storage cost report: every recovery point of every vault (or of one account),
with the stored bytes only it holds, its share of shared bytes, and that share priced
by its storage class and region (:mod:`snowvault.control.model.cost`).

    points = cost.report(deps, clock.now(), model.PriceTable())
    model.group(points, "vault")

The bytes come from the repositories themselves (:func:`snowvault.engine.usage.
repository_usage`, under a shared repository lock, so a running prune is waited for),
the storage class from the point's lifecycle at ``now``. A point whose manifest the
repository no longer holds (being deleted) is left out.

Who may ask: the operator, on the server's host (``snowvault cost report --data-dir``);
it reads every account's vaults and writes nothing.

Must not depend on the scheduler, the composition root or any interface.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from snowvault.control import catalog
from snowvault.control.model import cost as model
from snowvault.control.model import lifecycle
from snowvault.control.model.jobs import RecoveryPoint
from snowvault.control.services import vaults
from snowvault.control.services.base import Deps
from snowvault.engine import locks, usage

LOCK_WAIT_SECONDS = 60.0


def _points(deps: Deps, vault_arn: str) -> Iterator[RecoveryPoint]:
    token = None
    while True:
        with catalog.db.read_transaction(deps.engine) as conn:
            page = catalog.recovery_points.list_by_vault(conn, vault_arn=vault_arn, token=token)
        yield from page.items
        token = page.next_token
        if token is None:
            return


def report(
    deps: Deps,
    now: datetime,
    prices: model.PriceTable,
    *,
    account_id: str | None = None,
    month: tuple[datetime, datetime] | None = None,
) -> list[model.PointCost]:
    """Every live recovery point (of ``account_id``'s vaults, or all), priced at ``now``;
    with ``month`` (:func:`model.parse_month`), what each costs in that month by its
    lifecycle (:func:`model.month_cost`; points not stored in it are left out). Points
    deleted before ``now`` are gone from the catalog: a past month lacks them."""
    out = []
    for vault in vaults.all_vaults(deps):
        if account_id is not None and vault["account_id"] != account_id:
            continue
        points = list(_points(deps, vault["arn"]))
        if not points:
            continue
        with (
            vaults.open_repository(deps, vault) as repo,
            locks.locked_repository(
                repo, deps.clock, exclusive=False, wait_seconds=LOCK_WAIT_SECONDS
            ),
        ):
            used = usage.repository_usage(repo)
        for rp in points:
            found = used.points.get(rp.engine_recovery_point_id or "")
            if found is None:
                continue
            priced = _priced(rp, found.attributed_bytes, now, prices, month)
            if priced is None:
                continue
            warm, cold = _gb_months(rp, found.attributed_bytes, now, month)
            out.append(
                model.PointCost(
                    recovery_point_arn=rp.arn,
                    account_id=rp.account_id,
                    region=rp.region,
                    vault_name=rp.backup_vault_name,
                    resource_arn=rp.resource_arn,
                    storage_class=priced[1],
                    unique_bytes=found.unique_bytes,
                    attributed_bytes=found.attributed_bytes,
                    referenced_bytes=found.referenced_bytes,
                    monthly_cost=priced[0],
                    backup_plan_id=rp.backup_plan_id,
                    warm_gb_months=warm,
                    cold_gb_months=cold,
                )
            )
    return out


def transfers(
    deps: Deps,
    *,
    account_id: str | None = None,
    month: tuple[datetime, datetime] | None = None,
) -> list[model.Transfer]:
    """The restore and copy jobs completed in ``month`` (all time without one), with
    the bytes each moved, keyed like their recovery point (its vault, resource, plan)."""
    since, until = month if month is not None else (None, None)
    out = []
    with catalog.db.read_transaction(deps.engine) as conn:
        moved = catalog.observability.transfers(conn, since, until)
        for kind, account, region, vault_arn, resource, point_arn, size in moved:
            if account_id is not None and account != account_id:
                continue
            rp = catalog.recovery_points.find(conn, point_arn)
            out.append(
                model.Transfer(
                    kind=kind,
                    account_id=account,
                    region=region,
                    vault_name=vault_arn.rsplit(":", 1)[-1],
                    resource_arn=resource or (rp.resource_arn if rp is not None else "-"),
                    recovery_point_arn=point_arn,
                    backup_plan_id=rp.backup_plan_id if rp is not None else None,
                    bytes=size,
                )
            )
    return out


def _gb_months(
    rp: RecoveryPoint, stored: float, now: datetime, month: tuple[datetime, datetime] | None
) -> tuple[float, float]:
    """(warm, cold) GB-months of a point: in ``month`` by its lifecycle, or a month at its
    storage class now."""
    gb = stored / model.GB
    if month is not None:
        shares = model.month_shares(month, rp.creation_date, rp.move_to_cold_at, rp.delete_at)
        return (0.0, 0.0) if shares is None else (gb * shares[0], gb * shares[1])
    storage = lifecycle.storage_class_at(rp.calculated_lifecycle, now)
    return (gb, 0.0) if storage == lifecycle.StorageClass.WARM else (0.0, gb)


def _priced(
    rp: RecoveryPoint,
    stored: float,
    now: datetime,
    prices: model.PriceTable,
    month: tuple[datetime, datetime] | None,
) -> tuple[float, str] | None:
    """(cost, storage class) of a point: a month's at its storage class now, or what it
    costs in ``month``; None if it is not stored then."""
    if month is not None:
        table = {name: prices.price(rp.region, name) for name in model.CLASSES}
        return model.month_cost(
            stored, month, rp.creation_date, rp.move_to_cold_at, rp.delete_at, table
        )
    storage = lifecycle.storage_class_at(rp.calculated_lifecycle, now)
    if storage == lifecycle.StorageClass.DELETED:
        return None
    return model.monthly_cost(stored, prices.price(rp.region, storage.value)), storage.value
