"""CloudTrail's LookupEvents over the audit trail (``control/services/trail.py``).

    aws cloudtrail lookup-events \\
        --lookup-attributes AttributeKey=EventName,AttributeValue=DeleteRecoveryPoint

Only LookupEvents is served (signing name ``cloudtrail``): the caller's account and
region, filed records only (pending ones appear within a minute), newest first, the
last 90 days unless StartTime says otherwise, at most 50 a page. Attributes: EventId,
EventName, ReadOnly, Username, EventSource, AccessKeyId (the records name no resources,
so ResourceType/ResourceName match nothing). Authorized as ``cloudtrail:LookupEvents``
on ``*``.

Must not depend on the CLI or web interfaces.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from snowvault.app import App
from snowvault.control.services import authorization, trail
from snowvault.core.errors import InvalidInput
from snowvault.interfaces.api.asgi import Handler, RequestContext
from snowvault.interfaces.api.handlers.common import Params, caller

MODEL_NAME = "cloudtrail"
TRAIL_DIR = "trail"
DEFAULT_WINDOW = timedelta(days=90)
PAGE = 50


def lookup_events(app: App, ctx: RequestContext, params: Params) -> Mapping[str, Any]:
    attrs = params.get("LookupAttributes") or []
    if len(attrs) > 1:
        raise InvalidInput(detail="LookupAttributes takes one attribute")
    attribute = None
    if attrs:
        key, value = attrs[0]["AttributeKey"], attrs[0]["AttributeValue"]
        if key in ("ResourceType", "ResourceName"):
            return {"Events": []}  # the records name no resources
        if key not in trail.LOOKUP_ATTRIBUTES:
            raise InvalidInput(detail=f"LookupAttributes: {key} is not supported")
        attribute = (str(key), str(value))
    # the trail keeps wall-clock time (audit.py), also in --test-mode, where ctx.now is
    # the simulated clock: the default window ends at the wall clock's now
    end: datetime = params.get("EndTime") or app.signing_clock.now()
    start: datetime = params.get("StartTime") or end - DEFAULT_WINDOW
    if start > end:
        raise InvalidInput(detail="StartTime must not be after EndTime")
    size = min(int(params.get("MaxResults") or PAGE), PAGE)
    token = params.get("NextToken")
    offset = int(token) if isinstance(token, str) and token.isdigit() else 0
    found = trail.lookup(
        app.config.data_dir / TRAIL_DIR,
        account_id=ctx.account_id,
        region=ctx.region,
        attribute=attribute,
        start=start,
        end=end,
        limit=offset + size + 1,
    )
    page = found[offset : offset + size]
    out: dict[str, Any] = {"Events": [_event(r) for r in page]}
    if len(found) > offset + size:
        out["NextToken"] = str(offset + size)
    return out


def _event(rec: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "EventId": rec["eventID"],
        "EventName": rec["eventName"],
        "ReadOnly": str(rec["readOnly"]).lower(),
        "AccessKeyId": rec["userIdentity"].get("accessKeyId", ""),
        "EventTime": datetime.fromisoformat(rec["eventTime"].replace("Z", "+00:00")),
        "EventSource": rec["eventSource"],
        "Username": trail.username(rec),
        "Resources": [],
        "CloudTrailEvent": json.dumps(rec),
    }


HANDLERS = {"LookupEvents": lookup_events}


def _authorized(app: App, name: str, ctx: RequestContext, params: Params) -> Mapping[str, Any]:
    authorization.authorize_operation(app.deps, caller(ctx), name, params, service="cloudtrail")
    return HANDLERS[name](app, ctx, params)


def bind(app: App) -> dict[str, Handler]:
    return {name: partial(_authorized, app, name) for name in HANDLERS}
