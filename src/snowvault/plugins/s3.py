"""S3: the objects under a prefix of a bucket on an S3-compatible endpoint.

A resource is ``arn:aws:snowvault:REGION:ACCOUNT:s3/NAME``; its source is
``s3://BUCKET/PREFIX`` (the prefix a "folder": stored ending in ``/``, or empty for the
whole bucket). Properties (shown): ``endpoint`` (``http(s)://HOST[:PORT]``, required),
``region`` (default ``us-east-1``), ``access_key_id`` (required), ``versions``
(``"true"``: non-current versions too); secret (sealed): ``secret_access_key``.

    plugin.check_source("s3://photos/2024", policy, {"endpoint": "http://127.0.0.1:9000",
        "access_key_id": "AK", "secret_access_key": "..."})
    # Registration("s3://photos/2024/", {"endpoint": ..., "region": "us-east-1",
    #     "access_key_id": "AK", "versions": "false"}, {"secret_access_key": "..."})

A recovery point holds every object as one entry: the path is the key relative to the
prefix (components escaped, see :func:`entry_paths`), the entry's ``meta`` the object's
key, content type and other headers, user metadata, tags, ETag, size and last-modified,
and its ``fingerprint`` ETag+size+last-modified, so an incremental backup reads only
objects that changed (the sink reuses the parent point's content for the rest). With
``versions`` the non-current versions come too, under ``%versions/``.

Restore Metadata: ``targetBucket`` (required), ``targetPrefix`` (default empty),
``items`` (keys relative to the backed-up prefix; a JSON list or comma-separated; one
ending in ``/`` takes everything under it), ``targetEndpoint`` and ``targetRegion``
(default the source's; the source's credentials are used), ``overwrite`` (``"true"`` to
write over existing keys; otherwise a restore that would replace any key is refused
before it writes). Bodies, content type and headers, user metadata and tags come back.

Abuse case: a caller with ``RegisterResource`` names an endpoint the server connects
to (with the credentials it is given) and reads; one with ``StartRestoreJob`` names an
endpoint and bucket it writes to. So the endpoint's host goes through the network-reach
rule (:mod:`snowvault.control.model.net_reach`: every resolved address inside the
operator's ``allowed_networks``) at registration, at StartRestoreJob and again in the
worker right before connecting; an ``http`` endpoint is then reached at the address
that check returned (no second lookup: DNS rebinding), an ``https`` one by name (its
certificate must match the name, which a rebound address cannot present). The client is
built from the resource's own endpoint and credentials only: no environment
credentials, ``AWS_*`` endpoint settings, config files or proxies. Target credentials
are never taken from Metadata (it is stored with the job and given back by
GetRestoreJobMetadata): a restore uses the source's key pair. The secret access key
never appears in a message, a note or a log.

Depends on the plugin base and errors, the model's reach rules, core and boto3 only.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any, BinaryIO, NoReturn
from urllib.parse import quote, urlencode, urlsplit

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from snowvault.control.model import host_paths, net_reach
from snowvault.core.errors import (
    InvalidInput,
    NotFound,
    PermissionDenied,
    SnowvaultError,
    Unavailable,
)
from snowvault.plugins.base import (
    BackupRequest,
    Entry,
    EntryInfo,
    MetadataKey,
    Progress,
    Registration,
    Resource,
    RestoreRequest,
)
from snowvault.plugins.directory import parse_items
from snowvault.plugins.errors import InvalidRestoreTarget

PROPERTIES = frozenset({"endpoint", "region", "access_key_id", "versions"})
SECRETS = frozenset({"secret_access_key"})
DEFAULT_REGION = "us-east-1"
VERSIONS_DIR = "%versions"
"""Where non-current versions live in a point (escaped key components never hold ``%v``)."""

SINGLE_PUT_LIMIT = 8 * 1024 * 1024
"""Bodies up to this size are restored with one PutObject (their ETag is then the MD5
the source's single-part ETag was, which :meth:`S3.validate_restore` compares); larger
ones as a multipart upload, streamed."""

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")
_AUTH_CODES = frozenset(
    {"InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "InvalidToken", "403"}
)
_MISSING_BUCKET = frozenset({"NoSuchBucket", "404", "NotFound"})
_HEADERS = (  # (meta key, HeadObject field, PutObject argument)
    ("content_type", "ContentType", "ContentType"),
    ("content_encoding", "ContentEncoding", "ContentEncoding"),
    ("content_disposition", "ContentDisposition", "ContentDisposition"),
    ("content_language", "ContentLanguage", "ContentLanguage"),
    ("cache_control", "CacheControl", "CacheControl"),
)
_LIST_PAGE = 1000


# --- sources, endpoints, connections ------------------------------------------------------


@dataclass(frozen=True)
class Location:
    """A bucket and a prefix (empty, or ending in ``/``)."""

    bucket: str
    prefix: str

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"


def check_bucket(bucket: object, what: str = "bucket") -> str:
    """A bucket name S3 accepts (3-63 of a-z 0-9 . -, letters or digits at both ends)."""
    if not isinstance(bucket, str) or not _BUCKET.match(bucket) or ".." in bucket:
        raise InvalidInput(detail=f"{what} {bucket!r} is not a valid S3 bucket name")
    return bucket


def check_prefix(prefix: object, what: str = "prefix") -> str:
    """A key prefix as a folder: no NUL, no leading ``/``, ending in ``/`` unless empty.

    >>> check_prefix("photos/2024"), check_prefix(""), check_prefix("a/")
    ('photos/2024/', '', 'a/')
    """
    if not isinstance(prefix, str) or "\x00" in prefix or len(prefix) > 900:
        raise InvalidInput(detail=f"{what} {prefix!r} is not a valid S3 key prefix")
    if prefix.startswith("/"):
        raise InvalidInput(detail=f"{what} {prefix!r} must not start with '/'")
    return prefix if not prefix or prefix.endswith("/") else prefix + "/"


def parse_source(source: object) -> Location:
    """``s3://BUCKET[/PREFIX]`` as a Location.

    >>> parse_source("s3://photos/2024")
    Location(bucket='photos', prefix='2024/')
    """
    if not isinstance(source, str) or not source.startswith("s3://"):
        raise InvalidInput(detail=f"Source {source!r} must be s3://BUCKET/PREFIX")
    bucket, _, prefix = source[len("s3://") :].partition("/")
    return Location(check_bucket(bucket), check_prefix(prefix))


@dataclass(frozen=True)
class Endpoint:
    """An S3 endpoint URL as registered: ``url`` is what is shown (``scheme://host:port``)."""

    scheme: str
    host: str
    port: int

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


def parse_endpoint(text: object, what: str = "endpoint") -> Endpoint:
    """``http(s)://HOST[:PORT]`` (no user, path, query or fragment).

    >>> parse_endpoint("http://127.0.0.1:9000/").url
    'http://127.0.0.1:9000'
    """
    if not isinstance(text, str) or not text or "\x00" in text or any(c.isspace() for c in text):
        raise InvalidInput(detail=f"{what} {text!r} must be an http(s)://HOST[:PORT] URL")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise InvalidInput(detail=f"{what} {text!r} is not a valid URL ({exc})") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(detail=f"{what} {text!r} must be an http(s)://HOST[:PORT] URL")
    if parts.username or parts.password or parts.path not in ("", "/"):
        raise InvalidInput(detail=f"{what} {text!r} must have no user, password or path")
    if parts.query or parts.fragment:
        raise InvalidInput(detail=f"{what} {text!r} must have no query or fragment")
    return Endpoint(parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80))


def _reach(endpoint: Endpoint, policy: host_paths.Policy) -> str:
    """The URL to connect to, after the network-reach rule allowed the host: ``http`` at
    the address the rule resolved (no second lookup), ``https`` by name (see module)."""
    addresses = net_reach.check(endpoint.host, endpoint.port, policy)
    if endpoint.scheme == "https":
        return endpoint.url
    return Endpoint("http", addresses[0], endpoint.port).url


def _client(url: str, region: str, key_id: str, secret: str) -> Any:
    """A boto3 S3 client for ``url`` with these credentials and nothing from the
    environment (no AWS_* endpoint, config file, profile or proxy)."""
    config = Config(
        region_name=region,
        signature_version="s3v4",
        s3={"addressing_style": "path"},
        retries={"total_max_attempts": 2, "mode": "standard"},
        connect_timeout=5,
        read_timeout=60,
        proxies={},
        ignore_configured_endpoint_urls=True,
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    session = boto3.session.Session(
        aws_access_key_id=key_id, aws_secret_access_key=secret, region_name=region
    )
    return session.client(
        "s3",
        endpoint_url=url,
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        aws_session_token=None,
        region_name=region,
        config=config,
    )


@dataclass(frozen=True)
class Connection:
    """A client and how to name what it reaches in messages (never the secret)."""

    client: Any
    endpoint: Endpoint
    key_id: str

    def fail(self, exc: Exception, what: str, bucket: str) -> NoReturn:
        """Raise the one-line error for a boto3 failure while doing ``what``."""
        raise explain(exc, what, self.endpoint, bucket, self.key_id) from None


def explain(
    exc: Exception, what: str, endpoint: Endpoint, bucket: str, key_id: str
) -> SnowvaultError:
    """A boto3/botocore failure as ONE line naming the endpoint, the bucket and the
    access key id (never the secret, never the server's long message).

    >>> explain(ClientError({"Error": {"Code": "NoSuchBucket"}}, "ListObjectsV2"), "list",
    ...         parse_endpoint("http://127.0.0.1:9000"), "b", "AK").message
    'S3 bucket not found: b at http://127.0.0.1:9000'
    """
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        if code in _AUTH_CODES:
            return PermissionDenied(
                f"S3 endpoint {endpoint.url} refused access key {key_id!r} for bucket "
                f"{bucket!r} ({code}): check the access key id, secret and permissions"
            )
        if code in _MISSING_BUCKET and what != "read an object":
            return NotFound(kind="S3 bucket", name=f"{bucket} at {endpoint.url}")
        return Unavailable(detail=f"S3 {what} in bucket {bucket!r} at {endpoint.url}: {code}")
    if isinstance(exc, BotoCoreError):
        reason = type(exc).__name__
        return Unavailable(detail=f"S3 endpoint {endpoint.url} cannot be reached ({reason})")
    return Unavailable(detail=f"S3 {what} at {endpoint.url} failed ({type(exc).__name__})")


def connect(
    endpoint: Endpoint,
    region: str,
    key_id: str,
    secret: str,
    policy: host_paths.Policy,
) -> Connection:
    """Judge the endpoint's host now (the network-reach rule) and build its client."""
    if not key_id or not secret:
        raise InvalidInput(
            detail="the S3 resource has no credentials here (deregistered, or not unsealed)"
        )
    return Connection(_client(_reach(endpoint, policy), region, key_id, secret), endpoint, key_id)


def _connect_resource(resource: Resource, policy: host_paths.Policy) -> Connection:
    props = resource.properties
    return connect(
        parse_endpoint(props.get("endpoint")),
        props.get("region") or DEFAULT_REGION,
        props.get("access_key_id", ""),
        resource.secrets.get("secret_access_key", ""),
        policy,
    )


# --- the point's layout ---------------------------------------------------------------------


@dataclass(frozen=True)
class Obj:
    """One object (or version) as a listing shows it."""

    key: str
    size: int
    etag: str
    last_modified: str
    version_id: str | None = None
    latest: bool = True

    @property
    def fingerprint(self) -> str:
        return f"{self.etag}|{self.size}|{self.last_modified}"


def escape_component(part: str) -> str:
    """A key component as an entry-path component: ``%`` escaped, empty, ``.`` and
    ``..`` made visible (S3 keys may hold all three; entry paths may not).

    >>> [escape_component(p) for p in ("a b", "", ".", "..", "50%")]
    ['a b', '%', '%2E', '%2E%2E', '50%25']
    """
    if part == "":
        return "%"
    if part in (".", ".."):
        return "%2E" * len(part)
    return part.replace("%", "%25")


def entry_paths(keys: Iterable[str]) -> list[str]:
    """Entry paths for relative keys, one each, none a directory of another: a key that
    is also a "folder" of other keys (``a`` beside ``a/b``) gets a ``%`` suffix.

    >>> entry_paths(["a", "a/b", "x//y", "d/"])
    ['a%', 'a/b', 'x/%/y', 'd/%']
    """
    paths = ["/".join(escape_component(p) for p in key.split("/")) for key in keys]
    folders = {p.rsplit("/", n)[0] for p in paths for n in range(1, p.count("/") + 1)}
    return [p + "%" if p in folders else p for p in paths]


def _version_path(path: str, version_id: str) -> str:
    return f"{VERSIONS_DIR}/{path}%v/{escape_component(version_id)}"


def _list(conn: Connection, loc: Location, versions: bool) -> list[Obj]:
    """Every object under the prefix (with ``versions``: every version, oldest first per
    key, delete markers left out)."""
    client = conn.client
    out: list[Obj] = []
    try:
        if not versions:
            pages = client.get_paginator("list_objects_v2").paginate(
                Bucket=loc.bucket, Prefix=loc.prefix, PaginationConfig={"PageSize": _LIST_PAGE}
            )
            for page in pages:
                for item in page.get("Contents", []):
                    out.append(_obj(item, None, True))
            return out
        pages = client.get_paginator("list_object_versions").paginate(
            Bucket=loc.bucket, Prefix=loc.prefix, PaginationConfig={"PageSize": _LIST_PAGE}
        )
        for page in pages:
            for item in page.get("Versions", []):
                vid = item.get("VersionId")
                out.append(_obj(item, None if vid in (None, "null") else vid, item["IsLatest"]))
    except (ClientError, BotoCoreError) as exc:
        conn.fail(exc, "listing", loc.bucket)
    out.sort(key=lambda o: (o.key, o.latest, o.last_modified))
    return out


def _obj(item: Mapping[str, Any], version_id: str | None, latest: bool) -> Obj:
    return Obj(
        key=item["Key"],
        size=int(item.get("Size", 0)),
        etag=str(item.get("ETag", "")),
        last_modified=item["LastModified"].isoformat(),
        version_id=version_id,
        latest=latest,
    )


def _meta(conn: Connection, loc: Location, obj: Obj, rel: str) -> dict[str, str]:
    """What a restore needs besides the body (one HeadObject, one GetObjectTagging)."""
    version = {"VersionId": obj.version_id} if obj.version_id else {}
    try:
        head = conn.client.head_object(Bucket=loc.bucket, Key=obj.key, **version)
        tags = conn.client.get_object_tagging(Bucket=loc.bucket, Key=obj.key, **version)
    except (ClientError, BotoCoreError) as exc:
        conn.fail(exc, f"reading the metadata of {obj.key!r}", loc.bucket)
    meta = {
        "key": rel,
        "etag": obj.etag,
        "size": str(obj.size),
        "last_modified": obj.last_modified,
        "metadata": json.dumps(head.get("Metadata", {}), sort_keys=True),
        "tags": json.dumps({t["Key"]: t["Value"] for t in tags.get("TagSet", [])}, sort_keys=True),
    }
    for name, field, _ in _HEADERS:
        if head.get(field):
            meta[name] = str(head[field])
    if obj.version_id:
        meta["version_id"] = obj.version_id
    meta["latest"] = "true" if obj.latest else "false"
    return meta


def _opener(
    conn: Connection, loc: Location, obj: Obj, reads: Callable[[str], None]
) -> Callable[[], AbstractContextManager[BinaryIO]]:
    @contextmanager
    def open_body() -> Iterator[BinaryIO]:
        reads(obj.key)
        args: dict[str, Any] = {"Bucket": loc.bucket, "Key": obj.key, "IfMatch": obj.etag}
        if obj.version_id:
            args["VersionId"] = obj.version_id
        try:
            response = conn.client.get_object(**args)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "PreconditionFailed":
                raise Unavailable(
                    detail=f"{loc}{obj.key[len(loc.prefix) :]} changed while it was backed "
                    "up; run the backup again"
                ) from None
            conn.fail(exc, "read an object", loc.bucket)
        except BotoCoreError as exc:
            conn.fail(exc, "read an object", loc.bucket)
        body = response["Body"]
        try:
            yield body  # a botocore StreamingBody: read in pieces, never whole
        finally:
            body.close()

    return open_body


# --- restore ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """Where a restore writes: bucket, prefix, endpoint (None: the source's), region."""

    bucket: str
    prefix: str
    endpoint: Endpoint | None
    region: str | None
    items: tuple[str, ...]
    overwrite: bool


def check_target(metadata: Mapping[str, str], policy: host_paths.Policy) -> Target:
    """The restore target the Metadata names; an explicit endpoint is judged by the
    network-reach rule here (the source's own was judged at registration and is again
    in the worker)."""
    bucket = metadata.get("targetBucket")
    if not bucket:
        raise InvalidRestoreTarget("Metadata.targetBucket is required (an existing bucket)")
    for key in ("targetAccessKeyId", "targetSecretAccessKey"):
        if key in metadata:
            raise InvalidRestoreTarget(
                f"Metadata.{key} is not accepted: Metadata is stored with the job; a "
                "restore uses the source resource's credentials"
            )
    try:
        check_bucket(bucket, "Metadata.targetBucket")
        prefix = check_prefix(metadata.get("targetPrefix", ""), "Metadata.targetPrefix")
        raw = metadata.get("targetEndpoint")
        endpoint = parse_endpoint(raw, "Metadata.targetEndpoint") if raw else None
    except InvalidRestoreTarget:
        raise
    except InvalidInput as exc:
        raise InvalidRestoreTarget(exc.fields.get("detail", str(exc))) from None
    if endpoint is not None:
        net_reach.check(endpoint.host, endpoint.port, policy)
    items = tuple(parse_items(metadata.get("items")))
    overwrite = str(metadata.get("overwrite", "false")).lower() == "true"
    region = metadata.get("targetRegion") or None
    return Target(bucket, prefix, endpoint, region, items, overwrite)


def _wanted(items: tuple[str, ...], key: str) -> bool:
    return not items or any(key == i or (i.endswith("/") and key.startswith(i)) for i in items)


def _selected(entries: Iterable[EntryInfo], target: Target) -> list[EntryInfo]:
    """The point's objects to restore, non-current versions before the current one."""
    chosen = [
        e
        for e in entries
        if "key" in e.meta
        and (target.prefix or e.meta["key"])  # the prefix's own marker needs a prefix
        and _wanted(target.items, e.meta["key"])
    ]
    chosen.sort(key=lambda e: (e.meta["key"], e.meta.get("latest") == "true"))
    return chosen


def _target_connection(request: RestoreRequest, target: Target) -> Connection:
    props = request.resource.properties
    if target.endpoint is None and not props.get("endpoint"):
        raise InvalidRestoreTarget(
            "Metadata.targetEndpoint is required: the point's resource is no longer registered"
        )
    endpoint = target.endpoint or parse_endpoint(props.get("endpoint"))
    return connect(
        endpoint,
        target.region or props.get("region") or DEFAULT_REGION,
        props.get("access_key_id", ""),
        request.resource.secrets.get("secret_access_key", ""),
        request.policy,
    )


def _existing(conn: Connection, bucket: str, prefix: str) -> dict[str, Mapping[str, Any]]:
    try:
        pages = conn.client.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=prefix, PaginationConfig={"PageSize": _LIST_PAGE}
        )
        return {item["Key"]: item for page in pages for item in page.get("Contents", [])}
    except (ClientError, BotoCoreError) as exc:
        conn.fail(exc, "listing the target", bucket)


def _put_args(meta: Mapping[str, str]) -> dict[str, Any]:
    args: dict[str, Any] = {"Metadata": json.loads(meta.get("metadata") or "{}")}
    for name, _, argument in _HEADERS:
        if meta.get(name):
            args[argument] = meta[name]
    tags = json.loads(meta.get("tags") or "{}")
    if tags:
        args["Tagging"] = urlencode(tags, quote_via=quote)
    return args


class S3:
    """The S3 resource type (see the module docstring)."""

    type_name: str = "S3"
    arn_kind: str = "s3"
    restore_keys: tuple[MetadataKey, ...] = (
        MetadataKey("targetBucket", True, "the existing bucket to restore into"),
        MetadataKey("targetPrefix", False, "key prefix in the target bucket (default none)"),
        MetadataKey("items", False, "keys to restore (relative to the backed-up prefix)"),
        MetadataKey("targetEndpoint", False, "http(s)://HOST[:PORT] (default: the source's)"),
        MetadataKey("targetRegion", False, "the target's region (default: the source's)"),
        MetadataKey("overwrite", False, '"true" to write over existing keys'),
    )

    def __init__(self, on_read: Callable[[str], None] | None = None) -> None:
        self._on_read = on_read or (lambda key: None)

    def check_source(
        self, source: str, policy: host_paths.Policy, properties: Mapping[str, str]
    ) -> Registration:
        loc = parse_source(source)
        unknown = set(properties) - PROPERTIES - SECRETS
        if unknown:
            known = ", ".join(sorted(PROPERTIES | SECRETS))
            raise InvalidInput(
                detail=f"unknown S3 properties {', '.join(sorted(unknown))} (known: {known})"
            )
        endpoint = parse_endpoint(properties.get("endpoint"))
        key_id, secret = properties.get("access_key_id"), properties.get("secret_access_key")
        if not key_id or not secret:
            raise InvalidInput(detail="S3 needs access_key_id and secret_access_key")
        versions = str(properties.get("versions", "false")).lower()
        if versions not in ("true", "false"):
            raise InvalidInput(detail='S3 property versions must be "true" or "false"')
        net_reach.check(endpoint.host, endpoint.port, policy)  # nothing contacted before
        shown = {
            "endpoint": endpoint.url,
            "region": properties.get("region") or DEFAULT_REGION,
            "access_key_id": key_id,
            "versions": versions,
        }
        return Registration(str(loc), shown, {"secret_access_key": secret})

    def describe(self, resource: Resource, policy: host_paths.Policy) -> dict[str, Any]:
        """The bucket, prefix and endpoint; with the secret at hand also how many objects
        are under the prefix (a first page), the endpoint judged by ``policy``."""
        try:
            loc = parse_source(resource.source)
            endpoint = parse_endpoint(resource.properties.get("endpoint"))
        except SnowvaultError as exc:
            return {"Error": str(exc)}
        out: dict[str, Any] = {"Bucket": loc.bucket, "Prefix": loc.prefix}
        out["Endpoint"] = endpoint.url
        if not resource.secrets.get("secret_access_key"):
            return out
        try:
            conn = _connect_resource(resource, policy)
        except net_reach.NetworkRefused:
            return out
        except SnowvaultError as exc:
            return {"Error": str(exc)}
        try:
            page = conn.client.list_objects_v2(
                Bucket=loc.bucket, Prefix=loc.prefix, MaxKeys=_LIST_PAGE
            )
        except (ClientError, BotoCoreError) as exc:
            return {"Error": str(explain(exc, "listing", endpoint, loc.bucket, conn.key_id))}
        count = int(page.get("KeyCount", 0))
        out["Objects"] = f"{count}+" if page.get("IsTruncated") else str(count)
        return out

    def backup(self, request: BackupRequest) -> None:
        loc = parse_source(request.resource.source)
        versions = request.resource.properties.get("versions") == "true"
        conn = _connect_resource(request.resource, request.policy)  # judged again, now
        try:
            conn.client.head_bucket(Bucket=loc.bucket)
        except (ClientError, BotoCoreError) as exc:
            conn.fail(exc, "opening the bucket", loc.bucket)
        objects = _list(conn, loc, versions)
        rels = [o.key[len(loc.prefix) :] for o in objects]
        keys = list(dict.fromkeys(rels))  # versions share their key's path
        path_of = dict(zip(keys, entry_paths(keys), strict=True))
        total = sum(o.size for o in objects)
        request.progress(Progress(0, total))
        request.sink.note(
            {
                "bucket": loc.bucket,
                "prefix": loc.prefix,
                "endpoint": conn.endpoint.url,
                "objects": sum(1 for o in objects if o.latest),
                "versions": sum(1 for o in objects if not o.latest),
            }
        )

        def entries() -> Iterator[Entry]:
            for obj, rel in zip(objects, rels, strict=True):
                path = path_of[rel]
                if not obj.latest:
                    path = _version_path(path, obj.version_id or "null")
                yield Entry(
                    path=path,
                    open=_opener(conn, loc, obj, self._on_read),
                    size=obj.size,
                    meta=_meta(conn, loc, obj, rel),
                    fingerprint=obj.fingerprint,
                )

        def on_progress(p: Progress) -> None:
            request.progress(Progress(p.bytes_done, total))

        request.sink.entries(entries(), on_progress)

    def check_restore(self, metadata: Mapping[str, str], policy: host_paths.Policy) -> None:
        check_target(metadata, policy)

    def restore(self, request: RestoreRequest) -> None:
        target = check_target(request.metadata, request.policy)  # again, now
        conn = _target_connection(request, target)
        chosen = _selected(request.source.entries(), target)
        if target.items and not chosen:
            raise InvalidRestoreTarget("Metadata.items names no object of the recovery point")
        try:
            conn.client.head_bucket(Bucket=target.bucket)
        except (ClientError, BotoCoreError) as exc:
            conn.fail(exc, "opening the target bucket", target.bucket)
        keys = {target.prefix + e.meta["key"] for e in chosen}
        clash = sorted(keys & set(_existing(conn, target.bucket, target.prefix)))
        if clash and not target.overwrite:
            raise InvalidRestoreTarget(
                f"{len(clash)} key(s) exist in s3://{target.bucket}/{target.prefix} "
                f'(first: {clash[0]!r}); set Metadata.overwrite to "true" to write over them'
            )
        total = sum(e.size for e in chosen)
        done = 0
        request.progress(Progress(0, total))
        transfer = TransferConfig(
            multipart_threshold=SINGLE_PUT_LIMIT + 1, multipart_chunksize=SINGLE_PUT_LIMIT
        )
        for entry in chosen:
            key = target.prefix + entry.meta["key"]
            args = _put_args(entry.meta)
            try:
                with request.source.open(entry.path) as body:
                    if entry.size <= SINGLE_PUT_LIMIT:
                        conn.client.put_object(
                            Bucket=target.bucket, Key=key, Body=body.read(), **args
                        )
                    else:
                        conn.client.upload_fileobj(
                            body, target.bucket, key, ExtraArgs=args, Config=transfer
                        )
            except (ClientError, BotoCoreError) as exc:
                conn.fail(exc, f"writing {key!r}", target.bucket)
            done += entry.size
            request.progress(Progress(done, total))

    def restore_defaults(self, resource: Resource | None) -> dict[str, str]:
        """Back into the source bucket and prefix, refusing to overwrite, everything."""
        if resource is None or not resource.source:
            return {"targetBucket": "", "overwrite": "false"}
        loc = parse_source(resource.source)
        return {"targetBucket": loc.bucket, "targetPrefix": loc.prefix, "overwrite": "false"}

    def restored_source(self, metadata: Mapping[str, str]) -> str | None:
        """The ``s3://bucket/prefix`` a restore with ``metadata`` wrote into."""
        bucket = metadata.get("targetBucket")
        return f"s3://{bucket}/{metadata.get('targetPrefix', '')}" if bucket else None

    def validate_restore(self, request: RestoreRequest) -> str | None:
        """Every restored key is in the target with its size, and with the source's
        ETag where both are single-part (an MD5 of the body); versions count once."""
        target = check_target(request.metadata, request.policy)
        conn = _target_connection(request, target)
        # versions sort before their key's current one: the last one per key stays
        want = {
            target.prefix + e.meta["key"]: e for e in _selected(request.source.entries(), target)
        }
        found = _existing(conn, target.bucket, target.prefix)
        missing = sorted(set(want) - set(found))
        if missing:
            return f"{len(missing)} of {len(want)} object(s) missing (first: {missing[0]!r})"
        for key, entry in want.items():
            got, meta = found[key], entry.meta
            if int(got.get("Size", -1)) != int(meta.get("size", entry.size)):
                return f"object {key!r} has {got.get('Size')} bytes, not {meta.get('size')}"
            etag, theirs = meta.get("etag", ""), str(got.get("ETag", ""))
            if _plain(etag) and _plain(theirs) and etag != theirs:
                return f"object {key!r} has ETag {theirs}, not {etag}"
        return None


def _plain(etag: str) -> bool:
    """A single-part ETag (the body's MD5), not a multipart one (``...-N``)."""
    return bool(re.fullmatch(r'"?[0-9a-f]{32}"?', etag))
