"""`snowvault quickstart` against a real server (conftest's ``snowvault_server``) with no
other set-up than what `make run` does (init wrote the client profile): it protects a
sample directory by tag with a daily, 35-day plan, backs it up once, and says where the
point is; the plan's first scheduled run then makes a point that carries the plan.

Without a server or a profile it says, in one line, to run `make run` first.
"""

from __future__ import annotations

import json
import subprocess
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from helpers.sv_server import SNOWVAULT, ServerProcess, move_clock


def sv(server: ServerProcess, *args: str, env: dict[str, str] | None = None) -> Any:
    done = subprocess.run(
        [SNOWVAULT, *args, "--json"],
        env=server.env if env is None else env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, f"snowvault {' '.join(args)}: {done.stderr}"
    assert "Traceback" not in done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_quickstart_protects_the_sample_and_the_plan_takes_over(
    snowvault_server: ServerProcess, backup: Any
) -> None:
    out = sv(snowvault_server, "quickstart")
    sample = snowvault_server.home / "snowvault-quickstart"
    assert out["SampleDirectory"] == str(sample) and (sample / "README.txt").is_file()
    assert out["State"] == "COMPLETED"
    point = backup.describe_recovery_point(
        BackupVaultName="quickstart", RecoveryPointArn=out["RecoveryPointArn"]
    )
    assert point["ResourceArn"] == out["ResourceArn"]
    assert point["Lifecycle"] == {"DeleteAfterDays": 35}
    assert point["CalculatedLifecycle"]["DeleteAt"] - point["CreationDate"] == timedelta(days=35)
    plan = backup.get_backup_plan(BackupPlanId=out["BackupPlanId"])["BackupPlan"]
    assert plan["Rules"][0]["ScheduleExpression"] == "cron(0 0 * * ? *)"
    next_run = datetime.fromisoformat(out["NextScheduledRun"])
    assert (next_run.hour, next_run.minute) == (0, 0)

    preview = sv(
        snowvault_server,
        "selection",
        "preview",
        "--plan",
        out["BackupPlanId"],
        "--selection",
        out["SelectionId"],
    )
    chosen = [r["ResourceArn"] for r in preview if r["Selected"]]
    assert chosen == [out["ResourceArn"]]

    again = sv(snowvault_server, "quickstart")  # reuses the set-up, one more backup
    assert (again["BackupPlanId"], again["ResourceArn"]) == (
        out["BackupPlanId"],
        out["ResourceArn"],
    )
    assert again["RecoveryPointArn"] != out["RecoveryPointArn"]
    assert len(backup.list_backup_plans()["BackupPlansList"]) == 1

    # the first scheduled run: its point carries the plan, and ByBackupPlanId finds it
    move_clock(snowvault_server, now=(next_run + timedelta(minutes=30)).isoformat())
    by_plan = backup.list_recovery_points_by_backup_vault(
        BackupVaultName="quickstart", ByBackupPlanId=out["BackupPlanId"]
    )["RecoveryPoints"]
    assert [p["ResourceArn"] for p in by_plan] == [out["ResourceArn"]]
    assert by_plan[0]["CreatedBy"]["BackupPlanId"] == out["BackupPlanId"]
    assert by_plan[0]["CreatedBy"]["BackupPlanArn"] == out["BackupPlanArn"]
    assert by_plan[0]["RecoveryPointArn"] not in (
        out["RecoveryPointArn"],
        again["RecoveryPointArn"],
    )


def test_quickstart_without_a_server_says_to_run_make_run(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path)}
    done = subprocess.run(
        [SNOWVAULT, "quickstart"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 9, done.stderr
    assert "`make run`" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "snowvault-quickstart").exists()
