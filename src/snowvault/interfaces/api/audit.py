"""The API's side of the trail: every signed request becomes a CloudTrail record.

    auditor = audit.auditor(app)      # asgi.build_app(..., auditor=auditor)

Records go to ``DATA_DIR/trail/pending.jsonl`` as requests end; a daemon thread files
them every :data:`FLUSH_SECONDS` (gzipped log files, hourly signed digests: see
``control/services/trail.py``); ``snowvault trail flush`` does the same on demand.

Must not depend on the CLI or web interfaces.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any

from snowvault.app import App
from snowvault.control.services import trail
from snowvault.core.clock import SystemClock
from snowvault.interfaces.api.asgi import Auditor

log = logging.getLogger("snowvault.trail")

FLUSH_SECONDS = 60.0
TRAIL_DIR = "trail"


def auditor(app: App) -> Auditor:
    config = app.config
    where = trail.location_from(
        config.trail_location, config.trail_retention_days, config.trail_retention_mode
    )
    writer = trail.Trail(config.data_dir / TRAIL_DIR, app.notifier.key, where)
    _start_flusher(writer)

    def record(fields: Mapping[str, Any]) -> None:
        writer.record(
            trail.api_call_record(
                when=fields["time"],
                service=str(fields["service"]),
                operation=str(fields["operation"]),
                account_id=str(fields["account"]),
                region=str(fields["region"]),
                principal_arn=str(fields["principal"]),
                access_key_id=str(fields["access_key_id"]),
                source_ip=str(fields["source_ip"]),
                user_agent=str(fields["user_agent"]),
                request_id=str(fields["request_id"]),
                error_code=fields.get("error_code"),
                error_message=fields.get("error_message"),
                request_parameters=fields.get("request_parameters"),
                response_elements=fields.get("response_elements"),
            )
        )

    return record


def _start_flusher(writer: trail.Trail) -> None:
    clock = SystemClock()  # the trail keeps wall-clock time, also in test mode

    def loop() -> None:
        stop = threading.Event()
        while not stop.wait(FLUSH_SECONDS):
            try:
                writer.flush(clock.now())
            except Exception:
                log.exception("trail flush failed; the records stay pending")

    threading.Thread(target=loop, name="trail-flush", daemon=True).start()
