"""``snowvault plan``: backup plans over the AWS API — create (from a template or a JSON
file), list, describe (with the next scheduled runs), delete, and the shipped templates.

A pure API client: talks to the server through :mod:`client` only; must not import the
server side (interfaces.api, app, services, catalog).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import click

from snowvault.core.errors import InvalidInput
from snowvault.interfaces.cli import render
from snowvault.interfaces.cli.client import Api, json_option, with_api

DEFAULT_PREVIEW_RUNS = 5

COLUMNS: list[render.Column] = [
    ("NAME", lambda p: p.get("BackupPlanName")),
    ("ID", lambda p: p.get("BackupPlanId")),
    ("VERSION", lambda p: p.get("VersionId")),
    ("LAST RUN", lambda p: when(p.get("LastExecutionDate"))),
    ("DELETED", lambda p: when(p.get("DeletionDate"))),
]

TEMPLATE_COLUMNS: list[render.Column] = [
    ("TEMPLATE", lambda t: t.get("BackupPlanTemplateId")),
    ("NAME", lambda t: t.get("BackupPlanTemplateName")),
]


def when(value: Any) -> str:
    """A datetime as ISO-8601 to the second; anything else as text ('' for None)."""
    if hasattr(value, "isoformat"):
        return str(value.isoformat(timespec="seconds"))
    return "" if value is None else str(value)


def read_plan_file(path: Path) -> dict[str, Any]:
    """A BackupPlan document from a JSON file: the document itself, or an object holding
    it under ``BackupPlan`` (as GetBackupPlan and ``plan describe --json`` print it)."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvalidInput(detail=f"cannot read {path}: {exc.strerror}") from exc
    except (ValueError, RecursionError) as exc:  # not UTF-8, not JSON, nested too deep
        raise InvalidInput(detail=f"{path} is not JSON: {exc}") from exc
    if isinstance(doc, dict) and isinstance(doc.get("BackupPlan"), dict):
        doc = doc["BackupPlan"]
    if not isinstance(doc, dict) or "Rules" not in doc:
        raise InvalidInput(detail=f"{path} must hold a BackupPlan object with Rules")
    return doc


_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def looks_like_id(ref: str) -> bool:
    """Plan and selection ids are UUIDs; anything else is a name."""
    return bool(_UUID.match(ref))


def pick_id(rows: list[dict[str, Any]], ref: str, id_key: str, name_key: str, kind: str) -> str:
    """The id of the one row whose id or name is ``ref``; a name shared by several is
    one line of error; no match: ``ref`` itself (the API then says what it does not know).

    >>> pick_id([{"Id": "1", "Name": "a"}], "a", "Id", "Name", "plan")
    '1'
    """
    for row in rows:
        if row.get(id_key) == ref:
            return ref
    matches = [str(r[id_key]) for r in rows if r.get(name_key) == ref]
    if not matches:
        return ref
    if len(matches) > 1:
        raise InvalidInput(
            detail=f"{len(matches)} {kind}s are named {ref!r} ({', '.join(matches)}); give the id"
        )
    return matches[0]


def plan_id(api: Api, ref: str) -> str:
    """A plan id as given, or the id of the plan named ``ref`` (ListBackupPlans)."""
    if looks_like_id(ref):
        return ref
    rows = api.paginate("list_backup_plans", "BackupPlansList")
    return pick_id(rows, ref, "BackupPlanId", "BackupPlanName", "backup plan")


def template_id(api: Api, ref: str) -> str:
    """The id of the template whose id or name is ``ref`` (names compare case-blind)."""
    templates = api.paginate("list_backup_plan_templates", "BackupPlanTemplatesList")
    for t in templates:
        name = str(t.get("BackupPlanTemplateName", ""))
        if ref == t.get("BackupPlanTemplateId") or ref.lower() == name.lower():
            return str(t["BackupPlanTemplateId"])
    known = ", ".join(str(t.get("BackupPlanTemplateId")) for t in templates)
    raise InvalidInput(detail=f"no plan template {ref!r} (known: {known})")


def customise(doc: dict[str, Any], name: str | None, vault: str | None) -> dict[str, Any]:
    """``doc`` with its name and every rule's target vault replaced, when given.

    >>> customise({"BackupPlanName": "a", "Rules": [{"RuleName": "r"}]}, "b", "v")
    {'BackupPlanName': 'b', 'Rules': [{'RuleName': 'r', 'TargetBackupVaultName': 'v'}]}
    """
    out = dict(doc)
    if name:
        out["BackupPlanName"] = name
    if vault:
        out["Rules"] = [dict(rule, TargetBackupVaultName=vault) for rule in doc["Rules"]]
    return out


def describe_text(doc: dict[str, Any]) -> str:
    """``plan describe`` for people: the plan, its rules, its next runs."""
    plan = doc.get("BackupPlan") or {}
    lines = [
        f"{'name':10} {plan.get('BackupPlanName', '')}",
        f"{'id':10} {doc.get('BackupPlanId', '')}",
        f"{'arn':10} {doc.get('BackupPlanArn', '')}",
        f"{'version':10} {doc.get('VersionId', '')}",
        f"{'last run':10} {when(doc.get('LastExecutionDate'))}",
        "rules:",
    ]
    names = {}
    for rule in plan.get("Rules", []):
        names[rule.get("RuleId")] = rule.get("RuleName")
        keep = (rule.get("Lifecycle") or {}).get("DeleteAfterDays")
        lines.append(
            f"  {rule.get('RuleName')}: {rule.get('ScheduleExpression')} "
            f"-> vault {rule.get('TargetBackupVaultName')}"
            + (f", keep {keep} days" if keep else "")
        )
    lines.append("next runs:")
    for run in doc.get("ScheduledRunsPreview") or []:
        lines.append(f"  {when(run.get('ExecutionTime'))}  {names.get(run.get('RuleId'), '')}")
    return "\n".join(lines)


@click.group()
def plan() -> None:
    """Backup plans: when to back up, where to, and how long to keep it."""


@plan.command()
@click.option("--from-template", "template", metavar="ID|NAME", help="See `plan templates`.")
@click.option("--file", "plan_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--name", help="Plan name (default: the template's or the file's).")
@click.option("--vault", help="Target vault for every rule (default: as written).")
@json_option
@with_api
def create(
    api: Api,
    template: str | None,
    plan_file: Path | None,
    name: str | None,
    vault: str | None,
    as_json: bool,
) -> None:
    """Create a plan from a template or from a BackupPlan JSON file."""
    if (template is None) == (plan_file is None):
        raise InvalidInput(detail="give exactly one of --from-template and --file")
    if template is not None:
        found = api.call(
            "get_backup_plan_from_template", BackupPlanTemplateId=template_id(api, template)
        )
        doc = dict(found["BackupPlanDocument"])
    else:
        assert plan_file is not None
        doc = read_plan_file(plan_file)
    doc = customise(doc, name, vault)
    created = api.call("create_backup_plan", BackupPlan=doc)
    text = f"created plan {doc['BackupPlanName']} ({created.get('BackupPlanId')})"
    render.result(as_json, created, text)


@plan.command("list")
@click.option("--include-deleted", is_flag=True, help="Also list deleted plans.")
@json_option
@with_api
def list_(api: Api, include_deleted: bool, as_json: bool) -> None:
    """List backup plans."""
    params = {"IncludeDeleted": True} if include_deleted else {}
    render.table(as_json, api.paginate("list_backup_plans", "BackupPlansList", **params), COLUMNS)


@plan.command()
@click.argument("plan_ref", metavar="PLAN")
@click.option("--runs", type=click.IntRange(0, 10), default=DEFAULT_PREVIEW_RUNS, show_default=True)
@json_option
@with_api
def describe(api: Api, plan_ref: str, runs: int, as_json: bool) -> None:
    """Show PLAN (id or name) with its rules and its next scheduled runs."""
    found = plan_id(api, plan_ref)
    doc = api.call("get_backup_plan", BackupPlanId=found, MaxScheduledRunsPreview=runs)
    render.result(as_json, doc, describe_text(doc))


@plan.command()
@click.argument("plan_ref", metavar="PLAN")
@json_option
@with_api
def delete(api: Api, plan_ref: str, as_json: bool) -> None:
    """Delete PLAN (id or name; delete its selections first)."""
    found = plan_id(api, plan_ref)
    doc = api.call("delete_backup_plan", BackupPlanId=found)
    render.result(
        as_json, doc, f"deleted plan {plan_ref if plan_ref == found else f'{plan_ref} ({found})'}"
    )


@plan.command()
@json_option
@with_api
def templates(api: Api, as_json: bool) -> None:
    """List the plan templates `plan create --from-template` accepts."""
    rows = api.paginate("list_backup_plan_templates", "BackupPlanTemplatesList")
    render.table(as_json, rows, TEMPLATE_COLUMNS)
