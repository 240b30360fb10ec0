"""``snowvault trail``: the audit trail under DATA_DIR/trail (CloudTrail's format).

    snowvault trail flush --data-dir DIR [--json]       # file pending records, sign a digest
    snowvault trail validate --data-dir DIR [--json]    # exit 1 when anything does not verify
    snowvault trail validate --data-dir DIR --location s3://BUCKET/PREFIX?...  # the bucket copy
    snowvault trail validate --data-dir DIR --location config                  # trail_location
    snowvault trail lookup --data-dir DIR [--event-name N] [--username U]
                           [--start ISO] [--end ISO] [--max-results N] [--json]

Local commands on DIR (safe while the server runs: the trail's own file lock orders
writers). See docs/operations/observability.md. ``snowvault.app``-side modules are
imported inside each command. Must not depend on the API or web interfaces.
"""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from snowvault.interfaces.cli import render

TRAIL_DIR = "trail"
CERT_FILE = "sns-signing.crt"


def _data_dir(fn: Any) -> Any:
    return click.option(
        "--data-dir",
        required=True,
        type=click.Path(file_okay=False, exists=True),
        help="The server's data directory.",
    )(fn)


def _when(value: str | None) -> datetime | None:
    if value is None:
        return None
    when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if when.tzinfo is None:
        raise click.BadParameter(f"{value!r} needs a time zone (e.g. Z)")
    return when


@click.group("trail")
def trail() -> None:
    """The audit trail: CloudTrail-format records of every signed API call."""


@trail.command("flush")
@_data_dir
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def flush(data_dir: str, as_json: bool) -> None:
    """File the pending records now and sign a digest of the unsigned log files."""
    from snowvault.control.scheduler import delivery
    from snowvault.control.services import trail as trail_service
    from snowvault.core.clock import SystemClock

    root = Path(data_dir).absolute()
    now = SystemClock().now()
    writer = trail_service.Trail(
        root / TRAIL_DIR, delivery.signing_key(root, now), _configured_location(root)
    )
    written = writer.flush(now, force_digest=True)
    doc = {"written": [str(p.relative_to(root / TRAIL_DIR)) for p in written]}
    render.result(as_json, doc, "\n".join(doc["written"]) or "nothing pending")


def _configured_location(root: Path) -> Any:
    """config.json's trail location (a services.trail.TrailLocation) or None."""
    from snowvault.app import ServerConfig
    from snowvault.control.services import trail as trail_service

    config = ServerConfig.load(root)
    return trail_service.location_from(
        config.trail_location, config.trail_retention_days, config.trail_retention_mode
    )


@trail.command("validate")
@_data_dir
@click.option(
    "--location",
    help="Validate the copy in this S3 URL (s3://bucket/prefix?endpoint_url=...) instead "
    "of DATA_DIR/trail; 'config': config.json's trail_location.",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def validate(data_dir: str, location: str | None, as_json: bool) -> None:
    """Check every digest's signature and chain and every log file's hash."""
    import json

    from snowvault.control.services import trail as trail_service

    root = Path(data_dir).absolute()
    cert = (root / CERT_FILE).read_bytes()
    if location is None:
        done = trail_service.validate(root / TRAIL_DIR, cert)
    else:
        if location == "config":
            where = _configured_location(root)
            if where is None:
                raise click.UsageError(f"{root}/config.json names no trail_location")
            location = str(where.url)
        state = root / TRAIL_DIR / trail_service.STATE
        newest = json.loads(state.read_text()).get("chains", {}) if state.exists() else {}
        reader = trail_service.BucketReader(location)
        try:
            done = trail_service.validate(reader, cert, newest)
        finally:
            reader.close()
    doc = {
        "digests": done.digests,
        "log_files": done.log_files,
        "problems": done.problems,
        "undigested": done.undigested,
    }
    text = "\n".join(
        [
            f"{done.digests} digest(s), {done.log_files} log file(s) checked",
            *(f"PROBLEM: {p}" for p in done.problems),
            *(f"not yet in a digest: {u}" for u in done.undigested),
        ]
    )
    render.result(as_json, doc, text)
    if done.problems:
        sys.exit(1)


@trail.command("lookup")
@_data_dir
@click.option("--event-name", help="Only this API operation (e.g. DeleteRecoveryPoint).")
@click.option("--username", help="Only this principal (ARN or user name).")
@click.option("--account", help="Only this account id.")
@click.option("--start", help="Not before this ISO time (with a zone).")
@click.option("--end", help="Not after this ISO time (with a zone).")
@click.option("--max-results", type=click.IntRange(1, 10000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def lookup(
    data_dir: str,
    event_name: str | None,
    username: str | None,
    account: str | None,
    start: str | None,
    end: str | None,
    max_results: int,
    as_json: bool,
) -> None:
    """Filed records, newest first (pending ones appear after a flush)."""
    from snowvault.control.services import trail as trail_service

    found = trail_service.lookup(
        Path(data_dir).absolute() / TRAIL_DIR,
        account_id=account,
        event_name=event_name,
        username=username,
        start=_when(start),
        end=_when(end),
        limit=max_results,
    )
    render.table(
        as_json,
        found,
        [
            ("Time", lambda r: r["eventTime"]),
            ("Event", lambda r: r["eventName"]),
            ("Principal", lambda r: r["userIdentity"]["arn"]),
            ("Source IP", lambda r: r["sourceIPAddress"]),
            ("Error", lambda r: r.get("errorCode", "")),
        ],
    )
