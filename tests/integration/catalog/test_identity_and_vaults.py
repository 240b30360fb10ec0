"""Accounts, principals, keys, settings, idempotency, vaults, tags and resources."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy.engine import Connection, Engine

from helpers.catalog_db import ACCOUNT, REGION, T0, make_vault
from snowvault.control import catalog
from snowvault.core.errors import AlreadyExists, Conflict, InvalidInput, NotFound

USER = f"arn:aws:iam::{ACCOUNT}:user/alice"


def test_timestamps_come_back_aware_utc(conn: Connection) -> None:
    plus2 = datetime(2026, 3, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    catalog.accounts.create_account(conn, account_id="999988887777", name="x", created_at=plus2)
    got = catalog.accounts.get_account(conn, "999988887777")["created_at"]
    assert got == plus2 and got.tzinfo == UTC and got.hour == 12


def test_naive_timestamps_are_refused(conn: Connection) -> None:
    with pytest.raises(Exception, match="naive datetime"):
        catalog.accounts.create_account(
            conn, account_id="999988887777", name="x", created_at=datetime(2026, 1, 1)
        )


def test_accounts_principals_policies_and_keys(conn: Connection) -> None:
    with pytest.raises(InvalidInput):
        catalog.accounts.create_account(conn, account_id="12", name="bad", created_at=T0)
    with pytest.raises(AlreadyExists):
        catalog.accounts.create_account(conn, account_id=ACCOUNT, name="dup", created_at=T0)
    catalog.accounts.create_principal(
        conn, arn=USER, account_id=ACCOUNT, name="alice", created_at=T0
    )
    doc = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "backup:*"}]}
    catalog.accounts.put_user_policy(
        conn, principal_arn=USER, policy_name="all", document=doc, now=T0
    )
    catalog.accounts.put_user_policy(
        conn, principal_arn=USER, policy_name="all", document={"v": 2}, now=T0
    )
    assert catalog.accounts.get_user_policies(conn, USER) == {"all": {"v": 2}}
    catalog.accounts.create_access_key(
        conn, access_key_id="AKIA1", principal_arn=USER, sealed_secret=b"\x00sealed", created_at=T0
    )
    key = catalog.accounts.get_access_key(conn, "AKIA1")
    assert (key["sealed_secret"], key["account_id"], key["status"]) == (
        b"\x00sealed",
        ACCOUNT,
        "Active",
    )
    catalog.accounts.set_access_key_status(conn, "AKIA1", "Inactive")
    assert catalog.accounts.list_access_keys(conn, USER)[0]["status"] == "Inactive"
    catalog.accounts.delete_principal(conn, USER)
    with pytest.raises(NotFound):
        catalog.accounts.get_access_key(conn, "AKIA1")
    assert catalog.accounts.get_user_policies(conn, USER) == {}


def test_settings_and_region_settings(conn: Connection) -> None:
    assert catalog.settings.get(conn, "home_region", "none") == "none"
    catalog.settings.put(conn, "home_region", "eu-west-1")
    catalog.settings.put(conn, "home_region", "us-east-1")
    catalog.settings.put(conn, "accounts", [ACCOUNT])
    assert catalog.settings.all_settings(conn) == {"accounts": [ACCOUNT], "home_region": REGION}
    catalog.settings.put_region(conn, account_id=ACCOUNT, region=REGION, now=T0, opt_in={"A": True})
    catalog.settings.put_region(
        conn, account_id=ACCOUNT, region=REGION, now=T0, opt_in={"B": False}, management={"A": 1}
    )
    got = catalog.settings.get_region(conn, account_id=ACCOUNT, region=REGION)
    assert got is not None
    assert got["resource_type_opt_in_preference"] == {"A": True, "B": False}


def test_idempotency_returns_the_first_result(conn: Connection) -> None:
    key = {"account_id": ACCOUNT, "operation": "StartBackupJob", "token": "t1"}
    assert catalog.idempotency.lookup(conn, **key) is None
    first = catalog.idempotency.remember(conn, **key, result={"id": "a"}, now=T0)
    second = catalog.idempotency.remember(conn, **key, result={"id": "b"}, now=T0)
    assert first == second == {"id": "a"}
    assert catalog.idempotency.purge_before(conn, T0 + timedelta(days=1)) == 1
    assert catalog.idempotency.lookup(conn, **key) is None


def test_vault_crud_lock_and_delete(conn: Connection) -> None:
    vault = make_vault(conn, "main")
    assert vault["number_of_recovery_points"] == 0 and vault["locked"] is False
    with pytest.raises(AlreadyExists):
        make_vault(conn, "main")
    catalog.vaults.update(conn, vault["arn"], access_policy={"Statement": []})
    locked = catalog.vaults.set_lock(
        conn,
        vault["arn"],
        min_retention_days=7,
        max_retention_days=30,
        changeable_for_days=3,
        lock_date=T0 + timedelta(days=3),
    )
    assert locked["locked"] is True and locked["lock_date"] == T0 + timedelta(days=3)
    assert catalog.vaults.clear_lock(conn, vault["arn"])["min_retention_days"] is None
    catalog.tags.tag(conn, vault["arn"], {"env": "prod"})
    catalog.vaults.delete(conn, vault["arn"])
    assert catalog.tags.list_for(conn, vault["arn"]) == {}
    with pytest.raises(NotFound):
        catalog.vaults.get(conn, account_id=ACCOUNT, region=REGION, name="main")


def test_vault_with_recovery_points_cannot_be_deleted(conn: Connection) -> None:
    vault = make_vault(conn)
    catalog.recovery_points.create(
        conn,
        arn="arn:rp:1",
        account_id=ACCOUNT,
        region=REGION,
        backup_vault_name="main",
        backup_vault_arn=vault["arn"],
        resource_arn="arn:res",
        resource_type="Directory",
        status="COMPLETED",
        creation_date=T0,
    )
    assert catalog.vaults.get_by_arn(conn, vault["arn"])["number_of_recovery_points"] == 1
    with pytest.raises(Conflict):
        catalog.vaults.delete(conn, vault["arn"])


def test_list_vaults_pages_by_name(conn: Connection) -> None:
    for name in ["c", "a", "e", "b", "d"]:
        make_vault(conn, name)
    names, token = [], None
    while True:
        page = catalog.vaults.list_vaults(
            conn, account_id=ACCOUNT, region=REGION, limit=2, token=token
        )
        names += [v["name"] for v in page.items]
        token = page.next_token
        if token is None:
            break
    assert names == ["a", "b", "c", "d", "e"]


def test_tags_set_replace_untag(conn: Connection) -> None:
    catalog.tags.tag(conn, "arn:x", {"a": "1", "b": "2"})
    catalog.tags.tag(conn, "arn:x", {"a": "9"})
    catalog.tags.untag(conn, "arn:x", ["b", "missing"])
    assert catalog.tags.list_for(conn, "arn:x") == {"a": "9"}
    catalog.tags.tag(conn, "arn:y", {"a": "9"})
    assert catalog.tags.arns_with_tag(conn, "a", "9") == ["arn:x", "arn:y"]
    assert catalog.tags.arns_with_tag(conn, "a", "9", prefix="arn:y") == ["arn:y"]


def test_resources_inventory_and_protected_lists(conn: Connection) -> None:
    vault = make_vault(conn)
    for i in range(3):
        catalog.resources.register(
            conn,
            arn=f"arn:res:{i}",
            account_id=ACCOUNT,
            region=REGION,
            resource_type="Directory",
            created_at=T0,
            name=f"r{i}",
            source=f"/data/{i}",
            worker_label="host-a",
        )
    with pytest.raises(AlreadyExists):
        catalog.resources.register(
            conn,
            arn="arn:res:0",
            account_id=ACCOUNT,
            region=REGION,
            resource_type="Directory",
            created_at=T0,
        )
    catalog.resources.record_backup(
        conn, "arn:res:1", when=T0, vault_arn=vault["arn"], recovery_point_arn="arn:rp:x"
    )
    catalog.resources.record_backup(  # older: ignored
        conn, "arn:res:1", when=T0 - timedelta(days=1), vault_arn="old", recovery_point_arn="old"
    )
    catalog.recovery_points.create(
        conn,
        arn="arn:rp:x",
        account_id=ACCOUNT,
        region=REGION,
        backup_vault_name="main",
        backup_vault_arn=vault["arn"],
        resource_arn="arn:res:1",
        resource_type="Directory",
        status="COMPLETED",
        creation_date=T0,
    )
    got = catalog.resources.get(conn, "arn:res:1")
    assert (got["last_backup_time"], got["last_recovery_point_arn"]) == (T0, "arn:rp:x")
    protected = catalog.resources.list_resources(
        conn, account_id=ACCOUNT, region=REGION, protected_only=True
    )
    assert [r["arn"] for r in protected.items] == ["arn:res:1"]
    everything = catalog.resources.list_resources(conn, account_id=ACCOUNT, region=REGION)
    assert len(everything.items) == 3
    by_vault = catalog.resources.list_by_vault(conn, vault_arn=vault["arn"])
    assert [r["arn"] for r in by_vault.items] == ["arn:res:1"]
    catalog.resources.delete(conn, "arn:res:0")
    with pytest.raises(NotFound):
        catalog.resources.get(conn, "arn:res:0")


def test_reset_deletes_every_row(engine: Engine) -> None:
    with catalog.db.transaction(engine) as c:
        catalog.accounts.create_account(c, account_id=ACCOUNT, name="m", created_at=T0)
        make_vault(c)
    catalog.db.reset(engine)
    with catalog.db.transaction(engine) as c:
        assert catalog.accounts.list_accounts(c) == []
    assert catalog.db.current_revision(engine) is not None  # the schema itself stays


def test_bad_tokens_are_invalid_input(conn: Connection) -> None:
    for token in ["%%%", "bm90IGpzb24", catalog.pagination.encode_token("other", ["x"])]:
        with pytest.raises(InvalidInput):
            catalog.vaults.list_vaults(conn, account_id=ACCOUNT, region=REGION, token=token)
    with pytest.raises(InvalidInput):
        catalog.vaults.list_vaults(conn, account_id=ACCOUNT, region=REGION, limit=0)
