"""Frame helpers shared by the stages: series keys, the stock snapshot, the policy rows.

Stages never import each other; what more than one stage needs lives here (pure functions on
contract-typed frames, no I/O).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import norm

#: the key of a series: one SKU at one location
KEY = ["sku", "location"]
#: tolerance of the approval limits
EPS = 1e-9

#: policy parameters of the contract's ``policies`` table
POLICY_PARAMS = [
    "service_level",
    "min_cover_days",
    "max_cover_days",
    "slow_mover_days",
    "auto_approve_max_units",
    "auto_approve_max_value",
]
#: optional columns of the policy rows (from the configuration), with the value used when absent
EXTRA_PARAMS: dict[str, float] = {
    "fill_rate": np.nan,
    "safety_stock_min_days": 0.0,
    "safety_stock_max_days": np.nan,
    "dead_stock_days": np.nan,
    "alert_high_value": 5000.0,
    "alert_medium_value": 1000.0,
    "alert_urgent_value": 500.0,
    "alert_material_value": 50.0,
    "alert_materiality": 10.0,
}


def latest_snapshot(stock: pd.DataFrame, run_date: date) -> pd.DataFrame:
    """The stock rows of the latest snapshot dated on or before ``run_date`` (one date for all)."""
    rd = pd.Timestamp(run_date)
    valid = stock[stock["snapshot_date"] <= rd]
    if valid.empty:
        return valid.reset_index(drop=True)
    return valid[valid["snapshot_date"] == valid["snapshot_date"].max()].reset_index(drop=True)


def stock_totals(stock: pd.DataFrame, run_date: date) -> pd.DataFrame:
    """On hand, in transit and reserved summed over lots per SKU and location, plus ``available``
    (= on hand + in transit - reserved), from the latest snapshot."""
    snap = latest_snapshot(stock, run_date)
    tot = snap.groupby(KEY, as_index=False, sort=True)[["on_hand", "in_transit", "reserved"]].sum()
    tot["available"] = tot["on_hand"] + tot["in_transit"] - tot["reserved"]
    return tot


#: ``sales.attrs`` key of the whole panel's first sales date, set on a shard's sales
#: (:class:`pipelines.shards.ShardScope`): a shard's own first sale may come later
HISTORY_START = "tiaobo_history_start"


def history_start(sales: pd.DataFrame) -> pd.Timestamp | None:
    """First date of the sales history (None when there is no sale row at all); for a shard's
    sales, the first date of the whole panel's history (``sales.attrs[HISTORY_START]``)."""
    panel = sales.attrs.get(HISTORY_START)
    if panel is not None:
        return pd.Timestamp(panel)
    if sales.empty:
        return None
    return pd.Timestamp(sales["date"].min())


def lookup_policy(keys: pd.DataFrame, policies: pd.DataFrame) -> pd.DataFrame:
    """Policy parameters for each row of ``keys`` (columns category, abc_class), same index.

    The most specific matching row wins: (category, class) > (category, *) > (*, class) > (*, *).
    Columns: POLICY_PARAMS, plus EXTRA_PARAMS (their defaults when ``policies`` lacks them).
    Raises ValueError naming the (category, class) when no row matches (no default row).
    """
    pol = policies.copy()
    for c, dflt in EXTRA_PARAMS.items():
        pol[c] = pol[c].astype(float) if c in pol.columns else dflt
    params = POLICY_PARAMS + list(EXTRA_PARAMS)
    pairs = keys[["category", "abc_class"]].drop_duplicates()
    pol = pol[["category", "abc_class", *params]].rename(columns={"category": "_c", "abc_class": "_a"})
    pieces = []
    for rank, (any_cat, any_cls) in enumerate([(False, False), (False, True), (True, False), (True, True)]):
        probe = pairs.assign(
            _c="*" if any_cat else pairs["category"],
            _a="*" if any_cls else pairs["abc_class"],
            _rank=rank,
        )
        pieces.append(probe.merge(pol, on=["_c", "_a"], how="inner"))
    best = (
        pd.concat(pieces, ignore_index=True)
        .sort_values(["category", "abc_class", "_rank"], kind="mergesort")
        .drop_duplicates(["category", "abc_class"])
    )
    out = keys[["category", "abc_class"]].merge(best, on=["category", "abc_class"], how="left")
    missing = out["service_level"].isna()
    if missing.any():
        first = out.loc[missing].iloc[0]
        raise ValueError(
            f"policies: no row matches category {first['category']!r}, class {first['abc_class']!r};"
            " add a default row with category '*' and abc_class '*'"
        )
    out.index = keys.index
    return out[params]


def policies_with_extras(policies: pd.DataFrame, configured: Iterable[Any]) -> pd.DataFrame:
    """The staged ``policies`` table plus the optional parameters of the configured rows
    (``configured``: the config's policy rows; fill_rate, safety-stock caps, dead_stock_days),
    which the contract table does not carry."""
    conf = pd.DataFrame([p.model_dump() for p in configured])
    extra = conf[["category", "abc_class", *EXTRA_PARAMS]].astype({c: float for c in EXTRA_PARAMS})
    return policies.merge(extra, on=["category", "abc_class"], how="left")


def add_open_transfers(totals: pd.DataFrame, open_transfers: pd.DataFrame | None) -> pd.DataFrame:
    """Stock totals (:func:`stock_totals`) with approved transfers still on the way counted: their
    units in transit at the receiver and reserved at the donor (``available`` follows). A receiver
    without a stock row gets one."""
    if open_transfers is None or open_transfers.empty:
        return totals
    cols = ["on_hand", "in_transit", "reserved"]
    inbound = (
        open_transfers.groupby(["sku", "to_location"], as_index=False)["quantity"]
        .sum()
        .rename(columns={"to_location": "location", "quantity": "_in"})
    )
    outbound = (
        open_transfers.groupby(["sku", "from_location"], as_index=False)["quantity"]
        .sum()
        .rename(columns={"from_location": "location", "quantity": "_out"})
    )
    t = totals.merge(inbound, on=KEY, how="outer").merge(outbound, on=KEY, how="outer")
    t[cols + ["_in", "_out"]] = t[cols + ["_in", "_out"]].fillna(0.0)
    t["in_transit"] = t["in_transit"] + t.pop("_in")
    t["reserved"] = t["reserved"] + t.pop("_out")
    t["available"] = t["on_hand"] + t["in_transit"] - t["reserved"]
    return t.sort_values(KEY, kind="mergesort").reset_index(drop=True)


def on_order(keys: pd.DataFrame, purchase_orders: pd.DataFrame | None, run_date: date) -> tuple[np.ndarray, np.ndarray]:
    """Units on open purchase orders per row of ``keys`` (sku, location, horizon_days), split into
    those expected within ``horizon_days`` of ``run_date`` (overdue orders included: they are still
    coming) and those expected later. ``purchase_orders``: the contract table (open_qty,
    expected_date). Orders for a SKU-location not in ``keys`` are not counted."""
    n = len(keys)
    if purchase_orders is None or purchase_orders.empty:
        return np.zeros(n), np.zeros(n)
    po = purchase_orders.groupby([*KEY, "expected_date"], as_index=False, sort=False)["open_qty"].sum()
    k = keys[KEY].reset_index(drop=True).assign(_row=np.arange(n), _h=keys["horizon_days"].to_numpy(float))
    m = k.merge(po, on=KEY, how="inner")
    days = (m["expected_date"] - pd.Timestamp(run_date).normalize()).dt.days.to_numpy(float)
    due = days <= m["_h"].to_numpy(float)
    qty = m["open_qty"].to_numpy(float)
    rows = m["_row"].to_numpy(int)
    near, far = np.zeros(n), np.zeros(n)
    np.add.at(near, rows[due], qty[due])
    np.add.at(far, rows[~due], qty[~due])
    return near, far


def reorder_point_sigma(
    reorder_point: pd.Series | np.ndarray,
    demand_mean: pd.Series | np.ndarray,
    lead_time_days: pd.Series | np.ndarray,
    service_level: pd.Series | np.ndarray,
) -> np.ndarray:
    """The spread of lead-time demand a reorder point protects: its safety stock (reorder point -
    demand over the lead time) divided by z(service level) (0 where z <= 0). The policy stage
    publishes it in ``policy_detail`` (``ss_sigma``); a donor's risk uses it."""
    mu, lead = np.asarray(demand_mean, float), np.asarray(lead_time_days, float)
    z = norm.ppf(np.clip(np.asarray(service_level, float), 0.5, 0.9999))
    ss = np.maximum(np.asarray(reorder_point, float) - mu * lead, 0.0)
    return np.where(z > 0, ss / np.where(z > 0, z, 1.0), 0.0)


def series_keys(sales: pd.DataFrame, items: pd.DataFrame, stock: pd.DataFrame, run_date: date) -> pd.DataFrame:
    """SKU x location pairs to forecast: active SKUs with stock in the snapshot or any sale before
    the run date. Sorted by sku, location, index 0..n-1."""
    rd = pd.Timestamp(run_date)
    sold = sales.loc[sales["date"] < rd, KEY]
    held = latest_snapshot(stock, run_date)[KEY]
    pairs = pd.concat([sold, held], ignore_index=True).drop_duplicates()
    active = items.loc[items["active"].astype(bool), ["sku"]]
    keys = pairs.merge(active, on="sku", how="inner")
    return keys.sort_values(KEY, kind="mergesort").reset_index(drop=True).astype({"sku": "str", "location": "str"})


def approval_tier(t: pd.DataFrame, policies: pd.DataFrame | None, planner_categories: Sequence[str] = ()) -> np.ndarray:
    """``auto`` when quantity <= auto_approve_max_units and the value (column ``value`` when ``t`` has
    one, else quantity x unit_cost) <= auto_approve_max_value of the most specific policies row for the SKU's (category, abc_class)
    ((category, class) > (category, *) > (*, class) > (*, *)) and the category is not one of
    ``planner_categories``; else ``planner`` (always ``planner`` without a policies table)."""
    if policies is None or t.empty:
        return np.full(len(t), "planner", dtype=object)
    pol = policies[["category", "abc_class", "auto_approve_max_units", "auto_approve_max_value"]]
    lim_u = np.full(len(t), np.nan)
    lim_v = np.full(len(t), np.nan)
    keys = t[["category", "abc_class"]].reset_index(drop=True)
    for any_cat, any_cls in [(False, False), (False, True), (True, False), (True, True)]:
        probe = keys.assign(_c="*" if any_cat else keys["category"], _a="*" if any_cls else keys["abc_class"])
        hit = probe.merge(pol.rename(columns={"category": "_c", "abc_class": "_a"}), on=["_c", "_a"], how="left")
        take = np.isnan(lim_u) & hit["auto_approve_max_units"].notna().to_numpy()
        lim_u[take] = hit["auto_approve_max_units"].to_numpy(float)[take]
        lim_v[take] = hit["auto_approve_max_value"].to_numpy(float)[take]
    qty = t["quantity"].to_numpy(float)
    value = t["value"].to_numpy(float) if "value" in t.columns else qty * t["unit_cost"].to_numpy(float)
    auto = (qty <= lim_u + EPS) & (value <= lim_v + EPS) & ~t["category"].isin(list(planner_categories)).to_numpy()
    return np.where(auto, "auto", "planner").astype(object)
