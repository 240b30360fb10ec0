"""Keyset pagination with opaque NextTokens, for every list the catalog serves.

A list orders on a few columns ending with a unique one (``creation_date DESC, arn
DESC``); the token is base64 of the last row's values for those columns plus a tag naming
the list, so a token from one list is refused by another. The next page starts strictly
after that position: no OFFSET, so page N costs the same as page 1 and rows inserted
meanwhile never shift a page.

    >>> token = encode_token("rp", ["2026-01-01T00:00:00+00:00", "arn:x"])
    >>> decode_token("rp", token)
    ['2026-01-01T00:00:00+00:00', 'arn:x']

Must not depend on anything above ``snowvault.core``.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.sql import ColumnElement, Select

from snowvault.control.catalog.db import Record
from snowvault.control.catalog.tables import UTCDateTime
from snowvault.core.errors import InvalidInput

DEFAULT_LIMIT = 1000
MAX_LIMIT = 1000


@dataclass(frozen=True)
class Page:
    """One page of a list: its rows and the token for the next page (None at the end)."""

    items: list[Record] = field(default_factory=list)
    next_token: str | None = None

    def load(self, record: Callable[[Mapping[str, Any]], T]) -> RecordPage[T]:
        """The same page with each row turned into a record (a model dataclass)."""
        return RecordPage([record(row) for row in self.items], self.next_token)


T = TypeVar("T")


@dataclass(frozen=True)
class RecordPage(Generic[T]):
    """One page of records (frozen dataclasses built by ``from_row``)."""

    items: list[T] = field(default_factory=list)
    next_token: str | None = None


@dataclass(frozen=True)
class Order:
    """A keyset ordering: columns (the last one unique) and one direction for all."""

    columns: Sequence[sa.Column[Any]]
    descending: bool = False


class InvalidToken(InvalidInput):
    """invalid NextToken: {detail}"""


def encode_token(kind: str, values: Sequence[Any]) -> str:
    raw = json.dumps({"k": kind, "v": list(values)}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_token(kind: str, token: str) -> list[Any]:
    try:
        padded = token + "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, binascii.Error, RecursionError) as exc:  # a caller's bytes
        raise InvalidToken(detail="not a token this server issued") from exc
    if not isinstance(data, dict) or data.get("k") != kind or not isinstance(data.get("v"), list):
        raise InvalidToken(detail="the token belongs to another list")
    values: list[Any] = data["v"]
    return values


def _to_json(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _from_json(column: sa.Column[Any], value: Any) -> Any:
    """A token's position value as the column's type; InvalidToken for anything a token
    of this server could not hold (a caller can forge the JSON: an object, a list, a
    lone surrogate, a time without offset would fail deeper down as a 500)."""
    if value is None:
        return None
    if isinstance(column.type, UTCDateTime):
        try:
            when = datetime.fromisoformat(value)
        except (TypeError, ValueError) as exc:
            raise InvalidToken(detail="bad position") from exc
        if when.tzinfo is None:
            raise InvalidToken(detail="bad position")
        return when
    try:
        wanted: type = column.type.python_type
    except NotImplementedError:
        wanted = object
    if isinstance(value, bool) and wanted is not bool:
        raise InvalidToken(detail="bad position")
    if wanted is not object and not isinstance(value, wanted):
        raise InvalidToken(detail="bad position")
    if not isinstance(value, str | int | float | bool):
        raise InvalidToken(detail="bad position")
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InvalidToken(detail="bad position") from exc
    return value


def _after(order: Order, values: list[Any]) -> ColumnElement[bool]:
    if len(values) != len(order.columns):
        raise InvalidToken(detail="bad position")
    params = [
        sa.bindparam(None, _from_json(col, val), type_=col.type)
        for col, val in zip(order.columns, values)
    ]
    left = sa.tuple_(*order.columns)
    right = sa.tuple_(*params)
    return left < right if order.descending else left > right


def check_limit(limit: int | None) -> int:
    if limit is None:
        return DEFAULT_LIMIT
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(detail=f"MaxResults must be between 1 and {MAX_LIMIT}, got {limit}")
    return limit


def paginate(
    conn: Connection,
    stmt: Select[Any],
    *,
    kind: str,
    order: Order,
    limit: int | None,
    token: str | None,
) -> Page:
    """Run ``stmt`` for one page: ``limit`` rows after ``token`` in ``order``.

    ``stmt`` must select the ordering columns; ``kind`` names the list in the token.
    """
    size = check_limit(limit)
    if token:
        stmt = stmt.where(_after(order, decode_token(kind, token)))
    ordering = [c.desc() if order.descending else c.asc() for c in order.columns]
    result = conn.execute(stmt.order_by(*ordering).limit(size + 1))
    keys = list(result.keys())
    rows = [dict(zip(keys, r, strict=True)) for r in result]  # 3x cheaper than r._mapping
    if len(rows) <= size:
        return Page(rows, None)
    last = rows[size - 1]
    next_token = encode_token(kind, [_to_json(last[c.name]) for c in order.columns])
    return Page(rows[:size], next_token)


Range = tuple[ColumnElement[Any], datetime | None, datetime | None]


def filtered(
    stmt: Select[Any],
    equal: Iterable[tuple[ColumnElement[Any], Any]],
    ranges: Sequence[Range] = (),
) -> Select[Any]:
    """The By* filters of a list call: ``column == value`` for each (column, value) with a
    value, and ``after < column < before`` for each bound given (None: no filter)."""
    for column, value in equal:
        if value is not None:
            stmt = stmt.where(column == value)
    for column, after, before in ranges:
        if after is not None:
            stmt = stmt.where(column > after)
        if before is not None:
            stmt = stmt.where(column < before)
    return stmt
