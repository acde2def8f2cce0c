"""The order book in the reporting database: transfer orders, their lines, exports and events.

Tables (migration ``0003_transfer_orders``):

- ``transfer_orders``: one row per order (:mod:`pipelines.orders`): lane, departure date, state,
  ``revision`` (raised by every change of its lines) and ``exported_revision`` (the revision every
  configured export target has acknowledged);
- ``transfer_order_lines``: one row per order and SKU: approved, shipped and received quantities and
  dates (from the ERP's status), the recommendation's run id and who approved it;
- ``order_exports``: every export attempt per order, target and revision, with its outcome (a failed
  one is retried at the next attempt; nothing is lost: the order row exists before any export);
- ``order_events``: what happened to an order, in order (created, changed, exported, shipped, ...).

Every function takes a connection and runs inside the caller's transaction; each step is
idempotent, so a run killed anywhere is simply repeated by the next attempt: an approved transfer
becomes exactly one order (its number is derived from the run date and the lane), and a target
upserts on the order number.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, date, datetime
from typing import Any

import pandas as pd
import sqlalchemy as sa

from pipelines import orders as od
from pipelines.reporting import METADATA

ORDERS = sa.Table(
    "transfer_orders",
    METADATA,
    sa.Column("order_no", sa.Text(), primary_key=True),
    sa.Column("rec_run_date", sa.Date(), nullable=False),
    sa.Column("from_location", sa.Text(), nullable=False),
    sa.Column("to_location", sa.Text(), nullable=False),
    sa.Column("departure_date", sa.Date(), nullable=False),
    sa.Column("state", sa.Text(), nullable=False),
    sa.Column("revision", sa.BigInteger(), nullable=False),
    sa.Column("exported_revision", sa.BigInteger(), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)
LINES = sa.Table(
    "transfer_order_lines",
    METADATA,
    sa.Column("order_no", sa.Text(), primary_key=True),
    sa.Column("sku", sa.Text(), primary_key=True),
    sa.Column("approved_qty", sa.Double(), nullable=False),
    sa.Column("rec_run_id", sa.Text(), nullable=False),
    sa.Column("decided_by", sa.Text(), nullable=False),
    sa.Column("shipped_qty", sa.Double()),
    sa.Column("shipped_date", sa.Date()),
    sa.Column("received_qty", sa.Double()),
    sa.Column("received_date", sa.Date()),
    sa.Column("active", sa.Boolean(), nullable=False),
)
EXPORTS = sa.Table(
    "order_exports",
    METADATA,
    sa.Column("order_no", sa.Text(), primary_key=True),
    sa.Column("target", sa.Text(), primary_key=True),
    sa.Column("revision", sa.BigInteger(), primary_key=True),
    sa.Column("attempts", sa.BigInteger(), nullable=False),
    sa.Column("status", sa.Text(), nullable=False),
    sa.Column("message", sa.Text(), nullable=False),
    sa.Column("exported_at", sa.DateTime(timezone=True), nullable=False),
)
EVENTS = sa.Table(
    "order_events",
    METADATA,
    sa.Column("event_id", sa.Text(), primary_key=True),
    sa.Column("order_no", sa.Text(), nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("run_date", sa.Date()),
    sa.Column("event", sa.Text(), nullable=False),
    sa.Column("detail", sa.Text(), nullable=False),
)


def _now() -> datetime:
    return datetime.now(UTC)


def _event(conn: sa.Connection, order_no: str, event: str, detail: str, run_date: date | None) -> None:
    conn.execute(
        EVENTS.insert().values(
            event_id=uuid.uuid4().hex, order_no=order_no, at=_now(), run_date=run_date, event=event, detail=detail
        )
    )


def read_orders(conn: sa.Connection, states: Iterable[str] | None = None) -> pd.DataFrame:
    stmt = sa.select(ORDERS)
    if states is not None:
        stmt = stmt.where(ORDERS.c.state.in_(list(states)))
    rows = conn.execute(stmt.order_by(ORDERS.c.order_no)).all()
    return pd.DataFrame([tuple(r) for r in rows], columns=[c.name for c in ORDERS.columns])


def read_lines(conn: sa.Connection, order_nos: Iterable[str] | None = None, active_only: bool = True) -> pd.DataFrame:
    """Order lines joined to their order (state, lane, departure)."""
    stmt = sa.select(
        LINES,
        ORDERS.c.state,
        ORDERS.c.from_location,
        ORDERS.c.to_location,
        ORDERS.c.departure_date,
        ORDERS.c.rec_run_date,
        ORDERS.c.revision,
    ).join(ORDERS, ORDERS.c.order_no == LINES.c.order_no)
    if order_nos is not None:
        stmt = stmt.where(LINES.c.order_no.in_(list(order_nos)))
    if active_only:
        stmt = stmt.where(LINES.c.active.is_(True))
    rows = conn.execute(stmt.order_by(LINES.c.order_no, LINES.c.sku)).all()
    cols = [c.name for c in LINES.columns] + [
        "state",
        "from_location",
        "to_location",
        "departure_date",
        "rec_run_date",
        "revision",
    ]
    return pd.DataFrame([tuple(r) for r in rows], columns=cols)


def sync_from_decisions(conn: sa.Connection, decisions: pd.DataFrame, run_date: date | None = None) -> dict[str, int]:
    """Create or change orders so that they hold exactly the approved lines of ``decisions`` (the
    latest decision per recommendation, :func:`pipelines.decision_store.latest_decisions`).

    New lane and date: a new order (``approved``, revision 1). An order still ``approved`` or
    ``exported`` whose lines differ: the lines are changed, its revision raised and its state back to
    ``approved`` (it is exported again as a change); every line rejected: ``cancelled`` (exported as a
    cancellation). Orders already shipped, cancelled or expired are left as they are. Returns counts."""
    wanted = od.approved_lines(decisions)
    counts = {"orders_created": 0, "orders_changed": 0, "orders_cancelled": 0}
    if wanted.empty and decisions.empty:
        return counts
    # orders of the decided recommendations' run dates and lanes, wanted or not
    lanes = decisions[["rec_run_date", "from_location", "to_location"]].drop_duplicates()
    nos = sorted({od.order_number(r, f, t) for r, f, t in lanes.itertuples(index=False)} | set(wanted["order_no"]))
    have = read_orders(conn).set_index("order_no")
    have = have[have.index.isin(nos)]
    current = read_lines(conn, nos, active_only=True)
    now = _now()
    for no in nos:
        w = wanted[wanted["order_no"] == no]
        if no not in have.index:
            if w.empty:
                continue
            first = w.iloc[0]
            conn.execute(
                ORDERS.insert().values(
                    order_no=no,
                    rec_run_date=pd.Timestamp(first["rec_run_date"]).date(),
                    from_location=first["from_location"],
                    to_location=first["to_location"],
                    departure_date=pd.Timestamp(first["departure_date"]).date(),
                    state="approved",
                    revision=1,
                    exported_revision=0,
                    created_at=now,
                    updated_at=now,
                )
            )
            conn.execute(LINES.insert(), [_line_row(r) for r in w.itertuples()])
            _event(conn, no, "created", f"{len(w)} line(s), {w['approved_qty'].sum():g} units", run_date)
            counts["orders_created"] += 1
            continue
        state = str(have.loc[no, "state"])
        if state not in od.CHANGEABLE:
            continue
        ch = od.line_changes(w, current[current["order_no"] == no])
        if (ch["change"] == "same").all():
            continue
        _apply_line_changes(conn, no, w, ch)
        rev = int(have.loc[no, "revision"]) + 1
        new_state = "cancelled" if w.empty else "approved"
        conn.execute(
            sa.update(ORDERS).where(ORDERS.c.order_no == no).values(state=new_state, revision=rev, updated_at=now)
        )
        summary = ", ".join(f"{r.sku} {r.change}" for r in ch[ch["change"] != "same"].itertuples())
        _event(conn, no, "cancelled" if w.empty else "changed", f"revision {rev}: {summary}", run_date)
        counts["orders_cancelled" if w.empty else "orders_changed"] += 1
    return counts


def _line_row(r: Any) -> dict[str, Any]:
    return {
        "order_no": r.order_no,
        "sku": r.sku,
        "approved_qty": float(r.approved_qty),
        "rec_run_id": r.rec_run_id,
        "decided_by": r.decided_by,
        "shipped_qty": None,
        "shipped_date": None,
        "received_qty": None,
        "received_date": None,
        "active": True,
    }


def _apply_line_changes(conn: sa.Connection, order_no: str, wanted: pd.DataFrame, ch: pd.DataFrame) -> None:
    for r in ch.itertuples():
        where = sa.and_(LINES.c.order_no == order_no, LINES.c.sku == r.sku)
        if r.change == "drop":
            conn.execute(sa.update(LINES).where(where).values(active=False, approved_qty=0.0))
        elif r.change in ("add", "change"):
            row = wanted[wanted["sku"] == r.sku].iloc[0]
            exists = conn.execute(sa.select(LINES.c.sku).where(where)).first() is not None
            if exists:
                conn.execute(
                    sa.update(LINES)
                    .where(where)
                    .values(
                        approved_qty=float(row["approved_qty"]),
                        rec_run_id=row["rec_run_id"],
                        decided_by=row["decided_by"],
                        active=True,
                    )
                )
            else:
                conn.execute(LINES.insert().values(**_line_row(row)))


def apply_status(conn: sa.Connection, status: pd.DataFrame, run_date: date) -> dict[str, int]:
    """Take the ERP's execution of the orders (``transfer_status``: order_no, sku, shipped_qty,
    shipped_date, received_qty, received_date, cancelled) into the order book and move each order
    to the state its lines say (:func:`pipelines.orders.order_state`). Unknown order numbers are
    counted, not stored. Returns counts per new state."""
    counts: dict[str, int] = {"status_rows": len(status), "unknown_orders": 0}
    if status.empty:
        return counts
    nos = sorted(status["order_no"].astype(str).unique())
    have = read_orders(conn).set_index("order_no")
    counts["unknown_orders"] = sum(1 for n in nos if n not in have.index)
    for no in (n for n in nos if n in have.index):
        st = status[status["order_no"] == no]
        for r in st.itertuples():
            conn.execute(
                sa.update(LINES)
                .where(LINES.c.order_no == no, LINES.c.sku == r.sku)
                .values(
                    shipped_qty=None if pd.isna(r.shipped_qty) else float(r.shipped_qty),
                    shipped_date=None if pd.isna(r.shipped_date) else pd.Timestamp(r.shipped_date).date(),
                    received_qty=None if pd.isna(r.received_qty) else float(r.received_qty),
                    received_date=None if pd.isna(r.received_date) else pd.Timestamp(r.received_date).date(),
                )
            )
        lines = read_lines(conn, [no])
        old = str(have.loc[no, "state"])
        new = od.order_state(lines, old, bool(st["cancelled"].any()))
        if new != old:
            conn.execute(sa.update(ORDERS).where(ORDERS.c.order_no == no).values(state=new, updated_at=_now()))
            detail = ", ".join(
                f"{r.sku}: shipped {0 if pd.isna(r.shipped_qty) else r.shipped_qty:g},"
                f" received {0 if pd.isna(r.received_qty) else r.received_qty:g}"
                for r in lines.itertuples()
            )
            _event(conn, no, new, detail, run_date)
            counts[new] = counts.get(new, 0) + 1
    return counts


def expire(conn: sa.Connection, run_date: date, expire_after_days: int) -> list[str]:
    """Orders not shipped within ``expire_after_days`` of departure become ``expired`` (their units
    are free again; the cancellation is exported like a change). Returns their numbers."""
    orders = read_orders(conn, od.CHANGEABLE)
    if orders.empty:
        return []
    hit = orders[od.expired(orders, run_date, expire_after_days).to_numpy()]
    for r in hit.itertuples():
        conn.execute(
            sa.update(ORDERS)
            .where(ORDERS.c.order_no == r.order_no)
            .values(state="expired", revision=int(r.revision) + 1, updated_at=_now())
        )
        _event(
            conn,
            r.order_no,
            "expired",
            f"not shipped within {expire_after_days} day(s) of {r.departure_date}",
            run_date,
        )
    return hit["order_no"].tolist()


def record_export(conn: sa.Connection, order_no: str, target: str, revision: int, ok: bool, message: str) -> None:
    """Record one export attempt (upserted per order, target and revision, with its attempt count)."""
    where = sa.and_(EXPORTS.c.order_no == order_no, EXPORTS.c.target == target, EXPORTS.c.revision == revision)
    prior = conn.execute(sa.select(EXPORTS.c.attempts).where(where)).scalar()
    values = {"status": "ok" if ok else "failed", "message": message[:2000], "exported_at": _now()}
    if prior is None:
        conn.execute(EXPORTS.insert().values(order_no=order_no, target=target, revision=revision, attempts=1, **values))
    else:
        conn.execute(sa.update(EXPORTS).where(where).values(attempts=int(prior) + 1, **values))


def pending_exports(conn: sa.Connection, targets: list[str]) -> pd.DataFrame:
    """Orders whose current revision some target has not acknowledged yet: (order_no, revision,
    state, target)."""
    orders = read_orders(conn)
    if orders.empty or not targets:
        return pd.DataFrame(columns=["order_no", "revision", "state", "target"])
    orders = orders[orders["revision"] > orders["exported_revision"]]
    done = pd.DataFrame(
        [
            tuple(r)
            for r in conn.execute(
                sa.select(EXPORTS.c.order_no, EXPORTS.c.target, EXPORTS.c.revision).where(EXPORTS.c.status == "ok")
            ).all()
        ],
        columns=["order_no", "target", "revision"],
    )
    todo = orders[["order_no", "revision", "state"]].merge(pd.DataFrame({"target": targets}), how="cross")
    todo = todo.merge(done.assign(_ok=True), on=["order_no", "target", "revision"], how="left")
    return todo[todo["_ok"].isna()].drop(columns="_ok").reset_index(drop=True)


def mark_exported(conn: sa.Connection, order_no: str, revision: int, run_date: date | None) -> None:
    """Every target acknowledged ``revision``: the order is ``exported`` (if it was ``approved``)."""
    state = conn.execute(sa.select(ORDERS.c.state).where(ORDERS.c.order_no == order_no)).scalar()
    values: dict[str, Any] = {"exported_revision": revision, "updated_at": _now()}
    if state == "approved":
        values["state"] = "exported"
    conn.execute(sa.update(ORDERS).where(ORDERS.c.order_no == order_no).values(**values))
    _event(conn, order_no, "exported", f"revision {revision}", run_date)
