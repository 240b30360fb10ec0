"""An object store in an S3 bucket (AWS S3, MinIO, Ceph RGW, ...), through boto3.

The only module of the engine that imports boto3/botocore. Object ``a/b`` is the key
``<prefix>/a/b``. How the guarantees of base.py are kept:

- Immutable names: puts are conditional (``If-None-Match: *``), so the server refuses to
  replace a key, racing writers included. A server that answers NotImplemented to the
  condition is remembered and then served by head-then-put (not race-free).
- Objects above ``multipart_threshold`` go up in parts of ``part_size``; a failed
  multipart upload is aborted so no parts linger.
- Errors are translated once, in :func:`translate`: missing key -> ObjectNotFound,
  throttling / 5xx / connection trouble / timeouts -> TransientBackendError, the rest
  (auth, missing bucket) -> PermanentBackendError. botocore's own retries are off: the
  retry wrapper (retry.py) owns retrying.
- Object Lock: ``capabilities.retention`` is True when the bucket has Object Lock.
  ``set_retention`` only ever extends (base.extend_retention). In a versioned bucket a
  plain DeleteObject only adds a delete marker, so ``delete`` removes every version of
  the key by id; the store then refuses a locked version (AccessDenied -> ObjectLocked).

Must not depend on anything above the engine.
"""

from __future__ import annotations

import builtins
import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError, IncompleteReadError
from botocore.exceptions import ConnectionError as BotoConnectionError

from snowvault.core import clock
from snowvault.core import errors as core_errors
from snowvault.engine import errors
from snowvault.engine.backends import base
from snowvault.engine.backends.memory import past_end

MiB = 1024 * 1024
DEFAULT_MULTIPART_THRESHOLD = 64 * MiB
DEFAULT_PART_SIZE = 16 * MiB
MIN_PART_SIZE = 5 * MiB  # S3's floor for every part but the last

_NOT_FOUND_CODES = frozenset({"NoSuchKey", "NotFound", "404", "NoSuchVersion"})
_EXISTS_CODES = frozenset({"PreconditionFailed", "412"})
_TRANSIENT_CODES = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "RequestThrottled",
        "TooManyRequests",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "RequestTimeout",
        "RequestTimeoutException",
        "InternalError",
        "ServiceUnavailable",
        "OperationAborted",
        "ConditionalRequestConflict",
        "PriorRequestNotComplete",
    }
)
_TRANSIENT_BOTO_ERRORS = (BotoConnectionError, HTTPClientError, IncompleteReadError)
_NO_LOCK_CODES = frozenset({"ObjectLockConfigurationNotFoundError"})
_SESSION: Any = None
_SESSION_LOCK = threading.Lock()


def _code_and_status(exc: ClientError) -> tuple[str, int]:
    code = str(exc.response.get("Error", {}).get("Code", ""))
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    return code, status


def translate(exc: Exception, name: str) -> errors.BackendError:
    """Map a boto3/botocore exception met while handling ``name`` to the backend tree."""
    if isinstance(exc, ClientError):
        code, status = _code_and_status(exc)
        if code in _NOT_FOUND_CODES or (status == 404 and code != "NoSuchBucket"):
            return errors.ObjectNotFound(name=name)
        if code in _EXISTS_CODES:
            return errors.ObjectExists(name=name)
        message = exc.response.get("Error", {}).get("Message", "")
        detail = f"{name}: {code or status} {message}".rstrip()
        if code in _TRANSIENT_CODES or status >= 500 or status == 429:
            return errors.TransientBackendError(detail=detail)
        return errors.PermanentBackendError(detail=detail)
    if isinstance(exc, _TRANSIENT_BOTO_ERRORS):
        return errors.TransientBackendError(detail=f"{name}: {exc}")
    return errors.PermanentBackendError(detail=f"{name}: {exc}")


def make_client(
    *,
    endpoint_url: str | None = None,
    region: str | None = None,
    access_key_id: str | None = None,
    secret_access_key: str | None = None,
    session_token: str | None = None,
    connect_timeout: float = 10.0,
    read_timeout: float = 60.0,
    max_pool_connections: int = 32,
) -> Any:
    """A boto3 S3 client with botocore's retries off; ``None`` means boto3's default.

    Clients come from one shared boto3 session (loading the service model once costs
    more than a request), with credentials passed per client, never stored on it. The
    endpoint is only ever the one passed: botocore's own endpoint discovery (the generic
    AWS_ENDPOINT_URL, which points the AWS tools at snowvault, and config files) is off.
    """
    options: dict[str, Any] = {
        "ignore_configured_endpoint_urls": True,
        "retries": {"total_max_attempts": 1},
        "connect_timeout": connect_timeout,
        "read_timeout": read_timeout,
        "max_pool_connections": max_pool_connections,
        "signature_version": "s3v4",  # presigned URLs too (boto3 presigns SigV2 otherwise)
    }
    if endpoint_url:  # S3-compatible servers rarely do virtual-hosted buckets
        options["s3"] = {"addressing_style": "path"}
    with _SESSION_LOCK:  # boto3 sessions are not thread-safe
        global _SESSION
        if _SESSION is None:
            _SESSION = boto3.session.Session()
        return _SESSION.client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=region,
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            aws_session_token=session_token,
            config=Config(**options),
        )


def object_lock_enabled(client: Any, bucket: str) -> bool:
    """Whether ``bucket`` has S3 Object Lock enabled."""
    try:
        response = client.get_object_lock_configuration(Bucket=bucket)
    except ClientError as exc:
        if _code_and_status(exc)[0] in _NO_LOCK_CODES:
            return False
        raise translate(exc, f"s3://{bucket}") from exc
    except BotoCoreError as exc:
        raise translate(exc, f"s3://{bucket}") from exc
    config = response.get("ObjectLockConfiguration", {})
    return bool(config.get("ObjectLockEnabled") == "Enabled")


def bucket_has_object_lock(
    bucket: str,
    *,
    endpoint_url: str | None = None,
    region: str | None = None,
    access_key_id: str | None = None,
    secret_access_key: str | None = None,
    session_token: str | None = None,
) -> bool:
    """Whether ``bucket`` has S3 Object Lock enabled (checked before creating a locked vault)."""
    client = make_client(
        endpoint_url=endpoint_url,
        region=region,
        access_key_id=access_key_id,
        secret_access_key=secret_access_key,
        session_token=session_token,
    )
    try:
        return object_lock_enabled(client, bucket)
    finally:
        client.close()


@dataclass(frozen=True)
class PresignedPut:
    """A presigned PUT: the URL and the headers its holder must send with it."""

    url: str
    headers: dict[str, str]


def direct_store(backend: base.Backend) -> S3Backend | None:
    """The S3 store a backend writes into (through the retry wrapper and the warm side
    of a tiered store), or None when it is not S3: where presigned uploads can go."""
    seen = 0
    while seen < 4:
        if isinstance(backend, S3Backend):
            return backend
        inner = getattr(backend, "inner", None) or getattr(backend, "warm", None)
        if inner is None:
            return None
        backend, seen = inner, seen + 1
    return None


class S3Backend:
    """Objects under ``prefix`` in ``bucket``. See the module docstring for the details."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        session_token: str | None = None,
        multipart_threshold: int = DEFAULT_MULTIPART_THRESHOLD,
        part_size: int = DEFAULT_PART_SIZE,
        conditional_writes: bool = True,
    ) -> None:
        if part_size < MIN_PART_SIZE or multipart_threshold < 1:
            raise core_errors.InvalidInput(
                detail=f"S3 part_size must be >= {MIN_PART_SIZE} and multipart_threshold >= 1"
            )
        self._bucket = bucket
        self._prefix = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
        self._client = make_client(
            endpoint_url=endpoint_url,
            region=region,
            access_key_id=access_key_id,
            secret_access_key=secret_access_key,
            session_token=session_token,
        )
        self._multipart_threshold = multipart_threshold
        self._part_size = part_size
        self._conditional = conditional_writes
        self._object_lock: bool | None = None
        self._lock = threading.Lock()

    @property
    def location(self) -> str:
        return f"s3://{self._bucket}/{self._prefix}"

    @property
    def capabilities(self) -> base.Capabilities:
        with self._lock:
            if self._object_lock is None:
                self._object_lock = object_lock_enabled(self._client, self._bucket)
            return base.Capabilities(retention=self._object_lock)

    def put(self, name: str, data: bytes | bytearray) -> None:
        key = self._key(name)
        body = data if isinstance(data, bytes | bytearray) else bytes(data)
        if not self._conditional:
            self._refuse_existing(name)
        try:
            self._put_once(key, body, conditional=self._conditional)
        except ClientError as exc:
            if not (self._conditional and _condition_unsupported(exc)):
                raise translate(exc, name) from exc
            self._conditional = False
            self.put(name, data)
        except BotoCoreError as exc:
            raise translate(exc, name) from exc

    def get(self, name: str, offset: int = 0, length: int | None = None) -> bytes:
        base.check_range(offset, length)
        key = self._key(name)
        if length == 0:
            return self._empty_read(name, offset)
        params: dict[str, Any] = {}
        if offset or length is not None:
            end = "" if length is None else str(offset + length - 1)
            params["Range"] = f"bytes={offset}-{end}"
        try:
            response = self._client.get_object(Bucket=self._bucket, Key=key, **params)
            data = _read_body(response)
        except ClientError as exc:
            if _code_and_status(exc)[0] != "InvalidRange":
                raise translate(exc, name) from exc
            return self._unsatisfiable(name, offset, length)
        except BotoCoreError as exc:
            raise translate(exc, name) from exc
        if length is not None and len(data) != length:
            raise errors.ShortRead(name=name, wanted=length, got=len(data))
        return data

    def stat(self, name: str) -> base.ObjectInfo:
        response = self._head(name)
        return base.ObjectInfo(name=name, size=int(response["ContentLength"]))

    def exists(self, name: str) -> bool:
        try:
            self._head(name)
        except errors.ObjectNotFound:
            return False
        return True

    def list(self, prefix: str = "") -> Iterator[base.ObjectInfo]:
        return self._list(prefix)

    def delete(self, name: str, *, bypass_governance: bool = False) -> None:
        head = self._head(name)
        key = self._key(name)
        if "VersionId" not in head:  # never versioned: one plain delete removes it
            self._call(name, "delete_object", Key=key)
            return
        for version_id in self._versions(name, key):
            self._delete_version(name, key, version_id, bypass_governance)

    def set_retention(self, name: str, retention: base.Retention) -> None:
        """Extend the object's Object Lock retention; without Object Lock, a no-op."""
        if not self.capabilities.retention:
            self._head(name)
            return
        current = self.get_retention(name)
        wanted = base.extend_retention(current, retention)
        if wanted == current:
            return
        lock = {"Mode": wanted.mode, "RetainUntilDate": wanted.until}
        self._call(name, "put_object_retention", Key=self._key(name), Retention=lock)

    def get_retention(self, name: str) -> base.Retention | None:
        head = self._head(name)
        mode = head.get("ObjectLockMode")
        until = head.get("ObjectLockRetainUntilDate")
        if mode in ("GOVERNANCE", "COMPLIANCE") and until is not None:
            return base.Retention(mode=mode, until=clock.utc(until))
        return None

    def close(self) -> None:
        self._client.close()

    def presign_put(
        self,
        name: str,
        content_md5: str,
        expires_seconds: int,
        checksum_sha256: str | None = None,
    ) -> PresignedPut:
        """A URL that lets its holder PUT object ``name`` once, with exactly the bytes whose
        MD5 (base64) is ``content_md5``, until ``expires_seconds`` from now: SigV4 signs
        the key, the Content-MD5 header and ``If-None-Match: *`` (an existing object is
        never replaced). With ``checksum_sha256`` (base64) it signs
        ``x-amz-checksum-sha256`` too: the store refuses (BadDigest) a body of another
        SHA-256, so an object named by its SHA-256 holds exactly those bytes. Nothing is
        sent to the store."""
        headers = {"Content-MD5": content_md5, "If-None-Match": "*"}
        params = {"Bucket": self._bucket, "Key": self._key(name), "ContentMD5": content_md5}
        params["IfNoneMatch"] = "*"
        if checksum_sha256 is not None:
            headers["x-amz-checksum-sha256"] = checksum_sha256
            params["ChecksumSHA256"] = checksum_sha256
        try:
            url = self._client.generate_presigned_url(
                "put_object", Params=params, ExpiresIn=expires_seconds
            )
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, name) from exc
        return PresignedPut(str(url), headers)

    def object_etag(self, name: str) -> tuple[int, str]:
        """(size, ETag without quotes) of ``name``; reads no data."""
        head = self._head(name)
        return int(head["ContentLength"]), str(head.get("ETag", "")).strip('"')

    def tail_with_etag(self, name: str, length: int) -> tuple[bytes, int, str]:
        """The last ``length`` bytes of ``name`` (all of it when shorter), its whole size
        and its ETag (without quotes), in one request: a suffix-range GET's answer
        carries the size (Content-Range) and the ETag, so no HEAD is needed."""
        if length <= 0:
            raise ValueError("length must be positive")
        try:
            response = self._client.get_object(
                Bucket=self._bucket, Key=self._key(name), Range=f"bytes=-{length}"
            )
            data = _read_body(response)
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, name) from exc
        total = len(data)
        content_range = str(response.get("ContentRange") or "")
        if "/" in content_range:
            with contextlib.suppress(ValueError):
                total = int(content_range.rsplit("/", 1)[1])
        return data, total, str(response.get("ETag", "")).strip('"')

    # -- helpers -------------------------------------------------------------------

    def _key(self, name: str) -> str:
        return self._prefix + base.check_name(name)

    def _call(self, name: str, method: str, **params: Any) -> Any:
        try:
            return getattr(self._client, method)(Bucket=self._bucket, **params)
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, name) from exc

    def _head(self, name: str) -> Any:
        return self._call(name, "head_object", Key=self._key(name))

    def _refuse_existing(self, name: str) -> None:
        if self.exists(name):
            raise errors.ObjectExists(name=name)

    def _put_once(self, key: str, body: bytes | bytearray, *, conditional: bool) -> None:
        condition = {"IfNoneMatch": "*"} if conditional else {}
        if len(body) <= self._multipart_threshold:
            self._client.put_object(Bucket=self._bucket, Key=key, Body=body, **condition)
            return
        upload = self._client.create_multipart_upload(Bucket=self._bucket, Key=key)
        upload_id = upload["UploadId"]
        try:
            parts = self._upload_parts(key, upload_id, body)
            self._client.complete_multipart_upload(
                Bucket=self._bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
                **condition,
            )
        except BaseException:
            self._abort_upload(key, upload_id)
            raise

    def _upload_parts(
        self, key: str, upload_id: str, body: bytes | bytearray
    ) -> builtins.list[dict[str, Any]]:
        parts = []
        for number, start in enumerate(range(0, len(body), self._part_size), start=1):
            response = self._client.upload_part(
                Bucket=self._bucket,
                Key=key,
                UploadId=upload_id,
                PartNumber=number,
                Body=body[start : start + self._part_size],
            )
            parts.append({"PartNumber": number, "ETag": response["ETag"]})
        return parts

    def _abort_upload(self, key: str, upload_id: str) -> None:
        # best effort; a bucket lifecycle rule should reap uploads left behind
        with contextlib.suppress(ClientError, BotoCoreError):
            self._client.abort_multipart_upload(Bucket=self._bucket, Key=key, UploadId=upload_id)

    def _empty_read(self, name: str, offset: int) -> bytes:
        size = self.stat(name).size
        if offset > size:
            raise past_end(name, offset, size, 0)
        return b""

    def _unsatisfiable(self, name: str, offset: int, length: int | None) -> bytes:
        """Answer a read the server called InvalidRange: b"" at the end, else ShortRead."""
        size = self.stat(name).size
        if offset > size:
            raise past_end(name, offset, size, length)
        if length is None:
            return b""
        raise errors.ShortRead(name=name, wanted=length, got=max(0, size - offset))

    def _list(self, prefix: str) -> Iterator[base.ObjectInfo]:
        paginator = self._client.get_paginator("list_objects_v2")
        cut = len(self._prefix)
        try:
            for page in paginator.paginate(Bucket=self._bucket, Prefix=self._prefix + prefix):
                for item in page.get("Contents", ()):
                    if not item["Key"].endswith("/"):  # skip console "folder" markers
                        yield base.ObjectInfo(name=item["Key"][cut:], size=int(item["Size"]))
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, prefix or self.location) from exc

    def _versions(self, name: str, key: str) -> builtins.list[str]:
        """Every version id of ``key``: data versions first, then delete markers."""
        paginator = self._client.get_paginator("list_object_versions")
        data: builtins.list[str] = []
        markers: builtins.list[str] = []
        try:
            for page in paginator.paginate(Bucket=self._bucket, Prefix=key):
                data += [v["VersionId"] for v in page.get("Versions", ()) if v["Key"] == key]
                markers += [
                    m["VersionId"] for m in page.get("DeleteMarkers", ()) if m["Key"] == key
                ]
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, name) from exc
        return data + markers

    def _delete_version(self, name: str, key: str, version_id: str, bypass: bool) -> None:
        params: dict[str, Any] = {"Key": key, "VersionId": version_id}
        if bypass:
            params["BypassGovernanceRetention"] = True
        try:
            self._client.delete_object(Bucket=self._bucket, **params)
        except ClientError as exc:
            if _code_and_status(exc)[0] == "AccessDenied":
                raise errors.ObjectLocked(name=name) from exc
            raise translate(exc, name) from exc
        except BotoCoreError as exc:
            raise translate(exc, name) from exc


def _condition_unsupported(exc: ClientError) -> bool:
    code, status = _code_and_status(exc)
    return code == "NotImplemented" or status == 501


def _read_body(response: Any) -> bytes:
    body = response["Body"]
    try:
        return bytes(body.read())
    finally:
        body.close()
