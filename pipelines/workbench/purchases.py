"""Decisions on purchase proposals: the rules, enforced on the server, and the page's rows.

The workbench's purchase page and tests call :func:`decide` on a connection inside the caller's
transaction; each decision appends one row to ``purchase_decisions`` (append-only, ``version`` =
the proposal's latest version + 1), as :mod:`pipelines.workbench.service` does for transfers.

Rules, in the order they are checked (a refusal names its rule, a
:class:`pipelines.workbench.service.DecisionRefused`):

1. **the proposal is current** (``not_found`` / ``replaced``): it is in the publication of its run
   date with the run id the user saw, and no newer run date is published (only the latest night's
   proposals can be decided: the next night proposes again from the new position).
2. **region** (``region``): a planner decides a proposal whose location's region
   (``location_master.region`` of the run date) is one of theirs; managers and admins every region.
3. **the decision** (``decision`` / ``reason``): approve or reject; a rejection needs a reason code
   of :data:`REASON_CODES`, ``other`` also a free text.
4. **quantity** (``quantity`` / ``moq`` / ``multiple``): an approval orders more than zero, at
   least the proposal's MOQ and a whole number of its order multiple.
5. **supplier** (``supplier``): an approval names a supplier: the one given, else the one the
   proposal's previous decision named, else the proposal's; none at all is refused (the order goes
   to someone).
6. **authority** (``authority``): the order value = quantity x the proposal's unit cost + its fixed
   order cost; a planner approves up to ``workbench.planner_approval_limit``, above it a manager.
7. **version** (``conflict``): ``expected_version`` is the version the user saw (0: undecided);
   when someone decided in between the decision is refused naming who and when; two simultaneous
   writers race on the unique (rec_run_date, sku, location, version) and one gets the conflict.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa

from pipelines.reporting import OUTPUT_SA, PURCHASE_DECISIONS, as_date
from pipelines.workbench.service import (  # the same number format and timestamps as transfer decisions
    DEFAULT_APPROVAL_LIMIT,
    Conflict,
    DecisionRefused,
    as_utc,
    fmt_number,
    latest_run_date,
)
from pipelines.workbench.users import User

REASON_CODES = ("already_ordered", "data_wrong", "not_needed", "too_costly", "other")
DECISIONS = ("approve", "reject")
SOURCES = ("workbench", "cli")
_EPS = 1e-6

PP = OUTPUT_SA["purchase_proposals"]
LM = OUTPUT_SA["location_master"]
IM = OUTPUT_SA["item_master"]
PD = PURCHASE_DECISIONS


@dataclass(frozen=True, order=True)
class PurchaseKey:
    """A purchase proposal: run date of the run that made it, sku and the receiving location."""

    rec_run_date: date
    sku: str
    location: str

    def __str__(self) -> str:
        return f"purchase of {self.sku} for {self.location} of {self.rec_run_date}"


@dataclass
class Proposal:
    """What the rules need to know about one proposal (and its latest decision)."""

    key: PurchaseKey
    run_id: str
    quantity: float
    moq: float
    order_multiple: float
    unit_cost: float
    fixed_order_cost: float
    supplier: str | None
    region: str | None
    version: int = 0
    decided_by: str | None = None
    decided_at: datetime | None = None
    decision: str | None = None
    decided_supplier: str | None = None


@dataclass
class PurchaseDecided:
    """One decision row written."""

    key: PurchaseKey
    decision: str
    version: int
    old_quantity: float
    new_quantity: float
    supplier: str | None
    decision_id: str


def _latest_decisions(run_date: date) -> sa.Subquery:
    """The latest decision row of every proposal of ``run_date``."""
    top = (
        sa.select(PD.c.sku, PD.c.location, sa.func.max(PD.c.version).label("version"))
        .where(PD.c.rec_run_date == run_date)
        .group_by(PD.c.sku, PD.c.location)
        .subquery()
    )
    return (
        sa.select(PD)
        .join(top, sa.and_(PD.c.sku == top.c.sku, PD.c.location == top.c.location, PD.c.version == top.c.version))
        .where(PD.c.rec_run_date == run_date)
        .subquery()
    )


def load_proposal(conn: sa.Connection, key: PurchaseKey) -> Proposal | None:
    """The proposal of ``key`` with its location's region and latest decision (None: not published)."""
    d = _latest_decisions(key.rec_run_date)
    row = (
        conn.execute(
            sa.select(
                PP.c.run_id,
                PP.c.quantity,
                PP.c.moq,
                PP.c.order_multiple,
                PP.c.unit_cost,
                PP.c.fixed_order_cost,
                PP.c.supplier,
                LM.c.region,
                d.c.version,
                d.c.decided_by,
                d.c.decided_at,
                d.c.decision,
                d.c.supplier.label("decided_supplier"),
            )
            .select_from(
                PP.outerjoin(LM, sa.and_(LM.c.run_date == PP.c.run_date, LM.c.location == PP.c.location)).outerjoin(
                    d, sa.and_(d.c.sku == PP.c.sku, d.c.location == PP.c.location)
                )
            )
            .where(PP.c.run_date == key.rec_run_date, PP.c.sku == key.sku, PP.c.location == key.location)
        )
        .mappings()
        .first()
    )
    if row is None:
        return None
    return Proposal(
        key=key,
        run_id=str(row["run_id"]),
        quantity=float(row["quantity"]),
        moq=float(row["moq"]),
        order_multiple=float(row["order_multiple"]),
        unit_cost=float(row["unit_cost"]),
        fixed_order_cost=float(row["fixed_order_cost"]),
        supplier=row["supplier"],
        region=row["region"],
        version=int(row["version"] or 0),
        decided_by=row["decided_by"],
        decided_at=as_utc(row["decided_at"]),
        decision=row["decision"],
        decided_supplier=row["decided_supplier"],
    )


def order_value(p: Proposal, quantity: float) -> float:
    """What the order costs: quantity x unit cost + the fixed order cost."""
    return quantity * p.unit_cost + p.fixed_order_cost


def _check_current(key: PurchaseKey, p: Proposal | None, latest: date | None, rec_run_id: str | None) -> Proposal:
    if p is None:
        raise DecisionRefused(
            key, "not_found", f"no such proposal in the publication of {key.rec_run_date} (table purchase_proposals)"
        )
    if rec_run_id is not None and rec_run_id != p.run_id:
        raise DecisionRefused(
            key,
            "replaced",
            f"the night of {key.rec_run_date} was re-published (run {p.run_id}, you saw run {rec_run_id}): reload it",
        )
    if latest is not None and latest > key.rec_run_date:
        raise DecisionRefused(
            key,
            "replaced",
            f"obsolete: the night of {latest} is published since; decide its proposals (the position has moved)",
        )
    return p


def _check_region(user: User, p: Proposal) -> None:
    if user.sees_all_regions or p.region in user.regions:
        return
    raise DecisionRefused(
        p.key,
        "region",
        f"outside your regions ({', '.join(user.regions) or 'none'}): {p.key.location} is in {p.region or '?'}",
    )


def _check_reason(key: PurchaseKey, decision: str, reason_code: str | None, reason_text: str | None) -> None:
    if decision not in DECISIONS:
        raise DecisionRefused(key, "decision", f"decision {decision!r} is not approve or reject")
    if decision == "reject":
        if reason_code not in REASON_CODES:
            raise DecisionRefused(
                key,
                "reason",
                f"a rejection needs a reason code: one of {', '.join(REASON_CODES)}",
            )
        if reason_code == "other" and not (reason_text or "").strip():
            raise DecisionRefused(key, "reason", "reason 'other' needs a free text saying why")


def _check_quantity(p: Proposal, quantity: float) -> None:
    k = p.key
    if not math.isfinite(quantity) or quantity <= 0:
        raise DecisionRefused(k, "quantity", f"quantity {quantity:g} must be more than zero (reject instead)")
    if quantity < p.moq - _EPS:
        raise DecisionRefused(
            k,
            "moq",
            f"quantity {fmt_number(quantity)} is below the supplier's minimum order quantity {fmt_number(p.moq)}",
        )
    steps = quantity / p.order_multiple
    if abs(steps - round(steps)) > _EPS:
        lo = math.floor(steps) * p.order_multiple
        raise DecisionRefused(
            k,
            "multiple",
            f"quantity {fmt_number(quantity)} is not a multiple of the order multiple {fmt_number(p.order_multiple)}"
            f" (e.g. {fmt_number(max(lo, p.moq))} or {fmt_number(lo + p.order_multiple)})",
        )


def _check_authority(user: User, p: Proposal, quantity: float, limit: float) -> None:
    if user.role != "planner":
        return
    value = order_value(p, quantity)
    if value > limit + _EPS:
        raise DecisionRefused(
            p.key,
            "authority",
            f"order value {fmt_number(value)} ({fmt_number(quantity)} units x {p.unit_cost:g} + order cost"
            f" {fmt_number(p.fixed_order_cost)}) is above your approval limit {fmt_number(limit)}: a manager must approve it",
        )


def _check_version(p: Proposal, expected_version: int) -> None:
    if p.version != expected_version:
        raise Conflict(p.key, p.decided_by or "?", p.decided_at, p.version, p.decision or "?")


def decide(
    conn: sa.Connection,
    user: User,
    key: PurchaseKey,
    decision: str,
    quantity: float | None = None,
    supplier: str | None = None,
    reason_code: str | None = None,
    reason_text: str | None = None,
    expected_version: int = 0,
    *,
    rec_run_id: str | None = None,
    approval_limit: float = DEFAULT_APPROVAL_LIMIT,
    source: str = "workbench",
    now: datetime | None = None,
) -> PurchaseDecided:
    """Decide one purchase proposal (rules: module doc); raises ``DecisionRefused`` / ``Conflict``.
    ``quantity`` None approves the proposed quantity; ``supplier`` None keeps the proposal's. Runs in
    the caller's transaction on ``conn`` (commit it)."""
    if source not in SOURCES:
        raise ValueError(f"source {source!r} is not one of {', '.join(SOURCES)}")
    if not user.active:
        raise PermissionError(f"user {user.name} is disabled")
    p = _check_current(key, load_proposal(conn, key), latest_run_date(conn), rec_run_id)
    _check_region(user, p)
    _check_reason(key, decision, reason_code, reason_text)
    qty = p.quantity if quantity is None else float(quantity)
    chosen = (supplier or "").strip() or p.decided_supplier or p.supplier
    if decision == "approve":
        _check_quantity(p, qty)
        if not chosen:
            raise DecisionRefused(
                key,
                "supplier",
                "no supplier is recorded for this item: name the supplier to order from",
            )
        _check_authority(user, p, qty, approval_limit)
    _check_version(p, expected_version)
    new_qty = qty if decision == "approve" else 0.0
    approved_supplier = chosen if decision == "approve" else p.supplier
    decision_id = uuid.uuid4().hex
    row: dict[str, Any] = {
        "decision_id": decision_id,
        "decided_at": now or datetime.now(UTC),
        "decided_by": user.name,
        "actor_role": user.role,
        "source": source,
        "rec_run_date": key.rec_run_date,
        "rec_run_id": p.run_id,
        "sku": key.sku,
        "location": key.location,
        "decision": decision,
        "old_quantity": p.quantity,
        "new_quantity": new_qty,
        "supplier": approved_supplier,
        "reason_code": reason_code if decision == "reject" else None,
        "reason_text": (reason_text or None),
        "version": p.version + 1,
    }
    try:
        with conn.begin_nested():
            conn.execute(PD.insert().values(**row))
    except sa.exc.IntegrityError:
        now_p = load_proposal(conn, key)
        v = now_p or p
        raise Conflict(key, v.decided_by or "?", v.decided_at, v.version, v.decision or "?") from None
    return PurchaseDecided(key, decision, p.version + 1, p.quantity, new_qty, approved_supplier, decision_id)


def proposals_page(
    conn: sa.Connection, user: User, page: int, page_size: int, q: str = "", lang: str = "zh"
) -> dict[str, Any]:
    """The latest night's purchase proposals the user may decide (their regions; managers and admins
    all), earliest order-by date first, with item names and each proposal's latest decision."""
    latest = latest_run_date(conn)
    if latest is None:
        return {"run_date": None, "rows": [], "total": 0, "page": 1, "pages": 1}
    d = _latest_decisions(latest)
    name = IM.c.name if lang == "zh" else sa.func.coalesce(IM.c.name_en, IM.c.name)
    where = [PP.c.run_date == latest]
    if not user.sees_all_regions:
        where.append(LM.c.region.in_(list(user.regions) or [""]))
    if q.strip():
        pat = f"%{q.strip()}%"
        where.append(sa.or_(PP.c.sku.ilike(pat), PP.c.location.ilike(pat), IM.c.name.ilike(pat)))
    base = PP.outerjoin(LM, sa.and_(LM.c.run_date == PP.c.run_date, LM.c.location == PP.c.location))
    base = base.outerjoin(IM, sa.and_(IM.c.run_date == PP.c.run_date, IM.c.sku == PP.c.sku))
    base = base.outerjoin(d, sa.and_(d.c.sku == PP.c.sku, d.c.location == PP.c.location))
    total = int(conn.execute(sa.select(sa.func.count()).select_from(base).where(*where)).scalar_one())
    pages = max(1, math.ceil(total / page_size))
    page = min(max(page, 1), pages)
    stmt = (
        sa.select(
            *PP.c,
            name.label("item_name"),
            LM.c.name.label("location_name"),
            LM.c.region,
            d.c.version,
            d.c.decision,
            d.c.decided_by,
            d.c.new_quantity,
            d.c.supplier.label("decided_supplier"),
        )
        .select_from(base)
        .where(*where)
        .order_by(PP.c.order_by, PP.c.runs_out_before_receipt.desc(), PP.c.cost.desc(), PP.c.sku, PP.c.location)
        .limit(page_size)
        .offset((page - 1) * page_size)
    )
    rows = [dict(r) for r in conn.execute(stmt).mappings()]
    for r in rows:
        r["run_date"] = as_date(r["run_date"])
        r["order_by"] = as_date(r["order_by"])
        r["expected_receipt"] = as_date(r["expected_receipt"])
        r["version"] = int(r["version"] or 0)
    return {"run_date": latest, "rows": rows, "total": total, "page": page, "pages": pages}
