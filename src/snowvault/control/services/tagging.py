"""TagResource / UntagResource / ListTags on the taggable ARNs: backup vault, backup plan,
recovery point and legal hold (:data:`TAGGABLE`).

The ARN must name one of those of the caller's account, else NotFound.

Must not depend on the scheduler, the composition root or any interface.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from sqlalchemy.engine import Connection

from snowvault.control import catalog
from snowvault.control.model import tags as tag_rules
from snowvault.control.services.base import Caller, Deps
from snowvault.core.arn import Arn
from snowvault.core.errors import InvalidInput, NotFound

TAGGABLE = ("backup-vault", "recovery-point", "backup-plan", "legal-hold")
"""The resource types of ``arn:aws:backup:...`` ARNs that carry tags."""


def _check(conn: Connection, caller: Caller, arn: str) -> None:
    parsed = Arn.parse(arn)
    kind = parsed.resource_type
    if parsed.service != "backup" or kind not in TAGGABLE:
        raise InvalidInput(
            detail=f"{arn} is not a backup vault, backup plan, recovery point or legal hold ARN"
        )
    if kind == "legal-hold":
        row = catalog.legal_holds.get(conn, parsed.resource_id, account_id=caller.account_id)
        if row["legal_hold_arn"] != arn:  # another region's hold id
            raise NotFound(kind="legal hold", name=arn)
        account_id = row["account_id"]
    elif kind == "backup-plan":
        account_id = catalog.plans.get(conn, parsed.resource_id)["account_id"]
    elif kind == "backup-vault":
        account_id = catalog.vaults.get_by_arn(conn, arn)["account_id"]
    else:
        account_id = catalog.recovery_points.get(conn, arn).account_id
    if account_id != caller.account_id:
        raise NotFound(kind=kind.replace("-", " "), name=arn)


def tag(deps: Deps, caller: Caller, arn: str, tags: Mapping[str, str]) -> None:
    """TagResource: InvalidInput past the tag rules (model/tags.py), before any write."""
    checked = tag_rules.validate(tags, "Tags")
    with catalog.db.transaction(deps.engine) as conn:
        _check(conn, caller, arn)
        add(conn, arn, checked)


def add(conn: Connection, arn: str, tags: Mapping[str, str]) -> None:
    """Add ``tags`` to ``arn`` unless that would leave it with more than 50 tags.

    The count and the write share ``conn``'s transaction; every tagging path (backup
    and extension TagResource) goes through here.
    """
    existing = catalog.tags.list_for(conn, arn)
    tag_rules.check_total(existing.keys(), tags, "Tags")
    catalog.tags.tag(conn, arn, dict(tags))


def untag(deps: Deps, caller: Caller, arn: str, keys: Iterable[str]) -> None:
    with catalog.db.transaction(deps.engine) as conn:
        _check(conn, caller, arn)
        catalog.tags.untag(conn, arn, list(keys))


def list_tags(deps: Deps, caller: Caller, arn: str) -> dict[str, str]:
    with catalog.db.transaction(deps.engine) as conn:
        _check(conn, caller, arn)
        return catalog.tags.list_for(conn, arn)
