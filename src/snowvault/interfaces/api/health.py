"""The probes: ``GET /health/live`` and ``GET /health/ready``, served without a signature.

    curl -fsS http://127.0.0.1:8765/health/live     # 200 {"status": "ok"} while the process serves
                                                    # (/health answers the same)
    curl -fsS http://127.0.0.1:8765/health/ready    # 200, or 503 with the failing checks

Unauthenticated on purpose (load balancers, systemd and Kubernetes probes cannot sign):
the routes are ``ExtraRoute(..., authenticated=False)`` and take no input. What they
reveal: that the process answers (live) and, per check, pass or fail with a fixed
one-line reason — ``catalog``, ``storage:<region>`` and ``worker`` — no paths, names,
versions or error texts of the catalog driver (see docs/security.md). Each ready probe
costs one catalog round trip and one tiny file written and removed per local region.

Must not depend on the CLI or web interfaces.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from snowvault.app import App
from snowvault.control.services import observability
from snowvault.interfaces.api.asgi import ExtraRoute, RequestContext

LIVE_PATH = "/health/live"
READY_PATH = "/health/ready"
_NO_CACHE = {"cache-control": "no-store"}


def routes(app: App) -> list[ExtraRoute]:
    async def live(request: Request, ctx: RequestContext | None) -> Response:
        return JSONResponse({"status": "ok"}, headers=_NO_CACHE)

    async def ready(request: Request, ctx: RequestContext | None) -> Response:
        checks = await run_in_threadpool(
            observability.readiness, app.deps, worker_alive=app.worker.alive()
        )
        ok = all(c.ok for c in checks)
        body = {
            "status": "ok" if ok else "unavailable",
            "checks": {c.name: {"ok": c.ok, "detail": c.detail} for c in checks},
        }
        return JSONResponse(body, status_code=200 if ok else 503, headers=_NO_CACHE)

    return [
        ExtraRoute("/health", live, methods=("GET", "HEAD"), authenticated=False),
        ExtraRoute(LIVE_PATH, live, methods=("GET", "HEAD"), authenticated=False),
        ExtraRoute(READY_PATH, ready, methods=("GET", "HEAD"), authenticated=False),
    ]
