"""The ASGI application: HTTP in, (ctx, params) to a handler, dict out, HTTP back.

    app = build_app(
        [ServiceEndpoint("backup", {"ListBackupVaults": list_vaults})],
        lookup_secret=keys.lookup,
        clock=SystemClock(),           # the request time handlers see
        signing_clock=SystemClock(),   # SigV4 freshness (default: clock)
        allowed_regions={"us-east-1"},
        trusted_proxies=(),            # aws:SourceIp is the TCP peer
        max_body_bytes=4 * 1024 * 1024,
    )

Each request, in this order (cheap refusals first, nothing costly for a stranger):

1. the target is parsed ONCE from the raw bytes (``wire.parse_target``); what SigV4
   would read differently from the router is refused (400 ValidationException);
2. a declared Content-Length above ``max_body_bytes`` answers 413 at once;
3. SigV4 on the headers alone (``sigv4.begin``): Authorization, scope, date, a known
   key, the behaviour-selecting headers signed — before any body byte is read;
4. the body is read streaming and cut at ``max_body_bytes`` (413), then the signature
   over it is checked (``sigv4.finish``);
5. the service's router finds the operation from the same parsed target
   (``X-Amz-Target`` for the json protocol); the JSON body is parsed strictly
   (``wire.json_document``: depth, duplicates, surrogates, NUL, number range) and
   validated from the model; the handler runs in a thread pool; its dict (or a
   snowvault error, through the one error table) becomes the response.

Who may ask: anyone; what a caller reaches is decided by the handlers with the
verified :class:`RequestContext`. ``source_ip`` is the TCP peer; ``X-Forwarded-For``
counts only when the peer is in ``trusted_proxies`` (``wire.source_ip``). Every
response carries ``x-amzn-RequestId``; every request is logged once with the account,
principal ARN, source IP and a keyed digest of the parsed parameters (``params=``:
equal for equal inputs within one process, revealing nothing of them).

Extra routes (``/_snowvault/...``) are matched on the same decoded segments and go
through the same limits, signature and JSON checks before their endpoint runs.

Holds no business rules. Depends on starlette and the sibling api modules; must not
depend on the CLI or web interfaces, nor on services directly (handlers are injected).
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from snowvault.core.clock import Clock
from snowvault.engine.crypto import primitives
from snowvault.interfaces.api import errors, model, routing, shapes, sigv4, wire

log = logging.getLogger("snowvault.api")

Handler = Callable[["RequestContext", dict[str, Any]], Mapping[str, Any] | None]
ExtraEndpoint = Callable[[Request, "RequestContext | None"], Awaitable[Response]]
ContextFor = Callable[[str], "RequestContext"]
RawEndpoint = Callable[[Request, bytes, ContextFor], Awaitable[Response]]
"""A service whose protocol the model router does not speak (SNS's query protocol):
called after SigV4 verified the request for its signing name, with the body and a
function that makes the RequestContext once the endpoint knows the operation (which it
must have checked against its own table: the name is logged and counted)."""
Auditor = Callable[[Mapping[str, Any]], None]
"""Called once per SIGNED request with its audit fields (the log line's, plus region,
access_key_id, user_agent, error_code, error_message, time, and the parsed
request_parameters and response_elements, unredacted: the trail redacts them): the
trail's hook."""
Observer = Callable[[str, str, int, float], None]
"""Called once per request with (service, operation, status, seconds) — the metrics hook;
the operation is a model operation or an extra route's template, never caller text."""

DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024
TOO_LARGE_CODE = "RequestEntityTooLargeException"
REGION_ERROR_CODE = "InvalidRequestException"


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
    gone: Callable[[], bool] = field(default=lambda: False, compare=False, repr=False)
    """Whether the client has closed the connection (long polls stop early); callable
    from the handler's worker thread."""


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


@dataclass(frozen=True)
class _Extra:
    """An extra route compiled to segments: literal text, or ``{name}`` for one segment."""

    route: ExtraRoute
    parts: tuple[tuple[bool, str], ...]  # (is_label, text)

    @classmethod
    def compile(cls, route: ExtraRoute) -> _Extra:
        parts = []
        for piece in route.path.strip("/").split("/"):
            is_label = piece.startswith("{") and piece.endswith("}")
            parts.append((is_label, piece[1:-1] if is_label else piece))
        return cls(route, tuple(parts))

    def match(self, segments: Sequence[str]) -> dict[str, str] | None:
        if len(segments) != len(self.parts):
            return None
        params: dict[str, str] = {}
        for (is_label, text), segment in zip(self.parts, segments, strict=True):
            if is_label and segment:
                params[text] = segment
            elif is_label or segment != text:
                return None
        return params


@dataclass
class _Exchange:
    """What one request has revealed so far; filled in as it is processed."""

    request_id: str
    started: float
    source_ip: str = "-"
    service: _Service | None = None
    operation: str = "-"
    verified: sigv4.Verified | None = None
    params: str = "-"
    extra: dict[str, str] = field(default_factory=dict)
    service_name: str = "-"
    error_code: str | None = None
    error_message: str | None = None
    request_parameters: Mapping[str, Any] | None = None  # for the trail (it redacts)
    response_elements: Mapping[str, Any] | None = None
    event: tuple[str, str] | None = None  # an extension action's (service, name) for the trail


class _Api:
    def __init__(
        self,
        services: Sequence[ServiceEndpoint],
        lookup_secret: sigv4.LookupSecret,
        clock: Clock,
        allowed_regions: Collection[str] | None,
        error_table: errors.ErrorTable,
        extra_routes: Sequence[ExtraRoute],
        trusted_proxies: Collection[str],
        max_body_bytes: int,
        signing_clock: Clock,
        observer: Observer | None = None,
        raw_services: Mapping[str, RawEndpoint] | None = None,
        auditor: Auditor | None = None,
    ) -> None:
        self.observer = observer
        self.auditor = auditor
        self.raw_services = dict(raw_services or {})
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
        self.signing_clock = signing_clock
        self.allowed_regions = frozenset(allowed_regions) if allowed_regions else None
        self.error_table = error_table
        self.extras = [_Extra.compile(r) for r in extra_routes]
        self.trusted = wire.networks(trusted_proxies)
        if max_body_bytes < 1:
            raise ValueError("max_body_bytes must be positive")
        self.max_body_bytes = max_body_bytes
        self._digest_key = primitives.random_bytes(32)

    # -- the ASGI entry point -------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        ex = _Exchange(str(uuid.uuid4()), self.clock.monotonic())
        try:
            response = await self._handle(request, ex)
        except Exception as exc:  # every failure becomes an AWS error response
            response = self._error_response(exc, ex)
        response.headers["x-amzn-RequestId"] = ex.request_id
        self._log(request, ex, response.status_code)
        await response(scope, receive, send)

    async def _handle(self, request: Request, ex: _Exchange) -> Response:
        peer = request.client.host if request.client else ""
        ex.source_ip = wire.source_ip(
            peer, request.headers.getlist("x-forwarded-for"), self.trusted
        )
        scope = request.scope
        try:
            target = wire.parse_target(scope.get("raw_path") or b"/", scope["query_string"])
        except wire.AmbiguousRequest as exc:
            raise errors.ApiError("ValidationException", exc.message) from None
        self._check_declared_length(request)
        for extra in self.extras:
            params = extra.match(target.segments)
            if params is not None:
                ex.operation = extra.route.path
                return await self._serve_extra(request, ex, target, extra.route, params)
        return await self._serve(request, ex, target)

    # -- the AWS endpoint -----------------------------------------------------------------

    async def _serve(self, request: Request, ex: _Exchange, target: wire.Target) -> Response:
        now = self.clock.now()
        pending = self._begin(request, self.signing_clock.now(), None)
        raw = self.raw_services.get(pending.service)
        if raw is not None and "x-amz-target" not in request.headers:
            return await self._serve_raw(request, ex, target, pending, raw, now)
        svc = self._service_for(request, pending.service)
        ex.service = svc
        self.check_region(pending.region)
        body = await self._read_body(request)
        verified = self._finish(pending, request, target, body)
        ex.verified = verified
        op, labels = self._route(svc, request, target, ex)
        handler = svc.handlers.get(op.name)
        if handler is None:
            raise errors.ApiError(
                "UnknownOperationException",
                f"Operation {op.name} of {svc.model.name} is not implemented by this server.",
            )
        located: dict[str, object] = {}
        if svc.rest_router is not None:
            try:
                located = routing.gather_rest_input(op, labels, target.query, request.headers)
            except routing.RejectedInput as exc:
                raise errors.ApiError(svc.invalid_code, exc.message) from None
        params = self._parse(svc, op, located, body)
        ex.params = self._digest({"operation": op.name, "params": params})
        ex.request_parameters = params
        ctx = _context(ex, verified, now, op.name)
        result = await run_in_threadpool(handler, ctx, params)
        ex.response_elements = result
        out = shapes.serialize_output(op, result, svc.model.protocol)
        headers = {**out.headers, "content-type": svc.model.content_type}
        return Response(out.body, out.status, headers)

    async def _serve_raw(
        self,
        request: Request,
        ex: _Exchange,
        target: wire.Target,
        pending: sigv4.Pending,
        raw: RawEndpoint,
        now: datetime,
    ) -> Response:
        ex.service_name = pending.service
        self.check_region(pending.region)
        body = await self._read_body(request)
        verified = self._finish(pending, request, target, body)
        ex.verified = verified

        def context_for(operation: str) -> RequestContext:
            ex.operation = operation
            return _context(ex, verified, now, operation)

        return await raw(request, body, context_for)

    def _begin(self, request: Request, now: datetime, service: str | None) -> sigv4.Pending:
        try:
            return sigv4.begin(_header_pairs(request), self.lookup_secret, now, service)
        except sigv4.AuthError as exc:
            raise errors.ApiError(exc.code, exc.message, exc.status) from None

    def _finish(
        self, pending: sigv4.Pending, request: Request, target: wire.Target, body: bytes
    ) -> sigv4.Verified:
        signed = sigv4.SignedRequest(
            method=request.method,
            raw_path=target.raw_path,
            query=target.query,
            headers=_header_pairs(request),
            body=body,
        )
        try:
            return sigv4.finish(pending, signed)
        except sigv4.AuthError as exc:
            raise errors.ApiError(exc.code, exc.message, exc.status) from None

    def check_region(self, region: str) -> None:
        if self.allowed_regions is not None and region not in self.allowed_regions:
            served = ", ".join(sorted(self.allowed_regions))
            raise errors.ApiError(
                REGION_ERROR_CODE,
                f"Region '{region}' is not served by this endpoint (it serves: {served}).",
            )

    def _service_for(self, request: Request, scoped_service: str) -> _Service:
        target = request.headers.get("x-amz-target")
        svc = self.services.get(scoped_service)
        if target is not None:
            by_target = self.targets.get(target.rpartition(".")[0])
            svc = by_target if by_target is svc else None
        if svc is None:
            served = ", ".join(sorted(self.services))
            raise errors.ApiError(
                "InvalidSignatureException",
                f"Credential should be scoped to a service served here ({served}), "
                f"not '{scoped_service}'.",
                403,
            )
        return svc

    def _route(
        self, svc: _Service, request: Request, target: wire.Target, ex: _Exchange
    ) -> tuple[model.Operation, dict[str, str]]:
        if svc.json_router is not None:
            amz_target = request.headers.get("x-amz-target", "")
            op = svc.json_router.match(amz_target)
            ex.operation = routing.operation_name_from_target(amz_target) or "-"
            if op is None or op.method != request.method or target.segments != ("",):
                raise errors.ApiError(
                    "UnknownOperationException", f"Unknown operation {amz_target!r}."
                )
            return op, {}
        assert svc.rest_router is not None
        found = svc.rest_router.match(request.method, target)
        if found is None:
            raise errors.ApiError(
                "UnknownOperationException",
                f"No {svc.model.name} operation matches {request.method} {target.raw_path}.",
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

    # -- limits ------------------------------------------------------------------------------

    def _too_large(self) -> errors.ApiError:
        return errors.ApiError(
            TOO_LARGE_CODE,
            f"The request body is larger than this server accepts "
            f"({self.max_body_bytes} bytes; max_body_bytes in config.json).",
            413,
        )

    def _check_declared_length(self, request: Request) -> None:
        values = request.headers.getlist("content-length")
        if not values:
            return
        if len(values) > 1 or not values[0].strip().isdigit():
            raise errors.ApiError("ValidationException", "Content-Length is malformed.")
        if int(values[0]) > self.max_body_bytes:
            raise self._too_large()

    async def _read_body(self, request: Request) -> bytes:
        """The body, read chunk by chunk and cut at the limit (never more in memory)."""
        chunks: list[bytes] = []
        size = 0
        try:
            async for chunk in request.stream():
                size += len(chunk)
                if size > self.max_body_bytes:
                    raise self._too_large()
                chunks.append(chunk)
        except ClientDisconnect:
            raise errors.ApiError(
                "IncompleteBody", "The client closed the connection mid-body."
            ) from None
        return b"".join(chunks)

    # -- extra routes ----------------------------------------------------------------------------

    async def _serve_extra(
        self,
        request: Request,
        ex: _Exchange,
        target: wire.Target,
        route: ExtraRoute,
        path_params: dict[str, str],
    ) -> Response:
        if request.method not in route.methods:
            raise errors.ApiError(
                "UnknownOperationException",
                f"{request.method} is not served for {route.path}.",
                405,
            )
        ex.extra = path_params
        action = path_params.get("action", "")
        if action.isascii() and action.isalnum() and len(action) <= 64:
            ex.event = (route.service, action)  # the trail names it as CloudTrail would
        ctx = None
        now = self.clock.now()
        signed_at = self.signing_clock.now()
        pending = self._begin(request, signed_at, route.service) if route.authenticated else None
        if pending is not None:
            self.check_region(pending.region)
        body = await self._read_body(request)
        if pending is not None:
            ex.verified = self._finish(pending, request, target, body)
            ctx = _context(ex, ex.verified, now, route.path)
        document = _json_body(body)
        ex.params = self._digest({"route": route.path, "path": path_params, "body": document})
        ex.request_parameters = document
        replayed = Request({**request.scope, "path_params": path_params}, _replay(body, request))
        response = await route.endpoint(replayed, ctx)
        if isinstance(response, JSONResponse):  # the extension API's answers
            with contextlib.suppress(wire.MalformedJson):
                ex.response_elements = wire.json_document(bytes(response.body))
        return response

    # -- errors and logging -----------------------------------------------------------------

    def _error_response(self, exc: Exception, ex: _Exchange) -> Response:
        error = errors.to_api_error(exc, self.error_table)
        ex.error_code, ex.error_message = error.code, error.message
        if error.status >= 500:
            log.error("request_id=%s op=%s failed", ex.request_id, ex.operation, exc_info=exc)
        content_type = ex.service.model.content_type if ex.service else "application/json"
        headers = {**errors.error_headers(error), "content-type": content_type}
        return Response(shapes.dumps(errors.error_body(error)), error.status, headers)

    def _digest(self, value: object) -> str:
        text = json.dumps(value, sort_keys=True, default=_jsonable, separators=(",", ":"))
        return primitives.keyed_hash(self._digest_key, text.encode()).hex()[:16]

    def _log(self, request: Request, ex: _Exchange, status: int) -> None:
        elapsed_ms = (self.clock.monotonic() - ex.started) * 1000
        service = ex.service.model.name if ex.service else ex.service_name
        principal = ex.verified.principal if ex.verified else None
        operation = ex.operation
        if self.observer is not None:
            known = ex.service is None or operation in ex.service.model.operations
            self.observer(service, operation if known else "-", status, elapsed_ms / 1000)
        for name, value in ex.extra.items():
            operation = operation.replace("{" + name + "}", quote(value, safe=""))
        fields = {
            "request_id": ex.request_id,
            "service": service,
            "operation": operation,
            "status": status,
            "duration_ms": round(elapsed_ms, 2),
            "account": principal.account_id if principal else None,
            "principal": principal.arn if principal else None,
            "source_ip": ex.source_ip,
        }
        log.info(
            "request_id=%s service=%s op=%s method=%s status=%d duration_ms=%.2f "
            "account=%s principal=%s source_ip=%s params=%s",
            ex.request_id,
            service,
            operation,
            quote(request.method, safe=""),
            status,
            elapsed_ms,
            principal.account_id if principal else "-",
            principal.arn if principal else "-",
            ex.source_ip,
            ex.params,
            extra={"snowvault": fields},  # the fields of --log-format json
        )
        if self.auditor is not None and principal is not None and ex.verified is not None:
            audit = {
                **fields,
                **({"service": ex.event[0], "operation": ex.event[1]} if ex.event else {}),
                "region": ex.verified.region,
                "access_key_id": principal.access_key_id,
                "user_agent": request.headers.get("user-agent", ""),
                "error_code": ex.error_code,
                "error_message": ex.error_message,
                "request_parameters": ex.request_parameters,
                "response_elements": ex.response_elements,
                "time": self.signing_clock.now(),
            }
            try:
                self.auditor(audit)
            except Exception:  # the trail must not turn an answered request into a 500
                log.exception("request_id=%s could not be recorded in the trail", ex.request_id)


def _header_pairs(request: Request) -> list[tuple[str, str]]:
    return [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw]


def _replay(body: bytes, request: Request) -> Receive:
    """A ``receive`` that hands ``body`` over once, then waits on the real one."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await request.receive()

    return receive


def _jsonable(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return repr(value)


def _json_body(body: bytes) -> dict[str, Any]:
    try:
        return wire.json_document(body)
    except wire.MalformedJson as exc:
        raise errors.ApiError("SerializationException", exc.message) from None


def _context(
    ex: _Exchange, verified: sigv4.Verified, now: datetime, operation: str
) -> RequestContext:
    return RequestContext(
        request_id=ex.request_id,
        account_id=verified.principal.account_id,
        region=verified.region,
        service=verified.service,
        principal_arn=verified.principal.arn,
        access_key_id=verified.principal.access_key_id,
        source_ip=ex.source_ip,
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
    trusted_proxies: Collection[str] = (),
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    signing_clock: Clock | None = None,
    observer: Observer | None = None,
    raw_services: Mapping[str, RawEndpoint] | None = None,
    auditor: Auditor | None = None,
) -> ASGIApp:
    """The ASGI app serving ``services`` (``extra_routes`` are matched first).

    ``clock`` gives handlers their request time; ``signing_clock`` (default: ``clock``)
    is what SigV4 freshness is checked against — the wall clock when ``clock`` is a
    test-mode simulated one, since clients sign with real time. ``observer`` hears of
    every request once (metrics); ``raw_services`` serve signing names the model router
    does not (SNS); ``auditor`` records every signed request (the trail)."""
    return _Api(
        services,
        lookup_secret,
        clock,
        allowed_regions,
        error_table,
        extra_routes,
        trusted_proxies,
        max_body_bytes,
        signing_clock or clock,
        observer,
        raw_services,
        auditor,
    )
