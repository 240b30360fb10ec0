"""Legal holds: CreateLegalHold, GetLegalHold, ListLegalHolds, CancelLegalHold,
ListRecoveryPointsByLegalHold, and the holds the delete/expiry checks consult.

A hold's selection is a predicate (model.legal_holds.covers), so recovery points created
after the hold that match it are covered too; nothing is copied at creation. Holds are
scoped to the account and region they were created in.

    hold = legal_holds.create(deps, caller, title="Audit", description="SEC",
                              selection=Selection(vault_names=("main",)))
    legal_holds.cancel(deps, caller, hold["legal_hold_id"], "closed", None)

Must not depend on the scheduler, the composition root or any interface.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from snowvault.control import catalog
from snowvault.control.catalog.db import Record
from snowvault.control.model import jobs
from snowvault.control.model import legal_holds as model
from snowvault.control.services.base import Caller, Deps
from snowvault.control.services.errors import HoldNotCancelable, QuotaExceeded
from snowvault.core import arn as arns
from snowvault.core import ids
from snowvault.core.errors import InvalidInput

MAX_HOLDS = 50
"""Legal holds of an account (in a region) that still restrain points: AWS Backup's quota."""

# ---------------------------------------------------------------------- conversions


def _date(value: Any, what: str) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise InvalidInput(detail=f"{what} must be a timestamp")
    return value


def selection_from_api(doc: dict[str, Any] | None) -> model.Selection:
    """RecoveryPointSelection (API shape, timestamps already parsed) -> model."""
    doc = doc or {}
    dates = doc.get("DateRange")
    date_range = None
    if dates:
        date_range = model.DateRange(
            _date(dates.get("FromDate"), "DateRange.FromDate"),
            _date(dates.get("ToDate"), "DateRange.ToDate"),
        )
    return model.Selection(
        tuple(doc.get("VaultNames") or ()), tuple(doc.get("ResourceIdentifiers") or ()), date_range
    )


def _selection_to_json(sel: model.Selection) -> dict[str, Any]:
    out: dict[str, Any] = {
        "VaultNames": list(sel.vault_names),
        "ResourceIdentifiers": list(sel.resource_identifiers),
    }
    if sel.date_range is not None:
        out["DateRange"] = {
            "FromDate": sel.date_range.from_date.isoformat(),
            "ToDate": sel.date_range.to_date.isoformat(),
        }
    return out


def _selection_from_json(doc: dict[str, Any]) -> model.Selection:
    dates = doc.get("DateRange")
    date_range = None
    if dates:
        date_range = model.DateRange(
            datetime.fromisoformat(dates["FromDate"]), datetime.fromisoformat(dates["ToDate"])
        )
    return model.Selection(
        tuple(doc.get("VaultNames") or ()), tuple(doc.get("ResourceIdentifiers") or ()), date_range
    )


def to_model(row: Record) -> model.LegalHold:
    return model.LegalHold(
        row["legal_hold_id"],
        row["title"],
        row["description"],
        row["status"],
        row["creation_date"],
        _selection_from_json(row["selection"]),
        row["cancellation_date"],
        row["cancel_description"],
        row["retain_record_until"],
    )


def selection_to_api(row: Record) -> dict[str, Any]:
    """The stored selection in the API's shape (datetimes for the serializer)."""
    sel = _selection_from_json(row["selection"])
    out: dict[str, Any] = {}
    if sel.vault_names:
        out["VaultNames"] = list(sel.vault_names)
    if sel.resource_identifiers:
        out["ResourceIdentifiers"] = list(sel.resource_identifiers)
    if sel.date_range is not None:
        out["DateRange"] = {
            "FromDate": sel.date_range.from_date,
            "ToDate": sel.date_range.to_date,
        }
    return out


def restraining(conn: Connection, *, account_id: str, region: str) -> list[model.LegalHold]:
    """The holds of an account and region that still restrain recovery points."""
    rows = catalog.legal_holds.list_restraining(conn, account_id=account_id, region=region)
    return [to_model(r) for r in rows]


# ------------------------------------------------------------------------ operations


def hold_arn(caller: Caller, hold_id: str) -> str:
    return arns.build("backup", caller.region, caller.account_id, f"legal-hold:{hold_id}")


def create(
    deps: Deps,
    caller: Caller,
    *,
    title: str,
    description: str,
    selection: model.Selection,
    idempotency_token: str | None = None,
    tags: dict[str, str] | None = None,
) -> Record:
    """CreateLegalHold: ACTIVE at once; the same IdempotencyToken returns the first hold.
    At most :data:`MAX_HOLDS` holds that still restrain points (AWS Backup's quota, not
    adjustable there either: LimitExceededException); a cancelled one frees its place."""
    hold_id = ids.new_uuid()
    hold = model.new_legal_hold(hold_id, title, description, selection, caller.now)
    with catalog.db.transaction(deps.engine) as conn:
        if idempotency_token:
            seen = catalog.legal_holds.find_by_token(
                conn, account_id=caller.account_id, token=idempotency_token
            )
            if seen is not None:
                return seen
        held = catalog.legal_holds.list_restraining(
            conn, account_id=caller.account_id, region=caller.region
        )
        if len(held) >= MAX_HOLDS:
            raise QuotaExceeded(
                what=f"account {caller.account_id} in {caller.region}",
                limit=MAX_HOLDS,
                items="legal holds",
            )
        catalog.tags.tag(conn, hold_arn(caller, hold_id), dict(tags or {}))
        return catalog.legal_holds.create(
            conn,
            legal_hold_id=hold_id,
            legal_hold_arn=hold_arn(caller, hold_id),
            account_id=caller.account_id,
            region=caller.region,
            title=hold.title,
            description=hold.description,
            status=hold.status,
            selection=_selection_to_json(hold.selection),
            idempotency_token=idempotency_token,
            creation_date=hold.creation_date,
        )


def get(deps: Deps, caller: Caller, hold_id: str) -> Record:
    with catalog.db.transaction(deps.engine) as conn:
        return catalog.legal_holds.get(conn, hold_id, account_id=caller.account_id)


def list_holds(
    deps: Deps, caller: Caller, *, limit: int | None = None, token: str | None = None
) -> catalog.pagination.Page:
    with catalog.db.transaction(deps.engine) as conn:
        return catalog.legal_holds.list_holds(
            conn, account_id=caller.account_id, region=caller.region, limit=limit, token=token
        )


def cancel(
    deps: Deps,
    caller: Caller,
    hold_id: str,
    cancel_description: str,
    retain_record_in_days: int | None,
) -> None:
    """CancelLegalHold: CANCELED now; the points it held are released (answers 201)."""
    with catalog.db.transaction(deps.engine) as conn:
        hold = to_model(catalog.legal_holds.get(conn, hold_id, account_id=caller.account_id))
        decision = model.can_cancel(hold)
        if not decision.allowed:
            raise HoldNotCancelable(detail=decision.message)
        done = model.cancel(hold, cancel_description, retain_record_in_days, caller.now)
        catalog.legal_holds.update(
            conn,
            hold_id,
            status=done.status,
            cancellation_date=done.cancellation_date,
            cancel_description=done.cancel_description,
            retain_record_until=done.retain_record_until,
        )


def recovery_points(deps: Deps, caller: Caller, hold_id: str) -> list[jobs.RecoveryPoint]:
    """ListRecoveryPointsByLegalHold: the points of the account and region it covers."""
    with catalog.db.transaction(deps.engine) as conn:
        hold = to_model(catalog.legal_holds.get(conn, hold_id, account_id=caller.account_id))
        out: list[jobs.RecoveryPoint] = []
        for vault in _vaults(conn, caller):
            if hold.selection.vault_names and vault["name"] not in hold.selection.vault_names:
                continue
            out.extend(_covered(conn, hold, vault))
    return out


def _vaults(conn: Connection, caller: Caller) -> Iterator[Record]:
    """Every vault of the caller's account and region, page by page (a hold covers the
    vaults past the first thousand too)."""
    token = None
    while True:
        page = catalog.vaults.list_vaults(
            conn, account_id=caller.account_id, region=caller.region, token=token
        )
        yield from page.items
        token = page.next_token
        if token is None:
            return


def _covered(conn: Connection, hold: model.LegalHold, vault: Record) -> list[jobs.RecoveryPoint]:
    out: list[jobs.RecoveryPoint] = []
    token = None
    while True:
        page = catalog.recovery_points.list_by_vault(conn, vault_arn=vault["arn"], token=token)
        for rp in page.items:
            facts = model.RecoveryPointFacts(
                rp.backup_vault_name, rp.resource_arn, rp.creation_date
            )
            if model.covers(hold, facts):
                out.append(rp)
        token = page.next_token
        if token is None:
            return out


def purge_records(deps: Deps, now: datetime) -> int:
    """Sweeper: forget canceled holds whose RetainRecordInDays has passed."""
    with catalog.db.transaction(deps.engine) as conn:
        return catalog.legal_holds.purge_records(conn, before=now)
