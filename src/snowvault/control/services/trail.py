"""The audit trail: CloudTrail-format records of API calls, in CloudTrail's file layout,
with signed hourly digest files.

    trail = Trail(DATA_DIR / "trail", key)
    trail.record(api_call_record(...))        # appended to trail/pending.jsonl at once
    trail.flush(now)                           # pending -> gzipped log files (+ a digest
                                               #  when the last one is an hour old)
    problems = validate(DATA_DIR / "trail", key.cert_pem)
    events = lookup(DATA_DIR / "trail", account_id="...", event_name="DeleteRecoveryPoint")

Layout under ``trail/`` (CloudTrail's S3 keys, "bucket" ``snowvault-trail``)::

    AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/
        <account>_CloudTrail_<region>_<YYYYMMDDTHHMMZ>_<random>.json.gz   {"Records": [...]}
    AWSLogs/<account>/CloudTrail-Digest/<region>/YYYY/MM/DD/
        <account>_CloudTrail-Digest_<region>_snowvault_<region>_<YYYYMMDDTHHMMSSZ>.json.gz
        (+ ``.sig``: the digest's signature, which CloudTrail keeps in S3 metadata)

A digest lists every log file written since the previous digest with its SHA-256, and
names the previous digest's signature; its signature is RSA-SHA256 (the notification
signing key) over CloudTrail's string: ``digestEndTime\\nbucket/key\\nhex(sha256(digest
file))\\npreviousDigestSignature``. :func:`validate` walks each chain: signatures, the
chain links, every listed file's hash, and files no digest lists yet; each problem NAMES
the file: a log file changed (``changed after <digest> was signed``) or removed
(``listed in <digest> but missing``), a digest removed (``digest missing``: named by the
next digest's previousDigestS3Object, or, for the newest, by ``digest-state.json``).

What is recorded:

- every SIGNED API call (backup, KMS, SNS, extension), failed ones with their
  ``errorCode``/``errorMessage``, with ``requestParameters`` and (for calls that change
  something) ``responseElements`` passed through :func:`redact` first: a value under a
  secret-sounding key (password, passphrase, secret, private key, plaintext, token, job
  and id keys, credentials) becomes :data:`HIDDEN`, the password of a URL
  (``scheme://user:PASSWORD@host``) or of a ``password=...`` pair is cut out, bytes and
  strings longer than :data:`MAX_STRING` are reduced to their length, and a document
  larger than :data:`MAX_DOCUMENT` is replaced by a note. Policy bodies, names, ARNs and
  tags are kept;
- every system action (``eventType`` ``AwsServiceEvent``, ``userIdentity`` of type
  ``AWSService`` invoked by ``backup.amazonaws.com``): scheduled job creation, job state
  changes (:func:`job_changed`), and what the sweeps touched (:func:`sweep_done`, one
  event per ARN: expiry, cold moves, prunes, store retention, integrity findings).

Unsigned requests (probes, metrics) have no account to file them under and are not
recorded. Abuse case: a caller sends its secrets (a DSN password, a passphrase) and
receives some (CreateAccessKey): none of them may reach the files, which the operator and
anyone holding a backup of DATA_DIR reads; ``test_trail_redaction`` greps for them.

Off-host copy (config ``trail_location``, an engine S3 URL ``s3://bucket/prefix?...``):
each log file, digest and ``.sig`` filed locally is also PUT (never replacing a key) under
``<prefix>/AWSLogs/...``, the same keys; in a bucket with Object Lock each object gets a
retention (``trail_retention_days``, mode GOVERNANCE or COMPLIANCE). The local file stays
the source: an upload that fails is logged and retried by the next flush
(``uploaded.json`` records the keys already delivered). :func:`validate` reads either the
local directory or the bucket (:class:`LocalReader` / :class:`BucketReader`). Why: the
digest signing key lives on this host, so its administrator could re-sign a rewritten
history; the locked bucket copy is what they cannot replace.

Who may read: the operator (files under DATA_DIR, 0600). Bounded: one JSON line per call
(parameters capped at :data:`MAX_DOCUMENT`); a flush reads the pending file once.

Must not depend on the scheduler or any interface.
"""

from __future__ import annotations

import fcntl
import gzip
import json
import logging
import os
import re
import secrets
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, Protocol

from snowvault.control.services.base import Deps
from snowvault.core import private_files
from snowvault.engine import errors as engine_errors
from snowvault.engine.backends import base as backend_base
from snowvault.engine.backends import url as backend_url
from snowvault.engine.crypto import message_signing

log = logging.getLogger("snowvault.trail")

DIRECTORY = "trail"
"""The trail's directory under DATA_DIR."""
BUCKET = "snowvault-trail"
TRAIL_NAME = "snowvault"
PENDING = "pending.jsonl"
STATE = "digest-state.json"
UPLOADED = "uploaded.json"
"""The keys already delivered to the trail location (and which location)."""
DIGEST_EVERY = timedelta(hours=1)
READ_ONLY_PREFIXES = ("Describe", "Get", "List", "Lookup", "Export", "Preview")
SOURCES = {
    "backup": "backup.amazonaws.com",
    "kms": "kms.amazonaws.com",
    "sns": "sns.amazonaws.com",
    "snowvault": "extension.snowvault",  # the extension API (POST /_snowvault/v1/<Action>)
}


SERVICE_PRINCIPAL = "backup.amazonaws.com"
HIDDEN = "HIDDEN_DUE_TO_SECURITY_REASONS"
"""What CloudTrail writes in place of a sensitive value."""
MAX_DOCUMENT = 64 * 1024
"""Largest requestParameters/responseElements kept (JSON characters)."""
MAX_STRING = 32 * 1024
"""Longer strings are reduced to their length (bulk data; a policy body stays below)."""
_SECRET_WORDS = (
    "password",
    "passwd",
    "passphrase",
    "secret",
    "privatekey",
    "plaintext",
    "sessiontoken",
    "credential",
    "jobkey",
    "idkey",
)
_SECRET_NAMES = frozenset({"token", "pwd", "pass"})
_BULK_NAMES = frozenset({"Blobs", "BlobIds", "Present"})
"""Agent data-call fields (sealed blobs, blob ids): counted, never scanned or kept."""
_URL_PASSWORD = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://[^/?#@\s:]*:)[^@/?#\s]*@")
_PAIR_PASSWORD = re.compile(r"((?:password|passwd|pwd)\s*=\s*)('[^']*'|[^\s&;]+)", re.I)


def _stamp(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def is_secret_name(name: str) -> bool:
    """Whether a parameter named ``name`` holds a secret (any case, ``_``/``-`` ignored)."""
    flat = name.lower().replace("_", "").replace("-", "")
    return flat in _SECRET_NAMES or any(word in flat for word in _SECRET_WORDS)


def redact(value: Any) -> Any:
    """``value`` as JSON with every secret taken out (the module doc says which).

    >>> redact({"Source": "postgresql://u:pw@db/x", "Properties": {"password": "pw"}})
    {'Source': 'postgresql://u:HIDDEN_DUE_TO_SECURITY_REASONS@db/x', 'Properties': \
{'password': 'HIDDEN_DUE_TO_SECURITY_REASONS'}}
    """
    if isinstance(value, Mapping):
        return {str(k): _redact_item(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [redact(v) for v in value]
    if isinstance(value, str):
        if len(value) > MAX_STRING:  # an uploaded blob, not a name: never scanned or kept
            return f"<{len(value)} characters>"
        value = _URL_PASSWORD.sub(lambda m: f"{m.group(1)}{HIDDEN}@", value)
        return _PAIR_PASSWORD.sub(lambda m: f"{m.group(1)}{HIDDEN}", value)
    if isinstance(value, bytes | bytearray | memoryview):
        return f"<{len(value)} bytes>"
    if isinstance(value, datetime):
        return _stamp(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    return redact(str(value))


def _redact_item(name: str, value: Any) -> Any:
    if value is None:
        return None
    if is_secret_name(name):
        return HIDDEN
    if name in _BULK_NAMES and isinstance(value, list):  # an agent's upload or download:
        return f"<{len(value)} items>"  # the regexes over every blob cost a third of its CPU
    return redact(value)


def _document(value: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """``value`` redacted, or a note when it is larger than :data:`MAX_DOCUMENT`."""
    if value is None:
        return None
    clean = redact(value)
    size = len(json.dumps(clean, separators=(",", ":")))
    if size > MAX_DOCUMENT:
        return {"omitted": f"{size} characters, more than this trail keeps ({MAX_DOCUMENT})"}
    return dict(clean)


def api_call_record(
    *,
    when: datetime,
    service: str,
    operation: str,
    account_id: str,
    region: str,
    principal_arn: str,
    access_key_id: str,
    source_ip: str,
    user_agent: str,
    request_id: str,
    error_code: str | None,
    error_message: str | None,
    request_parameters: Mapping[str, Any] | None = None,
    response_elements: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """One CloudTrail record (eventVersion 1.08) of an API call; the parameters and the
    response are redacted here (the response is kept for calls that change something and
    succeeded, as CloudTrail does)."""
    root = principal_arn.endswith(":root")
    read_only = operation.startswith(READ_ONLY_PREFIXES)
    record: dict[str, Any] = {
        "eventVersion": "1.08",
        "userIdentity": {
            "type": "Root" if root else "IAMUser",
            "principalId": account_id if root else principal_arn.rpartition("/")[2],
            "arn": principal_arn,
            "accountId": account_id,
            "accessKeyId": access_key_id,
        },
        "eventTime": _stamp(when),
        "eventSource": SOURCES.get(service, f"{service}.snowvault"),
        "eventName": operation,
        "awsRegion": region,
        "sourceIPAddress": source_ip,
        "userAgent": user_agent[:256],
        "requestParameters": _document(request_parameters),
        "responseElements": (None if read_only or error_code else _document(response_elements)),
        "requestID": request_id,
        "eventID": str(uuid.uuid4()),
        "readOnly": read_only,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": account_id,
        "eventCategory": "Management",
    }
    if error_code:
        record["errorCode"] = error_code
        record["errorMessage"] = (error_message or "")[:512]
    return record


def service_event(
    *,
    when: datetime,
    event_name: str,
    account_id: str,
    region: str,
    details: Mapping[str, Any],
) -> dict[str, Any]:
    """One CloudTrail record of a system action (``AwsServiceEvent``)."""
    return {
        "eventVersion": "1.08",
        "userIdentity": {
            "type": "AWSService",
            "invokedBy": SERVICE_PRINCIPAL,
            "accountId": account_id,
        },
        "eventTime": _stamp(when),
        "eventSource": SERVICE_PRINCIPAL,
        "eventName": event_name,
        "awsRegion": region,
        "sourceIPAddress": SERVICE_PRINCIPAL,
        "userAgent": SERVICE_PRINCIPAL,
        "requestParameters": None,
        "responseElements": None,
        "eventID": str(uuid.uuid4()),
        "readOnly": False,
        "eventType": "AwsServiceEvent",
        "managementEvent": True,
        "recipientAccountId": account_id,
        "serviceEventDetails": redact(details),
        "eventCategory": "Management",
    }


def username(record: Mapping[str, Any]) -> str:
    """LookupEvents' Username of a record: the user name, or the service's."""
    identity = record["userIdentity"]
    arn = str(identity.get("arn") or identity.get("invokedBy") or "")
    return arn.rpartition("/")[2] or arn


# -- system actions -----------------------------------------------------------------------

Recorder = Callable[[dict[str, Any]], None]
"""What ``Deps.trail`` holds: appends one record (:func:`appender`)."""


def appender(root: Path) -> Recorder:
    """A recorder appending to ``root``'s pending file (no key needed: the flush signs)."""

    def record(rec: dict[str, Any]) -> None:
        _append(root, rec)

    return record


def _scope(arn: str) -> tuple[str, str] | None:
    """(account, region) of an ARN, None when ``arn`` is not one."""
    parts = arn.split(":")
    if len(parts) < 6 or parts[0] != "arn" or not parts[3] or not parts[4]:
        return None
    return parts[4], parts[3]


def emit(deps: Deps, event_name: str, arn: str, details: Mapping[str, Any], when: datetime) -> None:
    """Record a system action on ``arn`` (its account and region file it); never raises:
    the trail never fails the action it records."""
    if deps.trail is None:
        return
    scope = _scope(arn)
    if scope is None:
        return
    try:
        deps.trail(
            service_event(
                when=when,
                event_name=event_name,
                account_id=scope[0],
                region=scope[1],
                details=details,
            )
        )
    except Exception:
        log.exception("the trail could not record %s of %s", event_name, arn)


_JOB_NOUN = {"backup": "Backup", "restore": "Restore", "copy": "Copy"}
_JOB_FIELDS = (
    "backup_vault_arn",
    "source_backup_vault_arn",
    "destination_backup_vault_arn",
    "resource_arn",
    "recovery_point_arn",
    "destination_recovery_point_arn",
    "backup_plan_id",
    "backup_rule_id",
    "status_message",
    "bytes_transferred",
)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def job_changed(
    deps: Deps, kind: str, job_id: str, job: Mapping[str, Any], state: str, now: datetime
) -> None:
    """A job started (RUNNING: ``<Kind>JobStarted``), was created (CREATED by the
    planner: ``<Kind>JobCreated``) or ended in ``state`` (``<Kind>JobCompleted``, the
    state in ``serviceEventDetails``, as AWS Backup's events carry it)."""
    noun = _JOB_NOUN.get(kind, kind.title())
    verb = {"RUNNING": "Started", "CREATED": "Created"}.get(state, "Completed")
    details: dict[str, Any] = {f"{kind}JobId": job_id, "state": state}
    details.update({_camel(f): job[f] for f in _JOB_FIELDS if job.get(f) is not None})
    arn = str(
        job.get("backup_vault_arn")
        or job.get("source_backup_vault_arn")
        or job.get("resource_arn")
        or ""
    )
    emit(deps, f"{noun}Job{verb}", arn, details, now)


SWEEP_EVENTS = {
    "expire-points": ("RecoveryPointExpired", "recoveryPointArn"),
    "cold": ("RecoveryPointTransitionedToCold", "recoveryPointArn"),
    "cold-data": ("BackupVaultColdDataMoved", "backupVaultArn"),
    "prune": ("BackupVaultPruned", "backupVaultArn"),
    "orphan-prune": ("BackupVaultOrphansPruned", "backupVaultArn"),
    "store-retention": ("BackupVaultStoreRetentionApplied", "backupVaultArn"),
}
"""Sweep name -> (eventName, the details key of the ARN it touched). The job sweeps
(expire-unstarted, recover-leases) are recorded as job changes; abort-overdue only asks a
job to stop (its end is recorded); kms-keys rotations are KMS's own; the integrity watch
records its findings itself (``RecoveryPointIntegrityFailed``, with the reason)."""


def sweep_done(deps: Deps, sweep: str, touched: Iterable[str], now: datetime) -> None:
    """One event per ARN a sweep touched (:data:`SWEEP_EVENTS`)."""
    event = SWEEP_EVENTS.get(sweep)
    if event is None or deps.trail is None:
        return
    name, key = event
    for arn in touched:
        emit(deps, name, arn, {key: arn, "sweep": sweep}, now)


def _append(root: Path, rec: dict[str, Any]) -> None:
    line = json.dumps(rec, separators=(",", ":")).encode() + b"\n"
    with _locked(root):
        fd = os.open(root / PENDING, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)


@contextmanager
def _locked(root: Path, name: str = ".lock") -> Iterator[None]:
    """One writer at a time across processes (the server and ``snowvault trail``);
    ``.deliver-lock``: one uploader at a time, without holding up :meth:`Trail.record`."""
    private_files.make_dirs(root)
    fd = os.open(root / name, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


RetentionMode = Literal["GOVERNANCE", "COMPLIANCE"]


@dataclass(frozen=True)
class TrailLocation:
    """Where the trail is also delivered: an engine S3 URL (its credentials and
    endpoint in the query, as a vault's storage URL; never AWS_ENDPOINT_URL)."""

    url: str
    retention_days: int = 365
    retention_mode: RetentionMode = "GOVERNANCE"


def location_from(
    url: str | None, days: int = 365, mode: str = "GOVERNANCE"
) -> TrailLocation | None:
    """The location config.json's ``trail_location`` / ``trail_retention_*`` name (None:
    local only)."""
    if not url:
        return None
    return TrailLocation(url, days, "COMPLIANCE" if mode == "COMPLIANCE" else "GOVERNANCE")


def _one_line(exc: Exception) -> str:
    """An exception as one line, without a URL's secret query values."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return re.sub(r"((?:secret_access_key|session_token)=)[^&\s]*", r"\1***", text)


def _put_once(store: backend_base.Backend, rel: str, data: bytes) -> None:
    """PUT ``rel``; an object already there with the same bytes counts as delivered (an
    earlier flush died before recording it); different bytes are never replaced."""
    try:
        store.put(rel, data)
    except engine_errors.ObjectExists:
        if store.get(rel) != data:
            raise
    if store.get(rel) != data:  # what landed is what was filed (a proxy could alter it)
        raise engine_errors.PermanentBackendError(detail=f"{rel}: stored bytes differ")


class Trail:
    """The writer: records go to ``pending.jsonl`` at once; :meth:`flush` files them."""

    def __init__(
        self,
        root: Path,
        key: message_signing.SigningKey,
        location: TrailLocation | None = None,
    ) -> None:
        self.root = root
        self.key = key
        self.location = location

    def record(self, record: dict[str, Any]) -> None:
        _append(self.root, record)

    def flush(self, now: datetime, *, force_digest: bool = False) -> list[Path]:
        """File the pending records (one gzipped file per account and region); then a
        digest per account and region when the last is :data:`DIGEST_EVERY` old (or
        ``force_digest``). The paths written. Then, with a :class:`TrailLocation`, the
        files it lacks are uploaded outside the writers' lock (a slow or unreachable
        bucket never holds up the requests appending records)."""
        with _locked(self.root):
            written = self._roll(now)
            state = self._state()
            last = state.get("last_digest_at")
            due = last is None or now - datetime.fromisoformat(last) >= DIGEST_EVERY
            if (force_digest or due) and state.get("undigested"):
                written += self._digest(now, state)
            filed = LocalReader(self.root).names()  # complete files only (written locked)
        if self.location is not None:
            with _locked(self.root, ".deliver-lock"):
                self._deliver(now, self.location, filed)
        return written

    def _deliver(self, now: datetime, location: TrailLocation, filed: list[str]) -> None:
        """Copy every filed object the location does not have yet; never raises (the
        local files stay the source; the next flush retries)."""
        try:
            store = backend_url.open_backend(location.url)
        except Exception as exc:  # a bad URL or no boto3: logged, never a lost record
            log.warning("trail location unusable, files stay local: %s", _one_line(exc))
            return
        try:
            uploaded = self._uploaded(store.location)
            done = set(uploaded["keys"])
            todo = [rel for rel in filed if rel not in done]
            if not todo:
                return
            locked = store.capabilities.retention
            retention = backend_base.Retention(
                location.retention_mode, now.astimezone(UTC) + timedelta(location.retention_days)
            )
            try:
                for rel in todo:
                    _put_once(store, rel, (self.root / rel).read_bytes())
                    if locked:
                        store.set_retention(rel, retention)
                    uploaded["keys"].append(rel)
            finally:
                self._save_uploaded(uploaded)
        except Exception as exc:
            log.warning(
                "trail upload to %s failed, retried at the next flush: %s",
                store.location,
                _one_line(exc),
            )
        finally:
            store.close()

    def _uploaded(self, where: str) -> dict[str, Any]:
        path = self.root / UPLOADED
        doc = json.loads(path.read_text()) if path.exists() else {}
        if doc.get("location") != where:  # a new location gets everything again
            doc = {"location": where, "keys": []}
        return dict(doc)

    def _save_uploaded(self, doc: dict[str, Any]) -> None:
        path = self.root / UPLOADED
        data = json.dumps(doc).encode()
        if path.exists():
            private_files.replace(path, data)
        else:
            private_files.write_new(path, data)

    def _roll(self, now: datetime) -> list[Path]:
        pending = self.root / PENDING
        if not pending.exists():
            return []
        groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for line in pending.read_bytes().splitlines():
            if line.strip():
                rec = json.loads(line)
                groups.setdefault((rec["recipientAccountId"], rec["awsRegion"]), []).append(rec)
        state = self._state()
        written = []
        for (account, region), records in sorted(groups.items()):
            day = now.astimezone(UTC)
            rel = (
                f"AWSLogs/{account}/CloudTrail/{region}/{day:%Y/%m/%d}/"
                f"{account}_CloudTrail_{region}_{day:%Y%m%dT%H%MZ}_{secrets.token_hex(8)}.json.gz"
            )
            path = self.root / rel
            private_files.make_dirs(path.parent)
            data = gzip.compress(json.dumps({"Records": records}).encode(), mtime=0)
            private_files.write_new(path, data)
            times = sorted(r["eventTime"] for r in records)
            state.setdefault("undigested", []).append(
                {
                    "key": rel,
                    "account": account,
                    "region": region,
                    "oldest": times[0],
                    "newest": times[-1],
                }
            )
            written.append(path)
        self._save(state)
        pending.unlink()
        return written

    def _state(self) -> dict[str, Any]:
        path = self.root / STATE
        return dict(json.loads(path.read_text())) if path.exists() else {}

    def _save(self, state: dict[str, Any]) -> None:
        path = self.root / STATE
        if path.exists():
            private_files.replace(path, json.dumps(state).encode())
        else:
            private_files.write_new(path, json.dumps(state).encode())

    def _digest(self, now: datetime, state: dict[str, Any]) -> list[Path]:
        written = []
        chains: dict[str, Any] = state.setdefault("chains", {})
        by_chain: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for entry in state.get("undigested", []):
            by_chain.setdefault((entry["account"], entry["region"]), []).append(entry)
        for (account, region), files in sorted(by_chain.items()):
            chain = chains.get(f"{account}/{region}", {})
            end = now.astimezone(UTC)
            start = chain.get("end") or min(f["oldest"] for f in files)
            rel = (
                f"AWSLogs/{account}/CloudTrail-Digest/{region}/{end:%Y/%m/%d}/{account}_"
                f"CloudTrail-Digest_{region}_{TRAIL_NAME}_{region}_{end:%Y%m%dT%H%M%SZ}.json.gz"
            )
            doc = {
                "awsAccountId": account,
                "digestStartTime": start,
                "digestEndTime": _stamp(end),
                "digestS3Bucket": BUCKET,
                "digestS3Object": rel,
                "digestPublicKeyFingerprint": message_signing.sha256_hex(self.key.cert_pem)[:32],
                "digestSignatureAlgorithm": "SHA256withRSA",
                "newestEventTime": max(f["newest"] for f in files),
                "oldestEventTime": min(f["oldest"] for f in files),
                "previousDigestS3Bucket": BUCKET if chain.get("key") else None,
                "previousDigestS3Object": chain.get("key"),
                "previousDigestHashValue": chain.get("hash"),
                "previousDigestHashAlgorithm": "SHA-256" if chain.get("hash") else None,
                "previousDigestSignature": chain.get("signature"),
                "logFiles": [
                    {
                        "s3Bucket": BUCKET,
                        "s3Object": f["key"],
                        "hashValue": message_signing.sha256_hex(
                            (self.root / f["key"]).read_bytes()
                        ),
                        "hashAlgorithm": "SHA-256",
                        "newestEventTime": f["newest"],
                        "oldestEventTime": f["oldest"],
                    }
                    for f in files
                ],
            }
            data = gzip.compress(json.dumps(doc).encode(), mtime=0)
            digest_hash = message_signing.sha256_hex(data)
            signature = self.key.sign(
                _string_to_sign(doc["digestEndTime"], rel, digest_hash, chain.get("signature"))
            ).hex()
            path = self.root / rel
            private_files.make_dirs(path.parent)
            private_files.write_new(path, data)
            sig = {"signature": signature, "signatureAlgorithm": "SHA256withRSA"}
            private_files.write_new(path.with_name(path.name + ".sig"), json.dumps(sig).encode())
            chains[f"{account}/{region}"] = {
                "key": rel,
                "hash": digest_hash,
                "signature": signature,
                "end": doc["digestEndTime"],
            }
            written.append(path)
        state["undigested"] = []
        state["last_digest_at"] = now.isoformat()
        self._save(state)
        return written


def _string_to_sign(end: str, key: str, digest_hash: str, previous: str | None) -> bytes:
    return f"{end}\n{BUCKET}/{key}\n{digest_hash}\n{previous or 'null'}".encode()


@dataclass(frozen=True)
class Validation:
    digests: int
    log_files: int
    problems: list[str]
    undigested: list[str]  # log files written since the last digest (not an error)


class TrailReader(Protocol):
    """What :func:`validate` reads: the trail's objects by key (``AWSLogs/...``)."""

    @property
    def where(self) -> str: ...

    def names(self) -> list[str]:
        """Every object key under ``AWSLogs/``, sorted."""
        ...

    def read(self, key: str) -> bytes | None:
        """The object's bytes (for a bucket: its current version); None when absent."""
        ...


class LocalReader:
    """The trail directory under DATA_DIR."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.where = str(root)

    def names(self) -> list[str]:
        base = self.root / "AWSLogs"
        if not base.is_dir():
            return []
        return sorted(str(p.relative_to(self.root)) for p in base.rglob("*") if p.is_file())

    def read(self, key: str) -> bytes | None:
        try:
            return (self.root / key).read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None


class BucketReader:
    """The trail location's bucket (``Trail.location``'s URL); close() when done."""

    def __init__(self, url: str) -> None:
        self._store = backend_url.open_backend(url)
        self.where = self._store.location

    def names(self) -> list[str]:
        return sorted(info.name for info in self._store.list("AWSLogs/"))

    def read(self, key: str) -> bytes | None:
        try:
            return self._store.get(key)
        except engine_errors.ObjectNotFound:
            return None

    def close(self) -> None:
        self._store.close()


_DIGEST_KEY = re.compile(
    r"^AWSLogs/[^/]+/CloudTrail-Digest/([^/]+)/\d{4}/\d\d/\d\d/[^/]+\.json\.gz$"
)
_LOG_KEY = re.compile(r"^AWSLogs/[^/]+/CloudTrail/[^/]+/\d{4}/\d\d/\d\d/[^/]+\.json\.gz$")


def validate(
    root: Path | TrailReader, cert_pem: bytes, newest: Mapping[str, Any] | None = None
) -> Validation:
    """Check every digest chain in ``root`` (a directory or a reader; module doc).
    ``newest``: the chains of ``digest-state.json`` (read from ``root`` when it is a
    directory), to notice a removed newest digest, which no later digest names."""
    reader: TrailReader = LocalReader(root) if isinstance(root, Path) else root
    if newest is None and isinstance(root, Path):
        state = root / STATE
        newest = json.loads(state.read_text()).get("chains", {}) if state.exists() else {}
    names = reader.names()
    present = set(names)
    problems: list[str] = []
    digests = files = 0
    listed: set[str] = set()
    chains: dict[str, list[tuple[str, str, bytes, dict[str, Any]]]] = {}
    for key in names:
        match = _DIGEST_KEY.match(key)
        if not match:
            continue
        data = reader.read(key)
        if data is None:
            continue
        try:
            doc = json.loads(gzip.decompress(data))
        except (OSError, ValueError, EOFError):
            problems.append(f"{key}: the digest is not readable (changed)")
            continue
        chains.setdefault(f"{doc['awsAccountId']}/{match.group(1)}", []).append(
            (doc["digestEndTime"], key, data, doc)
        )
    for chain in chains.values():
        previous: str | None = None
        for _, rel, data, doc in sorted(chain, key=lambda item: (item[0], item[1])):
            digests += 1
            try:
                sig_data = reader.read(rel + ".sig")
                if sig_data is None:
                    raise ValueError("no signature")
                sig = str(json.loads(sig_data)["signature"])
                message_signing.verify(
                    cert_pem,
                    bytes.fromhex(sig),
                    _string_to_sign(
                        doc["digestEndTime"],
                        rel,
                        message_signing.sha256_hex(data),
                        doc["previousDigestSignature"],
                    ),
                )
            except (ValueError, KeyError, TypeError, message_signing.InvalidSignature):
                problems.append(f"{rel}: the digest's signature does not verify")
                sig = None
            if doc["previousDigestSignature"] != previous:
                problems.append(f"{rel}: does not follow the previous digest of its chain")
                named = doc.get("previousDigestS3Object")
                if named and named not in present:
                    problems.append(f"{named}: digest missing (named as the previous by {rel})")
            previous = sig
            for entry in doc["logFiles"]:
                files += 1
                listed.add(entry["s3Object"])
                log_data = reader.read(entry["s3Object"])
                if log_data is None:
                    problems.append(f"{entry['s3Object']}: listed in {rel} but missing")
                elif message_signing.sha256_hex(log_data) != entry["hashValue"]:
                    problems.append(f"{entry['s3Object']}: changed after {rel} was signed")
    for chain_name, last in sorted((newest or {}).items()):
        if last["key"] not in present:  # the newest digest: no later one names it
            problems.append(f"{last['key']}: digest missing (the newest of {chain_name})")
    undigested = sorted(key for key in names if _LOG_KEY.match(key) and key not in listed)
    return Validation(digests, files, problems, undigested)


LOOKUP_ATTRIBUTES: dict[str, Callable[[dict[str, Any]], list[str]]] = {
    "EventId": lambda r: [r["eventID"]],
    "EventName": lambda r: [r["eventName"]],
    "ReadOnly": lambda r: [str(r["readOnly"]).lower()],
    "Username": lambda r: [str(r["userIdentity"].get("arn", "")), username(r)],
    "EventSource": lambda r: [r["eventSource"]],
    "AccessKeyId": lambda r: [r["userIdentity"].get("accessKeyId", "")],
}
"""LookupEvents' attributes this trail can answer (its records name no resources)."""


def _days(start: datetime, end: datetime) -> list[str]:
    day, last, out = start.astimezone(UTC).date(), end.astimezone(UTC).date(), []
    while day <= last:
        out.append(f"{day:%Y/%m/%d}")
        day += timedelta(days=1)
    return out


def lookup(
    root: Path,
    *,
    account_id: str | None = None,
    region: str | None = None,
    event_name: str | None = None,
    username: str | None = None,
    attribute: tuple[str, str] | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int = 50,
) -> list[dict[str, Any]]:
    """Filed records matching every filter given, newest first. Reads only the day
    directories of [start, end] when both are given; ``attribute`` is one of
    :data:`LOOKUP_ATTRIBUTES` with its value (LookupEvents)."""
    days = _days(start, end) if start and end else ["*/*/*"]
    found = []
    for day in days:
        pattern = f"AWSLogs/{account_id or '*'}/CloudTrail/{region or '*'}/{day}/*.json.gz"
        for path in root.glob(pattern):
            for rec in json.loads(gzip.decompress(path.read_bytes()))["Records"]:
                when = datetime.fromisoformat(rec["eventTime"].replace("Z", "+00:00"))
                if event_name and rec["eventName"] != event_name:
                    continue
                if username and username not in LOOKUP_ATTRIBUTES["Username"](rec):
                    continue
                if attribute and attribute[1] not in LOOKUP_ATTRIBUTES[attribute[0]](rec):
                    continue
                if (start and when < start) or (end and when > end):
                    continue
                found.append(rec)
    found.sort(key=lambda r: (r["eventTime"], r["eventID"]), reverse=True)
    return found[:limit]
