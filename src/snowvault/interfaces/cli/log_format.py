"""``--log-format json``: one JSON object per log line, for log shippers.

    {"time": "2026-12-07T03:01:02.123Z", "level": "INFO", "logger": "snowvault.api",
     "message": "request_id=... op=ListBackupJobs ...", "request_id": "...",
     "service": "backup", "operation": "ListBackupJobs", "status": 200,
     "duration_ms": 3.1, "account": "...", "principal": "arn:...", "source_ip": "127.0.0.1"}

A record's structured fields come from ``extra={"snowvault": {...}}`` (the API's request
line sets them); other records carry time, level, logger and message (and ``exc`` with
the traceback text when there is one). Parameters are never logged, only their keyed
digest (``params=`` in the message), as in text mode.

Must not depend on the API or web interfaces.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

FORMATS = ("text", "json")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        doc: dict[str, object] = {
            "time": stamp.replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "snowvault", None)
        if isinstance(fields, dict):
            doc.update({k: v for k, v in fields.items() if k not in doc})
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str, separators=(",", ":"))
