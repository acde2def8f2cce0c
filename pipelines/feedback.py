"""Feedback stage: what the reporting database knows that tonight's plan must take into account.

The only stage before the publish that reads the reporting database, so that every later stage
works on staging files alone:

- ``decisions``: the latest decision on each recommendation of an earlier run date, from the
  ``transfer_decisions`` table (the workbench, uploads and the auto tier) and, when configured,
  the planners' decisions file ``transfers.decisions_csv``
  (:func:`pipelines.decisions.parse_decisions`; a row of the file wins over the table for the same
  recommendation; its bad rows are named in the stage's notes, a file that cannot be read at all
  is noted and skipped: the night goes on);
- the **order book** (:mod:`pipelines.orderbook`): approved recommendations become transfer orders
  (one per lane and departure date), changed ones are revised, orders not shipped in time expire,
  and pending exports are retried (:mod:`pipelines.order_export`);
- ``open_transfers``: what open orders mean for tonight (:func:`pipelines.orders.open_transfers`):
  approved-not-shipped units reserved at the donor and on the way to the receiver, shipped ones in
  transit where the ERP's own stock does not already hold them; the policy stage counts them, so
  alerts, transfers and KPIs all see them, and the transfers stage does not propose a lane again
  while an order on it is open;
- ``order_checks``: data-quality rows for the order book (an ERP holding fewer units in transit than
  the shipped orders say), published with the run's other data-quality results;
- ``past_forecasts``: the forecasts published by the latest run whose whole horizon has passed
  (:func:`pipelines.reporting.read_last_horizon_forecasts`), for the KPIs' last-horizon accuracy.
"""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import sqlalchemy as sa

from pipelines import contract, decision_store, orderbook, purchase_orders, reporting
from pipelines import decisions as dec
from pipelines import orders as od
from pipelines.context import RunContext, StageResult
from pipelines.frames import stock_totals


def read_decision_table(url: str, run_date: date) -> pd.DataFrame:
    """The latest version of every decision on a recommendation of a run date before ``run_date``,
    as :data:`pipelines.decisions.STAGED_COLUMNS` (with the publication time of the run decided on)."""
    d = decision_store.read_latest(url, run_date)
    d = d.rename(columns={"rec_run_date": "run_date", "new_quantity": "quantity"})
    published = reporting.read_published_runs(url)[["run_id", "published_at"]].rename(columns={"run_id": "rec_run_id"})
    d = d.merge(published.drop_duplicates("rec_run_id", keep="last"), on="rec_run_id", how="left")
    return dec.staged_decisions(d)


def _as_table_rows(staged: pd.DataFrame) -> pd.DataFrame:
    """Staged decisions in the columns of ``transfer_decisions`` that the order book reads."""
    return staged.rename(columns={"run_date": "rec_run_date", "quantity": "new_quantity"})


def order_checks(disagree: pd.DataFrame, run_date: date, run_id: str) -> pd.DataFrame:
    """``dq_results`` rows (warn level) for the ERP's in-transit units disagreeing with shipped orders."""
    n = len(disagree)
    observed = (
        "the ERP holds fewer units in transit than the shipped, unreceived orders at"
        f" {n} SKU-location(s), e.g. {disagree.iloc[0]['sku']} at {disagree.iloc[0]['location']}:"
        f" ERP {disagree.iloc[0]['erp_in_transit']:g}, orders {disagree.iloc[0]['shipped_open']:g}"
        if n
        else "the ERP's units in transit cover every shipped, unreceived order"
    )
    return pd.DataFrame(
        {
            "run_date": [pd.Timestamp(run_date)],
            "run_id": [run_id],
            "table_name": ["transfer_orders"],
            "rule": ["in_transit_covers_shipped_orders"],
            "column_name": ["in_transit"],
            "level": ["warn"],
            "passed": [n == 0],
            "observed": [observed],
            "observed_value": [float(n)],
            "failing_rows": [n],
        }
    )


def review_inputs(url: str, lines: pd.DataFrame, run_date: date, coverage_days: int) -> dict[str, pd.DataFrame]:
    """What the review stage needs from the reporting database: the order lines of the review window
    (``order_history``), their published recommendations (``recommended``) and the published
    positions (``position_history``: run_date, sku, location, on_hand, available) of their receivers
    and donors since the first departure."""
    since = pd.Timestamp(run_date) - pd.Timedelta(days=int(coverage_days) + od.REVIEW_EXTRA_DAYS)
    hist = lines[pd.to_datetime(lines["departure_date"]) >= since].copy()
    for col in ("departure_date", "rec_run_date", "shipped_date", "received_date"):
        hist[col] = pd.to_datetime(hist[col])
    empty_pos = pd.DataFrame(
        {
            "run_date": pd.Series(dtype="datetime64[ns]"),
            "sku": pd.Series(dtype="str"),
            "location": pd.Series(dtype="str"),
            "on_hand": pd.Series(dtype="float64"),
            "available": pd.Series(dtype="float64"),
        }
    )
    if hist.empty:
        return {"order_history": hist, "recommended": contract.empty("transfers"), "position_history": empty_pos}
    rec_dates = sorted({d.date() for d in hist["rec_run_date"]})
    skus = sorted(hist["sku"].unique())
    tr, ip = reporting.OUTPUT_SA["transfers"], reporting.OUTPUT_SA["inventory_policy"]
    with reporting.engine_for(url).connect() as conn:
        rec_rows = conn.execute(sa.select(tr).where(tr.c.run_date.in_(rec_dates), tr.c.sku.in_(skus))).all()
        pos_rows = conn.execute(
            sa.select(ip.c.run_date, ip.c.sku, ip.c.location, ip.c.on_hand, ip.c.available).where(
                ip.c.run_date >= min(rec_dates), ip.c.run_date < run_date, ip.c.sku.in_(skus)
            )
        ).all()
    rec = pd.DataFrame([tuple(r) for r in rec_rows], columns=contract.TRANSFERS.names)
    rec = contract.conform(rec, "transfers") if len(rec) else contract.empty("transfers")
    pos = pd.DataFrame([tuple(r) for r in pos_rows], columns=list(empty_pos.columns))
    pos = (
        pos.astype({"run_date": "datetime64[ns]", "on_hand": "float64", "available": "float64"})
        if len(pos)
        else empty_pos
    )
    return {"order_history": hist, "recommended": rec, "position_history": pos}


def feedback_stage(ctx: RunContext) -> StageResult:
    """Read the reporting database (decisions, orders, past forecasts), the lanes and the stock;
    update the order book; write ``decisions``, ``open_transfers``, ``order_checks`` and
    ``past_forecasts``."""
    tc = ctx.cfg.transfers
    url = ctx.cfg.reporting_url()
    reporting.migrate(url)
    notes: list[str] = []
    known = read_decision_table(url, ctx.run_date)
    if tc.decisions_csv is not None:
        if tc.decisions_csv.exists():
            try:
                parsed = dec.parse_decisions(tc.decisions_csv)
            except dec.DecisionsError as exc:  # a planner's broken file must not stop the night
                notes.append(f"planner decisions file not read: {exc}")
            else:
                from_file = parsed.rows
                known = dec.staged_decisions(pd.concat([known, from_file.assign(source="csv")], ignore_index=True))
                notes.append(parsed.summary())
        else:
            notes.append(f"no planner decisions file at {tc.decisions_csv}: none read from a file")
    lanes = ctx.read("lanes")
    book = sync_order_book(ctx, url, known)
    notes += book["notes"]
    erp = stock_totals(ctx.read("stock"), ctx.run_date)[["sku", "location", "in_transit"]]
    on_the_way, disagree = od.open_transfers(book["lines"], lanes, ctx.run_date, erp)
    if len(on_the_way):
        notes.append(
            f"{on_the_way['order_no'].nunique()} open order(s), {on_the_way['quantity'].sum():g} unit(s) on the way"
            " counted: reserved at the donor and on the way to the receiver (not shipped yet), or in transit"
            " where the ERP does not hold them"
        )
    if len(disagree):
        notes.append(f"the ERP's in-transit units disagree with shipped orders at {len(disagree)} SKU-location(s)")
    horizon = ctx.cfg.forecast.horizon_days
    past = reporting.read_last_horizon_forecasts(url, ctx.run_date, horizon)
    if past.empty:
        notes.append(
            f"forecast accuracy of the last horizon: no run published on or before"
            f" {ctx.run_date - timedelta(days=horizon)} (run date - {horizon} days): null"
        )
    else:
        notes.append(
            f"forecast accuracy of the last horizon: forecasts of the run of {past['run_date'].max():%Y-%m-%d}"
        )
    staged_review = review_inputs(url, book["lines"], ctx.run_date, ctx.cfg.transfers.coverage_days)
    counts = {
        **{name: ctx.write(name, df) for name, df in staged_review.items()},
        "decisions": ctx.write("decisions", known),
        "open_transfers": ctx.write("open_transfers", on_the_way),
        "open_purchases": ctx.write("open_purchases", book["open_purchases"], table="purchase_orders"),
        "order_checks": ctx.write("order_checks", order_checks(disagree, ctx.run_date, ctx.run_id), table="dq_results"),
        "past_forecasts": ctx.write("past_forecasts", past),
        **{k: v for k, v in book["counts"].items() if v},
    }
    return StageResult(
        stage="feedback",
        paths={
            n: str(ctx.path(n))
            for n in ("decisions", "open_transfers", "open_purchases", "order_checks", "past_forecasts", *staged_review)
        },
        counts=counts,
        notes=notes,
    )


def sync_order_book(ctx: RunContext, url: str, known: pd.DataFrame) -> dict:
    """Orders from the decisions, the ERP's execution, expiry, pending exports; the open lines."""
    from pipelines.order_export import export_pending

    counts: dict[str, int] = {}
    notes: list[str] = []
    engine = reporting.engine_for(url).execution_options(tiaobo_write=True)
    status = ctx.read("transfer_status")
    with engine.begin() as conn:
        counts.update(orderbook.sync_from_decisions(conn, _as_table_rows(known), ctx.run_date))
        applied = orderbook.apply_status(conn, status.assign(cancelled=status["status"] == "cancelled"), ctx.run_date)
        gone = orderbook.expire(conn, ctx.run_date, ctx.cfg.orders.expire_after_days)
    moved = {k: v for k, v in applied.items() if k not in ("status_rows", "unknown_orders") and v}
    if moved:
        notes.append("orders moved by the ERP's execution: " + ", ".join(f"{k} {v}" for k, v in moved.items()))
    if applied.get("unknown_orders"):
        notes.append(f"{applied['unknown_orders']} order number(s) in the ERP's status are not in the order book")
    if gone:
        notes.append(f"{len(gone)} order(s) expired (not shipped within {ctx.cfg.orders.expire_after_days} days)")
    counts.update(export_pending(ctx.cfg, url, ctx.run_date))
    bought = purchase_orders.purchase_cycle(ctx.cfg, url, ctx.run_date, ctx.read("purchase_orders"))
    counts.update(bought)
    if any(bought.values()):
        notes.append(
            "purchase orders: " + ", ".join(f"{k.removeprefix('purchase_')} {v}" for k, v in bought.items() if v)
        )
    with engine.connect() as conn:
        lines = orderbook.read_lines(conn)
        pending = purchase_orders.open_lines(conn, ctx.run_date)
    created = counts.get("orders_created", 0) + counts.get("orders_changed", 0)
    if created:
        notes.append(
            f"order book: {counts.get('orders_created', 0)} order(s) created, {counts.get('orders_changed', 0)} changed"
        )
    return {"counts": counts, "notes": notes, "lines": lines, "open_purchases": pending}
