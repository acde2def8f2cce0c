"""What the workbench pages read: SQLAlchemy Core with bound parameters, scoped to the user.

A planner sees the transfers whose receiver *or* donor is in one of their regions, and the alerts
of locations in their regions (``location_master`` of the run date); managers and admins see all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import sqlalchemy as sa

from pipelines.reporting import OUTPUT_SA, PUBLISHED_RUNS, RUN_LOG, TRANSFER_DECISIONS
from pipelines.workbench.service import RecKey, latest_run_date, latest_versions
from pipelines.workbench.users import User

TR = OUTPUT_SA["transfers"]
IM = OUTPUT_SA["item_master"]
LM = OUTPUT_SA["location_master"]
AL = OUTPUT_SA["alerts"]
IP = OUTPUT_SA["inventory_policy"]
FC = OUTPUT_SA["forecasts"]
KP = OUTPUT_SA["kpis"]
DQ = OUTPUT_SA["dq_results"]
QU = OUTPUT_SA["quarantine"]
TD = TRANSFER_DECISIONS

STATUSES = ("undecided", "approved", "rejected")
TIERS = ("planner", "auto")
SORTS = {
    "benefit": "expected benefit",
    "stockout": "stockout date",
    "value": "transfer value",
    "cost": "transfer cost",
    "sku": "SKU",
}


@dataclass
class TransferFilter:
    region: str = ""
    location: str = ""
    category: str = ""
    tier: str = ""
    status: str = ""
    q: str = ""
    sort: str = "benefit"
    page: int = 1

    def as_params(self) -> dict[str, str]:
        return {k: str(v) for k, v in self.__dict__.items() if v not in ("", None) and k != "page"}


@dataclass
class Page:
    rows: list[dict[str, Any]]
    total: int
    page: int
    page_size: int
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def pages(self) -> int:
        return max(1, -(-min(self.total, COUNT_CAP) // self.page_size))

    @property
    def total_text(self) -> str:
        return f"{COUNT_CAP:,}+" if self.total > COUNT_CAP else f"{self.total:,}"


def current_run(conn: sa.Connection) -> tuple[date | None, str | None]:
    d = latest_run_date(conn)
    if d is None:
        return None, None
    rid = conn.execute(sa.select(PUBLISHED_RUNS.c.run_id).where(PUBLISHED_RUNS.c.run_date == d)).scalar()
    return d, rid


def _same_rec(td: Any) -> Any:
    return sa.and_(
        td.c.rec_run_date == TR.c.run_date,
        td.c.sku == TR.c.sku,
        td.c.from_location == TR.c.from_location,
        td.c.to_location == TR.c.to_location,
    )


def _latest_decision_of_row() -> Any:
    """The decision (approve / reject) of the latest version of the row's recommendation, correlated
    (an index probe of ix_transfer_decisions_rec_key per row), NULL when undecided."""
    td = TD.alias("tdl")
    return sa.select(td.c.decision).where(_same_rec(td)).order_by(td.c.version.desc()).limit(1).scalar_subquery()


def _transfer_select(run_date: date) -> tuple[Any, Any, Any]:
    """Transfers of ``run_date`` with item and location names; the latest decisions are attached
    afterwards for the rows shown (:func:`_with_decisions`), never joined over the whole night."""
    lf, lt = LM.alias("lf"), LM.alias("lt")
    value = (TR.c.quantity * sa.func.coalesce(IM.c.unit_cost, 0.0)).label("value")
    stmt = (
        sa.select(
            TR,
            IM.c.name.label("item_name"),
            IM.c.name_en.label("item_name_en"),
            IM.c.category,
            IM.c.unit_cost,
            IM.c.pack_size,
            lf.c.name.label("from_name"),
            lt.c.name.label("to_name"),
            lf.c.region.label("from_region"),
            lt.c.region.label("to_region"),
            value,
        )
        .select_from(TR)
        .outerjoin(IM, sa.and_(IM.c.run_date == TR.c.run_date, IM.c.sku == TR.c.sku))
        .outerjoin(lf, sa.and_(lf.c.run_date == TR.c.run_date, lf.c.location == TR.c.from_location))
        .outerjoin(lt, sa.and_(lt.c.run_date == TR.c.run_date, lt.c.location == TR.c.to_location))
        .where(TR.c.run_date == run_date)
    )
    return stmt, lf, lt


def _with_decisions(conn: sa.Connection, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    keys = [RecKey(_d(r["run_date"]), r["sku"], r["from_location"], r["to_location"]) for r in rows]
    latest = latest_versions(conn, keys)
    empty = {"version": None, "decision": None, "new_quantity": None, "decided_by": None, "decided_at": None}
    return [{**r, **latest.get(k, empty)} for r, k in zip(rows, keys, strict=True)]


def _d(v: Any) -> date:
    return v if isinstance(v, date) else date.fromisoformat(str(v)[:10])


#: lines counted at most for a list's total (shown as "5,000+"): counting every match of a 100,000-line
#: night on each page view would cost more than the page itself
COUNT_CAP = 5000


def _capped_count(conn: sa.Connection, stmt: Any) -> int:
    """Matching rows, counted up to COUNT_CAP + 1 (more than COUNT_CAP means "COUNT_CAP+")."""
    capped = stmt.with_only_columns(sa.literal_column("1").label("one")).limit(COUNT_CAP + 1)
    return int(conn.execute(sa.select(sa.func.count()).select_from(capped.subquery())).scalar_one())


def locations_of(conn: sa.Connection, run_date: date, regions: Any) -> list[str]:
    """Location codes of ``regions`` in the location master of ``run_date``."""
    return [
        r[0]
        for r in conn.execute(sa.select(LM.c.location).where(LM.c.run_date == run_date, LM.c.region.in_(list(regions))))
    ]


def _either_end(locations: list[str]) -> Any:
    """The donor or the receiver is one of ``locations`` (resolved from regions first: a plain
    IN on the transfers' own columns, which the planner estimates well)."""
    locs = locations or ["\x00none"]
    return sa.or_(TR.c.from_location.in_(locs), TR.c.to_location.in_(locs))


def _scope(conn: sa.Connection, user: User, run_date: date) -> list[Any]:
    if user.sees_all_regions:
        return []
    return [_either_end(locations_of(conn, run_date, user.regions))]


def _like(text: str) -> str:
    esc = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{esc.lower()}%"


def transfers_page(conn: sa.Connection, user: User, f: TransferFilter, page_size: int) -> Page:
    run_date, _ = current_run(conn)
    if run_date is None:
        return Page([], 0, 1, page_size)
    stmt, lf, lt = _transfer_select(run_date)
    cond = _scope(conn, user, run_date)
    if f.region:
        cond.append(_either_end(locations_of(conn, run_date, [f.region])))
    if f.location:
        cond.append(sa.or_(TR.c.from_location == f.location, TR.c.to_location == f.location))
    if f.category:
        cond.append(IM.c.category == f.category)
    if f.tier in TIERS:
        cond.append(TR.c.approval_tier == f.tier)
    if f.status == "undecided":  # NOT IN: one hashed set of the night's decided keys
        decided = sa.select(TD.c.sku, TD.c.from_location, TD.c.to_location).where(TD.c.rec_run_date == run_date)
        cond.append(sa.tuple_(TR.c.sku, TR.c.from_location, TR.c.to_location).not_in(decided))
    elif f.status == "approved":
        cond.append(_latest_decision_of_row() == "approve")
    elif f.status == "rejected":
        cond.append(_latest_decision_of_row() == "reject")
    if f.q.strip():
        pat = _like(f.q.strip())
        cond.append(
            sa.or_(
                sa.func.lower(TR.c.sku).like(pat, escape="\\"),
                sa.func.lower(IM.c.name).like(pat, escape="\\"),
                sa.func.lower(IM.c.name_en).like(pat, escape="\\"),
            )
        )
    stmt = stmt.where(*cond)
    total = _capped_count(conn, stmt)
    orders: dict[str, list[Any]] = {
        "benefit": [TR.c.expected_benefit.desc()],
        "stockout": [TR.c.receiver_stockout_date.is_(None), TR.c.receiver_stockout_date, TR.c.expected_benefit.desc()],
        "value": [sa.literal_column("value").desc()],
        "cost": [TR.c.transfer_cost.desc()],
        "sku": [TR.c.sku],
    }
    order = orders.get(f.sort, orders["benefit"])
    page = max(1, f.page)
    rows = conn.execute(
        stmt.order_by(*order, TR.c.sku, TR.c.from_location, TR.c.to_location)
        .limit(page_size)
        .offset((page - 1) * page_size)
    ).all()
    out = _with_decisions(conn, [dict(r._mapping) for r in rows])
    return Page(out, int(total), page, page_size, {"run_date": run_date})


def filter_options(conn: sa.Connection, user: User) -> dict[str, list[str]]:
    """Regions, locations and categories of the latest night. All of them, also for a planner: a
    line they see may leave or reach another region, and the filters only narrow their scope."""
    run_date, _ = current_run(conn)
    if run_date is None:
        return {"regions": [], "locations": [], "categories": []}

    def distinct(col: Any, table: Any) -> list[str]:
        return [r[0] for r in conn.execute(sa.select(col).where(table.c.run_date == run_date).distinct().order_by(col))]

    return {
        "regions": distinct(LM.c.region, LM),
        "locations": distinct(LM.c.location, LM),
        "categories": distinct(IM.c.category, IM),
    }


def transfer_detail(conn: sa.Connection, user: User, key: RecKey) -> dict[str, Any] | None:
    """The recommendation (None when unknown or outside the user's regions) and its decision history."""
    stmt, lf, lt = _transfer_select(key.rec_run_date)
    stmt = stmt.where(TR.c.sku == key.sku, TR.c.from_location == key.from_location, TR.c.to_location == key.to_location)
    r = conn.execute(stmt.where(*_scope(conn, user, key.rec_run_date))).first()
    if r is None:
        return None
    rec = _with_decisions(conn, [dict(r._mapping)])[0]
    history = conn.execute(
        sa.select(TD)
        .where(
            TD.c.rec_run_date == key.rec_run_date,
            TD.c.sku == key.sku,
            TD.c.from_location == key.from_location,
            TD.c.to_location == key.to_location,
        )
        .order_by(TD.c.version)
    ).all()
    return {"rec": rec, "history": [dict(h._mapping) for h in history]}


def projection(conn: sa.Connection, run_date: date, sku: str, location: str, days: int = 28) -> dict[str, Any] | None:
    """Position and forecast of one SKU-location at ``run_date``: available, reorder point, safety
    stock, and per day the mean / p50 / p90 forecast."""
    pol = conn.execute(
        sa.select(IP).where(IP.c.run_date == run_date, IP.c.sku == sku, IP.c.location == location)
    ).first()
    fc = conn.execute(
        sa.select(FC.c.target_date, FC.c.mean, FC.c.p50, FC.c.p90)
        .where(FC.c.run_date == run_date, FC.c.sku == sku, FC.c.location == location)
        .order_by(FC.c.target_date)
        .limit(days)
    ).all()
    if pol is None:
        return None
    return {"policy": dict(pol._mapping), "forecast": [dict(x._mapping) for x in fc]}


def project_stock(
    start: float, forecast: list[dict[str, Any]], change_day: date | None, change: float
) -> tuple[list[date], list[float], list[float], list[float]]:
    """Projected stock at the end of each forecast day under mean, p50 and p90 daily demand, with
    ``change`` units added on ``change_day`` (a transfer's arrival; negative at the donor). Daily
    p90 summed is a pessimistic band (the sum of daily quantiles exceeds the quantile of the sum)."""
    days, mean, p50, p90 = [], [], [], []
    m = a = b = start
    for row in forecast:
        d = row["target_date"]
        d = d if isinstance(d, date) else date.fromisoformat(str(d)[:10])
        add = change if change_day is not None and d == change_day else 0.0
        # lost sales, not backorders: stock that runs out stays at zero until the next arrival
        m = max(m + add - float(row["mean"]), 0.0)
        a = max(a + add - float(row["p50"]), 0.0)
        b = max(b + add - float(row["p90"]), 0.0)
        days.append(d)
        mean.append(m)
        p50.append(a)
        p90.append(b)
    return days, mean, p50, p90


def alerts_page(
    conn: sa.Connection, user: User, page: int, page_size: int, alert_type: str = "", severity: str = "", q: str = ""
) -> Page:
    run_date, _ = current_run(conn)
    if run_date is None:
        return Page([], 0, 1, page_size)
    loc = LM.alias("loc")
    stmt = (
        sa.select(
            AL,
            IM.c.name.label("item_name"),
            IM.c.name_en.label("item_name_en"),
            loc.c.name.label("loc_name"),
            loc.c.region,
        )
        .select_from(AL)
        .outerjoin(IM, sa.and_(IM.c.run_date == AL.c.run_date, IM.c.sku == AL.c.sku))
        .outerjoin(loc, sa.and_(loc.c.run_date == AL.c.run_date, loc.c.location == AL.c.location))
        .where(AL.c.run_date == run_date)
    )
    if not user.sees_all_regions:
        stmt = stmt.where(loc.c.region.in_(list(user.regions) or ["\x00none"]))
    if alert_type:
        stmt = stmt.where(AL.c.alert_type == alert_type)
    if severity:
        stmt = stmt.where(AL.c.severity == severity)
    if q.strip():
        pat = _like(q.strip())
        stmt = stmt.where(
            sa.or_(
                sa.func.lower(AL.c.sku).like(pat, escape="\\"),
                sa.func.lower(IM.c.name).like(pat, escape="\\"),
                sa.func.lower(IM.c.name_en).like(pat, escape="\\"),
            )
        )
    total = _capped_count(conn, stmt)
    sev = sa.case({"high": 0, "medium": 1}, value=AL.c.severity, else_=2)
    kind = sa.case({"stockout_risk": 0}, value=AL.c.alert_type, else_=1)
    rows = conn.execute(
        stmt.order_by(kind, sev, AL.c.value_at_risk.desc(), AL.c.sku, AL.c.location)
        .limit(page_size)
        .offset((max(page, 1) - 1) * page_size)
    ).all()
    return Page([dict(r._mapping) for r in rows], int(total), max(page, 1), page_size, {"run_date": run_date})


def _days_to(run_date: date, d: Any) -> int | None:
    if d is None:
        return None
    d = d if isinstance(d, date) else date.fromisoformat(str(d)[:10])
    return (d - run_date).days


def urgency(money: float, days: int | None) -> float:
    """Money at risk per day left before it happens (no date: as if 30 days away)."""
    return float(money or 0.0) / max(1, 30 if days is None else days)


def today(conn: sa.Connection, user: User, limit: int = 15) -> dict[str, Any]:
    """The morning's actions: stockouts to prevent (undecided transfers and stockout alerts) first,
    then the other stock at risk (near expiry, excess, slow), each ranked by money at risk per day
    to impact. Stockouts have their own list, so near-expiry value can never push them down."""
    run_date, run_id = current_run(conn)
    if run_date is None:
        return {"run_date": None, "stockouts": [], "other": [], "counts": {}}
    f = TransferFilter(status="undecided", tier="planner", sort="benefit")
    tp = transfers_page(conn, user, f, 200)
    actions = []
    for r in tp.rows:
        days = _days_to(run_date, r["receiver_stockout_date"])
        actions.append({"kind": "transfer", "row": r, "money": r["expected_benefit"], "days": days})
    ap = alerts_page(conn, user, 1, 200, alert_type="stockout_risk")
    for r in ap.rows:
        actions.append(
            {"kind": "alert", "row": r, "money": r["value_at_risk"], "days": _days_to(run_date, r["event_date"])}
        )
    for a in actions:
        a["score"] = urgency(a["money"], a["days"])
    stockouts = sorted(actions, key=lambda a: (-a["score"], a["kind"]))[:limit]
    other: list[dict[str, Any]] = []
    for t in ("near_expiry", "excess", "slow_mover"):
        for r in alerts_page(conn, user, 1, 100, alert_type=t).rows:
            days = _days_to(run_date, r["event_date"])
            other.append(
                {
                    "kind": "alert",
                    "row": r,
                    "money": r["value_at_risk"],
                    "days": days,
                    "score": urgency(r["value_at_risk"], days),
                }
            )
    other = sorted(other, key=lambda a: -a["score"])[:limit]
    counts = {
        "undecided": tp.total,
        "stockout_alerts": ap.total,
        "all_transfers": transfers_page(conn, user, TransferFilter(), 1).total,
    }
    return {"run_date": run_date, "run_id": run_id, "stockouts": stockouts, "other": other, "counts": counts}


def lane_view(conn: sa.Connection, key: RecKey) -> dict[str, Any]:
    """The other lines on the same lane and departure, the lane master, and what approving or
    rejecting this line does to the shipment's units and fixed cost per unit."""
    from pipelines.workbench.service import lane_lines, lane_master

    lane = (key.rec_run_date, key.from_location, key.to_location)
    lines = lane_lines(conn, [lane])[lane]
    m = lane_master(conn, [lane]).get(lane)
    now_units = sum(r.effective_quantity for r in lines)
    this = next((r for r in lines if r.key == key), None)
    without = now_units - (this.effective_quantity if this else 0.0)
    with_rec = without + (this.quantity if this else 0.0)
    out: dict[str, Any] = {
        "lines": lines,
        "master": m,
        "units_now": now_units,
        "units_if_rejected": without,
        "units_if_approved": with_rec,
    }
    if m is not None:
        fixed = float(m["fixed_cost_per_shipment"])
        out["fixed"] = fixed
        out["min_units"] = float(m["min_units"])
        for name, units in (("now", now_units), ("if_rejected", without), ("if_approved", with_rec)):
            out[f"fixed_per_unit_{name}"] = fixed / units if units > 0 else None
            out[f"below_min_{name}"] = 0 < units < float(m["min_units"])
    return out


def sku_location(conn: sa.Connection, user: User, sku: str, location: str) -> dict[str, Any] | None:
    run_date, _ = current_run(conn)
    if run_date is None:
        return None
    loc = conn.execute(sa.select(LM).where(LM.c.run_date == run_date, LM.c.location == location)).first()
    if loc is None or (not user.sees_all_regions and loc.region not in user.regions):
        return None
    item = conn.execute(sa.select(IM).where(IM.c.run_date == run_date, IM.c.sku == sku)).first()
    history = conn.execute(
        sa.select(
            IP.c.run_date,
            IP.c.on_hand,
            IP.c.available,
            IP.c.reorder_point,
            IP.c.safety_stock,
            IP.c.days_of_cover,
            IP.c.health_band,
        )
        .where(IP.c.sku == sku, IP.c.location == location)
        .order_by(IP.c.run_date)
    ).all()
    proj = projection(conn, run_date, sku, location)
    alerts = conn.execute(
        sa.select(AL).where(AL.c.run_date == run_date, AL.c.sku == sku, AL.c.location == location)
    ).all()
    trs = conn.execute(
        sa.select(TR)
        .where(
            TR.c.sku == sku,
            sa.or_(TR.c.from_location == location, TR.c.to_location == location),
            TR.c.run_date >= run_date - timedelta(days=60),
        )
        .order_by(TR.c.run_date.desc())
    ).all()
    keys = [RecKey(t.run_date, t.sku, t.from_location, t.to_location) for t in trs]
    decided = latest_versions(conn, keys)
    return {
        "run_date": run_date,
        "location": dict(loc._mapping),
        "item": dict(item._mapping) if item else None,
        "history": [dict(h._mapping) for h in history],
        "projection": proj,
        "alerts": [dict(a._mapping) for a in alerts],
        "transfers": [{**dict(t._mapping), "decision": decided.get(k)} for t, k in zip(trs, keys, strict=True)],
    }


def kpi_trends(conn: sa.Connection, days: int = 90) -> dict[str, Any]:
    run_date, _ = current_run(conn)
    if run_date is None:
        return {"metrics": {}, "dates": []}
    rows = conn.execute(
        sa.select(KP.c.run_date, KP.c.metric, KP.c.value)
        .where(KP.c.location == "*", KP.c.category == "*", KP.c.run_date > run_date - timedelta(days=days))
        .order_by(KP.c.run_date, KP.c.metric)
    ).all()
    dates = sorted({r.run_date for r in rows})
    metrics: dict[str, dict[date, float | None]] = {}
    for r in rows:
        metrics.setdefault(r.metric, {})[r.run_date] = r.value
    return {"dates": dates, "metrics": metrics, "run_date": run_date}


def runs(conn: sa.Connection, limit: int = 50, quarantine_limit: int = 200) -> dict[str, Any]:
    run_date, run_id = current_run(conn)
    log = conn.execute(sa.select(RUN_LOG).order_by(RUN_LOG.c.started_at.desc()).limit(limit)).all()
    dq = (
        conn.execute(
            sa.select(DQ).where(DQ.c.run_date == run_date).order_by(DQ.c.passed, DQ.c.table_name, DQ.c.rule)
        ).all()
        if run_date
        else []
    )
    qu = (
        conn.execute(
            sa.select(QU)
            .where(QU.c.run_date == run_date)
            .order_by(QU.c.table_name, QU.c.row_number)
            .limit(quarantine_limit)
        ).all()
        if run_date
        else []
    )
    published = conn.execute(sa.select(PUBLISHED_RUNS).order_by(PUBLISHED_RUNS.c.run_date.desc()).limit(limit)).all()
    return {
        "run_date": run_date,
        "run_id": run_id,
        "log": [dict(r._mapping) for r in log],
        "dq": [dict(r._mapping) for r in dq],
        "quarantine": [dict(r._mapping) for r in qu],
        "published": [dict(r._mapping) for r in published],
    }
