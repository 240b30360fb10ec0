"""``snowvault selection``: which resources a backup plan protects — create (by ARN and/or
tag), list, delete, and preview (which resources a selection matches right now, and why,
through the extension action PreviewSelection).

Tags given with ``--tag`` become ListOfTags entries, which AWS combines with OR: a
resource carrying ANY of them is selected. ``preview`` shows that before the first run.

A pure API client: talks to the server through :mod:`client` only; must not import the
server side (interfaces.api, app, services, catalog).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import click

from snowvault.core.errors import InvalidInput
from snowvault.interfaces.cli import backup_cmd, plan_cmd, render, resource_cmd
from snowvault.interfaces.cli.client import Api, json_option, with_api

COLUMNS: list[render.Column] = [
    ("NAME", lambda s: s.get("SelectionName")),
    ("ID", lambda s: s.get("SelectionId")),
    ("PLAN", lambda s: s.get("BackupPlanId")),
    ("ROLE", lambda s: s.get("IamRoleArn")),
]

PREVIEW_COLUMNS: list[render.Column] = [
    ("SELECTED", lambda r: "yes" if r.get("Selected") else "no"),
    ("NAME", lambda r: r.get("ResourceName")),
    ("TYPE", lambda r: r.get("ResourceType")),
    ("TAGS", lambda r: resource_cmd.format_tags(r.get("Tags") or {})),
    ("WHY", lambda r: r.get("Explanation")),
]


def selection_document(
    name: str, role: str, resources: Sequence[str], tags: Sequence[str]
) -> dict[str, Any]:
    """A BackupSelection: the ARNs under Resources, each KEY=VALUE as a STRINGEQUALS tag.

    >>> selection_document("s", "arn:role", [], ["Backup=true"])["ListOfTags"]
    [{'ConditionType': 'STRINGEQUALS', 'ConditionKey': 'Backup', 'ConditionValue': 'true'}]
    """
    if not resources and not tags:
        raise InvalidInput(detail="give at least one --resource or --tag")
    doc: dict[str, Any] = {"SelectionName": name, "IamRoleArn": role}
    if resources:
        doc["Resources"] = list(resources)
    if tags:
        doc["ListOfTags"] = [
            {"ConditionType": "STRINGEQUALS", "ConditionKey": key, "ConditionValue": value}
            for key, value in render.parse_tags(tags).items()
        ]
    return doc


def plan_role(api: Api, plan_id: str) -> str:
    """The default service role in the account that owns plan ``plan_id``."""
    plan = api.call("get_backup_plan", BackupPlanId=plan_id)
    return backup_cmd.default_role(str(plan["BackupPlanArn"]))


def selection_id_of(api: Api, plan_id: str, ref: str) -> str:
    """A selection id as given, or the id of the plan's selection named ``ref``."""
    if plan_cmd.looks_like_id(ref):
        return ref
    rows = api.paginate("list_backup_selections", "BackupSelectionsList", BackupPlanId=plan_id)
    return plan_cmd.pick_id(rows, ref, "SelectionId", "SelectionName", "selection")


def preview_summary(rows: Sequence[dict[str, Any]]) -> str:
    """One line under the preview table: how many resources are selected."""
    chosen = sum(1 for r in rows if r.get("Selected"))
    return f"{chosen} of {len(rows)} resources selected"


@click.group()
def selection() -> None:
    """Backup selections: which resources a plan backs up."""


@selection.command()
@click.option("--plan", "plan_id", required=True, metavar="PLAN", help="Plan id or name.")
@click.option("--name", required=True, help="Selection name.")
@click.option("--resource", "resources", multiple=True, metavar="ARN|NAME", help="Repeatable.")
@click.option("--tag", "tags", multiple=True, metavar="KEY=VALUE", help="Repeatable (OR).")
@click.option("--iam-role-arn", help="Default: arn:aws:iam::ACCOUNT:role/snowvault.")
@json_option
@with_api
def create(
    api: Api,
    plan_id: str,
    name: str,
    resources: tuple[str, ...],
    tags: tuple[str, ...],
    iam_role_arn: str | None,
    as_json: bool,
) -> None:
    """Assign resources to a plan by ARN (or registered name) and/or by tag."""
    plan_id = plan_cmd.plan_id(api, plan_id)
    arn_list = [r if r.endswith("*") else resource_cmd.resolve(api, r) for r in resources]
    role = iam_role_arn or plan_role(api, plan_id)
    doc = selection_document(name, role, arn_list, tags)
    out = api.call("create_backup_selection", BackupPlanId=plan_id, BackupSelection=doc)
    render.result(as_json, out, f"created selection {name} ({out.get('SelectionId')})")


@selection.command("list")
@click.option("--plan", "plan_id", required=True, metavar="PLAN", help="Plan id or name.")
@json_option
@with_api
def list_(api: Api, plan_id: str, as_json: bool) -> None:
    """List the selections of a plan."""
    plan_id = plan_cmd.plan_id(api, plan_id)
    rows = api.paginate("list_backup_selections", "BackupSelectionsList", BackupPlanId=plan_id)
    render.table(as_json, rows, COLUMNS)


@selection.command()
@click.option("--plan", "plan_id", required=True, metavar="PLAN", help="Plan id or name.")
@click.option(
    "--selection", "selection_id", required=True, metavar="SELECTION", help="Selection id or name."
)
@json_option
@with_api
def delete(api: Api, plan_id: str, selection_id: str, as_json: bool) -> None:
    """Delete a selection of a plan."""
    plan_id = plan_cmd.plan_id(api, plan_id)
    selection_id = selection_id_of(api, plan_id, selection_id)
    api.call("delete_backup_selection", BackupPlanId=plan_id, SelectionId=selection_id)
    doc = {"BackupPlanId": plan_id, "SelectionId": selection_id, "Deleted": True}
    render.result(as_json, doc, f"deleted selection {selection_id}")


@selection.command()
@click.option("--plan", "plan_id", required=True, metavar="PLAN", help="Plan id or name.")
@click.option(
    "--selection", "selection_id", required=True, metavar="SELECTION", help="Selection id or name."
)
@json_option
@with_api
def preview(api: Api, plan_id: str, selection_id: str, as_json: bool) -> None:
    """Which resources the selection matches right now, and why (or why not)."""
    plan_id = plan_cmd.plan_id(api, plan_id)
    selection_id = selection_id_of(api, plan_id, selection_id)
    body = {"BackupPlanId": plan_id, "SelectionId": selection_id}
    rows = api.ext("PreviewSelection", body).get("Resources", [])
    render.table(as_json, rows, PREVIEW_COLUMNS)
    if not as_json:
        render.result(False, {}, preview_summary(rows))
