"""``snowvault resource``: the protected-resource inventory, over the extension API.

Resources are named by ARN or by their unique Name (see :func:`resolve`). ``resource add
<type>`` sends RegisterResource ``{ResourceType, Name, Source, Properties, Tags}``:

    snowvault resource add directory /srv/photos --name photos
    snowvault resource add postgresql --dsn postgresql://backup@127.0.0.1:5432 --name pg \
        --password-stdin < pw.txt
    snowvault resource add s3 --bucket b --prefix p/ --endpoint http://127.0.0.1:9000 \
        --access-key-id AK --secret-access-key - --name media < secret.txt
    snowvault resource add group --member ARN --member ARN --name app

Secrets (a password, a secret access key) are best given on stdin (``--password-stdin``,
``--secret-access-key -``) or the environment, never on a command line others can read
with ``ps``; the server seals them and never answers them. A type this server does not
ship answers the server's "not supported" error (exit 2).

A pure API client: must not import the server side (interfaces.api, app, services, catalog).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import click

from snowvault.core.errors import InvalidInput, NotFound
from snowvault.interfaces.cli import render
from snowvault.interfaces.cli.client import Api, json_option, with_api

RESOURCE_TYPES = {
    "directory": "Directory",
    "postgresql": "PostgreSQL",
    "mysql": "MySQL",
    "sqlite": "SQLite",
    "redis": "Redis",
    "s3": "S3",
    "block": "BlockDevice",
    "group": "Composite",
}
"""CLI name -> the API's ResourceType (the seam's table, docs/architecture.md)."""

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


@dataclass(frozen=True)
class _Adding:
    """What every ``resource add <type>`` takes: --name, --tag, --property, --host,
    --json."""

    name: str
    tags: tuple[str, ...]
    extra: tuple[str, ...]
    as_json: bool
    host: str | None = None

    def path(self, path: str) -> str:
        """A path on the server's host made absolute; on an agent's host (--host) it
        must be absolute already: this machine's working directory means nothing there."""
        if self.host is None:
            return os.path.abspath(path)
        if not os.path.isabs(path):
            raise InvalidInput(detail="with --host, the path must be absolute (it is on that host)")
        return path


def _adds(fn: Callable[..., None]) -> Callable[..., Any]:
    """Make ``fn(api, adding, **its own options)`` a ``resource add <type>`` body: the
    API options (with_api) and --name, --tag, --property and --json, handed over as one
    :class:`_Adding`. The type's own options go above this decorator."""

    def bundled(
        api: Api,
        /,
        *,
        name: str,
        tags: tuple[str, ...],
        extra: tuple[str, ...],
        as_json: bool,
        host: str | None,
        **params: Any,
    ) -> None:
        fn(api, _Adding(name, tags, extra, as_json, host), **params)

    bundled.__name__ = fn.__name__
    bundled.__doc__ = fn.__doc__
    decorated = with_api(bundled)
    decorated = click.option(
        "--property",
        "extra",
        multiple=True,
        metavar="KEY=VALUE",
        help="A further type-specific property (repeatable), e.g. databases=a,b for MySQL.",
    )(decorated)
    decorated = click.option(
        "--tag", "tags", multiple=True, metavar="KEY=VALUE", help="Repeatable."
    )(decorated)
    decorated = click.option(
        "--host",
        metavar="NAME",
        help="The resource is on agent host NAME (snowvault agent enroll/run), which "
        "backs it up and restores it; not on the server's host.",
    )(decorated)
    decorated = click.option(
        "--name", required=True, help="A unique, human name for the resource."
    )(decorated)
    return json_option(decorated)


def _register(
    api: Api,
    adding: _Adding,
    cli_name: str,
    *,
    source: str,
    properties: dict[str, str | None],
) -> None:
    """Send RegisterResource and print the registered resource (never a secret: the
    server answers only non-secret Properties)."""
    props = {k: v for k, v in properties.items() if v is not None}
    props.update(render.parse_tags(adding.extra) if adding.extra else {})
    body: dict[str, Any] = {
        "ResourceType": RESOURCE_TYPES[cli_name],
        "Name": adding.name,
        "Source": source,
    }
    if props:
        body["Properties"] = props
    if adding.tags:
        body["Tags"] = render.parse_tags(adding.tags)
    if adding.host is not None:
        body["WorkerLabel"] = f"agent:{adding.host}"
    doc = api.ext("RegisterResource", body)
    render.result(adding.as_json, doc, f"registered {adding.name} ({doc.get('ResourceArn')})")


def _stdin_secret(flag: bool, what: str) -> str | None:
    """One line from stdin when ``flag`` (``--password-stdin``), else None."""
    if not flag:
        return None
    value = sys.stdin.readline().rstrip("\r\n")
    if not value:
        raise InvalidInput(detail=f"no {what} on stdin")
    return value


_PASSWORD_STDIN = click.option(
    "--password-stdin", is_flag=True, help="Read the password from stdin (kept out of ps)."
)


@add.command()
@click.argument("path")
@_adds
def directory(api: Api, adding: _Adding, path: str) -> None:
    """Register directory PATH (on the server's host, or on agent host --host) as
    resource NAME."""
    _register(api, adding, "directory", source=adding.path(path), properties={})


@add.command()
@click.option("--dsn", required=True, help="postgresql://USER[:PASSWORD]@HOST:PORT[/DB]")
@click.option("--passfile", help="A .pgpass file on the server's host (host-path rule).")
@click.option("--sslmode", help="libpq sslmode (disable, require, verify-full...).")
@_PASSWORD_STDIN
@_adds
def postgresql(
    api: Api,
    adding: _Adding,
    dsn: str,
    passfile: str | None,
    sslmode: str | None,
    password_stdin: bool,
) -> None:
    """Register a PostgreSQL server (the server, or the agent of --host, connects to it;
    network-reach rule, or that agent's --allow-network)."""
    properties = {
        "passfile": passfile,
        "sslmode": sslmode,
        "password": _stdin_secret(password_stdin, "password"),
    }
    _register(api, adding, "postgresql", source=dsn, properties=properties)


@add.command()
@click.option("--dsn", required=True, help="mysql://USER[:PASSWORD]@HOST:PORT")
@_PASSWORD_STDIN
@_adds
def mysql(api: Api, adding: _Adding, dsn: str, password_stdin: bool) -> None:
    """Register a MySQL/MariaDB server."""
    properties = {"password": _stdin_secret(password_stdin, "password")}
    _register(api, adding, "mysql", source=dsn, properties=properties)


@add.command()
@click.option("--path", "path", required=True, help="The database file (on --host if given).")
@_adds
def sqlite(api: Api, adding: _Adding, path: str) -> None:
    """Register an SQLite database file."""
    _register(api, adding, "sqlite", source=adding.path(path), properties={})


@add.command()
@click.option("--url", required=True, help="redis://[:PASSWORD@]HOST:PORT")
@_PASSWORD_STDIN
@_adds
def redis(api: Api, adding: _Adding, url: str, password_stdin: bool) -> None:
    """Register a Redis server."""
    properties = {"password": _stdin_secret(password_stdin, "password")}
    _register(api, adding, "redis", source=url, properties=properties)


@add.command()
@click.option("--bucket", required=True)
@click.option("--prefix", default="", help="Only keys under this prefix.")
@click.option("--endpoint", required=True, help="The S3 endpoint URL (network-reach rule).")
@click.option("--access-key-id", required=True)
@click.option(
    "--secret-access-key",
    required=True,
    envvar="SNOWVAULT_S3_SECRET_ACCESS_KEY",
    help="'-' reads it from stdin; or set SNOWVAULT_S3_SECRET_ACCESS_KEY.",
)
@click.option("--bucket-region", help="The bucket's region (--region is the API's).")
@click.option("--versions", is_flag=True, help="Back up every object version.")
@_adds
def s3(
    api: Api,
    adding: _Adding,
    bucket: str,
    prefix: str,
    endpoint: str,
    access_key_id: str,
    secret_access_key: str,
    bucket_region: str | None,
    versions: bool,
) -> None:
    """Register an S3 bucket (or a prefix of it)."""
    secret = _stdin_secret(True, "secret access key") if secret_access_key == "-" else None
    properties = {
        "endpoint": endpoint,
        "access_key_id": access_key_id,
        "secret_access_key": secret or secret_access_key,
        "region": bucket_region,
        "versions": "true" if versions else None,
    }
    source = f"s3://{bucket}/{prefix.lstrip('/')}"
    _register(api, adding, "s3", source=source, properties=properties)


@add.command()
@click.option("--path", "path", required=True, help="A block device or image on the host.")
@_adds
def block(api: Api, adding: _Adding, path: str) -> None:
    """Register a block device or disk image."""
    _register(api, adding, "block", source=adding.path(path), properties={})


@add.command()
@click.option("--member", "members", multiple=True, required=True, metavar="ARN")
@_adds
def group(api: Api, adding: _Adding, members: tuple[str, ...]) -> None:
    """Register a group of resources backed up together (members by ARN or Name)."""
    arns = [resolve(api, m) for m in members]
    properties: dict[str, str | None] = {"members": json.dumps(arns)}
    _register(api, adding, "group", source=f"group:{adding.name}", properties=properties)


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
    lines = [f"{title.lower():10} {get(doc) or ''}" for title, get in COLUMNS]
    lines.append(f"{'properties':10} {format_tags(doc.get('Properties') or {})}")
    discovery = doc.get("Discovery") or {}
    lines.append(f"{'discovery':10} {json.dumps(discovery, sort_keys=True) if discovery else ''}")
    render.result(as_json, doc, "\n".join(lines))


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
