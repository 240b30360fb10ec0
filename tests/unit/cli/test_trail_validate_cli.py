"""``snowvault trail validate`` names each tampering (issue 16): a validated trail, then
one log file edited, another removed and one digest removed; each is detected and named,
and the command exits 1."""

from __future__ import annotations

import gzip
import json
from datetime import timedelta
from pathlib import Path

from click.testing import CliRunner, Result

from helpers import trail_records
from snowvault.control.scheduler import delivery
from snowvault.control.services import trail
from snowvault.interfaces.cli import main
from snowvault.testing import FakeClock


def _validate(data_dir: Path) -> Result:
    return CliRunner().invoke(
        main.cli, ["trail", "validate", "--data-dir", str(data_dir), "--json"]
    )


def test_an_edited_log_a_removed_log_and_a_removed_digest_are_each_named(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    writer = trail.Trail(tmp_path / "trail", delivery.signing_key(tmp_path, clock.now()))
    for hour in range(4):  # four hourly digests, each listing one log file
        writer.record(trail_records.api_call(clock, f"Op{hour}"))
        writer.flush(clock.now(), force_digest=True)
        clock.advance(timedelta(hours=1))
    clean = _validate(tmp_path)
    assert clean.exit_code == 0, clean.output
    assert json.loads(clean.stdout)["problems"] == []

    root = tmp_path / "trail"
    logs = sorted(root.glob("AWSLogs/*/CloudTrail/*/*/*/*/*.json.gz"))
    digests = sorted(root.glob("AWSLogs/*/CloudTrail-Digest/*/*/*/*/*.json.gz"))
    assert len(logs) == len(digests) == 4
    edited, removed_log = logs[0], logs[1]
    doc = json.loads(gzip.decompress(edited.read_bytes()))
    doc["Records"][0]["eventName"] = "NothingHappened"
    edited.write_bytes(gzip.compress(json.dumps(doc).encode()))
    removed_log.unlink()
    removed_digest = digests[2]
    removed_digest.unlink()

    result = _validate(tmp_path)
    assert result.exit_code == 1
    problems = json.loads(result.stdout)["problems"]

    def named(path: Path, words: str) -> bool:
        rel = str(path.relative_to(root))
        return any(p.startswith(rel) and words in p for p in problems)

    assert named(edited, "changed after")
    assert named(removed_log, "but missing")
    assert named(removed_digest, "digest missing")
    assert named(digests[3], "does not follow the previous digest")


def test_the_newest_digest_removed_is_named_too(tmp_path: Path) -> None:
    clock = FakeClock()
    writer = trail.Trail(tmp_path / "trail", delivery.signing_key(tmp_path, clock.now()))
    for hour in range(2):
        writer.record(trail_records.api_call(clock, f"Op{hour}"))
        writer.flush(clock.now(), force_digest=True)
        clock.advance(timedelta(hours=1))
    newest = sorted((tmp_path / "trail").glob("AWSLogs/*/CloudTrail-Digest/*/*/*/*/*.json.gz"))
    newest[-1].unlink()
    result = _validate(tmp_path)
    assert result.exit_code == 1
    rel = str(newest[-1].relative_to(tmp_path / "trail"))
    assert any(
        p.startswith(rel) and "digest missing" in p for p in json.loads(result.stdout)["problems"]
    )
