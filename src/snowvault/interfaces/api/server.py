"""The whole HTTP face of a snowvault server: AWS Backup + the extension API.

    asgi_app = build_asgi(app)     # an ASGI app for uvicorn (run it with proxy_headers=False)

``trusted_proxies`` and ``max_body_bytes`` come from the server's config.json: no proxy
is trusted unless listed, and bodies above the limit answer 413 before they are read.

The CLI reaches this by name (``snowvault.interfaces.api.server:build_asgi``, the way
uvicorn loads apps), so the CLI and API packages never import each other.

Must not depend on the CLI or web interfaces.
"""

from __future__ import annotations

from starlette.types import ASGIApp

from snowvault.app import App
from snowvault.interfaces.api import (
    asgi,
    audit,
    errors,
    extension,
    handlers,
    health,
    metrics,
    sigv4,
    simulation_routes,
    sns,
)
from snowvault.interfaces.api.handlers import cloudtrail as cloudtrail_handlers
from snowvault.interfaces.api.handlers import kms as kms_handlers


def _lookup(app: App) -> sigv4.LookupSecret:
    def lookup(access_key_id: str) -> sigv4.Principal | None:
        found = app.lookup_key(access_key_id)
        if found is None:
            return None
        return sigv4.Principal(
            found.access_key_id, found.secret_access_key, found.account_id, found.principal_arn
        )

    return lookup


def _metrics(app: App) -> metrics.Metrics | None:
    """The metrics registry, served per ``metrics_address``: on the API endpoint (""),
    on its own ``HOST:PORT`` listener, or not at all ("off")."""
    address = app.config.metrics_address.strip()
    if address == "off":
        return None
    found = metrics.Metrics(app)
    if address:
        host, _, port = address.rpartition(":")
        found.serve_separately(host.strip("[]") or "127.0.0.1", int(port))
    return found


def build_asgi(app: App) -> ASGIApp:
    registry = _metrics(app)
    metrics_routes = registry.routes() if registry and not app.config.metrics_address else []
    return asgi.build_app(
        [
            asgi.ServiceEndpoint(handlers.MODEL_NAME, handlers.bind(app)),
            asgi.ServiceEndpoint(kms_handlers.MODEL_NAME, kms_handlers.bind(app)),
            asgi.ServiceEndpoint(cloudtrail_handlers.MODEL_NAME, cloudtrail_handlers.bind(app)),
        ],
        lookup_secret=_lookup(app),
        error_table=errors.ERROR_TABLE,
        clock=app.clock,
        signing_clock=app.signing_clock,
        extra_routes=[
            *health.routes(app),
            *metrics_routes,
            *sns.routes(app),
            *simulation_routes.routes(app),
            *extension.routes(app),
        ],
        observer=registry.observe if registry else None,
        raw_services=sns.services(app),
        auditor=audit.auditor(app) if app.config.trail else None,
        allowed_regions=app.regions,
        trusted_proxies=app.config.trusted_proxies,
        max_body_bytes=app.config.max_body_bytes,
    )
