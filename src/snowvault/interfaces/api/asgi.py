"""The ASGI application: HTTP in, (ctx, params) to a handler, dict out, HTTP back.

    app = build_app(
        [ServiceEndpoint("backup", {"ListBackupVaults": list_vaults})],
        lookup_secret=keys.lookup,
        clock=SystemClock(),
        allowed_regions={"us-east-1"},
    )

Each request: SigV4 is verified (the credential scope names the service and region),
the service's router finds the operation (``X-Amz-Target`` for the json protocol), the
input is parsed and validated from the model, the handler runs in a thread pool, and
its dict (or a snowvault error, through the one error table) becomes the response.
Every response carries ``x-amzn-RequestId``; every request is logged once.

Holds no business rules. Depends on starlette and the sibling api modules; must not
depend on the CLI or web interfaces, nor on services directly (handlers are injected).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, quote

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from snowvault.core.clock import Clock
from snowvault.interfaces.api import errors, model, routing, shapes, sigv4

log = logging.getLogger("snowvault.api")

Handler = Callable[["RequestContext", dict[str, Any]], Mapping[str, Any] | None]
ExtraEndpoint = Callable[[Request, "RequestContext | None"], Awaitable[Response]]

REGION_ERROR_CODE = "InvalidRequestException"
_METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS")


@dataclass(frozen=True)
class ServiceEndpoint:
    """One AWS service served here: its botocore model name and its handler table."""

    model_name: str
    handlers: Mapping[str, Handler]


@dataclass(frozen=True)
class RequestContext:
    """Who asked, where, when, for what; passed to every handler."""

    request_id: str
    account_id: str
    region: str
    service: str
    principal_arn: str
    access_key_id: str
    source_ip: str
    now: datetime
    operation: str


@dataclass(frozen=True)
class ExtraRoute:
    """A non-AWS route (``/_snowvault/...``), SigV4-signed for ``service`` unless not."""

    path: str
    endpoint: ExtraEndpoint
    methods: Sequence[str] = ("GET",)
    authenticated: bool = True
    service: str = "snowvault"


@dataclass
class _Service:
    model: model.ServiceModel
    handlers: Mapping[str, Handler]
    rest_router: routing.RestJsonRouter | None = None
    json_router: routing.JsonTargetRouter | None = None
    missing_code: str = "ValidationException"
    invalid_code: str = "ValidationException"

    @classmethod
    def build(cls, endpoint: ServiceEndpoint) -> _Service:
        m = model.load(endpoint.model_name)
        unknown = set(endpoint.handlers) - set(m.operations)
        if unknown:
            raise ValueError(f"{m.name}: handlers for operations not in the model: {unknown}")
        svc = cls(m, dict(endpoint.handlers))
        if m.protocol == "json":
            svc.json_router = routing.JsonTargetRouter(m)
        else:
            svc.rest_router = routing.RestJsonRouter(m)
        if m.defines_error("MissingParameterValueException"):
            svc.missing_code = "MissingParameterValueException"
        if m.defines_error("InvalidParameterValueException"):
            svc.invalid_code = "InvalidParameterValueException"
        return svc


@dataclass
class _Exchange:
    """What one request has revealed so far; filled in as it is processed."""

    request_id: str
    started: float
    service: _Service | None = None
    operation: str = "-"


class _Api:
    def __init__(
        self,
        services: Sequence[ServiceEndpoint],
        lookup_secret: sigv4.LookupSecret,
        clock: Clock,
        allowed_regions: Collection[str] | None,
        error_table: errors.ErrorTable,
    ) -> None:
        self.services: dict[str, _Service] = {}
        self.targets: dict[str, _Service] = {}
        for endpoint in services:
            svc = _Service.build(endpoint)
            if svc.model.signing_name in self.services:
                raise ValueError(f"service {svc.model.signing_name} is registered twice")
            self.services[svc.model.signing_name] = svc
            if svc.model.target_prefix:
                self.targets[svc.model.target_prefix] = svc
        self.lookup_secret = lookup_secret
        self.clock = clock
        self.allowed_regions = frozenset(allowed_regions) if allowed_regions else None
        self.error_table = error_table

    # -- the AWS endpoint -----------------------------------------------------------------

    async def endpoint(self, request: Request) -> Response:
        ex = _Exchange(str(uuid.uuid4()), self.clock.monotonic())
        try:
            response = await self._serve(request, ex)
        except Exception as exc:  # every failure becomes an AWS error response
            response = self._error_response(exc, ex)
        response.headers["x-amzn-RequestId"] = ex.request_id
        self._log(request, ex, response.status_code)
        return response

    async def _serve(self, request: Request, ex: _Exchange) -> Response:
        body = await request.body()
        now = self.clock.now()
        verified = self.authenticate(request, body, now, None)
        svc = self._service_for(request, verified)
        ex.service = svc
        self.check_region(verified.region)
        query = parse_qsl(request.url.query, keep_blank_values=True)
        op, labels = self._route(svc, request, query, ex)
        handler = svc.handlers.get(op.name)
        if handler is None:
            raise errors.ApiError(
                "UnknownOperationException",
                f"Operation {op.name} of {svc.model.name} is not implemented by this server.",
            )
        located: dict[str, object] = {}
        if svc.rest_router is not None:
            located = routing.gather_rest_input(op, labels, query, request.headers)
        params = self._parse(svc, op, located, body)
        ctx = _context(ex.request_id, verified, request, now, op.name)
        result = await run_in_threadpool(handler, ctx, params)
        out = shapes.serialize_output(op, result, svc.model.protocol)
        headers = {**out.headers, "content-type": svc.model.content_type}
        return Response(out.body, out.status, headers)

    def authenticate(
        self, request: Request, body: bytes, now: datetime, service: str | None
    ) -> sigv4.Verified:
        signed = sigv4.SignedRequest(
            method=request.method,
            raw_path=_raw_path(request),
            raw_query=request.scope.get("query_string", b"").decode("latin-1"),
            headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw],
            body=body,
        )
        try:
            return sigv4.verify(signed, self.lookup_secret, now, expected_service=service)
        except sigv4.AuthError as exc:
            raise errors.ApiError(exc.code, exc.message, exc.status) from None

    def check_region(self, region: str) -> None:
        if self.allowed_regions is not None and region not in self.allowed_regions:
            served = ", ".join(sorted(self.allowed_regions))
            raise errors.ApiError(
                REGION_ERROR_CODE,
                f"Region '{region}' is not served by this endpoint (it serves: {served}).",
            )

    def _service_for(self, request: Request, verified: sigv4.Verified) -> _Service:
        target = request.headers.get("x-amz-target")
        svc = self.services.get(verified.service)
        if target is not None:
            by_target = self.targets.get(target.rpartition(".")[0])
            svc = by_target if by_target is svc else None
        if svc is None:
            served = ", ".join(sorted(self.services))
            raise errors.ApiError(
                "InvalidSignatureException",
                f"Credential should be scoped to a service served here ({served}), "
                f"not '{verified.service}'.",
                403,
            )
        return svc

    def _route(
        self,
        svc: _Service,
        request: Request,
        query: Sequence[tuple[str, str]],
        ex: _Exchange,
    ) -> tuple[model.Operation, dict[str, str]]:
        if svc.json_router is not None:
            target = request.headers.get("x-amz-target", "")
            op = svc.json_router.match(target)
            ex.operation = routing.operation_name_from_target(target) or "-"
            if op is None:
                raise errors.ApiError("UnknownOperationException", f"Unknown operation {target!r}.")
            return op, {}
        assert svc.rest_router is not None
        raw_path = _raw_path(request)
        found = svc.rest_router.match(request.method, raw_path, dict(query))
        if found is None:
            raise errors.ApiError(
                "UnknownOperationException",
                f"No {svc.model.name} operation matches {request.method} {raw_path}.",
            )
        ex.operation = found.operation.name
        return found.operation, found.labels

    @staticmethod
    def _parse(
        svc: _Service, op: model.Operation, located: Mapping[str, object], body: bytes
    ) -> dict[str, Any]:
        document = _json_body(body) if op.method != "GET" else {}
        try:
            return shapes.parse_input(op.input, located, document)
        except shapes.InputError as exc:
            code = svc.missing_code if exc.kind == "missing" else svc.invalid_code
            raise errors.ApiError(code, exc.message) from None

    # -- errors and logging -----------------------------------------------------------------

    def _error_response(self, exc: Exception, ex: _Exchange) -> Response:
        error = errors.to_api_error(exc, self.error_table)
        if error.status >= 500:
            log.error("request_id=%s op=%s failed", ex.request_id, ex.operation, exc_info=exc)
        content_type = ex.service.model.content_type if ex.service else "application/json"
        headers = {**errors.error_headers(error), "content-type": content_type}
        return Response(shapes.dumps(errors.error_body(error)), error.status, headers)

    def _log(self, request: Request, ex: _Exchange, status: int) -> None:
        elapsed_ms = (self.clock.monotonic() - ex.started) * 1000
        service = ex.service.model.name if ex.service else "-"
        log.info(
            "request_id=%s service=%s op=%s method=%s status=%d duration_ms=%.2f",
            ex.request_id,
            service,
            ex.operation,
            request.method,
            status,
            elapsed_ms,
        )

    # -- extra routes ----------------------------------------------------------------------------

    def wrap_extra(self, route: ExtraRoute) -> Route:
        async def endpoint(request: Request) -> Response:
            ex = _Exchange(str(uuid.uuid4()), self.clock.monotonic(), operation=route.path)
            try:
                ctx = None
                if route.authenticated:
                    now = self.clock.now()
                    body = await request.body()
                    verified = self.authenticate(request, body, now, route.service)
                    self.check_region(verified.region)
                    ctx = _context(ex.request_id, verified, request, now, route.path)
                response = await route.endpoint(request, ctx)
            except Exception as exc:
                response = self._error_response(exc, ex)
            response.headers["x-amzn-RequestId"] = ex.request_id
            self._log(request, ex, response.status_code)
            return response

        return Route(route.path, endpoint, methods=list(route.methods))


def _raw_path(request: Request) -> str:
    raw = request.scope.get("raw_path")
    if raw:
        return str(raw.decode("latin-1"))
    return quote(request.url.path, safe="/~!$&'()*+,;=:@%")


def _json_body(body: bytes) -> dict[str, Any]:
    if not body.strip():
        return {}
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise errors.ApiError(
            "SerializationException", f"The request body is not valid JSON: {exc}"
        ) from None
    if not isinstance(document, dict):
        raise errors.ApiError("SerializationException", "The request body must be a JSON object.")
    return document


def _context(
    request_id: str, verified: sigv4.Verified, request: Request, now: datetime, operation: str
) -> RequestContext:
    return RequestContext(
        request_id=request_id,
        account_id=verified.principal.account_id,
        region=verified.region,
        service=verified.service,
        principal_arn=verified.principal.arn,
        access_key_id=verified.principal.access_key_id,
        source_ip=request.client.host if request.client else "",
        now=now,
        operation=operation,
    )


def build_app(
    services: Sequence[ServiceEndpoint],
    lookup_secret: sigv4.LookupSecret,
    clock: Clock,
    extra_routes: Sequence[ExtraRoute] = (),
    *,
    allowed_regions: Collection[str] | None = None,
    error_table: errors.ErrorTable = errors.ERROR_TABLE,
) -> Starlette:
    """The Starlette app serving ``services`` (and ``extra_routes`` first)."""
    api = _Api(services, lookup_secret, clock, allowed_regions, error_table)
    routes: list[BaseRoute] = [api.wrap_extra(r) for r in extra_routes]
    routes.append(Route("/{path:path}", api.endpoint, methods=list(_METHODS)))
    return Starlette(routes=routes)
