"""One CloudTrail API-call record as the server would make it, for tests of the trail's
files and of ``snowvault trail validate``.

    trail_records.api_call(clock, "ListBackupVaults")
    trail_records.api_call(clock, "DeleteBackupVault", error="AccessDeniedException")
"""

from __future__ import annotations

from snowvault.control.services import trail
from snowvault.testing import FakeClock

ACCOUNT = "111122223333"


def api_call(clock: FakeClock, operation: str, error: str | None = None) -> dict[str, object]:
    """Alice's call at the clock's now; ``error``: the code it failed with (message "no")."""
    return trail.api_call_record(
        when=clock.now(),
        service="backup",
        operation=operation,
        account_id=ACCOUNT,
        region="us-east-1",
        principal_arn=f"arn:aws:iam::{ACCOUNT}:user/alice",
        access_key_id="AKIAEXAMPLE",
        source_ip="127.0.0.1",
        user_agent="boto3",
        request_id="r",
        error_code=error,
        error_message="no" if error else None,
    )
