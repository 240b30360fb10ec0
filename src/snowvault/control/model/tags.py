"""Tag rules shared by every tagged thing: vaults, plans, recovery points, resources.

AWS's tag naming rules ("Tag naming limits and requirements", AWS General Reference;
AWS Backup quotas: "Metadata tags per backup: 50"):

- a key has 1 to 128 characters and may not begin with the reserved prefix ``aws:``
  (any case: AWS reserves ``AWS:`` too);
- a value has 0 to 256 characters;
- a resource carries at most 50 tags — on TagResource, the keys it already has count.

Pure rules: no I/O. Depends only on ``snowvault.core.errors``.

>>> validate({"team": "a"}, "Tags")
{'team': 'a'}
>>> validate({"aws:x": "1"}, "Tags")
Traceback (most recent call last):
...
snowvault.core.errors.InvalidInput: Tags: tag key 'aws:x' uses the reserved prefix 'aws:'
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from snowvault.core.errors import InvalidInput

MAX_TAGS = 50
KEY_MIN, KEY_MAX = 1, 128
VALUE_MAX = 256
RESERVED_PREFIX = "aws:"


def _invalid(field_name: str, detail: str) -> InvalidInput:
    return InvalidInput(f"{field_name}: {detail}", field=field_name, detail=detail)


def _shown(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:40] + "...")


def validate(tags: object, field_name: str) -> dict[str, str]:
    """``tags`` as a dict if it is a valid set of tags, else InvalidInput naming the rule."""
    if not isinstance(tags, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in tags.items()
    ):
        raise _invalid(field_name, "must map string keys to string values")
    if len(tags) > MAX_TAGS:
        raise _invalid(field_name, f"at most {MAX_TAGS} tags per resource, got {len(tags)}")
    for key, value in tags.items():
        if not KEY_MIN <= len(key) <= KEY_MAX:
            raise _invalid(
                field_name, f"tag key {_shown(key)} must have {KEY_MIN} to {KEY_MAX} characters"
            )
        if key[: len(RESERVED_PREFIX)].lower() == RESERVED_PREFIX:
            raise _invalid(
                field_name, f"tag key {_shown(key)} uses the reserved prefix {RESERVED_PREFIX!r}"
            )
        if len(value) > VALUE_MAX:
            raise _invalid(
                field_name,
                f"the value of tag {_shown(key)} must have at most {VALUE_MAX} characters",
            )
    return dict(tags)


def check_total(existing: Collection[str], added: Mapping[str, str], field_name: str) -> None:
    """InvalidInput if ``added`` tags would leave a resource with more than MAX_TAGS."""
    total = len(set(existing) | set(added))
    if total > MAX_TAGS:
        raise _invalid(
            field_name,
            f"a resource may carry at most {MAX_TAGS} tags; it has {len(existing)} and "
            f"this request would make it {total}",
        )
