"""A continuous rule does not stream WAL from a PostgreSQL cluster on an agent's host: the
server's own pg_receivewal would connect to that address from the server's side (which is
not the agent's host), so such a resource gets none; the one on the server's host does."""

from __future__ import annotations

from snowvault.control.services import continuous, plans, resources, selections, vaults
from snowvault.control.services.base import Caller, Deps

ROLE = "arn:aws:iam::111122223333:role/backup"


def test_a_continuous_rule_skips_clusters_on_agent_hosts(deps: Deps, caller: Caller) -> None:
    vaults.create(deps, caller, "main")
    here = resources.register(
        deps, caller, resource_type="PostgreSQL", name="here",
        source="postgresql://backup@127.0.0.1:5432/postgres", tags={"Backup": "true"},
    )  # fmt: skip
    resources.register(
        deps, caller, resource_type="PostgreSQL", name="there",
        source="postgresql://backup@127.0.0.1:5432/postgres", tags={"Backup": "true"},
        worker_label="agent:db-1",
    )  # fmt: skip
    rule = {
        "RuleName": "pitr",
        "TargetBackupVaultName": "main",
        "ScheduleExpression": "cron(0 5 ? * * *)",
        "EnableContinuousBackup": True,
        "Lifecycle": {"DeleteAfterDays": 7},
    }
    plan = plans.create(deps, caller, {"BackupPlanName": "p", "Rules": [rule]})
    selections.create(
        deps,
        caller,
        plan["backup_plan_id"],
        {
            "SelectionName": "tagged",
            "IamRoleArn": ROLE,
            "ListOfTags": [
                {
                    "ConditionType": "STRINGEQUALS",
                    "ConditionKey": "Backup",
                    "ConditionValue": "true",
                }
            ],
        },
    )
    chosen = [a.resource["arn"] for a in continuous.assignments(deps)]
    assert chosen == [here["arn"]]
