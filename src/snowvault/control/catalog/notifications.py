"""SNS topics, their subscriptions and the delivery outbox (revision 0012).

    topic = create_topic(conn, arn=..., account_id=..., region=..., name="t", now=now)
    sub = subscribe(conn, arn=..., topic_arn=..., ..., token="...", now=now)
    enqueue(conn, message_id=..., message_type="Notification", topic_arn=..., ...)
    for row in due(conn, now, limit=50): ...            # the delivery loop's work
    delivered(conn, row.seq, now) / retry(conn, row.seq, error, at) / give_up(...)

Delivery order is per subscription: :func:`due` returns, for each subscription, only its
oldest PENDING message, and only when that one is due — a later message never overtakes
an earlier one that is waiting for its retry.

Must not depend on anything above ``snowvault.core``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from snowvault.control.catalog.tables import notification_outbox, sns_subscriptions, sns_topics

PENDING, DELIVERED, FAILED = "PENDING", "DELIVERED", "FAILED"


@dataclass(frozen=True)
class Topic:
    topic_arn: str
    account_id: str
    region: str
    name: str
    created_at: datetime


@dataclass(frozen=True)
class Subscription:
    subscription_arn: str
    topic_arn: str
    account_id: str
    protocol: str
    endpoint: str
    confirmed: bool
    token: str
    created_at: datetime


@dataclass(frozen=True)
class Outgoing:
    seq: int
    message_id: str
    message_type: str
    topic_arn: str
    subscription_arn: str
    subject: str | None
    message: str
    attributes: dict[str, Any] | None
    created_at: datetime
    state: str
    attempts: int
    next_attempt_at: datetime
    delivered_at: datetime | None
    last_error: str | None


def _topic(row: Any) -> Topic:
    return Topic(**{k: row._mapping[k] for k in Topic.__dataclass_fields__})


def _sub(row: Any) -> Subscription:
    return Subscription(**{k: row._mapping[k] for k in Subscription.__dataclass_fields__})


def _out(row: Any) -> Outgoing:
    return Outgoing(**{k: row._mapping[k] for k in Outgoing.__dataclass_fields__})


# -- topics --------------------------------------------------------------------------------


def create_topic(
    conn: Connection, *, arn: str, account_id: str, region: str, name: str, now: datetime
) -> Topic:
    """The topic (CreateTopic is idempotent on the name: an existing one is returned)."""
    found = get_topic(conn, arn)
    if found is not None:
        return found
    try:
        with conn.begin_nested():
            conn.execute(
                sns_topics.insert().values(
                    topic_arn=arn, account_id=account_id, region=region, name=name, created_at=now
                )
            )
    except IntegrityError:
        pass  # created meanwhile: the same answer
    topic = get_topic(conn, arn)
    assert topic is not None
    return topic


def get_topic(conn: Connection, arn: str) -> Topic | None:
    row = conn.execute(sa.select(sns_topics).where(sns_topics.c.topic_arn == arn)).first()
    return _topic(row) if row else None


def list_topics(
    conn: Connection, *, account_id: str, region: str, after: str | None, limit: int
) -> list[Topic]:
    t = sns_topics.c
    query = sa.select(sns_topics).where(t.account_id == account_id, t.region == region)
    if after:
        query = query.where(t.topic_arn > after)
    return [_topic(r) for r in conn.execute(query.order_by(t.topic_arn).limit(limit))]


def delete_topic(conn: Connection, arn: str) -> None:
    """The topic, its subscriptions and their undelivered messages."""
    subs = sa.select(sns_subscriptions.c.subscription_arn).where(
        sns_subscriptions.c.topic_arn == arn
    )
    conn.execute(
        notification_outbox.delete().where(
            notification_outbox.c.subscription_arn.in_(subs),
            notification_outbox.c.state == PENDING,
        )
    )
    conn.execute(sns_subscriptions.delete().where(sns_subscriptions.c.topic_arn == arn))
    conn.execute(sns_topics.delete().where(sns_topics.c.topic_arn == arn))


# -- subscriptions -------------------------------------------------------------------------


def subscribe(
    conn: Connection,
    *,
    arn: str,
    topic_arn: str,
    account_id: str,
    protocol: str,
    endpoint: str,
    token: str,
    now: datetime,
) -> Subscription:
    conn.execute(
        sns_subscriptions.insert().values(
            subscription_arn=arn,
            topic_arn=topic_arn,
            account_id=account_id,
            protocol=protocol,
            endpoint=endpoint,
            confirmed=False,
            token=token,
            created_at=now,
        )
    )
    found = get_subscription(conn, arn)
    assert found is not None
    return found


def find_subscription(
    conn: Connection, *, topic_arn: str, protocol: str, endpoint: str
) -> Subscription | None:
    s = sns_subscriptions.c
    row = conn.execute(
        sa.select(sns_subscriptions).where(
            s.topic_arn == topic_arn, s.protocol == protocol, s.endpoint == endpoint
        )
    ).first()
    return _sub(row) if row else None


def get_subscription(conn: Connection, arn: str) -> Subscription | None:
    s = sns_subscriptions.c
    row = conn.execute(sa.select(sns_subscriptions).where(s.subscription_arn == arn)).first()
    return _sub(row) if row else None


def subscriptions_of(conn: Connection, topic_arn: str) -> list[Subscription]:
    s = sns_subscriptions.c
    query = sa.select(sns_subscriptions).where(s.topic_arn == topic_arn)
    return [_sub(r) for r in conn.execute(query.order_by(s.created_at, s.subscription_arn))]


def confirm(conn: Connection, arn: str) -> None:
    s = sns_subscriptions.c
    conn.execute(sns_subscriptions.update().where(s.subscription_arn == arn).values(confirmed=True))


def unsubscribe(conn: Connection, arn: str) -> None:
    conn.execute(
        notification_outbox.delete().where(
            notification_outbox.c.subscription_arn == arn, notification_outbox.c.state == PENDING
        )
    )
    conn.execute(sns_subscriptions.delete().where(sns_subscriptions.c.subscription_arn == arn))


# -- the outbox ----------------------------------------------------------------------------


def enqueue(
    conn: Connection,
    *,
    message_id: str,
    message_type: str,
    topic_arn: str,
    subscription_arn: str,
    subject: str | None,
    message: str,
    attributes: dict[str, Any] | None,
    now: datetime,
) -> None:
    conn.execute(
        notification_outbox.insert().values(
            message_id=message_id,
            message_type=message_type,
            topic_arn=topic_arn,
            subscription_arn=subscription_arn,
            subject=subject,
            message=message,
            attributes=attributes,
            created_at=now,
            state=PENDING,
            attempts=0,
            next_attempt_at=now,
        )
    )


def due(conn: Connection, now: datetime, *, limit: int) -> list[Outgoing]:
    """Per subscription, its oldest PENDING message when that one is due (module doc),
    accounts taking turns: every account's oldest due message comes before any
    account's second, so one tenant's hundreds of subscriptions (slow endpoints, say)
    cannot fill a pass and hold back the others' notifications."""
    o = notification_outbox.c
    s = sns_subscriptions.c
    heads = (
        sa.select(sa.func.min(o.seq).label("seq"))
        .where(o.state == PENDING)
        .group_by(o.subscription_arn)
        .subquery()
    )
    owner = sa.func.coalesce(s.account_id, o.topic_arn)  # a deleted subscription: its topic
    ranked = (
        sa.select(
            o.seq.label("seq"),
            sa.func.row_number().over(partition_by=owner, order_by=o.seq).label("turn"),
        )
        .select_from(
            notification_outbox.outerjoin(
                sns_subscriptions, s.subscription_arn == o.subscription_arn
            )
        )
        .where(o.seq.in_(sa.select(heads.c.seq)), o.next_attempt_at <= now)
        .subquery()
    )
    query = (
        sa.select(notification_outbox)
        .join(ranked, ranked.c.seq == o.seq)
        .order_by(ranked.c.turn, o.seq)
        .limit(limit)
    )
    return [_out(r) for r in conn.execute(query)]


def delivered(conn: Connection, seq: int, now: datetime) -> None:
    o = notification_outbox.c
    conn.execute(
        notification_outbox.update()
        .where(o.seq == seq)
        .values(state=DELIVERED, attempts=o.attempts + 1, delivered_at=now, last_error=None)
    )


def retry(conn: Connection, seq: int, error: str, at: datetime) -> None:
    o = notification_outbox.c
    conn.execute(
        notification_outbox.update()
        .where(o.seq == seq)
        .values(attempts=o.attempts + 1, next_attempt_at=at, last_error=error[:1000])
    )


def give_up(conn: Connection, seq: int, error: str) -> None:
    o = notification_outbox.c
    conn.execute(
        notification_outbox.update()
        .where(o.seq == seq)
        .values(state=FAILED, attempts=o.attempts + 1, last_error=error[:1000])
    )


def get_outgoing(conn: Connection, seq: int) -> Outgoing | None:
    o = notification_outbox.c
    row = conn.execute(sa.select(notification_outbox).where(o.seq == seq)).first()
    return _out(row) if row else None


def outbox_counts(conn: Connection) -> dict[str, int]:
    """Messages by state (the metrics)."""
    o = notification_outbox.c
    rows = conn.execute(sa.select(o.state, sa.func.count()).group_by(o.state))
    return {str(state): int(n) for state, n in rows}


def job_row(
    conn: Connection, table: sa.Table, id_column: str, job_id: str
) -> dict[str, Any] | None:
    """A job's row as columns (any job table: the event text reads a few of them)."""
    row = conn.execute(sa.select(table).where(table.c[id_column] == job_id)).first()
    return dict(row._mapping) if row else None
