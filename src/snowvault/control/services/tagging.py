"""TagResource / UntagResource / ListTags on backup vault, backup plan and recovery point ARNs.

The ARN must name a vault or recovery point of the caller's account, else NotFound.

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


def _check(conn: Connection, caller: Caller, arn: str) -> None:
    parsed = Arn.parse(arn)
    kind = parsed.resource_type
    if parsed.service != "backup" or kind not in ("backup-vault", "recovery-point", "backup-plan"):
        raise InvalidInput(detail=f"{arn} is not a backup vault, plan or recovery point ARN")
    if kind == "backup-plan":
        row = catalog.plans.get(conn, parsed.resource_id)
    elif kind == "backup-vault":
        row = catalog.vaults.get_by_arn(conn, arn)
    else:
        row = catalog.recovery_points.get(conn, arn)
    if row["account_id"] != caller.account_id:
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
