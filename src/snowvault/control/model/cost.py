"""Storage cost: a price table (per GB-month, per storage class, per region) and the
pure rules that price recovery points and group them for a report.

    >>> table = PriceTable.parse({"COLD": 0.01, "regions": {"eu-west-1": {"WARM": 0.06}}})
    >>> table.price("eu-west-1", "WARM"), table.price("us-east-1", "COLD")
    (0.06, 0.01)
    >>> round(monthly_cost(GB * 10, 0.05), 4)
    0.5

A GB is 10^9 bytes, as cloud price lists count. For one calendar month
(``--month YYYY-MM``) a point is charged for the part of the month it is stored, warm
until its cold transition and cold after, until its DeleteAt (:func:`month_cost`).
Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from snowvault.core.errors import InvalidInput

GB = 1_000_000_000
CLASSES = ("WARM", "COLD")
DEFAULT_PRICES: Mapping[str, float] = {"WARM": 0.05, "COLD": 0.01}
"""USD per GB-month: AWS Backup's list prices for warm and cold storage of file system
backups, as an order of magnitude; an operator gives their own with ``--prices``."""
GROUPS = ("point", "resource", "vault", "plan", "account", "region", "storage-class")
NO_PLAN = "-"
"""The ``plan`` key of points no backup plan made (on-demand backups)."""


@dataclass(frozen=True)
class PriceTable:
    """Price per GB-month of each storage class, with per-region overrides."""

    default: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_PRICES))
    regions: Mapping[str, Mapping[str, float]] = field(default_factory=dict)

    def price(self, region: str, storage_class: str) -> float:
        return float(self.regions.get(region, {}).get(storage_class, self.default[storage_class]))

    @classmethod
    def parse(cls, doc: Mapping[str, Any]) -> PriceTable:
        """``{"WARM": 0.05, "COLD": 0.01, "regions": {REGION: {"WARM": ...}}}``; classes
        left out keep the default price."""
        if not isinstance(doc, Mapping):
            raise InvalidInput(detail="the price table must be a JSON object")
        unknown = set(doc) - {*CLASSES, "regions"}
        if unknown:
            raise InvalidInput(detail=f"unknown price table keys: {', '.join(sorted(unknown))}")
        regions = doc.get("regions") or {}
        if not isinstance(regions, Mapping):
            raise InvalidInput(detail="regions must map a region to its prices")
        return cls(
            default=dict(DEFAULT_PRICES) | _prices(doc, "the price table"),
            regions={str(r): _prices(p, f"region {r}") for r, p in regions.items()},
        )


def _prices(doc: Any, where: str) -> dict[str, float]:
    if not isinstance(doc, Mapping):
        raise InvalidInput(detail=f"{where}: prices must be an object")
    out = {}
    for name in CLASSES:
        if name in doc:
            value = doc[name]
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise InvalidInput(detail=f"{where}: {name} must be a price >= 0")
            out[name] = float(value)
    return out


def monthly_cost(stored_bytes: float, price_per_gb_month: float) -> float:
    return stored_bytes / GB * price_per_gb_month


def parse_month(text: str) -> tuple[datetime, datetime]:
    """``YYYY-MM`` as the month's first instant and the next month's (UTC).

    >>> [d.isoformat() for d in parse_month("2026-12")]
    ['2026-12-01T00:00:00+00:00', '2027-01-01T00:00:00+00:00']
    """
    try:
        start = datetime.strptime(text, "%Y-%m").replace(tzinfo=UTC)
    except ValueError:
        raise InvalidInput(detail=f"--month must be YYYY-MM, not {text!r}") from None
    following = start.replace(year=start.year + start.month // 12, month=start.month % 12 + 1)
    return start, following


def month_cost(
    stored_bytes: float,
    month: tuple[datetime, datetime],
    created: datetime,
    cold_at: datetime | None,
    delete_at: datetime | None,
    price: Mapping[str, float],
) -> tuple[float, str] | None:
    """What ``stored_bytes`` cost in ``month`` for a point stored from ``created`` (warm
    until ``cold_at``, cold after) until ``delete_at``, each class for its share of the
    month; and the classes it was in (``WARM``, ``COLD`` or ``WARM+COLD``). None if it
    was not stored in the month at all.

    >>> jan = parse_month("2027-01")
    >>> mid = datetime(2027, 1, 16, 12, tzinfo=UTC)
    >>> cost, where = month_cost(GB, jan, datetime(2026, 1, 1, tzinfo=UTC), mid, None,
    ...                          {"WARM": 1.0, "COLD": 0.5})
    >>> round(cost, 4), where
    (0.75, 'WARM+COLD')
    """
    shares = month_shares(month, created, cold_at, delete_at)
    if shares is None:
        return None
    warm, cold = shares
    cost = stored_bytes / GB * (warm * price["WARM"] + cold * price["COLD"])
    where = "+".join(name for name, share in (("WARM", warm), ("COLD", cold)) if share > 0)
    return cost, where


def month_shares(
    month: tuple[datetime, datetime],
    created: datetime,
    cold_at: datetime | None,
    delete_at: datetime | None,
) -> tuple[float, float] | None:
    """The shares of ``month`` a point spends warm and cold (GB-months per GB stored);
    None if it was not stored in the month at all.

    >>> jan = parse_month("2027-01")
    >>> month_shares(jan, datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 16, 12,
    ...              tzinfo=UTC), None)
    (0.5, 0.5)
    """
    start, end = month
    begin = max(start, created)
    stop = end if delete_at is None else min(end, delete_at)
    if stop <= begin:
        return None
    turn = min(max(cold_at or stop, begin), stop)  # warm in [begin, turn), cold after
    span = (end - start).total_seconds()
    return (turn - begin).total_seconds() / span, (stop - turn).total_seconds() / span


@dataclass(frozen=True)
class PointCost:
    """One recovery point in the report (bytes are stored bytes: compressed, encrypted)."""

    recovery_point_arn: str
    account_id: str
    region: str
    vault_name: str
    resource_arn: str
    storage_class: str
    unique_bytes: int
    attributed_bytes: float
    referenced_bytes: int
    monthly_cost: float
    backup_plan_id: str | None = None
    warm_gb_months: float = 0.0
    """GB-months warm: the attributed bytes times the share of the month warm."""
    cold_gb_months: float = 0.0


@dataclass(frozen=True)
class Transfer:
    """A completed restore or copy job, counted in the report beside storage: ``kind``
    ``restore`` or ``copy``, keyed like its recovery point (a copy in its source vault)."""

    kind: str
    account_id: str
    region: str
    vault_name: str
    resource_arn: str
    recovery_point_arn: str
    backup_plan_id: str | None
    bytes: int


@dataclass(frozen=True)
class Line:
    """One line of a grouped report."""

    key: str
    points: int
    unique_bytes: int
    attributed_bytes: float
    monthly_cost: float
    warm_gb_months: float = 0.0
    cold_gb_months: float = 0.0
    restore_bytes: int = 0
    copy_bytes: int = 0


def _key(point: PointCost | Transfer, by: str) -> str:
    if isinstance(point, Transfer):
        point = PointCost(
            point.recovery_point_arn, point.account_id, point.region, point.vault_name,
            point.resource_arn, "-", 0, 0.0, 0, 0.0, point.backup_plan_id,
        )  # fmt: skip
    return {
        "point": point.recovery_point_arn,
        "resource": point.resource_arn,
        "vault": f"{point.account_id}/{point.region}/{point.vault_name}",
        "plan": point.backup_plan_id or NO_PLAN,
        "account": point.account_id,
        "region": point.region,
        "storage-class": point.storage_class,
    }[by]


def group(points: Iterable[PointCost], by: str, transfers: Iterable[Transfer] = ()) -> list[Line]:
    """The report's lines grouped ``by`` one of :data:`GROUPS`, costliest first.

    >>> p = PointCost("rp1", "1", "r", "v", "res", "WARM", 10, 15.0, 20, 1.0)
    >>> [(line.key, line.points) for line in group([p, p], "vault")]
    [('1/r/v', 2)]
    """
    if by not in GROUPS:
        raise InvalidInput(detail=f"--by must be one of {', '.join(GROUPS)}")
    lines: dict[str, list[PointCost]] = {}
    for point in points:
        lines.setdefault(_key(point, by), []).append(point)
    moved: dict[tuple[str, str], int] = {}
    for t in transfers:
        key = _key(t, by)
        lines.setdefault(key, [])
        moved[(key, t.kind)] = moved.get((key, t.kind), 0) + t.bytes
    out = [
        Line(
            key=key,
            points=len(members),
            unique_bytes=sum(p.unique_bytes for p in members),
            attributed_bytes=sum(p.attributed_bytes for p in members),
            monthly_cost=sum(p.monthly_cost for p in members),
            warm_gb_months=sum(p.warm_gb_months for p in members),
            cold_gb_months=sum(p.cold_gb_months for p in members),
            restore_bytes=moved.get((key, "restore"), 0),
            copy_bytes=moved.get((key, "copy"), 0),
        )
        for key, members in lines.items()
    ]
    return sorted(out, key=lambda line: (-line.monthly_cost, line.key))
