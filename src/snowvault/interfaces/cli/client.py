"""The management CLI's connection to a snowvault server: profile, clients, error translation.

The management commands are pure API clients. This module gives them

- :func:`load_profile`: endpoint, region and keys from explicit flags, then the ``AWS_*``
  environment variables, then the profile ``snowvault init`` wrote
  (``$XDG_CONFIG_HOME/snowvault/config.json``);
- :class:`Api`: a boto3 ``backup`` client with few retries, and :meth:`Api.ext` for the
  extension API (``POST /_snowvault/v1/<Action>``, SigV4 service ``snowvault``);
- one translation of botocore errors into the :class:`ApiError` tree, so every failure is a
  one-line message with a stable exit code (``cli/errors.py``), never a traceback.

Must not depend on the server side (interfaces.api, interfaces.web, app, services).
Imports botocore only inside the functions that talk to a server, so that importing this
module (and the error classes it defines, which ``cli/errors.py`` maps to exit codes)
stays cheap for every command, including the offline ``repo`` tools.

    >>> api_error("ResourceNotFoundException", "no vault x").__class__.__name__
    'ApiNotFound'
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from snowvault.core import errors

if TYPE_CHECKING:
    import botocore.awsrequest
    import botocore.config
    import botocore.httpsession

DEFAULT_REGION = "us-east-1"
EXTENSION_PREFIX = "/_snowvault/v1/"
EXTENSION_SERVICE = "snowvault"


class ClientConfigError(errors.InvalidInput):
    """no snowvault server configured: {detail}"""


class ServerUnreachable(errors.Unavailable):
    """cannot reach the snowvault server at {endpoint}: {detail}"""


class ApiError(errors.SnowvaultError):
    """{code}: {detail}"""


class ApiInvalidInput(ApiError, errors.InvalidInput):
    """{code}: {detail}"""


class ApiNotFound(ApiError, errors.NotFound):
    """{code}: {detail}"""


class ApiAlreadyExists(ApiError, errors.AlreadyExists):
    """{code}: {detail}"""


class ApiConflict(ApiError, errors.Conflict):
    """{code}: {detail}"""


class ApiAccessDenied(ApiError, errors.PermissionDenied):
    """{code}: {detail}"""


class ApiUnavailable(ApiError, errors.Unavailable):
    """{code}: {detail}"""


class JobUnsuccessful(errors.Conflict):
    """{kind} job {job_id} ended {state}: {reason}"""


_CODE_CLASSES: dict[str, type[ApiError]] = {
    "ResourceNotFoundException": ApiNotFound,
    "NotFoundException": ApiNotFound,
    "AlreadyExistsException": ApiAlreadyExists,
    "InvalidParameterValueException": ApiInvalidInput,
    "MissingParameterValueException": ApiInvalidInput,
    "ValidationException": ApiInvalidInput,
    "SerializationException": ApiInvalidInput,
    "InvalidRequestException": ApiConflict,
    "InvalidResourceStateException": ApiConflict,
    "ConflictException": ApiConflict,
    # a quota (a user's 2 access keys, 50 legal holds...): retrying will not help
    "LimitExceededException": ApiConflict,
    "AccessDeniedException": ApiAccessDenied,
    "UnrecognizedClientException": ApiAccessDenied,
    "InvalidSignatureException": ApiAccessDenied,
    "IncompleteSignature": ApiAccessDenied,
    "MissingAuthenticationToken": ApiAccessDenied,
    "ServiceUnavailableException": ApiUnavailable,
    "ThrottlingException": ApiUnavailable,
    "InternalFailure": ApiUnavailable,
}


def api_error(code: str, message: str) -> ApiError:
    """The :class:`ApiError` subclass for an AWS error code (unknown codes: ApiError)."""
    cls = _CODE_CLASSES.get(code, ApiError)
    return cls(code=code, detail=" ".join(message.split()) or code)


@dataclass(frozen=True)
class Profile:
    """Where the server is and who we are to it."""

    endpoint: str
    region: str
    access_key_id: str
    secret_access_key: str = field(repr=False)
    account_id: str | None = None


def profile_path(env: Mapping[str, str]) -> Path:
    """``$XDG_CONFIG_HOME/snowvault/config.json``, defaulting to ``~/.config``."""
    base = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME") or Path.home()) / ".config")
    return Path(base) / "snowvault" / "config.json"


def _read_profile_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ClientConfigError(detail=f"cannot read {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ClientConfigError(detail=f"{path} is not UTF-8 text: {exc.reason}") from None
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ClientConfigError(detail=f"{path} is not JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise ClientConfigError(detail=f"{path} must hold a JSON object")
    return doc


_FILE_KEYS = {
    "endpoint": ("endpoint", "endpoint_url"),
    "region": ("region",),
    "access_key_id": ("access_key_id", "aws_access_key_id"),
    "secret_access_key": ("secret_access_key", "aws_secret_access_key"),
    "account_id": ("account_id",),
}

_ENV_KEYS = {
    "endpoint": ("AWS_ENDPOINT_URL_BACKUP", "AWS_ENDPOINT_URL"),
    "region": ("AWS_DEFAULT_REGION", "AWS_REGION"),
    "access_key_id": ("AWS_ACCESS_KEY_ID",),
    "secret_access_key": ("AWS_SECRET_ACCESS_KEY",),
}


def _first(source: Mapping[str, Any], keys: tuple[str, ...]) -> str | None:
    for key in keys:
        value = source.get(key)
        if value:
            return str(value)
    return None


def load_profile(
    *,
    endpoint: str | None = None,
    region: str | None = None,
    env: Mapping[str, str] | None = None,
    path: Path | None = None,
) -> Profile:
    """Each setting from the first that has it: the flags, ``AWS_*`` variables, the file.

    >>> p = load_profile(endpoint="http://127.0.0.1:1", env={
    ...     "AWS_ACCESS_KEY_ID": "AK", "AWS_SECRET_ACCESS_KEY": "SK", "HOME": "/nonexistent"})
    >>> (p.endpoint, p.region, p.access_key_id)
    ('http://127.0.0.1:1', 'us-east-1', 'AK')
    """
    env = os.environ if env is None else env
    stored = _read_profile_file(path or profile_path(env))
    flags = {"endpoint": endpoint, "region": region}
    values: dict[str, str | None] = {}
    for name, file_keys in _FILE_KEYS.items():
        values[name] = (
            flags.get(name) or _first(env, _ENV_KEYS.get(name, ())) or _first(stored, file_keys)
        )
    missing = [n for n in ("endpoint", "access_key_id", "secret_access_key") if not values[n]]
    if missing:
        raise ClientConfigError(
            detail=f"missing {', '.join(missing)}; run `snowvault init` or set "
            "AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        )
    return Profile(
        endpoint=str(values["endpoint"]).rstrip("/"),
        region=values["region"] or DEFAULT_REGION,
        access_key_id=str(values["access_key_id"]),
        secret_access_key=str(values["secret_access_key"]),
        account_id=values["account_id"],
    )


@contextmanager
def translated(endpoint: str) -> Iterator[None]:
    """Turn botocore's exceptions into the :class:`ApiError` tree (one line each)."""
    import botocore.exceptions  # deferred: botocore is a large import, needed only here

    unreachable = (
        botocore.exceptions.EndpointConnectionError,
        botocore.exceptions.ConnectionClosedError,
        botocore.exceptions.ConnectTimeoutError,
        botocore.exceptions.ReadTimeoutError,
        botocore.exceptions.HTTPClientError,
    )
    try:
        yield
    except botocore.exceptions.ClientError as exc:
        err = exc.response.get("Error", {})
        code = str(err.get("Code") or "Unknown")
        raise api_error(code, str(err.get("Message") or "")) from None
    except unreachable as exc:
        raise ServerUnreachable(endpoint=endpoint, detail=_short(exc)) from None
    except botocore.exceptions.ParamValidationError as exc:
        raise errors.InvalidInput(detail=_short(exc)) from None
    except botocore.exceptions.NoCredentialsError as exc:
        raise ClientConfigError(detail=_short(exc)) from None
    except botocore.exceptions.BotoCoreError as exc:
        raise ApiError(code=type(exc).__name__, detail=_short(exc)) from None


def _short(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def _retry_config() -> botocore.config.Config:
    import botocore.config

    return botocore.config.Config(
        retries={"max_attempts": 2, "mode": "standard"},
        connect_timeout=5,
        read_timeout=60,
    )


def _no_empty_labels(backup: Any, operation: str, params: Mapping[str, Any]) -> None:
    """Refuse an empty value of a member the model puts in the URL path: botocore sends
    it, and the path becomes the operation one level up (``describe_backup_vault`` of
    "" is GET /backup-vaults/, i.e. ListBackupVaults), answered as a blank success."""
    name = backup.meta.method_to_api_mapping.get(operation)
    shape = backup.meta.service_model.operation_model(name).input_shape if name else None
    for member, member_shape in shape.members.items() if shape is not None else ():
        if member_shape.serialization.get("location") == "uri" and params.get(member) == "":
            raise errors.InvalidInput(detail=f"{member} must not be empty")


class Api:
    """Both halves of one server's API: AWS Backup (boto3) and the snowvault extension."""

    def __init__(self, profile: Profile) -> None:
        self.profile = profile
        self._backup: Any = None
        self._http: botocore.httpsession.URLLib3Session | None = None

    @property
    def backup(self) -> Any:
        """The boto3 ``backup`` client (made on first use)."""
        if self._backup is None:
            import boto3  # deferred: a third of the CLI's start-up time, needed only here

            p = self.profile
            self._backup = boto3.session.Session().client(
                "backup",
                endpoint_url=p.endpoint,
                region_name=p.region,
                aws_access_key_id=p.access_key_id,
                aws_secret_access_key=p.secret_access_key,
                config=_retry_config(),
            )
        return self._backup

    def call(self, operation: str, **params: Any) -> dict[str, Any]:
        """``backup.<operation>(**params)`` with errors translated; no ResponseMetadata."""
        _no_empty_labels(self.backup, operation, params)
        with translated(self.profile.endpoint):
            doc = dict(getattr(self.backup, operation)(**params))
        doc.pop("ResponseMetadata", None)
        return doc

    def paginate(self, operation: str, key: str, **params: Any) -> list[dict[str, Any]]:
        """Every item under ``key`` across all pages of ``operation``."""
        items: list[dict[str, Any]] = []
        with translated(self.profile.endpoint):
            for page in self.backup.get_paginator(operation).paginate(**params):
                items.extend(page.get(key, []))
        return items

    def ext(self, action: str, body: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Call an extension action; errors come back as the :class:`ApiError` tree."""
        request = signed_extension_request(self.profile, action, body or {})
        with translated(self.profile.endpoint):
            response = self._session().send(request.prepare())
        return parse_extension_response(response.status_code, response.headers, response.content)

    def ext_paginate(
        self, action: str, key: str, body: Mapping[str, Any], token: str = "NextToken"
    ) -> list[Any]:
        """Every item under ``key``, following ``token`` (``Marker`` for the IAM lists)."""
        items: list[Any] = []
        request = dict(body)
        while True:
            page = self.ext(action, request)
            items.extend(page.get(key, []))
            following = page.get(token)
            if not following:
                return items
            request[token] = following

    def _session(self) -> botocore.httpsession.URLLib3Session:
        if self._http is None:
            import botocore.httpsession

            self._http = botocore.httpsession.URLLib3Session(timeout=60)
        return self._http


def signed_extension_request(
    profile: Profile, action: str, body: Mapping[str, Any]
) -> botocore.awsrequest.AWSRequest:
    """A SigV4-signed ``POST /_snowvault/v1/<action>`` (service name ``snowvault``)."""
    import botocore.auth
    import botocore.awsrequest
    import botocore.credentials

    request = botocore.awsrequest.AWSRequest(
        method="POST",
        url=f"{profile.endpoint}{EXTENSION_PREFIX}{action}",
        data=json.dumps(body).encode("utf-8"),
        headers={"Content-Type": "application/json"},
    )
    credentials = botocore.credentials.Credentials(profile.access_key_id, profile.secret_access_key)
    botocore.auth.SigV4Auth(credentials, EXTENSION_SERVICE, profile.region).add_auth(request)
    return request


def parse_extension_response(
    status: int, headers: Mapping[str, str], content: bytes
) -> dict[str, Any]:
    """The JSON answer, or the :class:`ApiError` the server reported.

    >>> parse_extension_response(200, {}, b'{"Resources": []}')
    {'Resources': []}
    """
    try:
        doc = json.loads(content or b"{}")
    except ValueError:
        doc = None
    if 200 <= status < 300 and isinstance(doc, dict):
        return doc
    if not isinstance(doc, dict):
        doc = {}
    code = _error_code(headers, doc) or f"HTTP{status}"
    message = str(doc.get("message") or doc.get("Message") or f"HTTP status {status}")
    raise api_error(code, message)


def _error_code(headers: Mapping[str, str], doc: Mapping[str, Any]) -> str | None:
    lowered = {k.lower(): v for k, v in headers.items()}
    raw = lowered.get("x-amzn-errortype") or doc.get("__type") or doc.get("code")
    if not raw:
        return None
    # "ResourceNotFoundException:http://..." or "prefix#ResourceNotFoundException"
    return str(raw).split(":", 1)[0].rsplit("#", 1)[-1]


ApiFactory = Callable[[Profile], Api]


def json_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``--json``: machine-readable output, passed as ``as_json``."""
    return click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")(fn)


def with_api(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``--endpoint-url``/``--region`` and call ``fn(api, **params)``.

    Tests inject a fake through the click context: ``obj={"api_factory": lambda p: fake}``.
    """

    def wrapper(
        ctx: click.Context, /, endpoint_url: str | None, region: str | None, **params: Any
    ) -> Any:
        root = ctx.find_root().obj
        obj: dict[str, Any] = root if isinstance(root, dict) else {}
        factory: ApiFactory = obj.get("api_factory", Api)
        profile = load_profile(endpoint=endpoint_url, region=region, env=obj.get("env"))
        return fn(factory(profile), **params)

    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    decorated = click.pass_context(wrapper)
    decorated = click.option("--region", metavar="REGION", help="Region (default: profile).")(
        decorated
    )
    return click.option(
        "--endpoint-url", metavar="URL", help="Server URL (default: profile or AWS_ENDPOINT_URL)."
    )(decorated)
