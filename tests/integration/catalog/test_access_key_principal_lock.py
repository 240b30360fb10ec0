"""The per-user access key quota counts a user's keys under a lock on the user's row
(catalog.accounts.lock_principal): on PostgreSQL a second transaction cannot take it
while the first holds it, so two concurrent CreateAccessKey calls cannot both see one
key and both add a second and a third (helper K)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError

from helpers.catalog_db import ACCOUNT, T0
from snowvault.control import catalog
from snowvault.control.catalog.tables import principals
from snowvault.core.errors import NotFound

USER = f"arn:aws:iam::{ACCOUNT}:user/locked"


def _user(conn: Connection) -> None:
    catalog.accounts.create_principal(
        conn, arn=USER, account_id=ACCOUNT, name="locked", created_at=T0
    )


def test_lock_principal_answers_the_row_or_not_found(conn: Connection) -> None:
    _user(conn)
    assert catalog.accounts.lock_principal(conn, USER)["name"] == "locked"
    with pytest.raises(NotFound):
        catalog.accounts.lock_principal(conn, USER + "x")


def test_the_lock_holds_off_a_second_transaction(postgresql_engine: Engine) -> None:
    catalog.db.reset(postgresql_engine)
    with catalog.db.transaction(postgresql_engine) as c:
        catalog.accounts.create_account(c, account_id=ACCOUNT, name="main", created_at=T0)
        _user(c)
    nowait = sa.select(principals).where(principals.c.arn == USER).with_for_update(nowait=True)
    with catalog.db.transaction(postgresql_engine) as first:
        catalog.accounts.lock_principal(first, USER)
        with (
            postgresql_engine.connect() as second,
            second.begin(),
            pytest.raises(OperationalError, match="could not obtain lock"),
        ):
            second.execute(nowait)
    with postgresql_engine.connect() as third, third.begin():  # released at commit
        assert third.execute(nowait).first() is not None
