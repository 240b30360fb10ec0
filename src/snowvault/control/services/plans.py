"""Backup plans: create, get (any version, with a preview of the next runs), update (a
new version each time), delete (refused while selections exist), list, templates.

A plan's document is stored as GetBackupPlan returns it: defaults filled in and every
rule carrying its RuleId. A rule keeps its RuleId across updates while its RuleName
stays, so the scheduler never plans one occurrence twice because of an update.

As on AWS: a plan whose document (name, rules, advanced settings; defaults filled in)
equals a live plan's current document is refused with AlreadyExistsException naming
that plan's Arn and CreatorRequestId, unless the request repeats that plan's
CreatorRequestId (then the plan is returned, nothing is created). Every rule's
TargetBackupVaultName must name a vault of the caller's account and region
(InvalidParameterValueException otherwise: CreateBackupPlan's model has no
ResourceNotFoundException; ``Default`` is made on first use). A rule's CopyActions (a
destination vault ARN in any region or account, with an optional Lifecycle) are stored
with it and run after each successful backup of that rule
(``copy_jobs.queue_rule_copies``).

    plan = plans.create(deps, caller, {"BackupPlanName": "daily", "Rules": [...]})
    plans.get(deps, caller, plan["backup_plan_id"], max_runs_preview=3)

Must not depend on the scheduler, the composition root or any interface.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from snowvault.control import catalog
from snowvault.control.model import plans as plan_rules
from snowvault.control.model import schedule as schedule_rules
from snowvault.control.services import vaults
from snowvault.control.services.base import Caller, Deps
from snowvault.control.services.errors import PlanHasSelections
from snowvault.core import arn as arns
from snowvault.core import ids
from snowvault.core.errors import AlreadyExists, InvalidInput, NotFound

Record = dict[str, Any]
CONTINUOUS_CAPABLE_TYPES: tuple[str, ...] = ("PostgreSQL",)  # services/continuous.py
MAX_RUNS_PREVIEW = 10

# A few useful starting points (ListBackupPlanTemplates / GetBackupPlanFromTemplate).
TEMPLATES: dict[str, dict[str, Any]] = {
    "daily-35day-retention": {
        "BackupPlanName": "Daily-35day-Retention",
        "Rules": [
            {
                "RuleName": "DailyBackups",
                "TargetBackupVaultName": "Default",
                "ScheduleExpression": "cron(0 5 ? * * *)",
                "Lifecycle": {"DeleteAfterDays": 35},
            }
        ],
    },
    "daily-weekly-monthly": {
        "BackupPlanName": "Daily-Weekly-Monthly",
        "Rules": [
            {
                "RuleName": "DailyBackups",
                "TargetBackupVaultName": "Default",
                "ScheduleExpression": "cron(0 5 ? * * *)",
                "Lifecycle": {"DeleteAfterDays": 35},
            },
            {
                "RuleName": "WeeklyBackups",
                "TargetBackupVaultName": "Default",
                "ScheduleExpression": "cron(0 5 ? * SAT *)",
                "Lifecycle": {"DeleteAfterDays": 90},
            },
            {
                "RuleName": "MonthlyBackups",
                "TargetBackupVaultName": "Default",
                "ScheduleExpression": "cron(0 5 1 * ? *)",
                "Lifecycle": {"MoveToColdStorageAfterDays": 30, "DeleteAfterDays": 365},
            },
        ],
    },
    "hourly-7day-retention": {
        "BackupPlanName": "Hourly-7day-Retention",
        "Rules": [
            {
                "RuleName": "HourlyBackups",
                "TargetBackupVaultName": "Default",
                "ScheduleExpression": "cron(0 * ? * * *)",
                "StartWindowMinutes": 60,
                "CompletionWindowMinutes": 120,
                "Lifecycle": {"DeleteAfterDays": 7},
            }
        ],
    },
}


def plan_arn(region: str, account_id: str, plan_id: str) -> str:
    return arns.build("backup", region, account_id, f"backup-plan:{plan_id}")


def new_version_id() -> str:
    return ids.new_hex(16)


# --- documents ------------------------------------------------------------------------


def validate(doc: Mapping[str, Any]) -> plan_rules.BackupPlan:
    """The model's validation of a BackupPlanInput, with this server's capable types."""
    return plan_rules.validate_plan(doc, continuous_capable_types=CONTINUOUS_CAPABLE_TYPES)


def _rule_doc(raw: Mapping[str, Any], rule: plan_rules.BackupRule, rule_id: str) -> Record:
    doc: Record = {
        "RuleName": rule.rule_name,
        "TargetBackupVaultName": rule.target_backup_vault_name,
        "ScheduleExpression": rule.schedule_expression,
        "ScheduleExpressionTimezone": rule.schedule_expression_timezone,
        "StartWindowMinutes": rule.windows.start_window_minutes,
        "CompletionWindowMinutes": rule.windows.completion_window_minutes,
        "RuleId": rule_id,
    }
    for key in ("Lifecycle", "RecoveryPointTags", "CopyActions"):
        if raw.get(key):
            doc[key] = raw[key]
    if rule.enable_continuous_backup:
        doc["EnableContinuousBackup"] = True
    return doc


def normalize(doc: Mapping[str, Any], rule_ids: Mapping[str, str]) -> Record:
    """The stored document: validated, defaults filled, RuleIds kept by name or new."""
    plan = validate(doc)
    rules = [
        _rule_doc(raw, rule, rule_ids.get(rule.rule_name) or ids.new_uuid())
        for raw, rule in zip(doc["Rules"], plan.rules)
    ]
    out: Record = {"BackupPlanName": plan.backup_plan_name, "Rules": rules}
    if doc.get("AdvancedBackupSettings"):
        out["AdvancedBackupSettings"] = list(doc["AdvancedBackupSettings"])
    return out


def comparable(document: Mapping[str, Any]) -> Record:
    """A stored plan document without its RuleIds: two plans with equal comparables
    have "the same plan document" (AWS refuses the second)."""
    rules = [{k: v for k, v in r.items() if k != "RuleId"} for r in document["Rules"]]
    return dict(document, Rules=sorted(rules, key=lambda r: str(r["RuleName"])))


def target_vaults(document: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(rule name, target vault name) of every rule, in rule order."""
    return [(r["RuleName"], r["TargetBackupVaultName"]) for r in document["Rules"]]


def _check_targets(conn: Any, caller: Caller, document: Mapping[str, Any]) -> None:
    for rule_name, vault_name in target_vaults(document):
        found = catalog.vaults.find(
            conn, account_id=caller.account_id, region=caller.region, name=vault_name
        )
        if found is None:
            detail = (
                f"Error in rule {rule_name}: backup vault {vault_name} does not exist "
                f"in account {caller.account_id}, region {caller.region}"
            )
            raise InvalidInput(detail, field="TargetBackupVaultName", detail=detail)


def _before_write(deps: Deps, caller: Caller, doc: Mapping[str, Any]) -> None:
    """Refusals that need no transaction, then the ``Default`` vault if a rule targets
    it (made outside the plan's transaction: making a vault writes its storage)."""
    plan = validate(doc)
    if any(r.target_backup_vault_name == vaults.DEFAULT_VAULT for r in plan.rules):
        vaults.ensure_default(deps, caller)


def model_rule(rule_doc: Mapping[str, Any]) -> plan_rules.BackupRule:
    """A stored rule document back as the model's BackupRule."""
    return plan_rules.validate_rule(rule_doc, continuous_capable_types=CONTINUOUS_CAPABLE_TYPES)


def _rule_rows(document: Mapping[str, Any]) -> list[Record]:
    return [
        {
            "rule_id": r["RuleId"],
            "rule_name": r["RuleName"],
            "document": dict(r),
            "schedule_expression": r["ScheduleExpression"],
            "schedule_expression_timezone": r["ScheduleExpressionTimezone"],
            "start_window_minutes": r["StartWindowMinutes"],
            "completion_window_minutes": r["CompletionWindowMinutes"],
            "enabled": not r.get("EnableContinuousBackup", False),
        }
        for r in document["Rules"]
    ]


def _store_rules(conn: Any, plan_id: str, document: Mapping[str, Any], now: datetime) -> None:
    for row in catalog.plans.sync_rules(conn, plan_id, _rule_rows(document), now=now):
        rule = model_rule(row["document"])
        after = row["planned_until"]
        catalog.plans.set_next_run(
            conn,
            row["rule_id"],
            schedule_rules.next_run(rule.schedule, after, rule.schedule_expression_timezone),
        )


# --- use cases ------------------------------------------------------------------------


def create(
    deps: Deps,
    caller: Caller,
    doc: Mapping[str, Any],
    *,
    tags: Mapping[str, str] | None = None,
    creator_request_id: str | None = None,
) -> Record:
    """CreateBackupPlan; a repeated CreatorRequestId returns the plan it created, the
    same plan document as a live plan's is AlreadyExists (with that plan's Arn and
    CreatorRequestId)."""
    _before_write(deps, caller, doc)
    document = normalize(doc, {})
    with catalog.db.transaction(deps.engine) as conn:
        if creator_request_id:
            seen = catalog.plans.find_by_creator_request_id(
                conn,
                account_id=caller.account_id,
                region=caller.region,
                creator_request_id=creator_request_id,
            )
            if seen is not None:
                return seen
        _check_targets(conn, caller, document)
        wanted = comparable(document)
        for live in catalog.plans.current_documents(
            conn, account_id=caller.account_id, region=caller.region
        ):
            if comparable(live["document"]) == wanted:
                raise AlreadyExists(
                    "Backup plan with the same plan document already exists",
                    kind="backup plan",
                    name=live["name"],
                    arn=live["arn"],
                    creator_request_id=live["creator_request_id"],
                )
        plan_id = ids.new_uuid()
        arn = plan_arn(caller.region, caller.account_id, plan_id)
        created = creation_date_after(
            caller.now,
            catalog.plans.latest_creation(conn, account_id=caller.account_id, region=caller.region),
        )
        row = catalog.plans.create(
            conn,
            backup_plan_id=plan_id,
            arn=arn,
            account_id=caller.account_id,
            region=caller.region,
            name=document["BackupPlanName"],
            version_id=new_version_id(),
            document=document,
            creation_date=created,
            creator_request_id=creator_request_id,
            advanced_backup_settings=document.get("AdvancedBackupSettings"),
        )
        _store_rules(conn, plan_id, document, caller.now)
        catalog.tags.tag(conn, arn, dict(tags or {}))
        return row


def creation_date_after(now: datetime, latest: datetime | None) -> datetime:
    """A new plan's CreationDate: ``now``, or a microsecond after the newest plan's when
    the clock has not moved past it (a frozen test-mode clock, two creates in one
    microsecond), so ListBackupPlans' creation order is the order of the creates."""
    if latest is None or now > latest:
        return now
    return latest + timedelta(microseconds=1)


def _live(conn: Any, caller: Caller, plan_id: str) -> Record:
    plan = catalog.plans.get(conn, plan_id, account_id=caller.account_id)
    if plan["deletion_date"] is not None:
        raise NotFound(kind="backup plan", name=f"{plan_id} (deleted)")
    return plan


def get(
    deps: Deps,
    caller: Caller,
    plan_id: str,
    *,
    version_id: str | None = None,
    max_runs_preview: int | None = None,
) -> Record:
    """GetBackupPlan: the plan row plus ``document`` and ``version_creation_date`` (of
    ``version_id`` or the current version) and ``runs_preview`` (the next runs of its
    rules, soonest first)."""
    with catalog.db.transaction(deps.engine) as conn:
        plan = catalog.plans.get(conn, plan_id, account_id=caller.account_id)
        version = catalog.plans.get_version(conn, plan_id, version_id or plan["version_id"])
    out = dict(plan, version_id=version["version_id"], document=version["document"])
    out["version_creation_date"] = version["creation_date"]
    out["runs_preview"] = runs_preview(version["document"], caller.now, max_runs_preview or 0)
    return out


def runs_preview(document: Mapping[str, Any], now: datetime, n: int) -> list[Record]:
    """The next ``n`` scheduled runs over all rules: {"ExecutionTime", "RuleId", ...}."""
    if not 0 <= n <= MAX_RUNS_PREVIEW:
        raise InvalidInput(
            "MaxScheduledRunsPreview: must be between 0 and 10",
            field="MaxScheduledRunsPreview",
            detail="must be between 0 and 10",
        )
    runs: list[Record] = []
    for rule_doc in document["Rules"] if n else ():
        rule = model_rule(rule_doc)
        for when in schedule_rules.preview(
            rule.schedule, now, rule.schedule_expression_timezone, n
        ):
            runs.append(
                {
                    "ExecutionTime": when,
                    "RuleId": rule_doc["RuleId"],
                    "RuleExecutionType": "SNAPSHOTS",
                }
            )
    return sorted(runs, key=lambda r: (r["ExecutionTime"], r["RuleId"]))[:n]


def update(deps: Deps, caller: Caller, plan_id: str, doc: Mapping[str, Any]) -> Record:
    """UpdateBackupPlan: a new version (new VersionId); rules keep their ids by name."""
    with catalog.db.transaction(deps.engine) as conn:
        _live(conn, caller, plan_id)
    _before_write(deps, caller, doc)
    with catalog.db.transaction(deps.engine) as conn:
        _live(conn, caller, plan_id)
        document = normalize(doc, catalog.plans.rule_ids_by_name(conn, plan_id))
        _check_targets(conn, caller, document)
        catalog.plans.add_version(
            conn,
            plan_id,
            version_id=new_version_id(),
            name=document["BackupPlanName"],
            document=document,
            creation_date=caller.now,
            advanced_backup_settings=document.get("AdvancedBackupSettings"),
        )
        _store_rules(conn, plan_id, document, caller.now)
        return catalog.plans.get(conn, plan_id)


def delete(deps: Deps, caller: Caller, plan_id: str) -> Record:
    """DeleteBackupPlan: refused while it has selections; its versions stay readable."""
    with catalog.db.transaction(deps.engine) as conn:
        _live(conn, caller, plan_id)
        count = catalog.selections.count_for_plan(conn, plan_id)
        if count:
            raise PlanHasSelections(plan_id=plan_id, count=count)
        return catalog.plans.mark_deleted(conn, plan_id, deletion_date=caller.now)


def list_plans(
    deps: Deps,
    caller: Caller,
    *,
    include_deleted: bool = False,
    limit: int | None = None,
    token: str | None = None,
) -> catalog.pagination.Page:
    with catalog.db.transaction(deps.engine) as conn:
        return catalog.plans.list_plans(
            conn,
            account_id=caller.account_id,
            region=caller.region,
            include_deleted=include_deleted,
            limit=limit,
            token=token,
        )


def list_versions(
    deps: Deps, caller: Caller, plan_id: str, *, limit: int | None = None, token: str | None = None
) -> catalog.pagination.Page:
    with catalog.db.transaction(deps.engine) as conn:
        catalog.plans.get(conn, plan_id, account_id=caller.account_id)
        return catalog.plans.list_versions(conn, plan_id, limit=limit, token=token)


# --- templates and JSON -----------------------------------------------------------------


def export_template(deps: Deps, caller: Caller, plan_id: str) -> str:
    """ExportBackupPlanTemplate: the current version as JSON, without RuleIds."""
    document = get(deps, caller, plan_id)["document"]
    rules = [{k: v for k, v in r.items() if k != "RuleId"} for r in document["Rules"]]
    return json.dumps(dict(document, Rules=rules), sort_keys=True)


def plan_from_json(text: str) -> Record:
    """GetBackupPlanFromJSON: parse and validate a plan document (no RuleIds assigned)."""
    try:
        doc = json.loads(text)
    except (TypeError, ValueError, RecursionError) as exc:  # RecursionError: too deep
        raise InvalidInput(
            f"BackupPlanTemplateJson: not valid JSON: {exc}",
            field="BackupPlanTemplateJson",
            detail=f"not valid JSON: {exc}",
        ) from exc
    if not isinstance(doc, dict):
        raise InvalidInput(
            "BackupPlanTemplateJson: must be a JSON object",
            field="BackupPlanTemplateJson",
            detail="must be a JSON object",
        )
    validate(doc)
    return doc


def list_templates() -> list[Record]:
    return [
        {"BackupPlanTemplateId": tid, "BackupPlanTemplateName": t["BackupPlanName"]}
        for tid, t in TEMPLATES.items()
    ]


def template(template_id: str) -> Record:
    """GetBackupPlanFromTemplate: a copy of a shipped template."""
    found = TEMPLATES.get(template_id)
    if found is None:
        raise NotFound(kind="backup plan template", name=template_id)
    return json.loads(json.dumps(found))  # type: ignore[no-any-return]
