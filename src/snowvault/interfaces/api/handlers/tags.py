"""Tag operations on vault and recovery point ARNs: TagResource, UntagResource, ListTags.

Must not depend on the CLI or web interfaces.
"""

from __future__ import annotations

from snowvault.app import App
from snowvault.control.services import paging, tagging
from snowvault.interfaces.api.asgi import RequestContext
from snowvault.interfaces.api.handlers.common import AppHandler, Out, Params, caller


def tag_resource(app: App, ctx: RequestContext, params: Params) -> None:
    tagging.tag(app.deps, caller(ctx), params["ResourceArn"], params["Tags"])


def untag_resource(app: App, ctx: RequestContext, params: Params) -> None:
    tagging.untag(app.deps, caller(ctx), params["ResourceArn"], params["TagKeyList"])


def list_tags(app: App, ctx: RequestContext, params: Params) -> Out:
    tags = tagging.list_tags(app.deps, caller(ctx), params["ResourceArn"])
    keys, next_token = paging.page(
        "tags", tags, key=str, limit=params.get("MaxResults"), token=params.get("NextToken")
    )
    out: Out = {"Tags": {k: tags[k] for k in keys}}
    if next_token:
        out["NextToken"] = next_token
    return out


HANDLERS: dict[str, AppHandler] = {
    "TagResource": tag_resource,
    "UntagResource": untag_resource,
    "ListTags": list_tags,
}
