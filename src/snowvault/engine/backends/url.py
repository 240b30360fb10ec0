"""Open a Backend from a storage URL — the one place URLs become stores.

=====================================================  ==================================
``/srv/vaults/main``, ``./repo``, ``file:///srv/x``     LocalBackend on that directory
``s3://bucket/prefix?endpoint_url=...&region=...``      S3Backend, wrapped in RetryBackend
``memory://``                                          a fresh MemoryBackend (tests)
=====================================================  ==================================

S3 settings come from the URL's query options first, then the usual AWS environment
variables (AWS_ENDPOINT_URL_S3, AWS_REGION, AWS_DEFAULT_REGION, AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN), then boto3's own chain. The endpoint is never
taken from the generic AWS_ENDPOINT_URL (nor from a config file's ``endpoint_url``): that
one points the AWS tools at the snowvault server, and a repository's objects must not
follow it there; without ``endpoint_url=`` or AWS_ENDPOINT_URL_S3 the store is AWS S3.
Query options: endpoint_url, region, access_key_id, secret_access_key, session_token,
multipart_threshold, part_size (bytes), conditional_writes (true/false), retry_attempts
(1 = no retries). A bad URL raises core InvalidInput with a one-line message.

Imports the S3 backend (and so boto3) only when an s3:// URL is opened.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

from snowvault.core import errors as core_errors
from snowvault.engine.backends import base
from snowvault.engine.backends.local import LocalBackend
from snowvault.engine.backends.memory import MemoryBackend
from snowvault.engine.backends.retry import RetryBackend

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$")
_TEXT_OPTIONS = ("endpoint_url", "region", "access_key_id", "secret_access_key", "session_token")
_INT_OPTIONS = ("multipart_threshold", "part_size", "retry_attempts")
_BOOL_OPTIONS = ("conditional_writes",)
_ENV = {
    "endpoint_url": ("AWS_ENDPOINT_URL_S3",),  # never AWS_ENDPOINT_URL: see the docstring
    "region": ("AWS_REGION", "AWS_DEFAULT_REGION"),
    "access_key_id": ("AWS_ACCESS_KEY_ID",),
    "secret_access_key": ("AWS_SECRET_ACCESS_KEY",),
    "session_token": ("AWS_SESSION_TOKEN",),
}
DEFAULT_RETRY_ATTEMPTS = 5


@dataclass(frozen=True)
class S3Options:
    """What an s3:// URL (plus the environment) asks for."""

    bucket: str
    prefix: str = ""
    endpoint_url: str | None = None
    region: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None
    session_token: str | None = None
    multipart_threshold: int | None = None
    part_size: int | None = None
    conditional_writes: bool = True
    retry_attempts: int = DEFAULT_RETRY_ATTEMPTS


def _invalid(url: str, why: str) -> core_errors.InvalidInput:
    return core_errors.InvalidInput(detail=f"storage URL {_redact(url)!r}: {why}")


def _redact(url: str) -> str:
    """``url`` without secret query values, fit for a message."""
    return re.sub(r"((?:secret_access_key|session_token)=)[^&]*", r"\1***", url)


def parse_s3_url(url: str, env: Mapping[str, str] | None = None) -> S3Options:
    """Parse ``s3://bucket/prefix?options`` with ``env`` (default os.environ) as fallback."""
    env = os.environ if env is None else env
    parts = urlsplit(url)
    if parts.scheme != "s3" or not _BUCKET.match(parts.netloc):
        raise _invalid(url, "expected s3://<bucket>/<prefix> with a valid bucket name")
    query = _query(url, parts.query)
    text = {option: query.get(option) or _from_env(env, option) for option in _ENV}
    ints = {o: _int_option(url, o, query[o]) for o in _INT_OPTIONS if o in query}
    endpoint = text["endpoint_url"]
    if endpoint is not None and not endpoint.startswith(("http://", "https://")):
        raise _invalid(url, "endpoint_url must start with http:// or https://")
    return S3Options(
        bucket=parts.netloc,
        prefix=parts.path.strip("/"),
        endpoint_url=endpoint,
        region=text["region"],
        access_key_id=text["access_key_id"],
        secret_access_key=text["secret_access_key"],
        session_token=text["session_token"],
        multipart_threshold=ints.get("multipart_threshold"),
        part_size=ints.get("part_size"),
        conditional_writes=_bool_option(url, query.get("conditional_writes", "true")),
        retry_attempts=ints.get("retry_attempts", DEFAULT_RETRY_ATTEMPTS),
    )


def _from_env(env: Mapping[str, str], option: str) -> str | None:
    return next((env[name] for name in _ENV[option] if env.get(name)), None)


def _query(url: str, query: str) -> dict[str, str]:
    pairs = parse_qsl(query, keep_blank_values=True)
    known = set(_TEXT_OPTIONS + _INT_OPTIONS + _BOOL_OPTIONS)
    result: dict[str, str] = {}
    for key, value in pairs:
        if key not in known:
            raise _invalid(url, f"unknown option {key!r} (known: {', '.join(sorted(known))})")
        if key in result:
            raise _invalid(url, f"option {key!r} given twice")
        result[key] = value
    return result


def _int_option(url: str, option: str, value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise _invalid(url, f"{option} must be a positive integer, not {value!r}")
    return int(value)


def _bool_option(url: str, value: str) -> bool:
    lowered = value.lower()
    if lowered not in ("true", "false", "1", "0", "yes", "no"):
        raise _invalid(url, f"conditional_writes must be true or false, not {value!r}")
    return lowered in ("true", "1", "yes")


def open_backend(url: str, *, env: Mapping[str, str] | None = None) -> base.Backend:
    """The Backend a storage URL names; see the module docstring for the forms."""
    url = url.strip()
    if not url:
        raise _invalid(url, "empty; give a directory, file://, s3:// or memory:// URL")
    scheme, sep, rest = url.partition("://")
    if not sep:
        return LocalBackend(url)
    if scheme == "file":
        if not rest:
            raise _invalid(url, "file:// needs a path")
        return LocalBackend(rest)
    if scheme == "memory":
        return MemoryBackend(rest)
    if scheme == "s3":
        return _open_s3(parse_s3_url(url, env))
    raise _invalid(url, f"unsupported scheme {scheme!r}; use a path, file://, s3:// or memory://")


def _open_s3(options: S3Options) -> base.Backend:
    from snowvault.engine.backends import s3  # boto3 is heavy: import on demand

    sizes: dict[str, int] = {}
    if options.multipart_threshold is not None:
        sizes["multipart_threshold"] = options.multipart_threshold
    if options.part_size is not None:
        sizes["part_size"] = options.part_size
    store = s3.S3Backend(
        options.bucket,
        options.prefix,
        endpoint_url=options.endpoint_url,
        region=options.region,
        access_key_id=options.access_key_id,
        secret_access_key=options.secret_access_key,
        session_token=options.session_token,
        conditional_writes=options.conditional_writes,
        **sizes,
    )
    if options.retry_attempts <= 1:
        return store
    return RetryBackend(store, attempts=options.retry_attempts)
