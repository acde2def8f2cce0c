"""Review stage (复盘): every transfer order line against what it was meant to do.

Per order line of the review window (orders departed in the last ``coverage_days`` + 28 days that
were shipped, received, cancelled or expired), from the staged order book (``order_history``), the
published recommendation (``recommended``), the positions the nightly runs published
(``position_history``: on hand per SKU-location and run date) and the sales:

- **lead time**: approval (the departure date: planners decide the morning of the run date) to
  receipt, and shipment to receipt against the lane's configured transit; on time = received by
  the departure date + the configured transit;
- **received against ordered**;
- **outcome**, over the window the transfer was meant to cover (its run date .. + ``coverage_days``):
  did the receiver have nothing on hand on a night after the arrival, did the donor on any night;
- **realised benefit** at the observed sales: the received units the receiver sold in the window
  beyond what it would have had without them (its sales from the receipt to the window end minus its
  stock on the night after the receipt without the received units, between 0 and the received
  units) x the unit margin, minus the transfer's cost; against the expected benefit of the
  recommendation. Final once the window has passed (``window_closed``).

Per lane (``lane_review``): the mean observed transit of its received orders against the configured
transit days; a lane a day or more off is flagged with the observed figure for the data team (the
configuration is never changed silently).

Limits: the positions are the nightly snapshots (a stock-out and refill within a day is not seen);
the realised benefit counts the transfer's units as sold first after their arrival.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from pipelines import contract, explain
from pipelines.context import RunContext, StageResult

REVIEWED_STATES = ("shipped", "received", "partly_received", "cancelled", "expired")
REVIEW_COLUMNS = [c for c in contract.TRANSFER_REVIEW.names if c != "run_id"]
LANE_COLUMNS = [c for c in contract.LANE_REVIEW.names if c != "run_id"]


def _days(later: pd.Series, earlier: pd.Series) -> pd.Series:
    return (pd.to_datetime(later) - pd.to_datetime(earlier)).dt.days.astype("float64")


def _stocked_out(
    lines: pd.DataFrame, positions: pd.DataFrame, where: str, start: pd.Series, end: pd.Series
) -> pd.Series:
    """Per line: any published night in [start, end] with nothing on hand at ``where`` (its location
    column); NaN when no night of the window is published yet."""
    pos = positions[["run_date", "sku", "location", "on_hand"]]
    m = lines[["sku", where]].assign(_i=np.arange(len(lines)), _s=start.to_numpy(), _e=end.to_numpy())
    m = m.merge(pos.rename(columns={"location": where}), on=["sku", where], how="inner")
    m = m[(m["run_date"] >= m["_s"]) & (m["run_date"] <= m["_e"])]
    out = m.groupby("_i")["on_hand"].min().le(0.0)
    return pd.Series(out.reindex(np.arange(len(lines))).to_numpy(), index=lines.index, dtype="boolean")


def review_lines(
    lines: pd.DataFrame,
    recommended: pd.DataFrame,
    positions: pd.DataFrame,
    sales: pd.DataFrame,
    lanes: pd.DataFrame,
    items: pd.DataFrame,
    run_date: date,
    coverage_days: int,
) -> pd.DataFrame:
    """The ``transfer_review`` rows (without run_id) of the reviewed order lines (module doc)."""
    rd = pd.Timestamp(run_date)
    t = lines[lines["state"].isin(REVIEWED_STATES)].copy()
    if t.empty:
        return contract.empty("transfer_review")[REVIEW_COLUMNS]
    t = t.merge(
        lanes[["from_location", "to_location", "transit_days"]].rename(
            columns={"transit_days": "planned_transit_days"}
        ),
        on=["from_location", "to_location"],
        how="left",
    )
    t["planned_transit_days"] = t["planned_transit_days"].fillna(0).astype(float)
    rec = recommended[["run_date", "sku", "from_location", "to_location", "expected_benefit", "transfer_cost"]]
    t = t.merge(
        rec.rename(columns={"run_date": "rec_run_date"}),
        on=["rec_run_date", "sku", "from_location", "to_location"],
        how="left",
    )
    dep = pd.to_datetime(t["departure_date"])
    t["rec_run_date"] = pd.to_datetime(t["rec_run_date"])
    t["window_end"] = pd.to_datetime(t["rec_run_date"]) + pd.Timedelta(days=int(coverage_days))
    t["window_closed"] = t["window_end"] < rd
    t["lead_time_days"] = _days(t["received_date"], dep)
    t["transit_days"] = _days(t["received_date"], t["shipped_date"])
    planned = dep + pd.to_timedelta(t["planned_transit_days"], unit="D")
    received = pd.to_datetime(t["received_date"])
    t["on_time"] = pd.Series(np.where(received.isna(), pd.NA, received <= planned), index=t.index, dtype="boolean")
    after = received + pd.Timedelta(days=1)  # the first night whose snapshot shows the receipt
    t["receiver_stocked_out"] = _stocked_out(t, positions, "to_location", after, t["window_end"])
    t.loc[received.isna(), "receiver_stocked_out"] = pd.NA
    t["donor_stocked_out"] = _stocked_out(t, positions, "from_location", dep, t["window_end"])
    t = t.join(_units_sold_thanks(t, positions, sales, after))
    margin = t["sku"].map(items.set_index("sku")["unit_price"] - items.set_index("sku")["unit_cost"]).astype(float)
    t["realised_benefit"] = t["units_sold_thanks"] * margin - t["transfer_cost"].fillna(0.0)
    t["run_date"] = rd
    t["explanation_en"], t["explanation_zh"] = explain.review_sentences(t)
    return t[REVIEW_COLUMNS].sort_values(["order_no", "sku"]).reset_index(drop=True)


def _units_sold_thanks(t: pd.DataFrame, positions: pd.DataFrame, sales: pd.DataFrame, after: pd.Series) -> pd.DataFrame:
    """Received units sold in the window beyond the receiver's own stock (module doc); NaN while the
    receipt's next night or the window's sales are not known."""
    pos = positions[["run_date", "sku", "location", "on_hand"]].rename(columns={"location": "to_location"})
    k = t[["sku", "to_location"]].assign(_i=np.arange(len(t)), run_date=after.to_numpy())
    on_after = k.merge(pos, on=["sku", "to_location", "run_date"], how="left").set_index("_i")["on_hand"]
    s = sales[["sku", "location", "date", "quantity"]].rename(columns={"location": "to_location"})
    m = t[["sku", "to_location"]].assign(
        _i=np.arange(len(t)), _s=pd.to_datetime(t["received_date"]).to_numpy(), _e=t["window_end"].to_numpy()
    )
    m = m.merge(s, on=["sku", "to_location"], how="inner")
    m = m[(m["date"] >= m["_s"]) & (m["date"] <= m["_e"])]
    sold = m.groupby("_i")["quantity"].sum().reindex(np.arange(len(t))).fillna(0.0)
    recv = t["received_qty"].fillna(0.0).to_numpy(float)
    own = np.maximum(on_after.reindex(np.arange(len(t))).to_numpy(float) - recv, 0.0)
    thanks = np.clip(sold.to_numpy(float) - own, 0.0, recv)
    thanks = np.where(np.isnan(own) | t["received_qty"].isna().to_numpy(), np.nan, thanks)
    return pd.DataFrame({"units_sold_thanks": thanks}, index=t.index)


def lane_review(reviewed: pd.DataFrame, run_date: date) -> pd.DataFrame:
    """The ``lane_review`` rows (without run_id): observed against configured transit per lane."""
    got = reviewed[reviewed["transit_days"].notna()]
    if got.empty:
        return contract.empty("lane_review")[LANE_COLUMNS]
    per_order = got.drop_duplicates(["order_no"])
    g = per_order.groupby(["from_location", "to_location"], as_index=False).agg(
        configured_transit_days=("planned_transit_days", "first"),
        observed_transit_days=("transit_days", "mean"),
        orders=("order_no", "nunique"),
    )
    g["flagged"] = (g["observed_transit_days"] - g["configured_transit_days"]).abs() >= 1.0
    g["run_date"] = pd.Timestamp(run_date)
    g["explanation_en"], g["explanation_zh"] = explain.lane_review_sentences(g)
    return g[LANE_COLUMNS]


def review_stage(ctx: RunContext) -> StageResult:
    """Read the staged order history, recommendations and positions, the sales, lanes and items;
    write ``transfer_review`` and ``lane_review``."""
    rows = review_lines(
        ctx.read("order_history"),
        ctx.read("recommended", table="transfers"),
        ctx.read("position_history"),
        ctx.read("sales"),
        ctx.read("lanes"),
        ctx.read("items"),
        ctx.run_date,
        ctx.cfg.transfers.coverage_days,
    )
    lanes = lane_review(rows, ctx.run_date)
    counts = {
        "transfer_review": ctx.write("transfer_review", rows.assign(run_id=ctx.run_id)),
        "lane_review": ctx.write("lane_review", lanes.assign(run_id=ctx.run_id)),
    }
    notes = []
    if len(rows):
        closed = rows[rows["window_closed"]]
        notes.append(
            f"{len(rows)} order line(s) reviewed, {len(closed)} with their window closed;"
            f" realised benefit {closed['realised_benefit'].sum():,.2f} against expected {closed['expected_benefit'].sum():,.2f}"
        )
    flagged = lanes[lanes["flagged"]]
    if len(flagged):
        notes.append(f"{len(flagged)} lane(s) whose observed transit differs from the configured one")
    return StageResult(stage="review", paths={n: str(ctx.path(n)) for n in counts}, counts=counts, notes=notes)
