"""One place that combines Vault Lock and legal holds into the decisions services ask for.

Pure: services fetch the lock, the holds and the recovery point, call one of these, and
raise ``decision.code`` (an AWS error code) with ``decision.message`` when refused.
Legal holds are checked first (InvalidResourceStateException), then the lock
(InvalidRequestException). Depends on :mod:`vault_lock` and :mod:`legal_holds` only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from snowvault.control.model import legal_holds, vault_lock

Decision = vault_lock.Decision


@dataclass(frozen=True)
class RecoveryPoint:
    vault_name: str
    resource_arn: str
    creation_date: datetime
    delete_at: datetime | None = None  # None: kept forever

    @property
    def facts(self) -> legal_holds.RecoveryPointFacts:
        return legal_holds.RecoveryPointFacts(
            self.vault_name, self.resource_arn, self.creation_date
        )

    @property
    def retention(self) -> vault_lock.RecoveryPointRetention:
        return vault_lock.RecoveryPointRetention(self.creation_date, self.delete_at)


def _hold_refusal(holds: Sequence[legal_holds.LegalHold], rp: RecoveryPoint) -> Decision | None:
    restraining = legal_holds.holding(rp.facts, holds)
    if not restraining:
        return None
    ids = ", ".join(h.id for h in restraining)
    return Decision(
        False,
        vault_lock.INVALID_RESOURCE_STATE,
        f"the recovery point is under active legal hold(s): {ids}",
    )


def may_delete_recovery_point(
    lock: vault_lock.LockConfig | None,
    holds: Sequence[legal_holds.LegalHold],
    rp: RecoveryPoint,
    now: datetime,
    principal_may_bypass: bool = False,
) -> Decision:
    """DeleteRecoveryPoint: refused while held, then while the lock protects the point
    (see :mod:`vault_lock` for ``principal_may_bypass``)."""
    refusal = _hold_refusal(holds, rp)
    if refusal is not None:
        return refusal
    return vault_lock.can_delete_recovery_point(
        lock, rp.retention, now, False, principal_may_bypass
    )


def may_expire(
    lock: vault_lock.LockConfig | None,
    holds: Sequence[legal_holds.LegalHold],
    rp: RecoveryPoint,
    now: datetime,
) -> Decision:
    """The lifecycle sweeper's question: is ``rp`` due and free to go? Not before its
    DeleteAt, never while held (expiry waits for the hold to be canceled), and never
    before creation + MinRetentionDays for points created under the lock."""
    if rp.delete_at is None or now < rp.delete_at:
        return Decision(False, None, "the recovery point is not due to expire")
    refusal = _hold_refusal(holds, rp)
    if refusal is not None:
        return refusal
    if lock is not None:
        end = vault_lock.retention_end(lock, rp.retention)
        if end is not None and now < end:
            return Decision(
                False,
                vault_lock.INVALID_REQUEST,
                f"the vault lock keeps the recovery point until {end:%Y-%m-%dT%H:%M:%SZ}",
            )
    return vault_lock.ALLOWED
