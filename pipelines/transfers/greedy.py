"""Greedy baseline (``greedy_transfers``; ``transfers.method: greedy``, and the fallback), per SKU,
with mu = demand_mean and C = ``coverage_days``:

- **Receivers**: active locations that can receive, with mu > 0 and available < reorder point.
  need = order_up_to - available (the most a receiver is sent); units short = max(0, mu * C -
  available); projected stockout = run_date + floor(max(available, 0) / mu). Only receivers with
  units short > 0 and a need of at least one pack are considered.
- **Donors**: active locations that can ship the SKU. A donor keeps its own reorder point plus
  its demand during the longest transit of the lanes it could use for that SKU:
  excess = min(available - reorder_point - mu * max_transit_days, on_hand - reserved) (it never
  ships stock still in transit to itself, nor what it needs). A donor that is also short has no
  excess.
- **Candidates**: receiver x configured lane into it x donor at the lane's origin. Dropped at once
  when a unit's margin (unit_price - unit_cost) does not exceed the lane's cost per unit, or when
  nothing can be saved. Units that avoid lost sales on a lane arriving after ``transit_days``:
  ``avoidable = max(0, mu * C - max(available, mu * transit_days))``, i.e. all units short when the
  transfer arrives before the projected stockout, and the demand from arrival to the end of the
  horizon when it arrives later (a receiver already at zero still gains from arrival on).
- **Greedy** (vectorised rounds, documented loop): receivers are served in order of need value
  (need x unit_price, largest first); in each round every receiver with a remaining need takes
  its cheapest feasible lane (cost per unit, then transit days, then donor code), for the whole
  packs (``items.pack_size``, rounded DOWN) that its remaining need, the donor's remaining excess
  and the lane's remaining capacity allow. Receivers competing for the same donor (or lane) are
  served in priority order with a cumulative sum, exactly as one-by-one; a receiver cut short by
  a lane shared with other SKUs retries in the next round. Every round allocates at least one
  pack, so the loop ends; in practice it runs a few rounds.
- **Lane and money checks** (loop until stable): a lane whose total units (all SKUs) are below its
  ``min_units`` is dropped; the lane's ``fixed_cost_per_shipment`` is shared across its transfers
  pro rata to units; transfer_cost = units x cost_per_unit + that share; benefit units = units
  avoiding lost sales, counted once per receiver when several donors serve it (earliest arrival
  first); expected_benefit = benefit units x (unit_price - unit_cost); a transfer whose benefit is
  below cost + ``margin_floor`` is dropped. Dropping raises the fixed-cost share of the others on
  the lane, hence the loop.
- **Approval tier**: ``auto`` when quantity <= auto_approve_max_units and quantity x unit_cost <=
  auto_approve_max_value of the SKU's policy row, else ``planner`` (always ``planner`` when no
  policies table is given).

Limits: greedy, not optimal (no re-allocation of stock freed by dropped transfers, no trade-off
between receivers); a flat demand rate; the donor's cost avoided (e.g. of its excess) is not
counted in the benefit; one shipment per lane per run.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import numpy as np
import pandas as pd

from pipelines.frames import KEY
from pipelines.transfers.common import empty, floor_packs, publish, without
from pipelines.transfers.demand import EPS


def greedy_candidates(
    policy_df: pd.DataFrame,
    items: pd.DataFrame,
    locations: pd.DataFrame,
    lanes: pd.DataFrame,
    coverage_days: int,
    exclude: pd.DataFrame | None = None,
) -> pd.DataFrame:
    cols = KEY + [
        "category",
        "abc_class",
        "demand_mean",
        "reorder_point",
        "order_up_to",
        "on_hand",
        "in_transit",
        "available",
    ]
    p = policy_df[cols].merge(items[["sku", "unit_cost", "unit_price", "pack_size"]], on="sku", how="inner")
    loc = locations[["location", "can_ship", "can_receive", "active"]]
    p = p.merge(loc, on="location", how="inner")
    active = p["active"].astype(bool)
    mu = p["demand_mean"]

    r = p[active & p["can_receive"].astype(bool) & (mu > 0) & (p["available"] < p["reorder_point"])].copy()
    r["need"] = r["order_up_to"] - r["available"]
    r["units_short"] = np.maximum(0.0, r["demand_mean"] * coverage_days - r["available"])
    r["stockout_days"] = np.floor(np.maximum(r["available"], 0.0) / r["demand_mean"])
    r = r[(r["units_short"] > EPS) & (r["need"] + EPS >= r["pack_size"])]
    r = r.assign(_value=r["need"] * r["unit_price"]).sort_values(
        ["_value", "sku", "location"], ascending=[False, True, True], kind="mergesort"
    )
    r["priority"] = np.arange(len(r))
    r = r.rename(columns={"location": "to_location"})

    d = p[active & p["can_ship"].astype(bool)][
        ["sku", "location", "demand_mean", "reorder_point", "available", "in_transit"]
    ].rename(
        columns={
            "location": "from_location",
            "demand_mean": "donor_mu",
            "reorder_point": "donor_rop",
            "available": "donor_available",
            "in_transit": "donor_in_transit",
        }
    )
    ln = lanes[
        [
            "from_location",
            "to_location",
            "cost_per_unit",
            "fixed_cost_per_shipment",
            "transit_days",
            "min_units",
            "capacity",
        ]
    ]
    c = r.merge(ln, on="to_location", how="inner").merge(d, on=["sku", "from_location"], how="inner")
    c = without(c[c["from_location"] != c["to_location"]], exclude).copy()
    if c.empty:
        return c
    c["capacity"] = c["capacity"].astype("float64").fillna(np.inf)
    max_transit = c.groupby(["sku", "from_location"])["transit_days"].transform("max")
    c["donor_excess_units"] = np.minimum(
        c["donor_available"] - c["donor_rop"] - c["donor_mu"] * max_transit,
        c["donor_available"] - c["donor_in_transit"],
    )
    mu_r = c["demand_mean"]
    c["avoidable"] = np.maximum(0.0, mu_r * coverage_days - np.maximum(c["available"], mu_r * c["transit_days"]))
    c["unit_margin"] = c["unit_price"] - c["unit_cost"]
    keep = (
        (c["donor_excess_units"] + EPS >= c["pack_size"])
        & (c["avoidable"] > EPS)
        & (c["unit_margin"] > c["cost_per_unit"])
    )
    c = c[keep].sort_values(["priority", "cost_per_unit", "transit_days", "from_location"], kind="mergesort")
    return c.reset_index(drop=True)


def allocate(c: pd.DataFrame) -> np.ndarray:
    """Greedy allocation in vectorised rounds (see module doc); units per candidate row."""
    rid = c["priority"].to_numpy(np.int64)
    did = c.groupby(["sku", "from_location"], sort=False).ngroup().to_numpy(np.int64)
    lid = c.groupby(["from_location", "to_location"], sort=False).ngroup().to_numpy(np.int64)
    pack = c["pack_size"].to_numpy(float)
    need = c["need"].to_numpy(float)
    excess = c["donor_excess_units"].to_numpy(float)
    cap = c["capacity"].to_numpy(float)
    got = np.zeros(rid.max() + 1)
    given = np.zeros(did.max() + 1)
    used = np.zeros(lid.max() + 1)
    alloc = np.zeros(len(c))
    while True:
        rem_r, rem_d, rem_l = need - got[rid], excess - given[did], cap - used[lid]
        room = np.minimum(np.minimum(rem_r, rem_d), rem_l)
        feasible = np.flatnonzero(room + EPS >= pack)
        if feasible.size == 0:
            break
        # rows are sorted by receiver priority then lane preference: first feasible row per receiver
        _, first = np.unique(rid[feasible], return_index=True)
        rows = feasible[np.sort(first)]
        claim = floor_packs(room[rows], pack[rows])
        frame = pd.DataFrame({"d": did[rows], "l": lid[rows], "claim": claim})
        before_d = frame.groupby("d", sort=False)["claim"].cumsum().to_numpy() - claim
        a1 = np.minimum(claim, floor_packs(rem_d[rows] - before_d, pack[rows]))
        frame["a1"] = a1
        before_l = frame.groupby("l", sort=False)["a1"].cumsum().to_numpy() - a1
        a2 = np.minimum(a1, floor_packs(rem_l[rows] - before_l, pack[rows]))
        if a2.sum() <= 0:  # cannot happen (the first row of a round always gets a pack); stay safe
            break
        np.add.at(got, rid[rows], a2)
        np.add.at(given, did[rows], a2)
        np.add.at(used, lid[rows], a2)
        alloc[rows] += a2
    return alloc


def settle(t: pd.DataFrame, margin_floor: float) -> pd.DataFrame:
    """Lane minimums, fixed-cost shares, benefit and the profit check, until stable."""
    t = t.sort_values(["priority", "transit_days", "cost_per_unit", "from_location"], kind="mergesort")
    while len(t):
        lane = t.groupby(["from_location", "to_location"], sort=False)["quantity"].transform("sum")
        share = t["fixed_cost_per_shipment"] * t["quantity"] / lane
        cost = t["quantity"] * t["cost_per_unit"] + share
        before = t.groupby("priority", sort=False)["quantity"].cumsum() - t["quantity"]
        units = np.clip(t["avoidable"] - before, 0.0, t["quantity"])
        benefit = units * t["unit_margin"]
        keep = (lane >= t["min_units"]) & (benefit + EPS >= cost + margin_floor)
        t = t.assign(transfer_cost=cost, expected_benefit=benefit)
        if keep.all():
            break
        t = t[keep]
    return t


def greedy_transfers(
    policy_df: pd.DataFrame,
    items: pd.DataFrame,
    locations: pd.DataFrame,
    lanes: pd.DataFrame,
    run_date: date,
    coverage_days: int,
    margin_floor: float,
    *,
    policies: pd.DataFrame | None = None,
    planner_categories: Sequence[str] = (),
    exclude: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Recommended transfers (``transfers`` columns without run_id), greedy method (module doc).

    ``policy_df`` is the ``inventory_policy`` table; ``policies`` (optional) gives the approval
    thresholds of each SKU's policy row; ``exclude`` (sku, from_location, to_location) are left out
    of the candidates before allocating, so their receivers are served by other donors.
    """
    c = greedy_candidates(policy_df, items, locations, lanes, int(coverage_days), exclude)
    if c.empty:
        return empty()
    c["quantity"] = allocate(c)
    t = settle(c[c["quantity"] > 0], float(margin_floor))
    if t.empty:
        return empty()
    return publish(t, run_date, coverage_days, "greedy", policies, planner_categories)
