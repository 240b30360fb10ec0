"""Pages of a short list held in memory (the shipped plan templates, a resource's tags,
an account's users), with the same opaque tokens as the catalog's lists
(:mod:`snowvault.control.catalog.pagination`): the token names the list and the key of
the last item of the previous page, and the next page starts strictly after that key.

    items, nxt = paging.page("plan-templates", rows, key=lambda r: r["Id"], limit=2)
    more, _ = paging.page("plan-templates", rows, key=lambda r: r["Id"], token=nxt)

Abuse case: the token is the caller's bytes; one this server did not issue (not base64
JSON, another list's, a position that is not a key) is InvalidToken (400), never a 500,
and it only moves where the caller's own list starts.

Must not depend on the scheduler, the composition root or any interface.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar

from snowvault.control import catalog
from snowvault.core.errors import InvalidInput

T = TypeVar("T")


def page(
    kind: str,
    items: Iterable[T],
    key: Callable[[T], str],
    *,
    limit: int | None = None,
    token: str | None = None,
    default: int = 1000,
    maximum: int = 1000,
    limit_name: str = "MaxResults",
) -> tuple[list[T], str | None]:
    """At most ``limit`` (1-``maximum``, ``default`` when None) of ``items`` in the order
    of ``key`` (unique, compared by code point), after ``token``; and the next page's
    token, None at the end."""
    if limit is None:
        limit = default
    elif isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= maximum:
        raise InvalidInput(detail=f"{limit_name} must be between 1 and {maximum}")
    ordered = sorted(items, key=key)
    if token:
        after = catalog.pagination.decode_token(kind, token)
        if len(after) != 1 or not isinstance(after[0], str):
            raise catalog.pagination.InvalidToken(detail="bad position")
        ordered = [item for item in ordered if key(item) > after[0]]
    if len(ordered) <= limit:
        return ordered, None
    last = key(ordered[limit - 1])
    return ordered[:limit], catalog.pagination.encode_token(kind, [last])
