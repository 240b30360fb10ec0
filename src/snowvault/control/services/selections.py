"""Backup selections: create, get, delete, list, and what a selection matches right now.

Selections are resolved against the inventory whenever the scheduler creates jobs (see
:func:`resolve`), so a resource tagged later is picked up at the next run. Only resource
types this server can back up (its plugin registry, ``Deps.plugins``) are candidates (an
empty selection means "every supported resource", as on AWS).

    sel = selections.create(deps, caller, plan_id, {"SelectionName": "tagged",
        "IamRoleArn": role, "ListOfTags": [{"ConditionType": "STRINGEQUALS",
        "ConditionKey": "Backup", "ConditionValue": "true"}]})
    selections.preview(deps, caller, document)   # [{"ResourceArn", "Selected", "Reason"}...]

Must not depend on the scheduler, the composition root or any interface.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

from snowvault import plugins
from snowvault.control import catalog
from snowvault.control.model import selection as selection_rules
from snowvault.control.services import errors as service_errors
from snowvault.control.services.base import Caller, Deps
from snowvault.core import ids
from snowvault.core.errors import NotFound

Record = dict[str, Any]
MAX_PER_PLAN = 100
"""Selections (resource assignments) of one backup plan: AWS Backup's quota, not
adjustable there either."""


def _live_plan(conn: Any, caller: Caller, plan_id: str) -> Record:
    plan = catalog.plans.get(conn, plan_id, account_id=caller.account_id)
    if plan["deletion_date"] is not None:
        raise NotFound(kind="backup plan", name=f"{plan_id} (deleted)")
    return plan


def create(
    deps: Deps,
    caller: Caller,
    plan_id: str,
    doc: Mapping[str, Any],
    *,
    creator_request_id: str | None = None,
) -> Record:
    """CreateBackupSelection; a repeated CreatorRequestId returns the first selection.

    Abuse case: the scheduler resolves every selection of a due plan against the
    account's inventory, so a plan holds at most :data:`MAX_PER_PLAN` selections, AWS
    Backup's quota of resource assignments per plan, which AWS does not raise either
    (LimitExceededException)."""
    sel = selection_rules.selection_from_api(doc)
    with catalog.db.transaction(deps.engine) as conn:
        _live_plan(conn, caller, plan_id)
        if creator_request_id:
            seen = catalog.selections.find_by_creator_request_id(conn, plan_id, creator_request_id)
            if seen is not None:
                return seen
        if catalog.selections.count_for_plan(conn, plan_id) >= MAX_PER_PLAN:
            raise service_errors.QuotaExceeded(
                what=f"backup plan {plan_id}", limit=MAX_PER_PLAN, items="selections"
            )
        return catalog.selections.create(
            conn,
            selection_id=ids.new_uuid(),
            backup_plan_id=plan_id,
            account_id=caller.account_id,
            region=caller.region,
            name=sel.selection_name,
            document=dict(doc),
            creation_date=caller.now,
            iam_role_arn=sel.iam_role_arn,
            creator_request_id=creator_request_id,
        )


def get(deps: Deps, caller: Caller, plan_id: str, selection_id: str) -> Record:
    with catalog.db.transaction(deps.engine) as conn:
        catalog.plans.get(conn, plan_id, account_id=caller.account_id)
        return catalog.selections.get(conn, plan_id, selection_id)


def delete(deps: Deps, caller: Caller, plan_id: str, selection_id: str) -> None:
    with catalog.db.transaction(deps.engine) as conn:
        catalog.plans.get(conn, plan_id, account_id=caller.account_id)
        catalog.selections.delete(conn, plan_id, selection_id)


def list_selections(
    deps: Deps, caller: Caller, plan_id: str, *, limit: int | None = None, token: str | None = None
) -> catalog.pagination.Page:
    with catalog.db.transaction(deps.engine) as conn:
        catalog.plans.get(conn, plan_id, account_id=caller.account_id)
        return catalog.selections.list_for_plan(conn, plan_id, limit=limit, token=token)


# --- resolution -----------------------------------------------------------------------


def as_model(row: Record) -> selection_rules.Resource:
    return selection_rules.Resource(row["arn"], row["resource_type"], row["tags"])


def supported(inventory: Iterable[Record], types: Collection[str]) -> list[Record]:
    """The inventory rows of the resource ``types`` this server can back up."""
    return [r for r in inventory if r["resource_type"] in types]


class Inventory:
    """The supported resources of one account and region, indexed by tag so tag-based
    selections look at the few resources that carry the tag instead of all of them.
    ``types``: the registered resource types (``deps.plugins.types()``; the built-in
    ones when not given)."""

    def __init__(self, rows: Iterable[Record], types: Collection[str] | None = None) -> None:
        if types is None:
            types = plugins.builtin.registry().types()
        self.rows = supported(rows, types)
        self.by_tag: dict[tuple[str, str], list[Record]] = defaultdict(list)
        for row in self.rows:
            for item in row["tags"].items():
                self.by_tag[item].append(row)

    def candidates(self, sel: selection_rules.Selection) -> list[Record]:
        """A superset of what ``sel`` can match (matching still decides)."""
        if not sel.resources and sel.list_of_tags:
            found = {}
            for tag in sel.list_of_tags:
                for row in self.by_tag.get((tag.key, tag.value), ()):
                    found[row["arn"]] = row
            return list(found.values())
        equals = [c for c in sel.conditions if c.operator == "StringEquals"]
        if equals:  # Conditions are AND: every match carries this tag
            return list(self.by_tag.get((equals[0].key, equals[0].value), ()))
        return self.rows

    def resolve(
        self, selection_docs: Sequence[Mapping[str, Any]]
    ) -> dict[str, tuple[Record, str | None]]:
        """ARN -> (resource row, IamRoleArn of the first selection that picked it), over
        the union of ``selection_docs`` (one plan's selections)."""
        chosen: dict[str, tuple[Record, str | None]] = {}
        for doc in selection_docs:
            sel = selection_rules.selection_from_api(doc)
            for row in self.candidates(sel):
                if row["arn"] not in chosen and selection_rules.matches(sel, as_model(row)):
                    chosen[row["arn"]] = (row, sel.iam_role_arn)
        return chosen


def resolve(
    selection_docs: Sequence[Mapping[str, Any]],
    inventory: Sequence[Record],
    types: Collection[str] | None = None,
) -> dict[str, tuple[Record, str | None]]:
    """One-off :meth:`Inventory.resolve`."""
    return Inventory(inventory, types).resolve(selection_docs)


def preview(deps: Deps, caller: Caller, doc: Mapping[str, Any]) -> list[Record]:
    """PreviewSelection (extension API): every resource of the account and region with
    whether ``doc`` selects it now and why, selected first."""
    sel = selection_rules.selection_from_api(doc)
    with catalog.db.transaction(deps.engine) as conn:
        inventory = catalog.selections.inventory(
            conn, account_id=caller.account_id, region=caller.region
        )
    out = []
    for row in inventory:
        if row["resource_type"] not in deps.plugins:
            selected, reason = False, f"excluded: resource type {row['resource_type']} unsupported"
        else:
            selected = selection_rules.matches(sel, as_model(row))
            reason = selection_rules.explain(sel, as_model(row))
        out.append(
            {
                "ResourceArn": row["arn"],
                "ResourceType": row["resource_type"],
                "ResourceName": row["name"],
                "Tags": dict(row["tags"]),
                "Selected": selected,
                "Explanation": reason,
            }
        )
    return sorted(out, key=lambda r: (not r["Selected"], r["ResourceArn"]))


def preview_stored(deps: Deps, caller: Caller, plan_id: str, selection_id: str) -> list[Record]:
    """PreviewSelection for a stored selection."""
    return preview(deps, caller, get(deps, caller, plan_id, selection_id)["document"])
