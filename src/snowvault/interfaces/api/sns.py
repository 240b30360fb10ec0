"""SNS on the same endpoint: the query protocol (form in, XML out), as ``aws sns`` and
boto3 speak it, for the topics vault notifications go to.

    aws sns create-topic --name backup-events --endpoint-url http://127.0.0.1:8765
    aws sns subscribe --topic-arn ARN --protocol http --notification-endpoint http://127.0.0.1:9000/

Served: CreateTopic, DeleteTopic, ListTopics, Subscribe, ConfirmSubscription,
ListSubscriptionsByTopic, Unsubscribe, Publish — each ``sns:<Action>`` on the topic,
authorized like every other call (``services.authorization``). Requests are SigV4-signed
for ``sns`` (the asgi layer checks that before :func:`endpoint` runs). Three unsigned
GET routes complete the protocol, each needing no more than what it serves:

- ``/_snowvault/sns/SimpleNotificationService.pem``: the public signing certificate
  (SigningCertURL);
- ``/_snowvault/sns/confirm?TopicArn=&Token=``: the SubscribeURL (the token, 32 random
  bytes sent only to the endpoint, is the credential);
- ``/_snowvault/sns/unsubscribe?SubscriptionArn=&Token=``: the UnsubscribeURL (the same
  token; AWS needs none, we do).

Errors use SNS's codes (NotFound, InvalidParameter, AuthorizationError) in its XML
shape; the mapping starts from the one error table (``errors.to_api_error``).

Must not depend on the CLI or web interfaces.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from snowvault.app import App
from snowvault.control.scheduler import delivery
from snowvault.control.services import authorization, sns
from snowvault.interfaces.api import errors
from snowvault.interfaces.api.asgi import ContextFor, ExtraRoute, RawEndpoint, RequestContext
from snowvault.interfaces.api.handlers.common import caller

SIGNING_NAME = "sns"
NS = "http://sns.amazonaws.com/doc/2010-03-31/"
Form = Mapping[str, str]
Result = str | None  # the inner XML of <ActionResult>, None: no result element

_CODES = {
    "ResourceNotFoundException": ("NotFound", 404),
    "AccessDeniedException": ("AuthorizationError", 403),
    "NetworkRefused": ("AuthorizationError", 403),
    "ValidationException": ("InvalidParameter", 400),
    "InvalidParameterValueException": ("InvalidParameter", 400),
    "MissingParameterValueException": ("InvalidParameter", 400),
    "InvalidRequestException": ("InvalidParameter", 400),
}


def _x(tag: str, value: object) -> str:
    return f"<{tag}>{escape(str(value))}</{tag}>"


def _need(form: Form, name: str) -> str:
    value = form.get(name)
    if not value:
        raise errors.ApiError("InvalidParameter", f"Invalid parameter: {name} is required.")
    return value


class _Sns:
    def __init__(self, app: App) -> None:
        self.app = app
        self.actions: dict[str, Callable[[RequestContext, Form], Result]] = {
            "CreateTopic": self.create_topic,
            "DeleteTopic": self.delete_topic,
            "ListTopics": self.list_topics,
            "Subscribe": self.subscribe,
            "ConfirmSubscription": self.confirm,
            "ListSubscriptionsByTopic": self.list_subscriptions,
            "Unsubscribe": self.unsubscribe,
            "Publish": self.publish,
        }

    # -- actions (ctx, form) -> inner result XML ------------------------------------------

    def create_topic(self, ctx: RequestContext, form: Form) -> Result:
        return _x("TopicArn", sns.create_topic(self.app.deps, caller(ctx), _need(form, "Name")))

    def delete_topic(self, ctx: RequestContext, form: Form) -> Result:
        sns.delete_topic(self.app.deps, caller(ctx), _need(form, "TopicArn"))
        return None

    def list_topics(self, ctx: RequestContext, form: Form) -> Result:
        arns, token = sns.list_topics(self.app.deps, caller(ctx), form.get("NextToken"))
        members = "".join(f"<member>{_x('TopicArn', a)}</member>" for a in arns)
        return f"<Topics>{members}</Topics>" + (_x("NextToken", token) if token else "")

    def subscribe(self, ctx: RequestContext, form: Form) -> Result:
        done = sns.subscribe(
            self.app.deps,
            caller(ctx),
            _need(form, "TopicArn"),
            _need(form, "Protocol"),
            _need(form, "Endpoint"),
        )
        return _x("SubscriptionArn", done.subscription_arn)

    def confirm(self, ctx: RequestContext, form: Form) -> Result:
        arn = sns.confirm(self.app.deps, _need(form, "TopicArn"), _need(form, "Token"))
        return _x("SubscriptionArn", arn)

    def list_subscriptions(self, ctx: RequestContext, form: Form) -> Result:
        subs = sns.list_subscriptions(self.app.deps, caller(ctx), _need(form, "TopicArn"))
        members = "".join(
            "<member>"
            + _x("TopicArn", s.topic_arn)
            + _x("Protocol", s.protocol)
            + _x("SubscriptionArn", s.subscription_arn if s.confirmed else "PendingConfirmation")
            + _x("Owner", s.account_id)
            + _x("Endpoint", s.endpoint)
            + "</member>"
            for s in subs
        )
        return f"<Subscriptions>{members}</Subscriptions>"

    def unsubscribe(self, ctx: RequestContext, form: Form) -> Result:
        sns.unsubscribe(self.app.deps, caller(ctx), _need(form, "SubscriptionArn"))
        return None

    def publish(self, ctx: RequestContext, form: Form) -> Result:
        message_id = sns.publish(
            self.app.deps,
            caller(ctx),
            _need(form, "TopicArn"),
            _need(form, "Message"),
            subject=form.get("Subject"),
        )
        self.app.notifier.wake()
        return _x("MessageId", message_id)

    # -- the protocol -----------------------------------------------------------------------

    def run(self, ctx: RequestContext, action: str, form: Form) -> Result:
        authorization.authorize_operation(self.app.deps, caller(ctx), action, form, "sns")
        return self.actions[action](ctx, form)

    async def endpoint(self, request: Request, body: bytes, context_for: ContextFor) -> Response:
        request_id = "-"
        try:
            form = _form(body)
            action = form.get("Action", "")
            if action not in self.actions:
                raise errors.ApiError("InvalidAction", f"Unsupported action {action[:64]!r}.")
            ctx = context_for(action)
            request_id = ctx.request_id
            result = await run_in_threadpool(self.run, ctx, action, form)
        except Exception as exc:
            return _error(exc, request_id)
        inner = f"<{action}Result>{result}</{action}Result>" if result is not None else ""
        xml = (
            f'<{action}Response xmlns="{NS}">{inner}'
            f"<ResponseMetadata>{_x('RequestId', request_id)}</ResponseMetadata>"
            f"</{action}Response>"
        )
        return Response(xml, 200, media_type="text/xml")


def _form(body: bytes) -> dict[str, str]:
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=1000)
    except (UnicodeDecodeError, ValueError):
        raise errors.ApiError("InvalidParameter", "The body is not a valid form.") from None
    form: dict[str, str] = {}
    for key, value in pairs:
        if key in form:
            raise errors.ApiError("InvalidParameter", f"Parameter {key} is given twice.")
        form[key] = value
    return form


def _error(exc: Exception, request_id: str) -> Response:
    error = errors.to_api_error(exc, errors.ERROR_TABLE)
    code, status = _CODES.get(error.code, (error.code, error.status))
    kind = "Receiver" if status >= 500 else "Sender"
    xml = (
        f'<ErrorResponse xmlns="{NS}"><Error>{_x("Type", kind)}{_x("Code", code)}'
        f"{_x('Message', error.message)}</Error>{_x('RequestId', request_id)}</ErrorResponse>"
    )
    return Response(xml, status, media_type="text/xml")


def services(app: App) -> dict[str, RawEndpoint]:
    return {SIGNING_NAME: _Sns(app).endpoint}


def routes(app: App) -> list[ExtraRoute]:
    """The unsigned GET routes of the protocol (module doc)."""

    async def cert(request: Request, ctx: RequestContext | None) -> Response:
        return Response(app.notifier.key.cert_pem, media_type="application/x-pem-file")

    async def confirm(request: Request, ctx: RequestContext | None) -> Response:
        query = request.query_params
        try:
            arn = await run_in_threadpool(
                sns.confirm, app.deps, query.get("TopicArn", ""), query.get("Token", "")
            )
        except Exception as exc:
            return _error(exc, "-")
        xml = (
            f'<ConfirmSubscriptionResponse xmlns="{NS}"><ConfirmSubscriptionResult>'
            f"{_x('SubscriptionArn', arn)}</ConfirmSubscriptionResult>"
            "</ConfirmSubscriptionResponse>"
        )
        return Response(xml, 200, media_type="text/xml")

    async def unsubscribe(request: Request, ctx: RequestContext | None) -> Response:
        query = request.query_params
        try:
            await run_in_threadpool(
                sns.unsubscribe,
                app.deps,
                None,
                query.get("SubscriptionArn", ""),
                query.get("Token", ""),
            )
        except Exception as exc:
            return _error(exc, "-")
        return Response(f'<UnsubscribeResponse xmlns="{NS}"/>', 200, media_type="text/xml")

    return [
        ExtraRoute(delivery.CERT_PATH, cert, authenticated=False),
        ExtraRoute(delivery.CONFIRM_PATH, confirm, authenticated=False),
        ExtraRoute(delivery.UNSUBSCRIBE_PATH, unsubscribe, authenticated=False),
    ]
