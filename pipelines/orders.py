"""Transfer orders: approved transfers as orders per lane and departure, their states, and what
open orders mean for tonight's plan. Pure functions on frames; the order book itself (tables,
transactions) is :mod:`pipelines.orderbook`.

**One order per lane and departure date.** Approved recommendations (by a person or the auto tier)
of one run date on one lane (from, to) become one order with one line per SKU, so the lane's fixed
cost is paid once. The departure date is the recommendation's run date. The order number is derived
from the run date and the lane (:func:`order_number`): stable, the idempotency key of every export
(a target upserts on it), and never reused for another lane or date.

**States** (:data:`STATES`): ``approved`` (created or changed, not yet acknowledged by every export
target) → ``exported`` → ``shipped`` (the ERP shipped at least one line) → ``received`` (every
shipped line received in full) or ``partly_received`` (less received than approved: short shipped
or short received); ``cancelled`` (by the ERP, or every line rejected before shipping) and
``expired`` (not shipped within ``orders.expire_after_days`` of its departure date: its units are
free again and the transfer may be proposed anew). A change to an approved or exported order (a
quantity changed, a line added or rejected in the workbench) raises its ``revision``: it is exported
again as a change of the same order, never as a new one. Shipped orders no longer change.
"""

from __future__ import annotations

import hashlib
from datetime import date

import numpy as np
import pandas as pd

STATES = ("approved", "exported", "shipped", "received", "partly_received", "cancelled", "expired")
#: states in which an order's units are still to come (reserved at the donor or in transit)
OPEN_STATES = ("approved", "exported", "shipped")
#: states in which the lines may still change
CHANGEABLE = ("approved", "exported")

ORDER_COLUMNS = ["order_no", "rec_run_date", "from_location", "to_location", "departure_date"]
LINE_COLUMNS = ["order_no", "sku", "approved_qty", "rec_run_id", "decided_by"]
#: days of departures reviewed beyond the coverage horizon (the review stage's window)
REVIEW_EXTRA_DAYS = 28


def order_number(run_date: date | pd.Timestamp, from_location: str, to_location: str) -> str:
    """``TB<yyyymmdd>-<8 hex>``: the run date and a digest of the lane, the same every time."""
    d = pd.Timestamp(run_date)
    digest = hashlib.sha256(f"{d:%Y-%m-%d}|{from_location}|{to_location}".encode()).hexdigest()[:8].upper()
    return f"TB{d:%Y%m%d}-{digest}"


def approved_lines(decisions: pd.DataFrame) -> pd.DataFrame:
    """The order lines that the latest decisions ask for: every recommendation whose latest decision
    is an approval of more than 0 units, grouped by lane and run date into orders. ``decisions``:
    the latest row per recommendation (columns of ``transfer_decisions``)."""
    d = decisions[(decisions["decision"] == "approve") & (decisions["new_quantity"] > 0)]
    if d.empty:
        return pd.DataFrame(columns=[*ORDER_COLUMNS, *LINE_COLUMNS[1:]])
    rd = pd.to_datetime(d["rec_run_date"])
    nos = [order_number(r, f, t) for r, f, t in zip(rd, d["from_location"], d["to_location"], strict=True)]
    out = pd.DataFrame(
        {
            "order_no": nos,
            "rec_run_date": rd.dt.normalize().to_numpy(),
            "from_location": d["from_location"].astype(str).to_numpy(),
            "to_location": d["to_location"].astype(str).to_numpy(),
            "departure_date": rd.dt.normalize().to_numpy(),
            "sku": d["sku"].astype(str).to_numpy(),
            "approved_qty": d["new_quantity"].astype(float).to_numpy(),
            "rec_run_id": d["rec_run_id"].astype(str).to_numpy(),
            "decided_by": d["decided_by"].astype(str).to_numpy(),
        }
    )
    return out.sort_values(["order_no", "sku"], kind="mergesort").reset_index(drop=True)


def line_changes(wanted: pd.DataFrame, current: pd.DataFrame) -> pd.DataFrame:
    """Per (order_no, sku): ``add`` (a new line), ``change`` (another quantity), ``drop`` (no longer
    approved) or ``same``; ``wanted`` from :func:`approved_lines`, ``current`` the order book's
    lines (order_no, sku, approved_qty) of the same orders."""
    key = ["order_no", "sku"]
    m = wanted[[*key, "approved_qty"]].merge(
        current[[*key, "approved_qty"]], on=key, how="outer", suffixes=("", "_now"), indicator=True
    )
    what = np.select(
        [
            m["_merge"] == "left_only",
            m["_merge"] == "right_only",
            ~np.isclose(m["approved_qty"].fillna(0.0), m["approved_qty_now"].fillna(0.0)),
        ],
        ["add", "drop", "change"],
        "same",
    )
    return m[key].assign(change=what)


def order_state(lines: pd.DataFrame, current_state: str, erp_cancelled: bool) -> str:
    """The state an order moves to from its lines' shipped and received quantities (module doc).
    ``lines``: approved_qty, shipped_qty, received_qty (NaN = none yet)."""
    if current_state in ("cancelled", "expired"):
        return current_state
    shipped = lines["shipped_qty"].fillna(0.0)
    received = lines["received_qty"].fillna(0.0)
    if erp_cancelled and shipped.sum() <= 0:
        return "cancelled"
    if shipped.sum() <= 0:
        return current_state
    # a line is in when its receipt is posted (whatever arrived); lines not shipped are not waited for
    all_in = bool(lines.loc[shipped > 0, "received_qty"].notna().all())
    if not all_in:
        return "shipped"
    full = bool((received >= lines["approved_qty"] - 1e-9).all())  # short shipped or short received: partly
    return "received" if full else "partly_received"


def expired(orders: pd.DataFrame, run_date: date, expire_after_days: int) -> pd.Series:
    """Orders not shipped within ``expire_after_days`` of their departure date (boolean per row)."""
    limit = pd.to_datetime(orders["departure_date"]) + pd.Timedelta(days=int(expire_after_days))
    return orders["state"].isin(CHANGEABLE) & (limit < pd.Timestamp(run_date))


def open_transfers(
    lines: pd.DataFrame, lanes: pd.DataFrame, run_date: date, erp_in_transit: pd.DataFrame | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """What open orders mean for tonight's plan, and where the ERP disagrees.

    ``lines``: order lines joined to their order (state, from/to, departure_date, approved, shipped
    and received quantities). Approved-not-shipped units (orders ``approved`` / ``exported``) are
    reserved at the donor and on the way to the receiver (arrival = departure + the lane's transit,
    at the earliest tomorrow). Shipped-not-received units are in transit, which the ERP's own
    ``stock.in_transit`` at the receiver normally holds already: only what it does not hold
    (``erp_in_transit``: sku, location, in_transit) is added, so no unit is counted twice; each
    (sku, receiver) where the ERP holds less than the shipped orders is returned as a disagreement.

    Returns (open transfers with columns of :data:`pipelines.decisions.OPEN_COLUMNS` + order_no,
    disagreements: sku, location, shipped_open, erp_in_transit).
    """
    rd = pd.Timestamp(run_date)
    cols = ["sku", "from_location", "to_location", "quantity", "status", "rec_run_date", "arrival_date", "order_no"]
    ln = lanes[["from_location", "to_location", "transit_days"]]
    open_ = lines[lines["state"].isin(OPEN_STATES)].merge(ln, on=["from_location", "to_location"], how="left")
    transit = pd.to_timedelta(open_["transit_days"].fillna(0).astype("int64"), unit="D")
    planned = pd.to_datetime(open_["departure_date"]) + transit
    shipped = open_["shipped_qty"].fillna(0.0)
    received = open_["received_qty"].fillna(0.0)
    pending = open_["state"].isin(CHANGEABLE)
    waiting = open_.assign(
        quantity=open_["approved_qty"],
        status="approved",
        arrival_date=np.maximum(planned, rd + pd.Timedelta(days=1)),
    )[pending]
    moving = open_.assign(
        quantity=np.maximum(shipped - received, 0.0),
        status="shipped",
        arrival_date=pd.to_datetime(open_["shipped_date"]) + transit,
    )[~pending]
    moving = moving[moving["quantity"] > 0]
    agg = moving.groupby(["sku", "to_location"], as_index=False)["quantity"].sum()
    erp = erp_in_transit if erp_in_transit is not None else pd.DataFrame(columns=["sku", "location", "in_transit"])
    agg = agg.merge(
        erp.rename(columns={"location": "to_location", "in_transit": "erp_in_transit"}),
        on=["sku", "to_location"],
        how="left",
    )
    agg["erp_in_transit"] = agg["erp_in_transit"].fillna(0.0)
    missing = np.maximum(agg["quantity"] - agg["erp_in_transit"], 0.0)
    disagree = agg[missing > 1e-9].rename(columns={"to_location": "location", "quantity": "shipped_open"})
    # what the ERP does not hold: added, pro rata over the shipped lines of that sku and receiver
    share = moving.merge(
        agg.assign(_miss=missing)[["sku", "to_location", "_miss", "quantity"]],
        on=["sku", "to_location"],
        suffixes=("", "_tot"),
    )
    share["quantity"] = share["quantity"] * np.where(
        share["quantity_tot"] > 0, share["_miss"] / share["quantity_tot"], 0.0
    )
    share = share[share["quantity"] > 1e-9]
    out = pd.concat([waiting, share], ignore_index=True) if len(share) else waiting
    out = out.assign(rec_run_date=pd.to_datetime(out["rec_run_date"]))[cols]
    out = out.sort_values(["sku", "from_location", "to_location", "order_no"], kind="mergesort").reset_index(drop=True)
    return out, disagree[["sku", "location", "shipped_open", "erp_in_transit"]].reset_index(drop=True)
