"""``snowvault quickstart``: the scenario AWS Backup users know, in one command, against
the running server (the one ``make run`` started, found through the client profile).

It makes a small sample directory (``~/snowvault-quickstart`` unless ``--dir``), registers
it tagged ``Backup=true``, creates the vault ``quickstart``, the plan
``quickstart-daily-35d`` (``cron(0 0 * * ? *)``, DeleteAfterDays 35) and a selection by
the tag ``Backup=true``, runs one backup now with the plan's lifecycle, waits for it, and
prints what was protected and where: resource, vault, recovery point, next scheduled run.
Running it again reuses what the first run made and takes one more backup; with another
``--dir`` that directory is registered as its own resource, and a note says what the
earlier run's resource still protects (the summary only names what it protected).

No server, no profile: it says to run ``make run`` first (it never starts one itself: a
server started behind the user's back would hold their data where they did not choose).
The sample must be under the server's allowed host paths (``make run``'s default: the
home directory except its hidden entries); when it is not, it says so and how to change it.

A pure API client: must not import the server side (interfaces.api, app, services).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from snowvault.core import errors
from snowvault.interfaces.cli import backup_cmd, client, job_cmd, render
from snowvault.interfaces.cli.client import Api, json_option

VAULT = "quickstart"
RESOURCE = "quickstart-sample"
PLAN = "quickstart-daily-35d"
SELECTION = "tagged-backup-true"
TAG = {"Backup": "true"}
SCHEDULE = "cron(0 0 * * ? *)"
KEEP_DAYS = 35
NO_SERVER = "start one with `make run` in another shell, then run `snowvault quickstart` again"

PLAN_DOCUMENT: dict[str, Any] = {
    "BackupPlanName": PLAN,
    "Rules": [
        {
            "RuleName": "daily",
            "TargetBackupVaultName": VAULT,
            "ScheduleExpression": SCHEDULE,
            "Lifecycle": {"DeleteAfterDays": KEEP_DAYS},
        }
    ],
}

SELECTION_DOCUMENT: dict[str, Any] = {
    "SelectionName": SELECTION,
    "ListOfTags": [
        {"ConditionType": "STRINGEQUALS", "ConditionKey": k, "ConditionValue": v}
        for k, v in TAG.items()
    ],
}


class SampleNotAllowed(errors.PermissionDenied):
    """the server may not read {path} ({detail}); use --dir under its allowed_paths"""


def default_dir() -> Path:
    return Path.home() / "snowvault-quickstart"


def make_sample(root: Path) -> list[str]:
    """A few small files to protect (kept if they exist); returns their relative paths."""
    rng = random.Random(20260101)
    files = {
        "README.txt": b"Files protected by `snowvault quickstart`.\n",
        "notes/todo.md": b"- back up the photos\n- restore one to try it\n",
        "data/measurements.csv": "\n".join(
            f"{i},{rng.randint(0, 999)}" for i in range(200)
        ).encode(),
        "data/blob.bin": rng.randbytes(64 * 1024),
    }
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            path.write_bytes(content)
    return sorted(files)


def connect(
    factory: Callable[[client.Profile], Api],
    endpoint: str | None,
    region: str | None,
    env: Any,
) -> Api:
    """The API of the running server, or one plain error saying to run ``make run``."""
    try:
        profile = client.load_profile(endpoint=endpoint, region=region, env=env)
    except client.ClientConfigError as exc:
        raise client.ClientConfigError(detail=f"no server profile found; {NO_SERVER}") from exc
    api = factory(profile)
    try:
        api.call("list_backup_vaults", MaxResults=1)
    except client.ServerUnreachable as exc:
        raise client.ServerUnreachable(endpoint=profile.endpoint, detail=NO_SERVER) from exc
    return api


def ensure_vault(api: Api) -> str:
    """The ARN of vault ``quickstart``, created if missing."""
    try:
        return str(api.call("create_backup_vault", BackupVaultName=VAULT)["BackupVaultArn"])
    except client.ApiAlreadyExists:
        return str(api.call("describe_backup_vault", BackupVaultName=VAULT)["BackupVaultArn"])


def ensure_resource(api: Api, root: Path) -> tuple[str, str | None]:
    """The ARN of the resource protecting ``root`` (registered and tagged if missing), and
    a note for the user when an earlier run protected another directory: that resource
    stays (tagged, so the plan keeps backing it up) and ``root`` gets its own, named
    after it — the summary never names a directory that is not protected."""
    known = api.ext_paginate("ListResources", "Resources", {})
    for r in known:
        if r.get("Source") == str(root) and r.get("ResourceType", "Directory") == "Directory":
            arn = str(r["ResourceArn"])
            api.ext("TagResource", {"ResourceArn": arn, "Tags": TAG})
            return arn, None
    name, note = RESOURCE, None
    earlier = [r for r in known if r.get("Name") == RESOURCE]
    if earlier:
        name = f"{RESOURCE}-{root.name or 'root'}"
        note = (
            f"resource {RESOURCE} from an earlier run protects {earlier[0].get('Source')} "
            f"(still tagged Backup=true); {root} is registered as {name}"
        )
        if any(r.get("Name") == name for r in known):
            raise errors.AlreadyExists(kind="resource", name=f"{name} (for another directory)")
    body = {"ResourceType": "Directory", "Name": name, "Source": str(root), "Tags": TAG}
    try:
        return str(api.ext("RegisterResource", body)["ResourceArn"]), note
    except client.ApiAccessDenied as exc:
        raise SampleNotAllowed(path=str(root), detail=exc.fields.get("detail", str(exc))) from exc


def ensure_plan(api: Api) -> str:
    """The id of plan ``quickstart-daily-35d``, created if missing."""
    for plan in api.paginate("list_backup_plans", "BackupPlansList"):
        if plan.get("BackupPlanName") == PLAN:
            return str(plan["BackupPlanId"])
    return str(api.call("create_backup_plan", BackupPlan=PLAN_DOCUMENT)["BackupPlanId"])


def ensure_selection(api: Api, plan_id: str, role: str) -> str:
    """The id of the plan's selection by tag, created if missing."""
    rows = api.paginate("list_backup_selections", "BackupSelectionsList", BackupPlanId=plan_id)
    for row in rows:
        if row.get("SelectionName") == SELECTION:
            return str(row["SelectionId"])
    doc = dict(SELECTION_DOCUMENT, IamRoleArn=role)
    out = api.call("create_backup_selection", BackupPlanId=plan_id, BackupSelection=doc)
    return str(out["SelectionId"])


def summary_text(doc: dict[str, Any]) -> str:
    """What quickstart prints for people."""
    return "\n".join(
        [
            f"protected  {doc['SampleDirectory']} ({len(doc['SampleFiles'])} files)",
            f"resource   {doc['ResourceArn']} (tagged Backup=true)",
            f"vault      {doc['BackupVaultName']} ({doc['BackupVaultArn']})",
            f"plan       {PLAN} ({doc['BackupPlanId']}): {SCHEDULE}, keep {KEEP_DAYS} days",
            f"selection  {SELECTION} ({doc['SelectionId']}): resources tagged Backup=true",
            f"backup     job {doc['BackupJobId']} {doc['State']}",
            f"recovery   {doc['RecoveryPointArn']}",
            f"next run   {doc['NextScheduledRun'] or '(none)'}",
            "",
            "see them:  snowvault recovery-point list --vault quickstart | "
            f"snowvault plan describe {doc['BackupPlanId']}",
        ]
    )


def run_quickstart(api: Api, root: Path, *, as_json: bool) -> dict[str, Any]:
    """Set everything up, take one backup now, and describe the outcome."""
    files = make_sample(root)
    vault_arn = ensure_vault(api)
    resource_arn, note = ensure_resource(api, root)
    if note:
        render.warn(as_json, note)
    plan_id = ensure_plan(api)
    role = backup_cmd.default_role(resource_arn)
    selection_id = ensure_selection(api, plan_id, role)
    params = backup_cmd.start_params(resource_arn, VAULT, role, KEEP_DAYS)
    job_id = str(api.call("start_backup_job", **params)["BackupJobId"])
    job = job_cmd.wait(api, job_cmd.BACKUP, job_id, as_json=as_json)
    job_cmd.check_outcome(job_cmd.BACKUP, job)
    plan = api.call("get_backup_plan", BackupPlanId=plan_id, MaxScheduledRunsPreview=1)
    runs = plan.get("ScheduledRunsPreview") or []
    return {
        "SampleDirectory": str(root),
        "SampleFiles": files,
        "ResourceArn": resource_arn,
        "BackupVaultName": VAULT,
        "BackupVaultArn": vault_arn,
        "BackupPlanId": plan_id,
        "BackupPlanArn": plan.get("BackupPlanArn"),
        "SelectionId": selection_id,
        "BackupJobId": job_id,
        "State": job_cmd.state_of(job_cmd.BACKUP, job),
        "RecoveryPointArn": job.get("RecoveryPointArn"),
        "NextScheduledRun": render_time(runs[0].get("ExecutionTime")) if runs else None,
    }


def render_time(value: Any) -> str:
    return str(value.isoformat()) if hasattr(value, "isoformat") else str(value)


@click.command()
@click.option(
    "--dir",
    "sample_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where to make the sample files (default: ~/snowvault-quickstart).",
)
@click.option("--endpoint-url", metavar="URL", help="Server URL (default: the profile).")
@click.option("--region", metavar="REGION", help="Region (default: the profile).")
@json_option
@click.pass_context
def quickstart(
    ctx: click.Context,
    sample_dir: Path | None,
    endpoint_url: str | None,
    region: str | None,
    as_json: bool,
) -> None:
    """Back up a sample directory daily, kept 35 days, chosen by tag — and once now.

    Needs the running server: start it with `make run` first.
    """
    root = ctx.find_root().obj
    obj: dict[str, Any] = root if isinstance(root, dict) else {}
    api = connect(obj.get("api_factory", Api), endpoint_url, region, obj.get("env"))
    target = (sample_dir or default_dir()).absolute()
    doc = run_quickstart(api, target, as_json=as_json)
    render.result(as_json, doc, summary_text(doc))
