"""Agent actions of the extension API (``POST /_snowvault/v1/<Action>``), issue 13:

    EnrollAgent {Host}      -> {Agent, AccessKey}   (the secret is shown once)
    RevokeAgent {Host}
    ListAgents {MaxResults?, NextToken?} -> {Agents, NextToken?}
    AgentHello {Version}    -> {Agent, ServerTime}  (agents only, like those below)
    AgentClaimJob {WaitSeconds?, LeaseSeconds?}      -> {Job?}  (long poll, <= 20 s)
    AgentHeartbeat {JobId, LeaseSeconds?, PercentDone?, BytesTransferred?} -> {State}
    AgentHasBlobs {JobId, BlobIds}                   -> {Present}
    AgentPutBlobs {JobId, Blobs: [{BlobId, Kind, Data (base64)}]} -> {Stored}  (whole blobs)
    AgentPutBlobs {JobId, Presign: [{PackId, Size, ContentMD5}]}
                  -> {Uploads: [{PackId, Credential: {Url, Headers, ExpiresIn}}
                                | {PackId, Exists}]}
    AgentPutBlobs {JobId, Commit: [{PackId, Size, ContentMD5}]} -> {Stored}  (packs)
    AgentPutBlobs {JobId, Commit: [...], Presign: [...]} -> {Stored, Uploads}  (both: the
                  commits first; an agent commits its last pack and presigns its next)
    AgentPutManifest {JobId, Manifest, BackupSizeInBytes?} -> {State, RecoveryPointArn}
    AgentFailJob {JobId, StatusMessage}
    AgentReadBlobs {JobId, BlobIds}  -> {Blobs: [{BlobId, Data (base64, sealed)}]}  (restores)
    AgentFinishRestore {JobId, FilesRestored?, BytesRestored?} -> {State}

AgentClaimJob answers the job's resource (type, name, source, Properties) and its own
``Secrets`` (a database password, an S3 secret key), unsealed for that job only; a
key named ``Secrets``, ``JobKey``, ``IdKey`` or ``Credential`` (a presigned PUT) is never
written to the trail (its redaction hides secret-named keys) nor to the request log
(which keeps no bodies).

Only the job check answers ResourceNotFoundException to a job call (the agent then
drops the job); a storage error or any other not-found inside one answers
ServiceUnavailableException, which the agent asks again (:func:`job_call`), and a
repeated AgentPutManifest answers what the first answered (services/agents.py).

Each is authorized as ``snowvault:<Action>`` (not ``backup:``: ``backup:*`` grants none
of them) on ``*`` in the caller's account; ``AgentHello`` is an agent principal's
built-in permission and refused to every other principal (docs/design/agents.md).

Must not depend on the CLI or web interfaces.
"""

from __future__ import annotations

import base64
import binascii
import functools
from collections.abc import Callable

from snowvault.app import App
from snowvault.control import catalog
from snowvault.control.services import agents, authorization
from snowvault.core import errors as core_errors
from snowvault.interfaces.api import errors
from snowvault.interfaces.api.asgi import RequestContext
from snowvault.interfaces.api.handlers.common import Out, Params, caller

Action = Callable[[App, RequestContext, Params], Out]


def _text(params: Params, key: str) -> str:
    value = params.get(key)
    if not isinstance(value, str) or not value:
        raise errors.ApiError("ValidationException", f"{key} is required.")
    return value


def _agent(agent: catalog.agents.Agent) -> Out:
    out: Out = {
        "Host": agent.host,
        "PrincipalArn": agent.principal_arn,
        "EnrolledAt": agent.enrolled_at.isoformat(),
    }
    if agent.version is not None:
        out["Version"] = agent.version
    if agent.last_seen_at is not None:
        out["LastSeenAt"] = agent.last_seen_at.isoformat()
    return out


def enroll_agent(app: App, ctx: RequestContext, params: Params) -> Out:
    host = _text(params, "Host")
    creds = agents.enroll(app.deps, caller(ctx), app.access_key_box, host)
    return {
        "Host": host,
        "AccessKey": {
            "AccessKeyId": creds.access_key_id,
            "SecretAccessKey": creds.secret_access_key,
            "AccountId": creds.account_id,
            "PrincipalArn": creds.principal_arn,
        },
    }


def revoke_agent(app: App, ctx: RequestContext, params: Params) -> Out:
    agents.revoke(app.deps, caller(ctx), _text(params, "Host"))
    return {}


def list_agents(app: App, ctx: RequestContext, params: Params) -> Out:
    limit, token = params.get("MaxResults"), params.get("NextToken")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)):
        raise errors.ApiError("ValidationException", "MaxResults must be an integer.")
    if token is not None and not isinstance(token, str):
        raise errors.ApiError("ValidationException", "NextToken must be a string.")
    found, following = agents.list_agents_page(
        app.deps, caller(ctx), limit=limit, token=token or None
    )
    out: Out = {"Agents": [_agent(a) for a in found]}
    if following:
        out["NextToken"] = following
    return out


def agent_hello(app: App, ctx: RequestContext, params: Params) -> Out:
    who = caller(ctx)
    agent = agents.hello(app.deps, who, version=_text(params, "Version"))
    return {"Agent": _agent(agent), "ServerTime": who.now.isoformat()}


DEFAULT_LEASE_SECONDS = 60
MAX_BLOBS_PER_CALL = 256


def _number(params: Params, key: str, default: float) -> float:
    value = params.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise errors.ApiError("ValidationException", f"{key} must be a number.")
    return float(value)


LONG_MAX = 2**63 - 1


def _count(params: Params, key: str) -> int:
    """A byte or file count an agent reports, kept as sent (not through a float, which
    turns 2**63-1 into 2**63) and bounded to [0, LONG_MAX], what the catalog stores."""
    value = params.get(key, 0)
    if isinstance(value, float):
        value = int(min(value, LONG_MAX)) if value == value else 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise errors.ApiError("ValidationException", f"{key} must be a number.")
    return min(max(value, 0), LONG_MAX)


def agent_claim_job(app: App, ctx: RequestContext, params: Params) -> Out:
    claimed = agents.claim(
        app.deps,
        caller(ctx),
        wait_seconds=_number(params, "WaitSeconds", 0),
        lease_seconds=params.get("LeaseSeconds", DEFAULT_LEASE_SECONDS),
        gone=ctx.gone,
    )
    return {} if claimed is None else {"Job": claim_answer(claimed)}


def claim_answer(claimed: agents.ClaimedJob | agents.ClaimedRestore) -> Out:
    """The ``Job`` of an AgentClaimJob answer: what the agent's runner reads."""
    if isinstance(claimed, agents.ClaimedRestore):
        restore = claimed.job
        return {
            "JobId": restore.restore_job_id,
            "Kind": "RESTORE",
            "Attempt": restore.attempts,
            "RecoveryPointArn": restore.recovery_point_arn,
            **claimed.resource,  # ResourceType: the point's, ResourceArn, Name, Source, ...
            "Secrets": dict(claimed.secrets),
            "Metadata": dict(restore.metadata or {}),
            "Manifest": claimed.manifest,
            "LeaseSeconds": claimed.lease_seconds,
            "Keys": {"JobKey": base64.b64encode(claimed.job_key).decode()},
        }
    job, keys = claimed.job, claimed.keys
    return {
        "JobId": job.job_id,
        "Kind": "BACKUP",
        "Attempt": job.attempts,
        "RecoveryPointArn": job.recovery_point_arn,
        "ResourceArn": claimed.resource["arn"],
        "ResourceType": claimed.resource["resource_type"],
        "ResourceName": claimed.resource["name"] or "",
        "Source": claimed.resource["source"],
        "Properties": dict(claimed.resource.get("properties") or {}),
        "Secrets": dict(claimed.secrets),
        "LeaseSeconds": claimed.lease_seconds,
        "Keys": {
            "JobKey": base64.b64encode(keys.job_key).decode(),
            "IdKey": base64.b64encode(keys.id_key).decode(),
            "Chunker": dict(keys.chunker),
            **({"Direct": True, "PackSize": keys.pack_size} if keys.direct else {}),
            **({} if keys.ask else {"AskHasBlobs": False}),
        },
    }


def agent_heartbeat(app: App, ctx: RequestContext, params: Params) -> Out:
    progress: dict[str, float] = {}
    if "PercentDone" in params:
        progress["percent_done"] = min(max(_number(params, "PercentDone", 0), 0.0), 100.0)
    if "BytesTransferred" in params:
        progress["bytes_transferred"] = _count(params, "BytesTransferred")
    state = agents.heartbeat(
        app.deps,
        caller(ctx),
        params.get("JobId"),
        lease_seconds=params.get("LeaseSeconds", DEFAULT_LEASE_SECONDS),
        progress=progress,
    )
    return {"State": state}


def agent_has_blobs(app: App, ctx: RequestContext, params: Params) -> Out:
    present = agents.has_blobs(app.deps, caller(ctx), params.get("JobId"), params.get("BlobIds"))
    return {"Present": present}


def _blobs(value: object) -> list[agents.BlobPart]:
    if not isinstance(value, list) or not 0 < len(value) <= MAX_BLOBS_PER_CALL:
        raise errors.ApiError(
            "ValidationException", f"Blobs must be a list of 1-{MAX_BLOBS_PER_CALL} blobs."
        )
    out = []
    for item in value:
        if not isinstance(item, dict) or item.get("Kind") not in ("data", "tree"):
            raise errors.ApiError("ValidationException", "each blob needs Kind data or tree.")
        if item.get("Parts", 1) != 1 or item.get("Part", 0) != 0:
            raise errors.ApiError(
                "ValidationException", "blobs are sent whole (a large one alone in its call)."
            )
        try:
            blob_id = bytes.fromhex(str(item.get("BlobId")))
            data = base64.b64decode(str(item.get("Data")), validate=True)
        except (ValueError, binascii.Error):
            raise errors.ApiError(
                "ValidationException", "each blob needs a hex BlobId and base64 Data."
            ) from None
        if len(blob_id) != 32:
            raise errors.ApiError("ValidationException", "a BlobId is 64 hex digits.")
        out.append(agents.BlobPart(blob_id, str(item["Kind"]), data))
    return out


def agent_put_blobs(app: App, ctx: RequestContext, params: Params) -> Out:
    """Two forms: ``Blobs`` (sealed blobs through the server: a local store), or
    ``Commit`` and/or ``Presign`` (keyed packs straight to an S3 store; both in one call:
    the commits first). They are one operation since they are one permission,
    uploading a job's data."""
    packed = [k for k in ("Commit", "Presign") if k in params]
    if ("Blobs" in params) == bool(packed):
        raise errors.ApiError("ValidationException", "give Blobs, or Commit and/or Presign.")
    if packed:
        count, uploads = agents.put_packs(
            app.deps,
            caller(ctx),
            params.get("JobId"),
            commit=agents.parse_packs(params["Commit"], "Commit") if "Commit" in params else [],
            presign=agents.parse_packs(params["Presign"], "Presign") if "Presign" in params else [],
        )
        out: Out = {}
        if "Commit" in params:
            out["Stored"] = count
        if "Presign" in params:
            out["Uploads"] = [
                {"PackId": u.pack_id, "Exists": True}
                if u.exists
                else {
                    "PackId": u.pack_id,
                    "Credential": {  # so named, the trail keeps it hidden
                        "Url": u.url,
                        "Headers": dict(u.headers),
                        "ExpiresIn": agents.PRESIGN_SECONDS,
                    },
                }
                for u in uploads
            ]
        return out
    stored = agents.put_blobs(
        app.deps, caller(ctx), params.get("JobId"), _blobs(params.get("Blobs"))
    )
    return {"Stored": stored}


def agent_put_manifest(app: App, ctx: RequestContext, params: Params) -> Out:
    total = _count(params, "BackupSizeInBytes")
    state, rp_arn = agents.put_manifest(
        app.deps, caller(ctx), params.get("JobId"), params.get("Manifest"), total
    )
    return {"State": state, "RecoveryPointArn": rp_arn}


def agent_fail_job(app: App, ctx: RequestContext, params: Params) -> Out:
    agents.fail(app.deps, caller(ctx), params.get("JobId"), params.get("StatusMessage"))
    return {}


def agent_read_blobs(app: App, ctx: RequestContext, params: Params) -> Out:
    blobs = agents.read_blobs(app.deps, caller(ctx), params.get("JobId"), params.get("BlobIds"))
    return {
        "Blobs": [
            {"BlobId": blob_id.hex(), "Data": base64.b64encode(sealed).decode()}
            for blob_id, sealed in blobs
        ]
    }


def agent_finish_restore(app: App, ctx: RequestContext, params: Params) -> Out:
    state = agents.finish_restore(
        app.deps,
        caller(ctx),
        params.get("JobId"),
        files=_count(params, "FilesRestored"),
        size=_count(params, "BytesRestored"),
    )
    return {"State": state}


def job_call(handler: Action) -> Action:
    """``handler`` answering ResourceNotFoundException only for the job check's own
    refusal (the lease is gone: the agent drops the job). Any other not-found inside a
    job call (a vanished index segment or point, a catalog row deleted meanwhile) is the
    server's trouble: ServiceUnavailableException, which the agent asks again."""

    @functools.wraps(handler)  # its name, doc and source (what reads which member)
    def call(app: App, ctx: RequestContext, params: Params) -> Out:
        try:
            return handler(app, ctx, params)
        except Exception as exc:
            if agents.refused_by_job_check(exc):
                raise
            if errors.to_api_error(exc).code != "ResourceNotFoundException":
                raise
            raise core_errors.Unavailable(detail=f"{exc}; ask again") from exc

    return call


ACTIONS: dict[str, Action] = {
    "EnrollAgent": enroll_agent,
    "RevokeAgent": revoke_agent,
    "ListAgents": list_agents,
    "AgentHello": agent_hello,
    **{
        name: job_call(handler)
        for name, handler in {
            "AgentClaimJob": agent_claim_job,
            "AgentHeartbeat": agent_heartbeat,
            "AgentHasBlobs": agent_has_blobs,
            "AgentPutBlobs": agent_put_blobs,
            "AgentPutManifest": agent_put_manifest,
            "AgentFailJob": agent_fail_job,
            "AgentReadBlobs": agent_read_blobs,
            "AgentFinishRestore": agent_finish_restore,
        }.items()
    },
}


def authorize(app: App, ctx: RequestContext, action: str, params: Params) -> None:
    """``snowvault:<Action>`` through the one shared authorize function."""
    authorization.authorize_operation(app.deps, caller(ctx), action, params, service="snowvault")
