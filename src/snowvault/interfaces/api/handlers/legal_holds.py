"""Legal hold operations: Create/Get/List/CancelLegalHold, ListRecoveryPointsByLegalHold.

Must not depend on the CLI or web interfaces.
"""

from __future__ import annotations

from typing import Any

from snowvault.app import App
from snowvault.control.services import legal_holds, paging
from snowvault.interfaces.api.asgi import RequestContext
from snowvault.interfaces.api.handlers import views
from snowvault.interfaces.api.handlers.common import (
    AppHandler,
    Out,
    Params,
    caller,
    drop_none,
    page_out,
)


def _summary(row: dict[str, Any]) -> Out:
    return drop_none(
        {
            "Title": row["title"],
            "Status": row["status"],
            "Description": row["description"],
            "LegalHoldId": row["legal_hold_id"],
            "LegalHoldArn": row["legal_hold_arn"],
            "CreationDate": row["creation_date"],
            "CancellationDate": row["cancellation_date"],
        }
    )


def create(app: App, ctx: RequestContext, params: Params) -> Out:
    row = legal_holds.create(
        app.deps,
        caller(ctx),
        title=params.get("Title", ""),
        description=params.get("Description", ""),
        selection=legal_holds.selection_from_api(params.get("RecoveryPointSelection")),
        idempotency_token=params.get("IdempotencyToken"),
        tags=params.get("Tags"),
    )
    out = _summary(row)
    out.pop("CancellationDate", None)
    out["RecoveryPointSelection"] = legal_holds.selection_to_api(row)
    return out


def get(app: App, ctx: RequestContext, params: Params) -> Out:
    row = legal_holds.get(app.deps, caller(ctx), params["LegalHoldId"])
    out = _summary(row)
    out.update(
        drop_none(
            {
                "CancelDescription": row["cancel_description"],
                "RetainRecordUntil": row["retain_record_until"],
            }
        )
    )
    out["RecoveryPointSelection"] = legal_holds.selection_to_api(row)
    return out


def list_holds(app: App, ctx: RequestContext, params: Params) -> Out:
    page = legal_holds.list_holds(
        app.deps, caller(ctx), limit=params.get("MaxResults"), token=params.get("NextToken")
    )
    return page_out("LegalHolds", [_summary(r) for r in page.items], page.next_token)


def cancel(app: App, ctx: RequestContext, params: Params) -> Out:
    legal_holds.cancel(
        app.deps,
        caller(ctx),
        params["LegalHoldId"],
        params.get("CancelDescription", ""),
        params.get("RetainRecordInDays"),
    )
    return {}


def recovery_points(app: App, ctx: RequestContext, params: Params) -> Out:
    points, next_token = paging.page(
        "legal-hold-points",
        legal_holds.recovery_points(app.deps, caller(ctx), params["LegalHoldId"]),
        key=lambda p: p.arn,
        limit=params.get("MaxResults"),
        token=params.get("NextToken"),
    )
    return page_out("RecoveryPoints", [views.recovery_point_member(p) for p in points], next_token)


HANDLERS: dict[str, AppHandler] = {
    "CreateLegalHold": create,
    "GetLegalHold": get,
    "ListLegalHolds": list_holds,
    "CancelLegalHold": cancel,
    "ListRecoveryPointsByLegalHold": recovery_points,
}
