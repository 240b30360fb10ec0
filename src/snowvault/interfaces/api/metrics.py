"""``GET /metrics``: the server's numbers in Prometheus text format (prometheus_client).

    metrics = Metrics(app)                 # one registry per server (not the global one)
    asgi.build_app(..., observer=metrics.observe, extra_routes=metrics.routes())
    metrics.serve_separately("127.0.0.1", 9765)   # or: on its own address

Two sources. Requests are counted as they end (``observe``: the API hook, operation
names from the model only, so a caller cannot mint label values). Everything else is
read from the catalog at scrape time (``services.observability.snapshot``: aggregate or
capped queries, so a scrape's cost does not grow with the job history):

- ``snowvault_jobs{kind,account,region,vault,state}``: jobs by kind and state
- ``snowvault_job_bytes_transferred{...}``: sum of BytesTransferred of those jobs
- ``snowvault_job_duration_seconds{...}``: summary of the jobs finished in the last 24 h
- ``snowvault_vault_recovery_points`` / ``snowvault_vault_size_bytes{account,region,vault}``
- ``snowvault_vault_class_bytes{account,region,vault,storage_class}``: the same sizes
  split WARM / COLD (the points' lifecycle class)
- ``snowvault_agent_seen_age_seconds{account,host}``: seconds since an enrolled agent last
  called (since enrolment if never): agent liveness
- ``snowvault_vault_missing_manifests{account,region,vault}``: the integrity watch's count
- ``snowvault_vault_damaged_recovery_points{account,region,vault}``: points it found damaged
- ``snowvault_resource_last_backup_age_seconds{account,region,resource_arn,resource_type}``:
  seconds since the newest COMPLETED recovery point (since registration if none) — the
  number to alert on; ``snowvault_resource_backed_up`` is 0 for never-backed-up ones
- ``snowvault_scheduler_lag_seconds``: how late the earliest due rule is
- ``snowvault_notifications{state}``: the delivery outbox (PENDING piling up: a
  subscriber is down; FAILED: given up after 20 attempts)
- ``snowvault_worker_up``, ``snowvault_scheduler_up``, ``snowvault_catalog_up``
- ``snowvault_api_requests_total{service,operation,status}`` and
  ``snowvault_api_request_duration_seconds{service,operation}`` (histogram)

Unauthenticated: Prometheus scrapes without AWS signatures. The labels name accounts,
vaults and resource ARNs (no secrets, no data); bind it elsewhere
(``--metrics-address``) or turn it off where that is too much (docs/security.md).

Must not depend on the CLI or web interfaces.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric, SummaryMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from snowvault.app import App
from snowvault.control.services import observability
from snowvault.interfaces.api.asgi import ExtraRoute, RequestContext

log = logging.getLogger("snowvault.metrics")

PATH = "/metrics"
JOB_LABELS = ["kind", "account", "region", "vault", "state"]
VAULT_LABELS = ["account", "region", "vault"]
RESOURCE_LABELS = ["account", "region", "resource_arn", "resource_type"]


class _CatalogCollector(Collector):
    """Reads the catalog on every scrape (never cached, never between scrapes)."""

    def __init__(self, app: App) -> None:
        self.app = app

    def describe(self) -> list[Metric]:
        return []  # no catalog read at registration

    def collect(self) -> Iterator[Metric]:
        app = self.app
        yield _gauge(
            "snowvault_worker_up", "1 while the job runner threads run.", app.worker.alive()
        )
        yield _gauge(
            "snowvault_scheduler_up", "1 while the scheduler loop runs.", app.scheduler.alive()
        )
        try:
            snap = observability.snapshot(app.deps, app.clock.now())
        except Exception:  # a scrape must answer even when the catalog does not
            log.exception("metrics: the catalog could not be read")
            yield _gauge("snowvault_catalog_up", "1 when the scrape could read the catalog.", 0)
            return
        yield _gauge("snowvault_catalog_up", "1 when the scrape could read the catalog.", 1)
        yield from _jobs(snap)
        yield from _vaults(snap)
        yield from _resources(snap)
        yield from _classes_and_agents(snap)
        yield _gauge(
            "snowvault_scheduler_lag_seconds",
            "Seconds the earliest due backup rule is late (0 when none is).",
            snap.scheduler_lag_seconds,
        )
        outbox = GaugeMetricFamily(
            "snowvault_notifications",
            "Notification messages in the delivery outbox by state (PENDING, DELIVERED, FAILED).",
            labels=["state"],
        )
        for state in ("PENDING", "DELIVERED", "FAILED"):
            outbox.add_metric([state], snap.notifications.get(state, 0))
        yield outbox


def _classes_and_agents(snap: observability.Snapshot) -> Iterator[Metric]:
    classes = GaugeMetricFamily(
        "snowvault_vault_class_bytes",
        "Sum of BackupSizeInBytes of the vault's recovery points by storage class.",
        labels=[*VAULT_LABELS, "storage_class"],
    )
    for account, region, vault, storage_class, size in snap.class_sizes:
        classes.add_metric([account, region, vault, storage_class], size)
    yield classes
    seen = GaugeMetricFamily(
        "snowvault_agent_seen_age_seconds",
        "Seconds since the agent last called the server (since enrolment if never).",
        labels=["account", "host"],
    )
    for account, host, last_seen, enrolled in snap.agents:
        since = last_seen or enrolled
        seen.add_metric([account, host], max(0.0, (snap.now - since).total_seconds()))
    yield seen


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=float(value))


def _jobs(snap: observability.Snapshot) -> Iterator[Metric]:
    count = GaugeMetricFamily("snowvault_jobs", "Jobs by kind and state.", labels=JOB_LABELS)
    moved = GaugeMetricFamily(
        "snowvault_job_bytes_transferred",
        "Sum of BytesTransferred of the jobs by kind and state.",
        labels=JOB_LABELS,
    )
    for c in snap.job_counts:
        labels = [c.kind, c.account_id, c.region, c.vault, c.state]
        count.add_metric(labels, c.count)
        moved.add_metric(labels, c.bytes)
    totals: dict[tuple[str, ...], list[float]] = {}
    for job in snap.finished_jobs:
        key: tuple[str, ...] = (job.kind, job.account_id, job.region, job.vault, job.state)
        entry = totals.setdefault(key, [0, 0.0])
        entry[0] += 1
        entry[1] += job.seconds
    durations = SummaryMetricFamily(
        "snowvault_job_duration_seconds",
        "Run time (start to completion) of the jobs finished in the last 24 hours.",
        labels=JOB_LABELS,
    )
    for key, (n, total) in sorted(totals.items()):
        durations.add_metric(list(key), int(n), total)
    yield from (count, moved, durations)


def _vaults(snap: observability.Snapshot) -> Iterator[Metric]:
    points = GaugeMetricFamily(
        "snowvault_vault_recovery_points", "Recovery points in the vault.", labels=VAULT_LABELS
    )
    size = GaugeMetricFamily(
        "snowvault_vault_size_bytes",
        "Sum of BackupSizeInBytes of the vault's recovery points.",
        labels=VAULT_LABELS,
    )
    for v in snap.vault_sizes:
        labels = [v.account_id, v.region, v.vault]
        points.add_metric(labels, v.recovery_points)
        size.add_metric(labels, v.bytes)
    missing = GaugeMetricFamily(
        "snowvault_vault_missing_manifests",
        "Recovery points whose manifest the integrity watch found missing from the store "
        "at the vault's last reconciliation.",
        labels=VAULT_LABELS,
    )
    for account, region, vault, count in snap.missing_manifests:
        missing.add_metric([account, region, vault], count)
    damaged = GaugeMetricFamily(
        "snowvault_vault_damaged_recovery_points",
        "Recovery points the integrity watch found damaged (a pack they need does not read "
        "back whole).",
        labels=VAULT_LABELS,
    )
    for account, region, vault, count in snap.damaged_points:
        damaged.add_metric([account, region, vault], count)
    yield from (points, size, missing, damaged)


def _resources(snap: observability.Snapshot) -> Iterator[Metric]:
    age = GaugeMetricFamily(
        "snowvault_resource_last_backup_age_seconds",
        "Seconds since the resource's newest COMPLETED recovery point (since its "
        "registration if it has none).",
        labels=RESOURCE_LABELS,
    )
    backed_up = GaugeMetricFamily(
        "snowvault_resource_backed_up",
        "1 when the resource has at least one COMPLETED recovery point.",
        labels=RESOURCE_LABELS,
    )
    for r in snap.resources:
        labels = [r.account_id, r.region, r.resource_arn, r.resource_type]
        age.add_metric(labels, observability.backup_age_seconds(r, snap.now))
        backed_up.add_metric(labels, 1 if r.last_success else 0)
    yield from (age, backed_up)


class Metrics:
    """One server's registry: request counters fed by the API, catalog numbers on scrape."""

    def __init__(self, app: App) -> None:
        self.registry = CollectorRegistry()
        self._requests = Counter(
            "snowvault_api_requests",
            "API requests by service, operation and HTTP status.",
            ["service", "operation", "status"],
            registry=self.registry,
        )
        self._latency = Histogram(
            "snowvault_api_request_duration_seconds",
            "API request latency by service and operation.",
            ["service", "operation"],
            registry=self.registry,
        )
        self.registry.register(_CatalogCollector(app))
        self._server: Any = None

    def observe(self, service: str, operation: str, status: int, seconds: float) -> None:
        self._requests.labels(service, operation, str(status)).inc()
        self._latency.labels(service, operation).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def routes(self) -> list[ExtraRoute]:
        async def scrape(request: Request, ctx: RequestContext | None) -> Response:
            body = await run_in_threadpool(self.render)
            return Response(body, headers={"content-type": CONTENT_TYPE_LATEST})

        return [ExtraRoute(PATH, scrape, methods=("GET",), authenticated=False)]

    def serve_separately(self, host: str, port: int) -> tuple[Any, threading.Thread]:
        """Serve the registry on its own address (prometheus_client's HTTP server)."""
        server, thread = start_http_server(port, host, registry=self.registry)
        self._server = server
        return server, thread

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server = None
