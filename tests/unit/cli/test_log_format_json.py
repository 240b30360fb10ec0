"""--log-format json: one JSON object per line, the API request line's fields included."""

from __future__ import annotations

import json
import logging

from snowvault.interfaces.cli import log_format


def _record(**extra: object) -> logging.LogRecord:
    record = logging.LogRecord("snowvault.api", logging.INFO, __file__, 1, "op=%s", ("X",), None)
    for key, value in extra.items():
        setattr(record, key, value)
    return record


def test_request_fields_become_json_keys() -> None:
    fields = {
        "request_id": "r-1",
        "operation": "ListBackupJobs",
        "status": 200,
        "principal": "arn:p",
    }
    doc = json.loads(log_format.JsonFormatter().format(_record(snowvault=fields)))
    assert doc["message"] == "op=X" and doc["level"] == "INFO" and doc["logger"] == "snowvault.api"
    assert {k: doc[k] for k in fields} == fields
    assert doc["time"].endswith("Z")


def test_fields_never_overwrite_the_envelope_and_plain_records_work() -> None:
    doc = json.loads(log_format.JsonFormatter().format(_record(snowvault={"message": "forged"})))
    assert doc["message"] == "op=X"
    plain = json.loads(log_format.JsonFormatter().format(_record()))
    assert set(plain) == {"time", "level", "logger", "message"}
