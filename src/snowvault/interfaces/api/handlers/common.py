"""What every handler shares: the Caller from a request, pages, and the table type.

A handler is ``(app, ctx, params) -> dict``; the api package binds ``app``.

Must not depend on the CLI or web interfaces.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from snowvault.app import App
from snowvault.control.services.base import Caller
from snowvault.interfaces.api.asgi import RequestContext

Params = dict[str, Any]
Out = dict[str, Any]
AppHandler = Callable[[App, RequestContext, Params], Mapping[str, Any] | None]


def caller(ctx: RequestContext) -> Caller:
    return Caller(
        account_id=ctx.account_id,
        region=ctx.region,
        principal_arn=ctx.principal_arn,
        now=ctx.now,
        source_ip=ctx.source_ip or None,
    )


def page_out(key: str, items: list[Out], next_token: str | None) -> Out:
    out: Out = {key: items}
    if next_token:
        out["NextToken"] = next_token
    return out


def drop_none(doc: Mapping[str, Any]) -> Out:
    return {k: v for k, v in doc.items() if v is not None}
