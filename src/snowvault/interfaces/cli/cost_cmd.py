"""``snowvault cost report``: what the stored recovery points cost, from the data itself.

    snowvault cost report --data-dir DIR [--by vault|resource|plan|account|...]
                          [--month YYYY-MM] [--prices prices.json] [--json]

An operator command on the server's host (like ``root-key``): it opens DIR read-only
beside a running server and reads every account's vaults. Each point is charged its
share of the stored bytes (compressed, encrypted; a blob shared by N points counts 1/N
to each) at the price of its storage class and region; ``unique`` is what only it holds.
``--month`` prices one calendar month by each point's lifecycle (the part of the
month it is stored, warm then cold) instead of a month at today's storage class.
``--prices`` is a JSON price table per GB-month (``{"WARM": 0.05, "COLD": 0.01,
"regions": {"eu-west-1": {"WARM": 0.06}}}``); see docs/operations/cost.md.
``snowvault.app`` is imported inside the command, as in server_cmd. Must not depend on
the API or web interfaces.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from snowvault.control.model import cost as model
from snowvault.interfaces.cli import render

COLUMNS: list[render.Column] = [
    ("KEY", lambda line: line["key"]),
    ("POINTS", lambda line: line["points"]),
    ("UNIQUE", lambda line: render.size(int(line["unique_bytes"]))),
    ("CHARGED", lambda line: render.size(int(line["attributed_bytes"]))),
    ("WARM GB-MO", lambda line: f"{line['warm_gb_months']:.4f}"),
    ("COLD GB-MO", lambda line: f"{line['cold_gb_months']:.4f}"),
    ("RESTORED", lambda line: render.size(int(line["restore_bytes"]))),
    ("COPIED", lambda line: render.size(int(line["copy_bytes"]))),
    ("USD/MONTH", lambda line: f"{line['monthly_cost']:.4f}"),
]


def _prices(path: str | None) -> model.PriceTable:
    if path is None:
        return model.PriceTable()
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, ValueError, RecursionError) as exc:  # RecursionError: nested too deep
        raise click.BadParameter(f"cannot read {path}: {exc}", param_hint="--prices") from exc
    return model.PriceTable.parse(doc)


def lines(
    points: list[model.PointCost], by: str, transfers: Sequence[model.Transfer] = ()
) -> list[dict[str, Any]]:
    """The report's lines as dicts (what ``--json`` prints, what the table shows):
    storage (GB-months warm and cold, priced) and the GB restored and copied."""
    return [
        {
            "key": line.key,
            "points": line.points,
            "unique_bytes": line.unique_bytes,
            "attributed_bytes": round(line.attributed_bytes),
            "warm_gb_months": round(line.warm_gb_months, 6),
            "cold_gb_months": round(line.cold_gb_months, 6),
            "restore_bytes": line.restore_bytes,
            "copy_bytes": line.copy_bytes,
            "monthly_cost": round(line.monthly_cost, 6),
        }
        for line in model.group(points, by, transfers)
    ]


@click.group()
def cost() -> None:
    """What the stored backups cost (operator, on the server's host)."""


@cost.command()
@click.option(
    "--data-dir",
    required=True,
    type=click.Path(file_okay=False, exists=True),
    help="The server's data directory (read beside a running server).",
)
@click.option("--by", type=click.Choice(model.GROUPS), default="vault", show_default=True)
@click.option("--prices", type=click.Path(dir_okay=False), help="A JSON price table.")
@click.option("--account", "account_id", help="Only this account's vaults.")
@click.option("--month", metavar="YYYY-MM", help="What that month costs, by each lifecycle.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def report(
    data_dir: str,
    by: str,
    prices: str | None,
    account_id: str | None,
    month: str | None,
    as_json: bool,
) -> None:
    """Storage cost per point, resource, vault, plan, account, region or storage class:
    GB-months warm and cold priced by the price table, and the GB restored and copied
    (restore and copy jobs completed in --month, or ever)."""
    from snowvault import app as app_mod
    from snowvault.control.services import cost as cost_service

    table = _prices(prices)
    window = None if month is None else model.parse_month(month)
    app = app_mod.build(data_dir)
    try:
        points = cost_service.report(
            app.deps, app.deps.clock.now(), table, account_id=account_id, month=window
        )
        moved = cost_service.transfers(app.deps, account_id=account_id, month=window)
    finally:
        app.close()
    rows = lines(points, by, moved)
    if as_json:
        total = round(sum(p.monthly_cost for p in points), 6)
        doc = {"By": by, "Lines": rows, "MonthlyCost": total} | ({"Month": month} if month else {})
        render.result(True, doc, "")
        return
    render.table(False, rows, COLUMNS)
