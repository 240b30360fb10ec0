"""The test-mode simulation's API route (``--test-mode`` only): move the server's clock.

    POST /_snowvault/clock
    {"advance_seconds": 86400}            or      {"now": "2026-02-05T06:00:00Z"}
    -> {"Now": "...", "Steps": 3, "JobsRun": 2, "JobsCreated": 2, "JobsExpired": 0,
        "JobsAborting": 0, "MovedToCold": 0, "RecoveryPointsExpired": 0}

The clock never goes back (400). Before answering, the server steps through every rule
occurrence and lifecycle date up to the target, creating jobs, running them, expiring
and pruning (:mod:`snowvault.control.scheduler.simulation`). The simulated time drives
schedules, windows, lifecycles and leases only: SigV4 is checked against the wall
clock, so clients keep signing with real time after a move.

Who may ask: anyone who reaches a --test-mode server (the route is not signed, as test
harnesses call it with plain HTTP); bounded like every other route (body size limit,
strict JSON). Without ``--test-mode`` it is not served (the AWS route answers 404).

Must not depend on the CLI or web interfaces.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from snowvault.app import App
from snowvault.interfaces.api import errors
from snowvault.interfaces.api.asgi import ExtraRoute, RequestContext

PATH = "/_snowvault/clock"


def _invalid(message: str) -> errors.ApiError:
    return errors.ApiError("InvalidParameterValueException", message)


def target(doc: Any, now: datetime) -> datetime:
    """The instant a clock request asks for."""
    if not isinstance(doc, dict) or len(doc.keys() & {"advance_seconds", "now"}) != 1:
        raise _invalid('Give exactly one of {"advance_seconds": N} or {"now": ISO-8601}.')
    if "advance_seconds" in doc:
        seconds = doc["advance_seconds"]
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
            raise _invalid("advance_seconds must be a number >= 0.")
        return now + timedelta(seconds=seconds)
    try:
        when = datetime.fromisoformat(str(doc["now"]).replace("Z", "+00:00"))
    except ValueError:
        raise _invalid("now must be an ISO-8601 timestamp with a zone.") from None
    if when.tzinfo is None:
        raise _invalid("now must carry a time zone (e.g. Z).")
    return when


def routes(app: App) -> list[ExtraRoute]:
    """The clock route in test mode; nothing otherwise (the AWS route then answers)."""
    if not app.test_mode:
        return []

    async def clock(request: Request, ctx: RequestContext | None) -> Response:
        try:
            doc = json.loads(await request.body() or b"{}")
        except ValueError:
            raise _invalid("The body must be JSON.") from None
        result = await run_in_threadpool(app.advance_clock, target(doc, app.clock.now()))
        t = result.ticks
        return JSONResponse(
            {
                "Now": result.now.isoformat(),
                "Steps": result.steps,
                "JobsRun": result.jobs_run,
                "JobsCreated": len(t.jobs_created),
                "JobsExpired": len(t.jobs_expired),
                "JobsAborting": len(t.jobs_aborting),
                "MovedToCold": len(t.moved_to_cold),
                "RecoveryPointsExpired": len(t.recovery_points_expired),
            }
        )

    return [ExtraRoute(PATH, clock, methods=("POST",), authenticated=False)]
