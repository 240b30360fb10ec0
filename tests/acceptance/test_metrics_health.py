"""Health probes and /metrics through a real server: unauthenticated, parsed with
prometheus_client's own text parser, numbers checked against the API (issue 16)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import urllib3
import yaml
from prometheus_client.parser import text_string_to_metric_families

from helpers.stories import backed_up, make_tree, register, sv
from helpers.sv_server import ExtCall, ServerProcess, free_port, new_server


@pytest.fixture
def probed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server of its own: its 503 must not trip the shared fixture's no-5xx check."""
    server = new_server(tmp_path_factory)
    server.init()
    config_path = server.data_dir / "config.json"
    config = json.loads(config_path.read_text())
    config["metrics_address"] = f"127.0.0.1:{free_port()}"  # /metrics on its own listener
    config_path.write_text(json.dumps(config))
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _get(server: ServerProcess, path: str) -> urllib3.BaseHTTPResponse:
    return urllib3.request("GET", server.endpoint + path, retries=False, timeout=30)


def _samples(server: ServerProcess) -> dict[str, list[Any]]:
    resp = _get(server, "/metrics")
    assert resp.status == 200
    assert resp.headers["content-type"].startswith("text/plain")
    out: dict[str, list[Any]] = {}
    for family in text_string_to_metric_families(resp.data.decode()):
        for sample in family.samples:
            out.setdefault(sample.name, []).append(sample)
    return out


def test_metrics_agree_with_the_api(
    snowvault_server: ServerProcess, backup: Any, ext: ExtCall, tmp_path: Path
) -> None:
    backup.create_backup_vault(BackupVaultName="metrics-v")
    source = tmp_path / "src"
    make_tree(source, seed=16, files=3, size=2000)
    good = register(ext, "metrics-good", source)
    gone = tmp_path / "gone"
    gone.mkdir()
    bad = register(ext, "metrics-bad", gone)
    gone.rmdir()
    assert backed_up(backup, "metrics-v", good)["State"] == "COMPLETED"
    assert backed_up(backup, "metrics-v", bad)["State"] == "FAILED"

    ext("EnrollAgent", {"Host": "metrics-host"})  # enrolled, never seen yet

    jobs = backup.list_backup_jobs(ByBackupVaultName="metrics-v")["BackupJobs"]
    points = backup.list_recovery_points_by_backup_vault(BackupVaultName="metrics-v")
    samples = _samples(snowvault_server)
    by_state: dict[str, int] = {}
    for job in jobs:
        by_state[job["State"]] = by_state.get(job["State"], 0) + 1
    seen = {
        s.labels["state"]: s.value
        for s in samples["snowvault_jobs"]
        if s.labels["vault"] == "metrics-v" and s.labels["kind"] == "backup"
    }
    assert seen == by_state == {"COMPLETED": 1, "FAILED": 1}

    size = sum(p["BackupSizeInBytes"] for p in points["RecoveryPoints"])
    vault_size = [
        s for s in samples["snowvault_vault_size_bytes"] if s.labels["vault"] == "metrics-v"
    ]
    assert [s.value for s in vault_size] == [size]
    classes = {
        s.labels["storage_class"]: s.value
        for s in samples["snowvault_vault_class_bytes"]
        if s.labels["vault"] == "metrics-v"
    }
    assert classes == {"WARM": size}  # nothing cold yet
    agents = {s.labels["host"]: s.value for s in samples["snowvault_agent_seen_age_seconds"]}
    assert 0 <= agents["metrics-host"] < 3600

    ages = {
        s.labels["resource_arn"]: s for s in samples["snowvault_resource_last_backup_age_seconds"]
    }
    backed = {s.labels["resource_arn"]: s.value for s in samples["snowvault_resource_backed_up"]}
    assert backed[good] == 1 and backed[bad] == 0
    assert 0 <= ages[good].value < 3600
    assert samples["snowvault_worker_up"][0].value == 1
    assert samples["snowvault_catalog_up"][0].value == 1
    outbox = {s.labels["state"]: s.value for s in samples["snowvault_notifications"]}
    assert outbox == {"PENDING": 0, "DELIVERED": 0, "FAILED": 0}
    _contrib_names_are_served(snowvault_server, samples)
    listed = [
        s
        for s in samples["snowvault_api_requests_total"]
        if s.labels["operation"] == "ListBackupJobs" and s.labels["status"] == "200"
    ]
    assert listed and listed[0].value >= 1


def test_health_ready_turns_503_when_storage_is_unwritable(probed_server: ServerProcess) -> None:
    snowvault_server = probed_server
    assert _get(snowvault_server, "/health/live").status == 200
    ready = _get(snowvault_server, "/health/ready")
    assert ready.status == 200, ready.data
    config = json.loads((snowvault_server.data_dir / "config.json").read_text())
    storage = Path(config["regions"][config["default_region"]])
    aside = storage.with_name(storage.name + ".aside")
    storage.rename(aside)
    storage.write_bytes(b"")  # a file where the directory was: no write succeeds, even as root
    try:
        down = _get(snowvault_server, "/health/ready")
        doc = json.loads(down.data)
        assert down.status == 503
        assert doc["checks"][f"storage:{config['default_region']}"]["ok"] is False
        assert doc["checks"]["catalog"]["ok"] is True
        assert str(storage) not in down.data.decode()  # no paths in an unauthenticated answer
    finally:
        storage.unlink()
        aside.rename(storage)
    assert _get(snowvault_server, "/health/ready").status == 200


CONTRIB = Path(__file__).resolve().parents[2] / "contrib"


def _families(server: ServerProcess) -> set[str]:
    """Family names of a scrape (a family may have no samples yet)."""
    text = _get(server, "/metrics").data.decode()
    return {family.name for family in text_string_to_metric_families(text)}


def _contrib_names_are_served(server: ServerProcess, samples: dict[str, list[Any]]) -> None:
    """contrib/ parses (YAML, JSON) and every snowvault_* name in its expressions is a
    sample name of a real scrape (``_bucket``/``_sum``/``_count`` included)."""
    alerts = yaml.safe_load((CONTRIB / "prometheus" / "alerts.yml").read_text())
    exprs = [str(rule["expr"]) for group in alerts["groups"] for rule in group["rules"]]
    dashboard = json.loads((CONTRIB / "grafana" / "dashboard.json").read_text())
    exprs += [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    yaml.safe_load((CONTRIB / "prometheus" / "alerts_test.yml").read_text())
    served = set(samples) | {name + "_bucket" for name in samples} | _families(server)
    named = {n for e in exprs for n in re.findall(r"snowvault_[a-z_]+", e)}
    assert named and named <= served, named - served


def test_metrics_can_live_on_their_own_address(probed_server: ServerProcess) -> None:
    config = json.loads((probed_server.data_dir / "config.json").read_text())
    separate = urllib3.request("GET", f"http://{config['metrics_address']}/metrics", retries=False)
    assert separate.status == 200
    assert b"snowvault_worker_up 1.0" in separate.data
    on_api = _get(probed_server, "/metrics")  # no longer an unsigned route of the API
    assert on_api.status == 403 and b"snowvault_" not in on_api.data


def test_signed_calls_reach_the_trail(snowvault_server: ServerProcess, backup: Any) -> None:
    backup.create_backup_vault(BackupVaultName="audited")
    data_dir = str(snowvault_server.data_dir)
    sv(snowvault_server, "trail", "flush", "--data-dir", data_dir)
    found = json.loads(
        sv(
            snowvault_server,
            *("trail", "lookup", "--data-dir", data_dir, "--event-name", "CreateBackupVault"),
            "--json",
        ).stdout
    )
    assert found and found[0]["eventSource"] == "backup.amazonaws.com"
    assert found[0]["userIdentity"]["accountId"] == snowvault_server.creds["account_id"]
    checked = json.loads(
        sv(snowvault_server, "trail", "validate", "--data-dir", data_dir, "--json").stdout
    )
    assert checked["problems"] == [] and checked["digests"] >= 1
    trail_client = boto3.client(
        "cloudtrail",
        endpoint_url=snowvault_server.endpoint,
        region_name=snowvault_server.creds["region"],
        aws_access_key_id=snowvault_server.creds["access_key_id"],
        aws_secret_access_key=snowvault_server.creds["secret_access_key"],
    )
    events = trail_client.lookup_events(
        LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "CreateBackupVault"}]
    )["Events"]
    assert events and json.loads(events[0]["CloudTrailEvent"])["eventName"] == "CreateBackupVault"
