"""Vault notifications: Put/Get/DeleteBackupVaultNotifications, job events, the outbox.

    put(deps, caller, "v", "arn:aws:sns:us-east-1:123456789012:t", ["BACKUP_JOB_COMPLETED"])
    job_changed(deps, "backup", QUEUE.spec, job_id)    # from services/jobs.py, never raises
    publish(conn, topic_arn, subject, message, attributes, now)  # one row per subscription

A job event becomes one outbox row per CONFIRMED subscription of the vault's topic, in
one transaction; the delivery loop (``scheduler/delivery.py``) posts them. Nothing here
talks to the network, so a job never waits on a subscriber: :func:`job_changed` costs a
few catalog statements and swallows (logs) its own failures.

Who may ask: Put/Get/Delete are ``backup:<Operation>`` on the vault (authorization runs
first, in the API). The topic must exist here (snowvault serves its own SNS subset) and
belong to the caller's account: a caller cannot aim its vault's events at another
account's topic.

Must not depend on the scheduler or any interface.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import Any

from snowvault.control import catalog
from snowvault.control.model import notifications as rules
from snowvault.control.services import trail, vaults
from snowvault.control.services.base import Caller, Deps
from snowvault.core.errors import InvalidInput, NotFound

log = logging.getLogger("snowvault.notifications")

SUBJECT = "Notification from AWS Backup"


def put(deps: Deps, caller: Caller, vault_name: str, topic_arn: str, events: Any) -> None:
    """PutBackupVaultNotifications, validated as AWS does (events from the enum)."""
    _, account, _ = rules.check_topic_arn(topic_arn)
    checked = rules.check_events(events)
    vault = vaults.get(deps, caller, vault_name)
    with catalog.db.transaction(deps.engine) as conn:
        topic = catalog.notifications.get_topic(conn, topic_arn)
        if topic is None or account != caller.account_id:
            raise InvalidInput(detail=f"SNSTopicArn {topic_arn} names no topic of this account")
        catalog.vaults.update(
            conn,
            vault["arn"],
            notifications={"SNSTopicArn": topic_arn, "BackupVaultEvents": checked},
        )


def get(deps: Deps, caller: Caller, vault_name: str) -> dict[str, Any]:
    """GetBackupVaultNotifications; NotFound when the vault has none (as AWS answers)."""
    vault = vaults.get(deps, caller, vault_name)
    config = vault.get("notifications")
    if not config:
        raise NotFound(kind="notification configuration of backup vault", name=vault_name)
    return {
        "BackupVaultName": vault["name"],
        "BackupVaultArn": vault["arn"],
        "SNSTopicArn": config["SNSTopicArn"],
        "BackupVaultEvents": list(config["BackupVaultEvents"]),
    }


def delete(deps: Deps, caller: Caller, vault_name: str) -> None:
    vault = vaults.get(deps, caller, vault_name)
    with catalog.db.transaction(deps.engine) as conn:
        catalog.vaults.update(conn, vault["arn"], notifications=None)


def publish(
    conn: Any,
    topic_arn: str,
    subject: str | None,
    message: str,
    attributes: dict[str, Any] | None,
    now: datetime,
) -> str:
    """Queue ``message`` for every confirmed subscription of the topic; its MessageId."""
    message_id = str(uuid.uuid4())
    for sub in catalog.notifications.subscriptions_of(conn, topic_arn):
        if sub.confirmed:
            catalog.notifications.enqueue(
                conn,
                message_id=message_id,
                message_type="Notification",
                topic_arn=topic_arn,
                subscription_arn=sub.subscription_arn,
                subject=subject,
                message=message,
                attributes=attributes,
                now=now,
            )
    return message_id


_EVENT_TYPE = {"backup": "BACKUP_JOB", "restore": "RESTORE_JOB", "copy": "COPY_JOB"}


def _text(kind: str, job: dict[str, Any], state: str) -> str:
    noun = {"backup": "backup", "restore": "restore", "copy": "copy"}.get(kind, kind)
    label = {"backup": "BackupJob", "restore": "RestoreJob", "copy": "CopyJob"}.get(kind, "Job")
    resource = job.get("resource_arn") or job.get("source_resource_arn") or "-"
    point = job.get("recovery_point_arn") or job.get("destination_recovery_point_arn")
    if state == "RUNNING":
        head = f"An AWS Backup {noun} job was started."
    elif state == "COMPLETED":
        head = f"An AWS Backup {noun} job was completed successfully."
    else:
        head = f"An AWS Backup {noun} job ended in state {state}."
    parts = [head]
    if point and state in ("COMPLETED", "PARTIAL"):
        parts.append(f"Recovery point ARN: {point}.")
    parts.append(f"Resource ARN : {resource}.")
    parts.append(f"{label} ID : {job['_id']}.")
    if job.get("status_message") and state != "COMPLETED":
        parts.append(f"Status message: {job['status_message']}.")
    return " ".join(parts)


def _attributes(kind: str, job: dict[str, Any], state: str, event: str) -> dict[str, Any]:
    started = job.get("start_date") or job.get("creation_date")
    values = {
        "EventType": _EVENT_TYPE.get(kind, kind.upper()),
        "State": state,
        "AccountId": job.get("account_id") or "",
        "Id": job["_id"],
        "StartTime": started.isoformat() if isinstance(started, datetime) else "",
        "BackupVaultEvent": event,
    }
    return {k: {"Type": "String", "Value": v} for k, v in values.items() if v}


def job_changed(deps: Deps, kind: str, spec: Any, job_id: str, *, final_only: bool = False) -> None:
    """Queue the vault events of job ``job_id`` in its current state (``spec``: the
    kind's ``catalog.queue.QueueSpec``; ``final_only``: only if that state is final — a
    worker that lost its lease must not announce a start again). Never raises: a
    notification never fails a job."""
    try:
        with catalog.db.transaction(deps.engine) as conn:
            job = catalog.notifications.job_row(conn, spec.table, spec.id_column, job_id)
            if job is None:
                return
            state = str(job[spec.state_column])
            if final_only and not rules.is_final(state):
                return
            trail.job_changed(deps, kind, job_id, job, state, deps.clock.now())
            events = rules.job_events(kind, state)
            vault_arn = job.get("backup_vault_arn") or job.get("source_backup_vault_arn")
            vault = catalog.vaults.find_by_arn(conn, vault_arn) if events and vault_arn else None
            config = (vault or {}).get("notifications") or {}
            wanted = [e for e in events if e in config.get("BackupVaultEvents", ())]
            job["_id"] = job_id
            for event in wanted:
                publish(
                    conn,
                    config["SNSTopicArn"],
                    SUBJECT,
                    _text(kind, job, state),
                    _attributes(kind, job, state, event),
                    deps.clock.now(),
                )
    except Exception:
        log.exception("notifications of %s job %s could not be queued", kind, job_id)
