"""The delivery loop's work list (catalog.notifications.due) lets accounts take turns:
one tenant's many due subscriptions never fill a pass ahead of another tenant's one
message (helper Q's probe: a pass of 50 could be all one tenant's slow endpoints).
Both catalogs: the turn is a window function, which SQLite and PostgreSQL both run."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.engine import Engine

from helpers.catalog_db import REGION, T0
from snowvault.control import catalog

A, B = "111111111111", "222222222222"


def _topic(conn: object, account: str) -> str:
    arn = f"arn:aws:sns:{REGION}:{account}:t"
    catalog.notifications.create_topic(
        conn,
        arn=arn,
        account_id=account,
        region=REGION,
        name="t",
        now=T0,  # type: ignore[arg-type]
    )
    return arn


def _message(conn: object, account: str, topic: str, n: int) -> None:
    sub = f"{topic}:sub-{n}"
    catalog.notifications.subscribe(
        conn,  # type: ignore[arg-type]
        arn=sub, topic_arn=topic, account_id=account, protocol="https",
        endpoint=f"https://hook-{n}.example/", token=f"tok-{account}-{n}", now=T0,
    )  # fmt: skip
    catalog.notifications.enqueue(
        conn,  # type: ignore[arg-type]
        message_id=f"m-{account}-{n}", message_type="Notification", topic_arn=topic,
        subscription_arn=sub, subject=None, message="x", attributes=None, now=T0,
    )  # fmt: skip


def test_every_account_has_its_first_due_message_in_the_pass(engine: Engine) -> None:
    with catalog.db.transaction(engine) as conn:
        topic_a, topic_b = _topic(conn, A), _topic(conn, B)
        for n in range(60):  # account A's subscriptions, all older than B's message
            _message(conn, A, topic_a, n)
        _message(conn, B, topic_b, 0)
    with catalog.db.read_transaction(engine) as conn:
        rows = catalog.notifications.due(conn, T0 + timedelta(seconds=1), limit=10)
    accounts = [row.topic_arn.split(":")[4] for row in rows]
    assert len(rows) == 10 and accounts.count(B) == 1, accounts
    assert accounts[:2] == [A, B]  # turn 1 of each account, oldest first; then A's turn 2...
    seqs = [row.seq for row in rows if row.topic_arn == topic_a]
    assert seqs == sorted(seqs)  # within an account, oldest first
