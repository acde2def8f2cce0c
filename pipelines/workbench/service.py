"""Decisions on transfer recommendations: the rules, enforced on the server, without HTTP.

The web pages, the upload, ``tiaobo decisions import`` and tests call :func:`decide` and
:func:`bulk_approve` on a connection inside the caller's transaction; each decision appends one
row to ``transfer_decisions`` (append-only: never updated or deleted), ``version`` = the
recommendation's latest version + 1.

Rules, in the order they are checked (a refusal names its rule, see :class:`DecisionRefused`):

1. **the recommendation is current** (``not_found`` / ``replaced``): it is in the publication of
   its run date with the run id the user saw; no newer published run date exists (a newer run that
   recommends the same sku and lane *replaced* it; one that does not recommend it any more made
   it obsolete). Only the latest night's recommendations can be decided.
2. **region** (``region``): a planner decides a line when the receiver's *or* the donor's region
   (``location_master.region`` of the recommendation's run date) is one of theirs; managers and
   admins decide every region.
3. **the decision** (``decision`` / ``reason``): approve or reject; a rejection needs a reason
   code of :data:`pipelines.decisions.REASON_CODES`, ``other`` also a free text.
4. **quantity** (``quantity`` / ``packs`` / ``donor``): an approval moves whole packs
   (``item_master.pack_size``), more than zero and never more than the donor can give: the
   recommended quantity plus the donor's excess units as published (``donor_excess_units``).
5. **authority** (``authority``): the transfer value = approved quantity x ``item_master.unit_cost``
   (the stock's value at cost, what leaves the donor); a planner approves up to
   ``workbench.planner_approval_limit``, above it a manager (or admin) must.
6. **the shipment** (``lane_minimum`` / ``lane_capacity``): every line of the same lane and run
   date (the departure) ships together; its units after the decision (approved lines at their
   approved quantity, undecided ones at the recommended quantity, rejected ones at zero) must be
   zero or at least the lane's ``min_units`` and at most its ``capacity`` (``lane_master``). A
   rejection is never refused for that: it comes back with a warning instead.
7. **version** (``conflict``): ``expected_version`` is the version the user saw (0: undecided);
   when someone decided in between, the decision is refused naming who decided and when. Two
   simultaneous writers both try to insert the same next version: the unique constraint
   (rec_run_date, sku, from_location, to_location, version) lets one in, the other gets the
   conflict. ``expected_version=None`` (files): the next version, refused as a conflict when the
   latest decision is by another person (the auto tier's ``system`` approvals may be overridden).
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa

from pipelines.decision_store import SYSTEM_USER
from pipelines.decisions import REASON_CODES
from pipelines.reporting import OUTPUT_SA, PUBLISHED_RUNS, TRANSFER_DECISIONS, as_date
from pipelines.workbench.users import User

DEFAULT_APPROVAL_LIMIT = 5000.0
DECISIONS = ("approve", "reject")
SOURCES = ("workbench", "upload", "cli")
_CHUNK = 400  # rows per multi-row insert (bound-parameter limits)
_SUPERSET_CHUNK = 2000  # keys per query of IN lists (a superset, filtered exactly in Python)
_EPS = 1e-6

TR = OUTPUT_SA["transfers"]
IM = OUTPUT_SA["item_master"]
LM = OUTPUT_SA["location_master"]
LN = OUTPUT_SA["lane_master"]
TD = TRANSFER_DECISIONS


@dataclass(frozen=True, order=True)
class RecKey:
    """A recommendation: run date of the run that made it, sku and lane."""

    rec_run_date: date
    sku: str
    from_location: str
    to_location: str

    def __str__(self) -> str:
        return f"{self.sku} {self.from_location}→{self.to_location} of {self.rec_run_date}"


class DecisionRefused(Exception):
    """A decision broke a rule: ``rule`` (a short code), ``key`` and a message naming the numbers."""

    def __init__(self, key: Any, rule: str, message: str) -> None:  # a RecKey, or a purchase's key
        super().__init__(f"{key}: {message}")
        self.key = key
        self.rule = rule
        self.message = message


class Conflict(DecisionRefused):
    """Someone else decided the recommendation since the user loaded it."""

    def __init__(self, key: Any, decided_by: str, decided_at: datetime | None, version: int, decision: str) -> None:
        when = decided_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if decided_at else "earlier"
        super().__init__(
            key,
            "conflict",
            f"already decided by {decided_by} at {when} ({decision}, version {version}); nothing was overwritten:"
            " reload the line to see it",
        )
        self.decided_by = decided_by
        self.decided_at = decided_at
        self.version = version
        self.decision = decision


@dataclass
class Decided:
    """One decision row written."""

    key: RecKey
    decision: str
    version: int
    old_quantity: float
    new_quantity: float
    decision_id: str
    warnings: list[str] = field(default_factory=list)


@dataclass
class BulkResult:
    decided: list[Decided] = field(default_factory=list)
    refused: list[DecisionRefused] = field(default_factory=list)


@dataclass
class Rec:
    """What the rules need to know about one recommendation (and its latest decision)."""

    key: RecKey
    run_id: str
    quantity: float
    donor_excess_units: float
    pack_size: int
    unit_cost: float
    from_region: str | None
    to_region: str | None
    version: int = 0
    decided_by: str | None = None
    decided_at: datetime | None = None
    decision: str | None = None
    new_quantity: float | None = None

    @property
    def effective_quantity(self) -> float:
        """Units that ship as things stand: approved quantity, 0 when rejected, else recommended."""
        if self.decision == "approve":
            return float(self.new_quantity or 0.0)
        if self.decision == "reject":
            return 0.0
        return self.quantity

    @property
    def max_quantity(self) -> float:
        return self.quantity + max(self.donor_excess_units, 0.0)


def _chunks(seq: Sequence[Any], n: int = _CHUNK) -> Iterable[Sequence[Any]]:
    for i in range(0, len(seq), n):
        yield seq[i : i + n]


def as_utc(v: Any) -> datetime | None:
    """A database timestamp as an aware UTC datetime (SQLite returns naive ones or text)."""
    if v is None:
        return None
    if isinstance(v, datetime):
        return v if v.tzinfo else v.replace(tzinfo=UTC)
    return datetime.fromisoformat(str(v)).replace(tzinfo=UTC)


def latest_run_date(conn: sa.Connection) -> date | None:
    v = conn.execute(sa.select(sa.func.max(PUBLISHED_RUNS.c.run_date))).scalar()
    return None if v is None else as_date(v)


def _by_date(keys: Iterable[Any], date_of: Any) -> dict[date, list[Any]]:
    out: dict[date, list[Any]] = {}
    for k in keys:
        out.setdefault(date_of(k), []).append(k)
    return out


def _in_lists(cols: Sequence[sa.ColumnElement[Any]], values: Sequence[tuple]) -> list[sa.ColumnElement[bool]]:
    """``col IN (...)`` per column over the given value tuples: an index-friendly superset of the
    exact tuples (the caller keeps the exact ones in Python), portable to SQLite and PostgreSQL."""
    return [c.in_(sorted({v[i] for v in values})) for i, c in enumerate(cols)]


def _latest_columns() -> tuple[sa.ColumnElement[Any], ...]:
    """What a decision's latest version says: key, version, who, when, what and how many."""
    return (
        TD.c.sku,
        TD.c.from_location,
        TD.c.to_location,
        TD.c.version,
        TD.c.decided_by,
        TD.c.decided_at,
        TD.c.decision,
        TD.c.new_quantity,
    )


def latest_versions(conn: sa.Connection, keys: Sequence[RecKey]) -> dict[RecKey, dict[str, Any]]:
    """The latest decision row (version, decided_by, decided_at, decision, new_quantity) per key."""
    out: dict[RecKey, dict[str, Any]] = {}
    for d, ks in _by_date(set(keys), lambda k: k.rec_run_date).items():
        wanted = {(k.sku, k.from_location, k.to_location) for k in ks}
        for part in _chunks(sorted(wanted), _SUPERSET_CHUNK):
            stmt = sa.select(*_latest_columns()).where(
                TD.c.rec_run_date == d, *_in_lists([TD.c.sku, TD.c.from_location, TD.c.to_location], part)
            )
            for r in conn.execute(stmt):
                lane = (r.sku, r.from_location, r.to_location)
                if lane not in wanted:
                    continue
                k = RecKey(d, *lane)
                if k in out and out[k]["version"] >= int(r.version):
                    continue
                out[k] = {
                    "version": int(r.version),
                    "decided_by": r.decided_by,
                    "decided_at": as_utc(r.decided_at),
                    "decision": r.decision,
                    "new_quantity": float(r.new_quantity),
                }
    return out


def load_recs(conn: sa.Connection, keys: Sequence[RecKey]) -> dict[RecKey, Rec]:
    """The published recommendations of ``keys`` (missing keys are left out) with their latest decision."""
    lf, lt = LM.alias("lf"), LM.alias("lt")
    out: dict[RecKey, Rec] = {}
    for d, ks in _by_date(set(keys), lambda k: k.rec_run_date).items():
        wanted = {(k.sku, k.from_location, k.to_location) for k in ks}
        for part in _chunks(sorted(wanted), _SUPERSET_CHUNK):
            stmt = (
                sa.select(
                    TR.c.sku,
                    TR.c.from_location,
                    TR.c.to_location,
                    TR.c.run_id,
                    TR.c.quantity,
                    TR.c.donor_excess_units,
                    IM.c.pack_size,
                    IM.c.unit_cost,
                    lf.c.region.label("from_region"),
                    lt.c.region.label("to_region"),
                )
                .select_from(TR)
                .outerjoin(IM, sa.and_(IM.c.run_date == TR.c.run_date, IM.c.sku == TR.c.sku))
                .outerjoin(lf, sa.and_(lf.c.run_date == TR.c.run_date, lf.c.location == TR.c.from_location))
                .outerjoin(lt, sa.and_(lt.c.run_date == TR.c.run_date, lt.c.location == TR.c.to_location))
                .where(TR.c.run_date == d, *_in_lists([TR.c.sku, TR.c.from_location, TR.c.to_location], part))
            )
            for r in conn.execute(stmt):
                lane = (r.sku, r.from_location, r.to_location)
                if lane not in wanted:
                    continue
                k = RecKey(d, *lane)
                out[k] = Rec(
                    key=k,
                    run_id=r.run_id,
                    quantity=float(r.quantity),
                    donor_excess_units=float(r.donor_excess_units or 0.0),
                    pack_size=int(r.pack_size or 1),
                    unit_cost=float(r.unit_cost or 0.0),
                    from_region=r.from_region,
                    to_region=r.to_region,
                )
    _attach(out, latest_versions(conn, list(out)))
    return out


def _attach(recs: dict[RecKey, Rec], latest: dict[RecKey, dict[str, Any]]) -> None:
    for k, d in latest.items():
        rec = recs[k]
        rec.version, rec.decided_by, rec.decided_at = d["version"], d["decided_by"], d["decided_at"]
        rec.decision, rec.new_quantity = d["decision"], d["new_quantity"]


def _newer(conn: sa.Connection, keys: Sequence[RecKey]) -> dict[tuple[str, str, str], tuple[date, float]]:
    """(sku, from, to) -> (latest run date, quantity) of recommendations newer than the given keys'."""
    out: dict[tuple[str, str, str], tuple[date, float]] = {}
    if not keys:
        return out
    oldest = min(k.rec_run_date for k in keys)
    wanted = {(k.sku, k.from_location, k.to_location) for k in keys}
    for part in _chunks(sorted(wanted), _SUPERSET_CHUNK):
        cols = [TR.c.sku, TR.c.from_location, TR.c.to_location]
        stmt = sa.select(*cols, TR.c.run_date, TR.c.quantity).where(TR.c.run_date > oldest, *_in_lists(cols, part))
        for r in conn.execute(stmt):
            lane = (r.sku, r.from_location, r.to_location)
            d = as_date(r.run_date)
            if lane in wanted and (lane not in out or out[lane][0] < d):
                out[lane] = (d, float(r.quantity))
    return out


def lane_lines(conn: sa.Connection, lanes: Iterable[tuple[date, str, str]]) -> dict[tuple[date, str, str], list[Rec]]:
    """Every recommendation on each (run date, from, to), with its latest decision (only the
    fields a shipment needs: quantity, decision, who)."""
    lanes = sorted(set(lanes))
    out: dict[tuple[date, str, str], list[Rec]] = {lane: [] for lane in lanes}
    for d, ls in _by_date(lanes, lambda x: x[0]).items():
        wanted = {(a, b) for _, a, b in ls}
        recs: dict[RecKey, Rec] = {}
        for part in _chunks(sorted(wanted), _SUPERSET_CHUNK):
            stmt = sa.select(
                TR.c.sku, TR.c.from_location, TR.c.to_location, TR.c.run_id, TR.c.quantity, TR.c.donor_excess_units
            ).where(TR.c.run_date == d, *_in_lists([TR.c.from_location, TR.c.to_location], part))
            for r in conn.execute(stmt):
                if (r.from_location, r.to_location) not in wanted:
                    continue
                k = RecKey(d, r.sku, r.from_location, r.to_location)
                recs[k] = Rec(k, r.run_id, float(r.quantity), float(r.donor_excess_units or 0.0), 1, 0.0, None, None)
            latest: dict[RecKey, dict[str, Any]] = {}
            stmt2 = sa.select(*_latest_columns()).where(
                TD.c.rec_run_date == d, *_in_lists([TD.c.from_location, TD.c.to_location], part)
            )
            for dr in conn.execute(stmt2):
                k = RecKey(d, dr.sku, dr.from_location, dr.to_location)
                if k not in recs or (k in latest and latest[k]["version"] >= int(dr.version)):
                    continue
                latest[k] = {
                    "version": int(dr.version),
                    "decided_by": dr.decided_by,
                    "decided_at": as_utc(dr.decided_at),
                    "decision": dr.decision,
                    "new_quantity": float(dr.new_quantity),
                }
            _attach(recs, latest)
        for rec in sorted(recs.values(), key=lambda r: r.key):
            out[(d, rec.key.from_location, rec.key.to_location)].append(rec)
    return out


def lane_totals(conn: sa.Connection, lanes: Iterable[tuple[date, str, str]]) -> dict[tuple[date, str, str], float]:
    """Units each (run date, from, to) ships as things stand: approved lines at their approved
    quantity, rejected ones at zero, undecided ones at the recommended quantity (one aggregate
    query per night; the latest decision per recommendation by a window function)."""
    out: dict[tuple[date, str, str], float] = {}
    for d, ls in _by_date(sorted(set(lanes)), lambda x: x[0]).items():
        wanted = {(a, b) for _, a, b in ls}
        for part in _chunks(sorted(wanted), _SUPERSET_CHUNK):
            key = [TD.c.sku, TD.c.from_location, TD.c.to_location]
            ranked = (
                sa.select(
                    *key,
                    TD.c.decision,
                    TD.c.new_quantity,
                    sa.func.row_number().over(partition_by=key, order_by=TD.c.version.desc()).label("rn"),
                )
                .where(TD.c.rec_run_date == d, *_in_lists([TD.c.from_location, TD.c.to_location], part))
                .subquery("ranked")
            )
            ld = sa.select(ranked).where(ranked.c.rn == 1).subquery("ld")
            units = sa.case(
                (ld.c.decision == "approve", ld.c.new_quantity), (ld.c.decision == "reject", 0.0), else_=TR.c.quantity
            )
            stmt = (
                sa.select(TR.c.from_location, TR.c.to_location, sa.func.sum(units).label("units"))
                .select_from(TR)
                .outerjoin(
                    ld,
                    sa.and_(
                        ld.c.sku == TR.c.sku,
                        ld.c.from_location == TR.c.from_location,
                        ld.c.to_location == TR.c.to_location,
                    ),
                )
                .where(TR.c.run_date == d, *_in_lists([TR.c.from_location, TR.c.to_location], part))
                .group_by(TR.c.from_location, TR.c.to_location)
            )
            for r in conn.execute(stmt):
                if (r.from_location, r.to_location) in wanted:
                    out[(d, r.from_location, r.to_location)] = float(r.units or 0.0)
    return out


def lane_master(conn: sa.Connection, lanes: Iterable[tuple[date, str, str]]) -> dict[tuple[date, str, str], dict]:
    """The lane master row (min_units, capacity, costs) of each (run date, from, to) that has one."""
    lanes = sorted(set(lanes))
    out: dict[tuple[date, str, str], dict] = {}
    for d, ls in _by_date(lanes, lambda x: x[0]).items():
        wanted = {(a, b) for _, a, b in ls}
        for part in _chunks(sorted(wanted), _SUPERSET_CHUNK):
            stmt = sa.select(LN).where(LN.c.run_date == d, *_in_lists([LN.c.from_location, LN.c.to_location], part))
            for r in conn.execute(stmt):
                if (r.from_location, r.to_location) in wanted:
                    out[(d, r.from_location, r.to_location)] = dict(r._mapping)
    return out


def transfer_value(rec: Rec, quantity: float) -> float:
    """The value the authority limit is checked against: quantity x unit cost."""
    return quantity * rec.unit_cost


def fmt_number(x: float) -> str:
    """A quantity or value as the messages write it: whole numbers without decimals, others with two."""
    return f"{x:,.0f}" if abs(x - round(x)) < _EPS else f"{x:,.2f}"


def _check_current(
    key: RecKey,
    rec: Rec | None,
    latest: date | None,
    newer: dict[tuple[str, str, str], tuple[date, float]],
    rec_run_id: str | None,
) -> Rec:
    lane = (key.sku, key.from_location, key.to_location)
    if rec is None:
        if lane in newer and newer[lane][0] > key.rec_run_date:
            d, q = newer[lane]
            raise DecisionRefused(
                key, "replaced", f"replaced by the recommendation of run {d} ({fmt_number(q)} units): decide that one"
            )
        raise DecisionRefused(
            key, "not_found", f"no such recommendation in the publication of {key.rec_run_date} (table transfers)"
        )
    if rec_run_id is not None and rec_run_id != rec.run_id:
        raise DecisionRefused(
            key,
            "replaced",
            f"the night of {key.rec_run_date} was re-published (run {rec.run_id}, you saw run {rec_run_id}):"
            " reload the line",
        )
    if latest is not None and latest > key.rec_run_date:
        if lane in newer and newer[lane][0] > key.rec_run_date:
            d, q = newer[lane]
            raise DecisionRefused(
                key, "replaced", f"replaced by the recommendation of run {d} ({fmt_number(q)} units): decide that one"
            )
        raise DecisionRefused(key, "replaced", f"obsolete: the latest run {latest} no longer recommends this transfer")
    return rec


def _check_region(user: User, rec: Rec) -> None:
    if user.sees_all_regions:
        return
    if rec.from_region in user.regions or rec.to_region in user.regions:
        return
    raise DecisionRefused(
        rec.key,
        "region",
        f"outside your regions ({', '.join(user.regions) or 'none'}): donor {rec.key.from_location} is in"
        f" {rec.from_region or '?'}, receiver {rec.key.to_location} in {rec.to_region or '?'}",
    )


def _check_quantity(rec: Rec, quantity: float) -> None:
    k = rec.key
    if not math.isfinite(quantity) or quantity <= 0:
        raise DecisionRefused(k, "quantity", f"quantity {quantity:g} must be more than zero (reject instead)")
    packs = quantity / rec.pack_size
    if abs(packs - round(packs)) > _EPS:
        lo = math.floor(packs) * rec.pack_size
        raise DecisionRefused(
            k,
            "packs",
            f"quantity {fmt_number(quantity)} is not whole packs of {rec.pack_size} (e.g. {fmt_number(lo)} or"
            f" {fmt_number(lo + rec.pack_size)})",
        )
    if quantity > rec.max_quantity + _EPS:
        raise DecisionRefused(
            k,
            "donor",
            f"quantity {fmt_number(quantity)} is more than donor {k.from_location} can give: at most {fmt_number(rec.max_quantity)}"
            f" (recommended {fmt_number(rec.quantity)} + its excess {fmt_number(rec.donor_excess_units)} units)",
        )


def _check_authority(user: User, rec: Rec, quantity: float, limit: float) -> None:
    if user.role != "planner":
        return
    value = transfer_value(rec, quantity)
    if value > limit + _EPS:
        raise DecisionRefused(
            rec.key,
            "authority",
            f"transfer value {fmt_number(value)} ({fmt_number(quantity)} units x unit cost {rec.unit_cost:g}) is above your"
            f" approval limit {fmt_number(limit)}: a manager must approve it",
        )


def _check_reason(key: RecKey, decision: str, reason_code: str | None, reason_text: str | None) -> None:
    if decision not in DECISIONS:
        raise DecisionRefused(key, "decision", f"decision {decision!r} is not approve or reject")
    if decision == "reject":
        if reason_code not in REASON_CODES:
            raise DecisionRefused(key, "reason", f"a rejection needs a reason code: one of {', '.join(REASON_CODES)}")
        if reason_code == "other" and not (reason_text or "").strip():
            raise DecisionRefused(key, "reason", "reason 'other' needs a free text saying why")


def _check_version(rec: Rec, expected_version: int | None, user: User) -> None:
    if expected_version is None:
        if rec.version and rec.decided_by not in (user.name, SYSTEM_USER):
            raise Conflict(rec.key, rec.decided_by or "?", rec.decided_at, rec.version, rec.decision or "?")
        return
    if rec.version != expected_version:
        raise Conflict(rec.key, rec.decided_by or "?", rec.decided_at, rec.version, rec.decision or "?")


@dataclass
class _Plan:
    rec: Rec
    decision: str
    quantity: float
    reason_code: str | None
    reason_text: str | None
    warnings: list[str] = field(default_factory=list)


def _lane_checks(conn: sa.Connection, plans: list[_Plan]) -> list[DecisionRefused]:
    """Check the shipments the plans change; refused approvals are removed from ``plans``."""
    lanes = {(p.rec.key.rec_run_date, p.rec.key.from_location, p.rec.key.to_location) for p in plans}
    masters = lane_master(conn, lanes)
    constrained = [ln for ln, m in masters.items() if float(m["min_units"] or 0) > 0 or m["capacity"] is not None]
    totals = lane_totals(conn, constrained)
    refused: list[DecisionRefused] = []
    by_lane: dict[tuple[date, str, str], list[_Plan]] = {}
    for p in plans:
        by_lane.setdefault((p.rec.key.rec_run_date, p.rec.key.from_location, p.rec.key.to_location), []).append(p)
    for lane, lane_plans in by_lane.items():
        m = masters.get(lane)
        if m is None or lane not in totals:
            continue  # no lane master for that night (older runs), or a lane without minimum and capacity
        total = totals[lane] + sum(
            (p.quantity if p.decision == "approve" else 0.0) - p.rec.effective_quantity for p in lane_plans
        )
        min_units, cap = float(m["min_units"] or 0), m["capacity"]
        problem = None
        if 0 < total < min_units - _EPS:
            problem = (
                "lane_minimum",
                f"the shipment {lane[1]}→{lane[2]} of {lane[0]} would carry {fmt_number(total)} units, below the lane"
                f" minimum of {fmt_number(min_units)}: approve more of its lines, or reject them all",
            )
        elif cap is not None and total > float(cap) + _EPS:
            problem = (
                "lane_capacity",
                f"the shipment {lane[1]}→{lane[2]} of {lane[0]} would carry {fmt_number(total)} units, above the lane"
                f" capacity of {fmt_number(float(cap))}",
            )
        if problem is None:
            continue
        for p in lane_plans:
            if p.decision == "reject":
                p.warnings.append(problem[1])
            else:
                refused.append(DecisionRefused(p.rec.key, problem[0], problem[1]))
                plans.remove(p)
    return refused


def _insert(
    conn: sa.Connection, user: User, plans: list[_Plan], source: str, now: datetime
) -> tuple[list[Decided], list[Rec]]:
    """Append the rows; returns what was written and the recs that lost a race (conflicts)."""
    rows = []
    for p in plans:
        k = p.rec.key
        rows.append(
            {
                "decision_id": uuid.uuid4().hex,
                "decided_at": now,
                "decided_by": user.name,
                "actor_role": user.role,
                "source": source,
                "rec_run_date": k.rec_run_date,
                "rec_run_id": p.rec.run_id,
                "sku": k.sku,
                "from_location": k.from_location,
                "to_location": k.to_location,
                "decision": p.decision,
                "old_quantity": p.rec.quantity,
                "new_quantity": p.quantity if p.decision == "approve" else 0.0,
                "reason_code": p.reason_code if p.decision == "reject" else None,
                "reason_text": (p.reason_text or None),
                "version": p.rec.version + 1,
            }
        )
    written: set[str] = set()
    dialect = conn.dialect.name
    for part in _chunks(rows, 5000):
        if dialect in ("postgresql", "sqlite"):
            from sqlalchemy.dialects import postgresql, sqlite

            ins = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(TD)
            stmt = ins.on_conflict_do_nothing(
                index_elements=[TD.c.rec_run_date, TD.c.sku, TD.c.from_location, TD.c.to_location, TD.c.version]
            ).returning(TD.c.decision_id)
            # executemany with RETURNING: SQLAlchemy batches it into multi-row statements
            written |= {r[0] for r in conn.execute(stmt, list(part))}
        else:  # other dialects: one row at a time, a unique violation is the conflict
            for row in part:
                try:
                    with conn.begin_nested():
                        conn.execute(TD.insert().values(**row))
                    written.add(row["decision_id"])
                except sa.exc.IntegrityError:
                    pass
    done, lost = [], []
    for p, row in zip(plans, rows, strict=True):
        if row["decision_id"] in written:
            done.append(
                Decided(
                    p.rec.key,
                    p.decision,
                    p.rec.version + 1,
                    p.rec.quantity,
                    p.quantity if p.decision == "approve" else 0.0,
                    str(row["decision_id"]),
                    p.warnings,
                )
            )
        else:
            lost.append(p.rec)
    return done, lost


def _conflicts(conn: sa.Connection, lost: list[Rec]) -> list[DecisionRefused]:
    now = latest_versions(conn, [r.key for r in lost])
    out: list[DecisionRefused] = []
    for r in lost:
        d = now.get(r.key, {})
        out.append(
            Conflict(r.key, d.get("decided_by", "?"), d.get("decided_at"), d.get("version", 0), d.get("decision", "?"))
        )
    return out


def _run(
    conn: sa.Connection,
    user: User,
    requests: list[tuple[RecKey, str, float | None, str | None, str | None, int | None, str | None]],
    approval_limit: float,
    source: str,
    now: datetime | None,
) -> BulkResult:
    if source not in SOURCES:
        raise ValueError(f"source {source!r} is not one of {', '.join(SOURCES)}")
    if not user.active:
        raise PermissionError(f"user {user.name} is disabled")
    keys = [r[0] for r in requests]
    recs = load_recs(conn, keys)
    latest = latest_run_date(conn)
    stale = [k for k in keys if k not in recs or (latest is not None and latest > k.rec_run_date)]
    newer = _newer(conn, stale)
    result = BulkResult()
    plans: list[_Plan] = []
    seen: set[RecKey] = set()
    for key, decision, quantity, reason_code, reason_text, expected, run_id in requests:
        try:
            if key in seen:
                raise DecisionRefused(key, "duplicate", "the same recommendation twice in one request")
            seen.add(key)
            rec = _check_current(key, recs.get(key), latest, newer, run_id)
            _check_region(user, rec)
            _check_reason(key, decision, reason_code, reason_text)
            qty = rec.quantity if quantity is None else float(quantity)
            if decision == "approve":
                _check_quantity(rec, qty)
                _check_authority(user, rec, qty, approval_limit)
            _check_version(rec, expected, user)
            plans.append(_Plan(rec, decision, qty if decision == "approve" else 0.0, reason_code, reason_text))
        except DecisionRefused as exc:
            result.refused.append(exc)
    if plans:
        result.refused += _lane_checks(conn, plans)
    if plans:
        done, lost = _insert(conn, user, plans, source, now or datetime.now(UTC))
        result.decided += done
        result.refused += _conflicts(conn, lost)
    return result


def decide(
    conn: sa.Connection,
    user: User,
    rec_key: RecKey,
    decision: str,
    quantity: float | None = None,
    reason_code: str | None = None,
    reason_text: str | None = None,
    expected_version: int | None = None,
    *,
    rec_run_id: str | None = None,
    approval_limit: float = DEFAULT_APPROVAL_LIMIT,
    source: str = "workbench",
    now: datetime | None = None,
) -> Decided:
    """Decide one recommendation (rules: module doc); raises :class:`DecisionRefused` /
    :class:`Conflict`. ``quantity`` None approves the recommended quantity. Runs in the caller's
    transaction on ``conn`` (commit it)."""
    res = _run(
        conn,
        user,
        [(rec_key, decision, quantity, reason_code, reason_text, expected_version, rec_run_id)],
        approval_limit,
        source,
        now,
    )
    if res.refused:
        raise res.refused[0]
    return res.decided[0]


def bulk_approve(
    conn: sa.Connection,
    user: User,
    items: Sequence[tuple[RecKey, int | None] | tuple[RecKey, int | None, str | None]],
    *,
    approval_limit: float = DEFAULT_APPROVAL_LIMIT,
    source: str = "workbench",
    now: datetime | None = None,
) -> BulkResult:
    """Approve many recommendations at their recommended quantity; ``items``: (key, expected
    version) or (key, expected version, run id seen). Each line is checked on its own: the allowed
    ones are written, the others come back in ``refused`` with their rule."""
    return _run(
        conn,
        user,
        [(it[0], "approve", None, None, None, it[1], it[2] if len(it) > 2 else None) for it in items],
        approval_limit,
        source,
        now,
    )


def decide_many(
    conn: sa.Connection,
    user: User,
    requests: Sequence[tuple[RecKey, str, float | None, str | None, str | None]],
    *,
    approval_limit: float = DEFAULT_APPROVAL_LIMIT,
    source: str = "upload",
    now: datetime | None = None,
) -> BulkResult:
    """Decisions from a file: (key, decision, quantity or None, reason code, reason text) each,
    checked as :func:`decide` with ``expected_version=None``."""
    return _run(
        conn, user, [(k, d, q, rc, rt, None, None) for k, d, q, rc, rt in requests], approval_limit, source, now
    )


@dataclass
class ImportReport:
    """An uploaded or imported decisions file: rows written, and every row left out with its line."""

    source: str
    encoding: str
    decided: list[Decided] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def summary(self) -> str:
        out = f"{self.source} ({self.encoding}): {len(self.decided)} decision(s) imported"
        if self.problems:
            out += f", {len(self.problems)} row(s) left out"
        return out


def import_decisions(
    conn: sa.Connection,
    user: User,
    parsed: Any,
    *,
    approval_limit: float = DEFAULT_APPROVAL_LIMIT,
    source: str = "upload",
    now: datetime | None = None,
) -> ImportReport:
    """Decide the good rows of ``parsed`` (a :class:`pipelines.decisions.ParsedDecisions`) through
    :func:`decide_many`; the file's bad rows and the refused decisions are reported by file line."""
    rep = ImportReport(parsed.source, parsed.encoding, problems=[str(p) for p in parsed.problems])
    rows = parsed.rows
    requests = []
    line_of: dict[RecKey, int] = {}
    for r in rows.itertuples(index=False):
        key = RecKey(r.run_date.date(), r.sku, r.from_location, r.to_location)
        line_of[key] = int(r.line)
        requests.append(
            (
                key,
                r.decision,
                float(r.quantity) if r.decision == "approve" else None,
                str(r.reason_code or "") or None,
                str(r.reason_text or "") or None,
            )
        )
    if requests:
        res = decide_many(conn, user, requests, approval_limit=approval_limit, source=source, now=now)
        rep.decided = res.decided
        rep.problems += [f"line {line_of.get(e.key, 0)}: rule {e.rule!r}: {e}" for e in res.refused]
    rep.problems.sort(key=lambda t: int(t.split(":")[0].split()[1]) if t.startswith("line ") else 0)
    return rep
