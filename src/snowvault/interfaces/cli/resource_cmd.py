"""``snowvault resource``: the protected-resource inventory, over the extension API.

Resources are named by ARN or by their unique Name (see :func:`resolve`). A pure API
client: must not import the server side (interfaces.api, app, services, catalog).
"""

from __future__ import annotations

import os
from typing import Any

import click

from snowvault.core.errors import InvalidInput, NotFound
from snowvault.interfaces.cli import render
from snowvault.interfaces.cli.client import Api, json_option, with_api

RESOURCE_TYPES = {"directory": "Directory"}

COLUMNS: list[render.Column] = [
    ("NAME", lambda r: r.get("Name")),
    ("TYPE", lambda r: r.get("ResourceType")),
    ("SOURCE", lambda r: r.get("Source")),
    ("TAGS", lambda r: format_tags(r.get("Tags") or {})),
    ("ARN", lambda r: r.get("ResourceArn")),
]


def format_tags(tags: dict[str, str]) -> str:
    """``{"a": "1", "b": "2"}`` -> ``a=1,b=2`` (sorted)."""
    return ",".join(f"{k}={v}" for k, v in sorted(tags.items()))


def pick_by_name(resources: list[dict[str, Any]], name: str) -> str:
    """The ARN of the one resource called ``name``.

    >>> pick_by_name([{"Name": "a", "ResourceArn": "arn:1"}], "a")
    'arn:1'
    """
    matches = [r["ResourceArn"] for r in resources if r.get("Name") == name]
    if not matches:
        raise NotFound(kind="resource", name=name)
    if len(matches) > 1:
        raise InvalidInput(detail=f"{len(matches)} resources are named {name!r}; give the ARN")
    return str(matches[0])


def resolve(api: Api, ref: str) -> str:
    """An ARN as given, or the ARN of the resource whose Name is ``ref``."""
    if ref.startswith("arn:"):
        return ref
    return pick_by_name(api.ext_paginate("ListResources", "Resources", {}), ref)


@click.group()
def resource() -> None:
    """Protected resources: what can be backed up."""


@resource.group()
def add() -> None:
    """Register a resource."""


@add.command()
@click.argument("path")
@click.option("--name", required=True, help="A unique, human name for the resource.")
@click.option("--tag", "tags", multiple=True, metavar="KEY=VALUE", help="Repeatable.")
@json_option
@with_api
def directory(api: Api, path: str, name: str, tags: tuple[str, ...], as_json: bool) -> None:
    """Register directory PATH (on the server's host) as resource NAME."""
    source = os.path.abspath(path)
    body: dict[str, Any] = {"ResourceType": "Directory", "Name": name, "Source": source}
    if tags:
        body["Tags"] = render.parse_tags(tags)
    doc = api.ext("RegisterResource", body)
    render.result(as_json, doc, f"registered {name} ({doc.get('ResourceArn')})")


@resource.command("list")
@click.option("--type", "resource_type", type=click.Choice(sorted(RESOURCE_TYPES)))
@json_option
@with_api
def list_(api: Api, resource_type: str | None, as_json: bool) -> None:
    """List registered resources."""
    body = {"ResourceType": RESOURCE_TYPES[resource_type]} if resource_type else {}
    render.table(as_json, api.ext_paginate("ListResources", "Resources", body), COLUMNS)


@resource.command()
@click.argument("ref", metavar="ARN|NAME")
@json_option
@with_api
def describe(api: Api, ref: str, as_json: bool) -> None:
    """Show one resource."""
    doc = api.ext("DescribeResource", {"ResourceArn": resolve(api, ref)})
    text = "\n".join(f"{title.lower():8} {get(doc) or ''}" for title, get in COLUMNS)
    render.result(as_json, doc, text)


@resource.command()
@click.argument("ref", metavar="ARN|NAME")
@click.argument("tags", nargs=-1, required=True, metavar="KEY=VALUE...")
@json_option
@with_api
def tag(api: Api, ref: str, tags: tuple[str, ...], as_json: bool) -> None:
    """Add or replace tags on a resource."""
    arn = resolve(api, ref)
    values = render.parse_tags(tags)
    api.ext("TagResource", {"ResourceArn": arn, "Tags": values})
    render.result(as_json, {"ResourceArn": arn, "Tags": values}, f"tagged {arn}")


@resource.command()
@click.argument("ref", metavar="ARN|NAME")
@click.argument("keys", nargs=-1, required=True, metavar="KEY...")
@json_option
@with_api
def untag(api: Api, ref: str, keys: tuple[str, ...], as_json: bool) -> None:
    """Remove tags from a resource."""
    arn = resolve(api, ref)
    api.ext("UntagResource", {"ResourceArn": arn, "TagKeys": list(keys)})
    render.result(as_json, {"ResourceArn": arn, "TagKeys": list(keys)}, f"untagged {arn}")


@resource.command()
@click.argument("ref", metavar="ARN|NAME")
@json_option
@with_api
def remove(api: Api, ref: str, as_json: bool) -> None:
    """Deregister a resource (its recovery points stay)."""
    arn = resolve(api, ref)
    api.ext("DeregisterResource", {"ResourceArn": arn})
    render.result(as_json, {"ResourceArn": arn, "Deregistered": True}, f"removed {arn}")
