"""Recovery points: filters, keyset pagination (10,000 rows), lifecycle and sweeper lists."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.engine import Connection

from helpers.catalog_db import ACCOUNT, REGION, T0, make_vault
from snowvault.control import catalog
from snowvault.control.catalog.recovery_points import RecoveryPointFilters
from snowvault.core.errors import NotFound


def _rows(vault: dict[str, Any], n: int, *, same_time_every: int = 1) -> list[dict[str, Any]]:
    return [
        {
            "arn": f"arn:aws:backup:{REGION}:{ACCOUNT}:recovery-point:{i:05d}",
            "account_id": ACCOUNT,
            "region": REGION,
            "backup_vault_name": vault["name"],
            "backup_vault_arn": vault["arn"],
            "resource_arn": f"arn:res:{i % 4}",
            "resource_type": "Directory" if i % 2 else "SQLite",
            "status": "COMPLETED",
            "storage_class": "WARM",
            "is_encrypted": True,
            "is_parent": False,
            "creation_date": T0 + timedelta(minutes=i // same_time_every),
            "backup_plan_id": "plan-a" if i % 3 == 0 else None,
            "parent_recovery_point_arn": None,
        }
        for i in range(n)
    ]


def _all(conn: Connection, vault_arn: str, limit: int, **filters: Any) -> list[str]:
    arns: list[str] = []
    token = None
    while True:
        page = catalog.recovery_points.list_by_vault(
            conn,
            vault_arn=vault_arn,
            filters=RecoveryPointFilters(**filters),
            limit=limit,
            token=token,
        )
        assert len(page.items) <= limit
        arns += [r.arn for r in page.items]
        if page.next_token is None:
            return arns
        token = page.next_token


def test_ten_thousand_recovery_points_page_completely_in_order(conn: Connection) -> None:
    vault = make_vault(conn)
    rows = _rows(vault, 10_000, same_time_every=3)  # ties on creation_date break on arn
    catalog.recovery_points.create_many(conn, rows)
    expected = [
        r["arn"] for r in sorted(rows, key=lambda r: (r["creation_date"], r["arn"]), reverse=True)
    ]
    assert _all(conn, vault["arn"], limit=1000) == expected
    assert _all(conn, vault["arn"], limit=997, resource_arn="arn:res:1") == [
        a
        for a, r in zip(expected, sorted(rows, key=lambda r: r["arn"], reverse=True))
        if r["resource_arn"] == "arn:res:1"
    ]
    assert catalog.vaults.get_by_arn(conn, vault["arn"])["number_of_recovery_points"] == 10_000


def test_filters_of_list_by_vault(conn: Connection) -> None:
    vault = make_vault(conn)
    other = make_vault(conn, "other")
    rows = _rows(vault, 24) + [dict(r, arn=r["arn"] + "o") for r in _rows(other, 5)]
    rows[5]["parent_recovery_point_arn"] = rows[0]["arn"]
    catalog.recovery_points.create_many(conn, rows)
    mine = [r for r in rows if r["backup_vault_arn"] == vault["arn"]]

    def expect(pred: Any) -> list[str]:
        picked = [r for r in mine if pred(r)]
        return [r["arn"] for r in sorted(picked, key=lambda r: r["creation_date"], reverse=True)]

    t10 = T0 + timedelta(minutes=10)
    cases = [
        ({"resource_type": "SQLite"}, lambda r: r["resource_type"] == "SQLite"),
        ({"backup_plan_id": "plan-a"}, lambda r: r["backup_plan_id"] == "plan-a"),
        ({"created_before": t10}, lambda r: r["creation_date"] < t10),
        ({"created_after": t10}, lambda r: r["creation_date"] > t10),
        ({"parent_recovery_point_arn": rows[0]["arn"]}, lambda r: r is rows[5]),
        ({}, lambda r: True),
    ]
    for filters, pred in cases:
        assert _all(conn, vault["arn"], limit=4, **filters) == expect(pred), filters


def test_list_by_resource_spans_vaults(conn: Connection) -> None:
    a, b = make_vault(conn, "a"), make_vault(conn, "b")
    rows = _rows(a, 8) + [dict(r, arn=r["arn"] + "b") for r in _rows(b, 8)]
    catalog.recovery_points.create_many(conn, rows)
    page = catalog.recovery_points.list_by_resource(conn, resource_arn="arn:res:2", limit=3)
    second = catalog.recovery_points.list_by_resource(
        conn, resource_arn="arn:res:2", limit=3, token=page.next_token
    )
    got = [r.arn for r in page.items + second.items]
    assert len(got) == 4 and second.next_token is None
    assert {r.backup_vault_name for r in page.items + second.items} == {"a", "b"}


def test_describe_lifecycle_status_and_delete(conn: Connection) -> None:
    vault = make_vault(conn)
    (row,) = _rows(vault, 1)
    catalog.recovery_points.create(conn, **row)
    with pytest.raises(NotFound):
        catalog.recovery_points.get(conn, row["arn"], vault_arn="arn:other")
    later = T0 + timedelta(days=30)
    got = catalog.recovery_points.update_lifecycle(
        conn,
        row["arn"],
        lifecycle={"MoveToColdStorageAfterDays": 1, "DeleteAfterDays": 30},
        move_to_cold_at=T0 + timedelta(days=1),
        delete_at=later,
    )
    assert got.delete_at == later and got.lifecycle is not None
    assert got.lifecycle["DeleteAfterDays"] == 30
    due = catalog.recovery_points.list_due_for_deletion
    assert due(conn, before=later - timedelta(seconds=1)) == []
    assert [r.arn for r in due(conn, before=later)] == [row["arn"]]
    cold = catalog.recovery_points.list_due_for_cold(conn, before=T0 + timedelta(days=2))
    assert [r.arn for r in cold] == [row["arn"]]
    catalog.recovery_points.set_storage_class(conn, row["arn"], "COLD")
    assert catalog.recovery_points.list_due_for_cold(conn, before=later) == []
    catalog.recovery_points.set_status(conn, row["arn"], "DELETING")
    assert due(conn, before=later) == []
    catalog.recovery_points.record_restore(conn, row["arn"], later)
    assert catalog.recovery_points.get(conn, row["arn"]).last_restore_time == later
    catalog.recovery_points.delete(conn, row["arn"])
    with pytest.raises(NotFound):
        catalog.recovery_points.get(conn, row["arn"])


def test_vault_count_follows_create_and_delete(conn: Connection) -> None:
    vault = make_vault(conn)
    other = make_vault(conn, "other")
    catalog.recovery_points.create_many(conn, _rows(vault, 5))
    one = dict(_rows(other, 1)[0], arn="arn:rp:other")
    catalog.recovery_points.create(conn, **one)
    catalog.recovery_points.delete(conn, _rows(vault, 5)[2]["arn"])
    with pytest.raises(NotFound):
        catalog.recovery_points.delete(conn, "arn:rp:never")
    assert catalog.vaults.get_by_arn(conn, vault["arn"])["number_of_recovery_points"] == 4
    assert catalog.vaults.get_by_arn(conn, other["arn"])["number_of_recovery_points"] == 1
