"""Transfers stage: recommend stock moves between locations (MILP, with the greedy as baseline).

Method (``transfers.method: milp``, the default): a mixed-integer programme solved by HiGHS
(``scipy.optimize.milp``), per run.

- **Demand**: per SKU x location, the daily means of ``forecasts`` (horizons 1..H, H =
  ``coverage_days``; the flat ``demand_mean`` of ``inventory_policy`` where a day is missing).
  Demand over any window has that mean and variance d x mean, d = demand_std^2 / demand_mean
  (between 1 and 50): Poisson when d <= :data:`OVERDISPERSED`, else gamma (lumpy demand).
- **Receivers**: active, can receive, expected units short over the horizon
  E[(D_H - available)^+] > 0.5; they take at most max(order_up_to - available, units short).
- **Donors**: active, can ship; never stock still on its way to them (at most available -
  in_transit). ``donor_keep="risk"`` (the default, ``transfers.donor_keep``): with X_d the
  donor's own demand over its lead time (the window its reorder point protects) + the longest
  transit it ships on, its spread the wider of its demand dispersion and the one its safety
  stock implies (SS = z(service level) x sd, so its service-level quantile is the hard rule's
  keep level), the donor gives freely what lies above its p99.5 and
  may give more, down to its median need, each such unit charged margin x the expected lost
  sales it causes there: E[(X_d - (available - g))^+] - E[(X_d - available)^+], convex and
  piecewise linear in the units given g, breakpoints at the quantiles :data:`DONOR_PROBS`. So a
  donor goes below its reorder point only when a receiver gains more than the donor is expected
  to lose (the explanation then says so, with the numbers). ``donor_keep="reorder_point"``: the
  hard rule, the donor keeps its reorder point plus its expected demand over that transit:
  excess = min(available - reorder_point - demand over that transit, available - in_transit).
  With deterministic demand (the replay's perfect foresight) the hard rule applies. Near-expiry units (lots that will
  not sell before expiry, first-expiry-first-out at the forecast rate, from the ``stock`` lots)
  may be shipped beyond that excess, but only to receivers that sell them before the expiry
  date: mu_r x (days to expiry - transit) minus the stock the receiver still has on arrival.
- **Candidates**: receiver x configured lane into it x donor at its origin, with transit < H and
  a unit margin (unit_price - unit_cost) plus donor holding cost avoided above the lane's cost per unit.
- **Benefit** (maximised, minus costs): expected lost sales avoided at the receiver x unit margin,
  piecewise linear and concave in the units received: with X the demand from arrival to the
  horizon end and a the receiver's stock projected at arrival (available minus the expected
  demand until arrival, so a transfer arriving after the projected stockout only counts the
  demand after its arrival), lost units L(u) = E[(X - a - u)^+]; breakpoints at the Poisson
  quantiles of X (:data:`CURVE_PROBS`) minus a, slope = the expected lost units avoided per unit
  on the segment (the k-th unit is worth P(X - a >= k) x margin). Plus, per unit that sells at
  the receiver, the donor's holding cost avoided: unit_cost x ``holding_cost_rate`` / 365 x
  (donor days of cover - H, between 0 and 365); plus unit_cost per near-expiry unit rescued.
  A receiver's curve is that of its fastest lane; units on a slower lane are capped at what still
  sells after their own arrival (the p99.5 of their post-arrival demand minus a).
- **Costs and constraints**: lane cost per unit; a binary per lane used with its
  ``fixed_cost_per_shipment`` (+ ``margin_floor``, the least a shipment must earn), and
  min_units x used <= units on the lane <= capacity x used (consolidation across SKUs);
  quantities are whole packs (integer pack counts); the donor's excess, the receiver's need.
- **Decomposition**: SKUs are coupled only by lanes with a fixed cost, a minimum or a capacity;
  the connected components of the SKU-lane graph are independent and are packed into batches of
  at most ``batch_candidates`` candidates, one MILP each. A component larger than that is cut by
  SKU, each part charged its share (pro rata to its potential volume) of the lanes' fixed cost,
  minimum and capacity; afterwards a lane whose total stays below its minimum is dropped (said in
  the notes). The solver's time limit is shared by the batches; the optimality gap reported is
  the largest of the batches'. If a batch finds no solution in time (or one with a gap above
  20%), its SKUs get the greedy's transfers (below) and the run says so (``method`` column and
  the stage notes).
- **Reported**: transfer_cost = units x cost per unit + the lane's fixed cost shared pro rata to
  units; expected_benefit = the receiver's segment value spread over its benefit units + holding
  and expiry cost avoided; receiver_units_short = E[(D_H - available)^+]; stockout date = the
  first day the cumulative expected demand exceeds the available stock.
- **Approval tier**: ``auto`` when quantity <= auto_approve_max_units and quantity x unit_cost <=
  auto_approve_max_value of the SKU's policy row and the category is not in
  ``transfers.planner_categories``; else ``planner``.
- **Planner decisions** (``transfers.decisions_csv``, :mod:`pipelines.decisions`): approved
  transfers still on the way count as in transit at the receiver and are gone from the donor;
  rejected ones are not proposed again for ``reject_cooldown_days``.

Limits: independent demand per location, its spread from the sales (not the forecast errors); one
shipment per lane per run; the receiver's curve is built on its fastest lane; runs that hit the
time limit depend on the machine's speed (the only place where elapsed time matters).

Greedy baseline (``greedy_transfers``; ``transfers.method: greedy``, and the fallback), per SKU,
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

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse.csgraph import connected_components
from scipy.stats import gamma, norm, poisson

from pipelines import contract, explain
from pipelines.context import RunContext, StageResult
from pipelines.decisions import excluded_lanes

KEY = ["sku", "location"]

OUTPUT_COLUMNS = [c for c in contract.TRANSFERS.names if c != "run_id"]
_EPS = 1e-9
_DISP = False


def _empty() -> pd.DataFrame:
    return contract.empty("transfers")[OUTPUT_COLUMNS]


def _floor_packs(units: np.ndarray, pack: np.ndarray) -> np.ndarray:
    return np.floor(np.maximum(units, 0.0) / pack + _EPS) * pack


def _without(c: pd.DataFrame, exclude: pd.DataFrame | None) -> pd.DataFrame:
    """Candidates minus the (sku, from_location, to_location) in ``exclude`` (rejected by a planner)."""
    if exclude is None or exclude.empty or c.empty:
        return c
    key = ["sku", "from_location", "to_location"]
    hit = c[key].merge(exclude[key].drop_duplicates().assign(_x=True), on=key, how="left")["_x"].notna().to_numpy()
    return c[~hit]


def _candidates(
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
    r = r[(r["units_short"] > _EPS) & (r["need"] + _EPS >= r["pack_size"])]
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
    c = _without(c[c["from_location"] != c["to_location"]], exclude).copy()
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
        (c["donor_excess_units"] + _EPS >= c["pack_size"])
        & (c["avoidable"] > _EPS)
        & (c["unit_margin"] > c["cost_per_unit"])
    )
    c = c[keep].sort_values(["priority", "cost_per_unit", "transit_days", "from_location"], kind="mergesort")
    return c.reset_index(drop=True)


def _allocate(c: pd.DataFrame) -> np.ndarray:
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
        feasible = np.flatnonzero(room + _EPS >= pack)
        if feasible.size == 0:
            break
        # rows are sorted by receiver priority then lane preference: first feasible row per receiver
        _, first = np.unique(rid[feasible], return_index=True)
        rows = feasible[np.sort(first)]
        claim = _floor_packs(room[rows], pack[rows])
        frame = pd.DataFrame({"d": did[rows], "l": lid[rows], "claim": claim})
        before_d = frame.groupby("d", sort=False)["claim"].cumsum().to_numpy() - claim
        a1 = np.minimum(claim, _floor_packs(rem_d[rows] - before_d, pack[rows]))
        frame["a1"] = a1
        before_l = frame.groupby("l", sort=False)["a1"].cumsum().to_numpy() - a1
        a2 = np.minimum(a1, _floor_packs(rem_l[rows] - before_l, pack[rows]))
        if a2.sum() <= 0:  # cannot happen (the first row of a round always gets a pack); stay safe
            break
        np.add.at(got, rid[rows], a2)
        np.add.at(given, did[rows], a2)
        np.add.at(used, lid[rows], a2)
        alloc[rows] += a2
    return alloc


def _settle(t: pd.DataFrame, margin_floor: float) -> pd.DataFrame:
    """Lane minimums, fixed-cost shares, benefit and the profit check, until stable."""
    t = t.sort_values(["priority", "transit_days", "cost_per_unit", "from_location"], kind="mergesort")
    while len(t):
        lane = t.groupby(["from_location", "to_location"], sort=False)["quantity"].transform("sum")
        share = t["fixed_cost_per_shipment"] * t["quantity"] / lane
        cost = t["quantity"] * t["cost_per_unit"] + share
        before = t.groupby("priority", sort=False)["quantity"].cumsum() - t["quantity"]
        units = np.clip(t["avoidable"] - before, 0.0, t["quantity"])
        benefit = units * t["unit_margin"]
        keep = (lane >= t["min_units"]) & (benefit + _EPS >= cost + margin_floor)
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
    c = _candidates(policy_df, items, locations, lanes, int(coverage_days), exclude)
    if c.empty:
        return _empty()
    c["quantity"] = _allocate(c)
    t = _settle(c[c["quantity"] > 0], float(margin_floor))
    if t.empty:
        return _empty()
    return _publish(t, run_date, coverage_days, "greedy", policies, planner_categories)


# --------------------------------------------------------------------------------------------
# Optimisation model (MILP, HiGHS through scipy.optimize.milp)
# --------------------------------------------------------------------------------------------

#: cumulative probabilities of post-arrival demand at which the benefit curve gets a breakpoint
CURVE_PROBS = (0.0, 0.25, 0.5, 0.7, 0.85, 0.95, 0.995)
#: cumulative probabilities of the donor's own demand at which its keep level gets a breakpoint
#: (``donor_risk``): it never keeps less than its median need; units below its p99.5 are charged
#: the expected lost sales they cause at the donor
DONOR_PROBS = (0.5, 0.7, 0.85, 0.95, 0.995)
#: variance / mean above which demand is modelled as gamma rather than Poisson
OVERDISPERSED = 1.05


@dataclass(frozen=True)
class Demand:
    """Demand the optimiser plans with, per (sku, location) series of ``keys``.

    ``cum[i, j]`` = demand of series i over the first j days after the run date (j = 0..H, H the
    coverage horizon, ``cum[:, 0] = 0``). ``deterministic=False``: demand over any window has
    that mean (the forecast) and variance ``dispersion`` x mean: Poisson when the dispersion is
    at most :data:`OVERDISPERSED`, else a gamma distribution with that mean and variance;
    ``True``: ``cum`` is the realised demand (perfect foresight, used by the replay).
    """

    keys: pd.DataFrame
    cum: np.ndarray
    deterministic: bool = False
    dispersion: np.ndarray | None = None


@dataclass
class TransferPlan:
    """Output of :func:`optimal_transfers`: the transfers and how they were found."""

    transfers: pd.DataFrame
    method: str  # milp | greedy | none
    notes: list[str]
    mip_gap: float | None = None
    batches: int = 0
    seconds: float = 0.0


def cum_demand_from(
    keys: pd.DataFrame, demand_mean: np.ndarray, horizon: int, forecasts: pd.DataFrame | None, run_date: date
) -> np.ndarray:
    """Cumulative expected demand (n x horizon+1) from the ``forecasts`` daily means (horizon 1 =
    the run date), the flat ``demand_mean`` where a series or a day has no forecast row."""
    n = len(keys)
    daily = np.repeat(np.asarray(demand_mean, float)[:, None], horizon, axis=1) if n else np.zeros((0, horizon))
    if forecasts is not None and len(forecasts) and n:
        f = forecasts[(forecasts["horizon"] >= 1) & (forecasts["horizon"] <= horizon)]
        f = f[f["run_date"] == pd.Timestamp(run_date)] if "run_date" in f.columns and len(f) else f
        idx = keys[KEY].reset_index(drop=True).reset_index().merge(f[KEY + ["horizon", "mean"]], on=KEY, how="inner")
        if len(idx):
            daily[idx["index"].to_numpy(), idx["horizon"].to_numpy(np.int64) - 1] = idx["mean"].to_numpy(float)
    return np.concatenate([np.zeros((n, 1)), np.cumsum(np.maximum(daily, 0.0), axis=1)], axis=1)


def _poisson_loss(m: np.ndarray, c: np.ndarray) -> np.ndarray:
    """E[(X - c)^+] for X ~ Poisson(m), c >= 0 real (elementwise)."""
    k = np.floor(c) + 1.0
    return np.maximum(m * poisson.sf(k - 2.0, m) - c * poisson.sf(k - 1.0, m), 0.0)


def _loss(m: np.ndarray, c: np.ndarray, disp: np.ndarray) -> np.ndarray:
    """E[(X - c)^+]: Poisson(m) where disp <= OVERDISPERSED, else gamma with mean m, variance
    disp x m (shape m / disp, scale disp): E[(X - c)^+] = m sf(c; shape + 1) - c sf(c; shape)."""
    m, c, disp = np.broadcast_arrays(np.asarray(m, float), np.asarray(c, float), np.asarray(disp, float))
    out = _poisson_loss(m, c)
    g = (disp > OVERDISPERSED) & (m > 0)
    if g.any():
        shape, scale = m[g] / disp[g], disp[g]
        out[g] = np.maximum(
            m[g] * gamma.sf(c[g], shape + 1.0, scale=scale) - c[g] * gamma.sf(c[g], shape, scale=scale), 0.0
        )
    return out


def _ppf(q: np.ndarray, m: np.ndarray, disp: np.ndarray) -> np.ndarray:
    """Quantiles of the demand distribution of :func:`_loss` (NaN-free, 0 for no demand)."""
    q, m, disp = np.broadcast_arrays(np.asarray(q, float), np.asarray(m, float), np.asarray(disp, float))
    out = np.nan_to_num(poisson.ppf(q, m))
    g = (disp > OVERDISPERSED) & (m > 0)
    if g.any():
        out[g] = np.nan_to_num(gamma.ppf(q[g], m[g] / disp[g], scale=disp[g]))
    return out


def benefit_curves(
    post_mean: np.ndarray, at_arrival: np.ndarray, deterministic: bool, dispersion: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Piecewise-linear expected lost sales avoided by u units arriving, per row.

    Lost units after arrival with u units received: L(u) = E[(X - a - u)^+], X the demand from
    arrival to the horizon end, a the stock projected at arrival. Returns breakpoints ``u``
    (rows x K, increasing, first 0) and ``slope`` (rows x K-1) = (L(u_k) - L(u_k+1)) / (u_k+1 - u_k),
    the expected lost units avoided per unit on each segment (decreasing: L is convex). The
    breakpoints are the post-arrival demand quantiles of :data:`CURVE_PROBS` minus a; beyond the
    last one a unit avoids less than 0.5% of a lost sale and is not counted. Deterministic demand:
    one segment, slope 1, up to the realised shortfall.
    """
    m = np.asarray(post_mean, float)[:, None]
    a = np.asarray(at_arrival, float)[:, None]
    if deterministic:
        u = np.concatenate([np.zeros_like(m), np.maximum(m - a, 0.0)], axis=1)
        slope = (u[:, 1:] > _EPS).astype(float)
        return u, slope
    disp = np.ones_like(m) if dispersion is None else np.asarray(dispersion, float)[:, None]
    q = _ppf(np.asarray(CURVE_PROBS)[None, 1:], m, disp)
    u = np.concatenate([np.zeros_like(m), np.maximum(q - a, 0.0)], axis=1)
    u = np.maximum.accumulate(u, axis=1)
    loss = _loss(np.broadcast_to(m, u.shape), a + u, np.broadcast_to(disp, u.shape))
    width = np.diff(u, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = np.where(width > _EPS, (loss[:, :-1] - loss[:, 1:]) / np.where(width > _EPS, width, 1.0), 0.0)
    return u, np.clip(slope, 0.0, 1.0)


def expiring_units(stock: pd.DataFrame | None, policy_df: pd.DataFrame, run_date: date) -> pd.DataFrame:
    """Units per (sku, location) that will expire unsold, selling first-expiry-first-out at the
    forecast rate, and the earliest expiry date among them (days from the run date).

    Per series, lots sorted by expiry: with C_i the cumulative units through lot i and S_i the
    demand until lot i expires (mu x days to expiry), the units wasted through lot i are
    max(0, max_{j<=i}(C_j - S_j)) (FEFO queue). Lots already expired count as wasted.
    """
    cols = KEY + ["expiring_units", "expiry_days"]
    if stock is None or stock.empty or "expiry_date" not in stock.columns:
        return pd.DataFrame(columns=cols)
    rd = pd.Timestamp(run_date)
    snap = stock[stock["snapshot_date"] <= rd]
    snap = snap[snap["snapshot_date"] == snap["snapshot_date"].max()]
    lots = snap[snap["expiry_date"].notna() & (snap["on_hand"] - snap["reserved"] > 0)]
    if lots.empty:
        return pd.DataFrame(columns=cols)
    lots = lots.merge(policy_df[KEY + ["demand_mean"]], on=KEY, how="inner")
    lots = lots.sort_values(KEY + ["expiry_date", "lot"], kind="mergesort").reset_index(drop=True)
    days = (lots["expiry_date"] - rd).dt.days.to_numpy(float)
    units = (lots["on_hand"] - lots["reserved"]).to_numpy(float)
    lots["_c"] = pd.Series(units).groupby([lots["sku"], lots["location"]], sort=False).cumsum().to_numpy()
    lots["_gap"] = lots["_c"] - lots["demand_mean"].to_numpy(float) * np.maximum(days, 0.0)
    lots["_w"] = np.maximum(lots.groupby(KEY, sort=False)["_gap"].cummax(), 0.0)
    lots["_days"] = days
    lots["_new"] = lots.groupby(KEY, sort=False)["_w"].diff().fillna(lots["_w"])
    g = lots.groupby(KEY, sort=False)
    out = g["_w"].max().rename("expiring_units").to_frame()
    first = lots[lots["_new"] > _EPS].groupby(KEY, sort=False)["_days"].min().rename("expiry_days")
    out = out.join(first).reset_index()
    return out[out["expiring_units"] > _EPS][cols].reset_index(drop=True)


def approval_tier(t: pd.DataFrame, policies: pd.DataFrame | None, planner_categories: Sequence[str] = ()) -> np.ndarray:
    """``auto`` when quantity <= auto_approve_max_units and quantity x unit_cost <=
    auto_approve_max_value of the most specific policies row for the SKU's (category, abc_class)
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
    auto = (
        (qty <= lim_u + _EPS)
        & (qty * t["unit_cost"].to_numpy(float) <= lim_v + _EPS)
        & ~t["category"].isin(list(planner_categories)).to_numpy()
    )
    return np.where(auto, "auto", "planner").astype(object)


def default_dispersion(policy_df: pd.DataFrame) -> np.ndarray:
    """Variance / mean of demand per row of ``inventory_policy``: demand_std^2 / demand_mean,
    between 1 (Poisson) and 50; 1 where there is no demand."""
    mu = policy_df["demand_mean"].to_numpy(float)
    sd = policy_df["demand_std"].to_numpy(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        d = np.where(mu > 0, sd**2 / np.where(mu > 0, mu, 1.0), 1.0)
    return np.clip(np.nan_to_num(d, nan=1.0), 1.0, 50.0)


def _milp_candidates(
    policy_df: pd.DataFrame,
    items: pd.DataFrame,
    locations: pd.DataFrame,
    lanes: pd.DataFrame,
    demand: Demand,
    coverage_days: int,
    holding_cost_rate: float,
    expiring: pd.DataFrame,
    exclude: pd.DataFrame | None,
    donor_excess_override: pd.DataFrame | None,
    max_donors: int,
    donor_risk: bool = False,
) -> tuple[pd.DataFrame, str]:
    """Candidates (receiver x lane x donor) with everything the model needs, or a reason why none."""
    H = int(coverage_days)
    cols = KEY + [
        "category",
        "abc_class",
        "demand_mean",
        "demand_std",
        "lead_time_days",
        "service_level",
        "reorder_point",
        "order_up_to",
        "on_hand",
        "in_transit",
        "available",
    ]
    p = policy_df[cols].merge(items[["sku", "unit_cost", "unit_price", "pack_size"]], on="sku", how="inner")
    p = p.merge(locations[["location", "can_ship", "can_receive", "active"]], on="location", how="inner")
    p = p[p["active"].astype(bool)].reset_index(drop=True)
    if p.empty:
        return p, "no active SKU-location in the inventory policy"
    pos = p[KEY].merge(demand.keys[KEY].reset_index(drop=True).reset_index(), on=KEY, how="left")["index"]
    cum = np.zeros((len(p), H + 1))
    have = pos.notna().to_numpy()
    cum[have] = demand.cum[pos[have].to_numpy(np.int64), : H + 1]
    flat = np.arange(H + 1)[None, :] * p["demand_mean"].to_numpy(float)[:, None]
    cum[~have] = flat[~have]
    if demand.dispersion is not None:
        disp = np.ones(len(p))
        disp[have] = np.asarray(demand.dispersion, float)[pos[have].to_numpy(np.int64)]
    else:
        disp = default_dispersion(p)
    p["disp"] = disp
    p["_row"] = np.arange(len(p))
    avail = p["available"].to_numpy(float)
    # receivers: short over the horizon by more than half a unit
    stock0 = np.maximum(avail, 0.0)
    if demand.deterministic:
        short0 = np.maximum(cum[:, H] - stock0, 0.0)
    else:
        short0 = _loss(cum[:, H], stock0, disp)
    p["units_short"] = short0
    p["stockout_days"] = (cum[:, 1:] <= stock0[:, None] + _EPS).sum(axis=1)
    recv = p[p["can_receive"].astype(bool) & (short0 > 0.5)].copy()
    recv["need"] = np.maximum(recv["order_up_to"] - recv["available"], recv["units_short"])
    recv = recv[recv["need"] + _EPS >= recv["pack_size"]].rename(columns={"location": "to_location"})
    if recv.empty:
        return recv, "no receiver is short over the coverage horizon"

    don = p[p["can_ship"].astype(bool)].rename(columns={"location": "from_location"})
    ex = expiring.rename(columns={"location": "from_location"}) if len(expiring) else None
    don = (
        don.merge(ex, on=["sku", "from_location"], how="left")
        if ex is not None
        else don.assign(expiring_units=np.nan, expiry_days=np.nan)
    )
    don["expiring_units"] = np.minimum(don["expiring_units"].fillna(0.0), np.maximum(don["on_hand"], 0.0))
    don = don[
        [
            "sku",
            "from_location",
            "demand_mean",
            "disp",
            "lead_time_days",
            "service_level",
            "reorder_point",
            "available",
            "on_hand",
            "in_transit",
            "_row",
            "expiring_units",
            "expiry_days",
        ]
    ].rename(
        columns={
            "demand_mean": "donor_mu",
            "disp": "donor_disp",
            "lead_time_days": "donor_lead_time",
            "service_level": "donor_service",
            "reorder_point": "donor_rop",
            "available": "donor_available",
            "on_hand": "donor_on_hand",
            "in_transit": "donor_in_transit",
            "_row": "_drow",
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
    c = recv.merge(ln, on="to_location", how="inner").merge(don, on=["sku", "from_location"], how="inner")
    c = c[c["from_location"] != c["to_location"]]
    if exclude is not None and len(exclude):
        c = c.merge(
            exclude[["sku", "from_location", "to_location"]].drop_duplicates().assign(_x=True),
            on=["sku", "from_location", "to_location"],
            how="left",
        )
        c = c[c["_x"].isna()].drop(columns="_x")
    c = c[c["transit_days"] < H].reset_index(drop=True)
    if c.empty:
        return c, "no configured lane from a donor reaches a short receiver within the coverage horizon"
    c["capacity"] = c["capacity"].astype("float64").fillna(np.inf)
    # donor: keeps its reorder point plus its demand over the longest transit it ships on
    max_transit = c.groupby(["sku", "from_location"])["transit_days"].transform("max").to_numpy(np.int64)
    dcum = cum[c["_drow"].to_numpy(np.int64), np.minimum(max_transit, H)]
    if donor_excess_override is not None:
        ov = (
            c[["sku", "from_location"]]
            .merge(
                donor_excess_override.rename(columns={"location": "from_location"}),
                on=["sku", "from_location"],
                how="left",
            )["excess"]
            .to_numpy(float)
        )
        excess = np.nan_to_num(ov, nan=0.0)
    else:
        excess = np.minimum(
            c["donor_available"].to_numpy(float) - c["donor_rop"].to_numpy(float) - dcum,
            c["donor_available"].to_numpy(float) - c["donor_in_transit"].to_numpy(float),
        )
    onhand_free = np.maximum(c["donor_available"].to_numpy(float) - c["donor_in_transit"].to_numpy(float), 0.0)
    c["donor_excess_units"] = np.maximum(excess, 0.0)
    c["expiring_units"] = np.minimum(c["expiring_units"].to_numpy(float), onhand_free)
    if donor_risk and donor_excess_override is None and not demand.deterministic:
        # the donor may also give units it would sell with some probability, down to its median
        # need; each such unit is charged the donor's expected lost sales (segments, _solve_block).
        # Its need: its demand over its lead time (the window its reorder point protects)
        # plus the transit, with the spread its own safety stock implies (SS = z(service level)
        # x sd) or the demand's own dispersion, whichever is wider: its service-level quantile is
        # then its reorder point plus the transit demand, the hard rule's keep level
        mu_d = c["donor_mu"].to_numpy(float)
        lead_d = c["donor_lead_time"].to_numpy(float)
        mean_d = mu_d * lead_d + dcum
        z = norm.ppf(np.clip(c["donor_service"].to_numpy(float), 0.5, 0.9999))
        sd_ss = np.where(
            z > 0, np.maximum(c["donor_rop"].to_numpy(float) - mu_d * lead_d, 0.0) / np.where(z > 0, z, 1.0), 0.0
        )
        disp_d = c["donor_disp"].to_numpy(float)
        with np.errstate(divide="ignore", invalid="ignore"):
            disp_eff = np.where(
                mean_d > 0, np.maximum(disp_d, (sd_ss**2 + disp_d * dcum) / np.where(mean_d > 0, mean_d, 1.0)), 1.0
            )
        c["donor_disp"] = disp_eff
        need_mean = np.broadcast_to(mean_d[:, None], (len(c), len(DONOR_PROBS)))
        q = _ppf(
            np.broadcast_to(np.asarray(DONOR_PROBS)[None, :], need_mean.shape),
            need_mean,
            disp_eff[:, None],
        )
        q = np.maximum.accumulate(q, axis=1)  # keep levels, increasing with the probability
        avail = c["donor_available"].to_numpy(float)[:, None]
        give = np.clip(avail - q, 0.0, onhand_free[:, None])  # units given down to each keep level
        free0 = give[:, -1]  # above the p99.5: given without a charge
        lost = _loss(
            need_mean,
            np.broadcast_to(avail, need_mean.shape) - give,
            np.broadcast_to(disp_eff[:, None], need_mean.shape),
        )
        # segment k: from give[:, k+1] to give[:, k] (probabilities DONOR_PROBS[k] .. [k+1]); the
        # priced units are fresh ones (near-expiry units cost the donor nothing: it cannot sell
        # them), so the segments hold at most the fresh units below the free ones, cheapest first
        exp_units = c["expiring_units"].to_numpy(float)
        left = np.maximum(give[:, 0] - exp_units, 0.0) - np.maximum(free0 - exp_units, 0.0)
        for k in range(len(DONOR_PROBS) - 2, -1, -1):
            w = np.minimum(np.maximum(give[:, k] - give[:, k + 1], 0.0), np.maximum(left, 0.0))
            left = left - w
            dl = lost[:, k] - lost[:, k + 1]
            full = give[:, k] - give[:, k + 1]
            with np.errstate(divide="ignore", invalid="ignore"):
                c[f"_dseg_w{k}"] = w
                c[f"_dseg_s{k}"] = np.where(full > _EPS, np.clip(dl / np.where(full > _EPS, full, 1.0), 0.0, 1.0), 0.0)
        c["_dfree"] = free0
        c["_dneed"] = need_mean[:, 0]
        c["donor_excess_units"] = np.maximum(give[:, 0], 0.0)
    # arrival: the receiver's stock projected at arrival, the demand after it
    t = c["transit_days"].to_numpy(np.int64)
    rrow = c["_row"].to_numpy(np.int64)
    c["post_mean"] = cum[rrow, H] - cum[rrow, t]
    c["at_arrival"] = np.maximum(np.maximum(c["available"].to_numpy(float), 0.0) - cum[rrow, t], 0.0)
    c["unit_margin"] = c["unit_price"] - c["unit_cost"]
    # donor holding cost avoided per unit that sells at the receiver instead of sitting at the donor
    dmu = c["donor_mu"].to_numpy(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        dcover = np.where(dmu > 0, c["donor_available"].to_numpy(float) / np.where(dmu > 0, dmu, 1.0), np.inf)
    c["hold_avoided"] = c["unit_cost"].to_numpy(float) * holding_cost_rate / 365.0 * np.clip(dcover - H, 0.0, 365.0)
    # near-expiry units: only to receivers that sell them (beyond their own stock) before expiry
    exp_days = c["expiry_days"].to_numpy(float)
    mu_r = c["demand_mean"].to_numpy(float)
    c["sellable_before_expiry"] = np.where(
        np.isfinite(exp_days), np.maximum(mu_r * (exp_days - t) - c["at_arrival"].to_numpy(float), 0.0), 0.0
    )
    c["fresh_excess"] = np.maximum(
        (c["_dfree"] if "_dfree" in c.columns else c["donor_excess_units"]) - c["expiring_units"], 0.0
    )
    pack = c["pack_size"].to_numpy(float)
    room = np.minimum(np.minimum(c["donor_excess_units"], c["need"]), c["capacity"]).to_numpy(float)
    room = np.maximum(
        room,
        np.minimum(
            np.minimum(c["expiring_units"].to_numpy(float), c["sellable_before_expiry"].to_numpy(float)), c["need"]
        ),
    )
    # what still sells after this lane's arrival (all of it with foresight, else the p99.5)
    post, at_arr = c["post_mean"].to_numpy(float), c["at_arrival"].to_numpy(float)
    if demand.deterministic:
        useful = np.maximum(post - at_arr, 0.0)
    else:
        useful = np.maximum(_ppf(np.full(len(post), CURVE_PROBS[-1]), post, c["disp"].to_numpy(float)) - at_arr, 0.0)
    room = np.minimum(room, np.ceil(useful / pack - _EPS) * pack)
    c["ub_packs"] = np.floor(np.maximum(room, 0.0) / pack + _EPS)
    keep = (c["ub_packs"] >= 1) & (c["unit_margin"] + c["hold_avoided"] > c["cost_per_unit"]) & (c["post_mean"] > _EPS)
    c = c[keep]
    # at most max_donors lanes per receiver: cheapest per unit needed (fixed cost spread over the
    # need), then fastest, then donor code
    score = c["cost_per_unit"] + c["fixed_cost_per_shipment"] / np.maximum(c["need"], 1.0)
    c = c.assign(_score=score).sort_values(
        ["sku", "to_location", "_score", "transit_days", "from_location"], kind="mergesort"
    )
    c = c[c.groupby(["sku", "to_location"], sort=False).cumcount() < int(max_donors)]
    c = c.drop(columns="_score").reset_index(drop=True)
    if c.empty:
        return c, "no donor has a whole pack to spare on a lane where a unit earns more than it costs to move"
    return c, ""


def _solve_block(
    c: pd.DataFrame,
    lane_scale: np.ndarray,
    margin_floor: float,
    deterministic: bool,
    time_limit: float,
    mip_rel_gap: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float | None, int, str]:
    """One MILP over the candidates ``c`` (see the module doc for the model).

    Variables: packs per candidate (integer), near-expiry units per candidate that has some,
    benefit segments per receiver, one binary per lane. ``lane_scale`` (per row of c): the share
    of its lane's fixed cost, minimum and capacity charged to this block (1 when the block holds
    every candidate of the lane). Returns units, benefit value, expiring units moved (per
    candidate), the gap, the HiGHS status and its message.
    """
    n = len(c)
    pack = c["pack_size"].to_numpy(float)
    ubp = c["ub_packs"].to_numpy(float)
    rid = c.groupby(["sku", "to_location"], sort=False).ngroup().to_numpy(np.int64)
    did = c.groupby(["sku", "from_location"], sort=False).ngroup().to_numpy(np.int64)
    lid = c.groupby(["from_location", "to_location"], sort=False).ngroup().to_numpy(np.int64)
    nr, nd, nl = rid.max() + 1, did.max() + 1, lid.max() + 1
    # benefit curve per receiver, on its fastest lane's arrival
    fastest = pd.Series(c["transit_days"].to_numpy()).groupby(rid).idxmin().to_numpy()
    u, slope = benefit_curves(
        c["post_mean"].to_numpy()[fastest],
        c["at_arrival"].to_numpy()[fastest],
        deterministic,
        c["disp"].to_numpy(float)[fastest],
    )
    width = np.diff(u, axis=1)
    margin_r = c["unit_margin"].to_numpy(float)[fastest]
    seg_r, seg_k = np.nonzero((width > _EPS) & (slope > 1e-6))
    seg_w = width[seg_r, seg_k]
    seg_v = slope[seg_r, seg_k] * margin_r[seg_r]
    ns = len(seg_r)
    # donors' risk segments (donor_risk): units below the donor's p99.5 keep level, charged its
    # expected lost sales per unit
    nk = sum(1 for col in c.columns if col.startswith("_dseg_w"))
    if nk:
        dfirst = pd.Series(np.arange(n)).groupby(did).first().to_numpy()
        dw = np.column_stack([c[f"_dseg_w{k}"].to_numpy(float)[dfirst] for k in range(nk)])
        dsl = np.column_stack([c[f"_dseg_s{k}"].to_numpy(float)[dfirst] for k in range(nk)])
        # only what the donor's candidates could take beyond its free units needs pricing
        # (cheapest segments first): most donors never reach their risk, and fewer columns
        # keep the batches fast
        room = np.maximum(
            np.bincount(did, weights=pack * ubp, minlength=nd)
            - c["fresh_excess"].to_numpy(float)[dfirst]
            - c["expiring_units"].to_numpy(float)[dfirst],
            0.0,
        )
        for k in range(nk - 1, -1, -1):
            dw[:, k] = np.minimum(dw[:, k], room)
            room = room - dw[:, k]
        dseg_d, dseg_k = np.nonzero(dw > _EPS)
        dseg_w = dw[dseg_d, dseg_k]
        dseg_v = dsl[dseg_d, dseg_k] * c["unit_margin"].to_numpy(float)[dfirst][dseg_d]
    else:
        dseg_d = dseg_k = np.zeros(0, dtype=np.int64)
        dseg_w = dseg_v = np.zeros(0)
    nds = len(dseg_d)
    e_ub_all = np.minimum(c["expiring_units"].to_numpy(float), c["sellable_before_expiry"].to_numpy(float))
    ec = np.flatnonzero(e_ub_all > _EPS)  # candidates that may carry near-expiry units
    ne = len(ec)
    # lanes
    lane_first = pd.Series(np.arange(n)).groupby(lid).first().to_numpy()
    scale = pd.Series(lane_scale).groupby(lid).first().to_numpy()
    fixed = c["fixed_cost_per_shipment"].to_numpy(float)[lane_first] * scale + margin_floor
    min_u = c["min_units"].to_numpy(float)[lane_first] * scale
    lane_pot = np.bincount(lid, weights=pack * ubp, minlength=nl)
    cap = c["capacity"].to_numpy(float)[lane_first] * scale
    tight = cap < lane_pot  # lanes whose capacity can bind
    o_n, o_e, o_s, o_y = 0, n, n + ne, n + ne + ns
    o_d = o_y + nl
    nv = o_d + nds
    cost = np.concatenate(
        [
            pack * (c["cost_per_unit"].to_numpy(float) - c["hold_avoided"].to_numpy(float)),
            -c["unit_cost"].to_numpy(float)[ec],
            -seg_v,
            fixed,
            dseg_v,
        ]
    )
    ub = np.concatenate([ubp, e_ub_all[ec], seg_w, np.ones(nl), dseg_w])
    integrality = np.concatenate([np.ones(n), np.zeros(ne + ns), np.ones(nl), np.zeros(nds)])
    ar = np.arange(n)
    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    vals: list[np.ndarray] = []
    rhi: list[np.ndarray] = []
    r0 = 0

    def put(r: np.ndarray, col: np.ndarray, v: np.ndarray) -> None:
        rows.append(r0 + r)
        cols.append(col)
        vals.append(v)

    # receivers: sum s - units <= 0 ; units <= need
    put(seg_r, o_s + np.arange(ns), np.ones(ns))
    put(rid, o_n + ar, -pack)
    rhi.append(np.zeros(nr))
    r0 += nr
    put(rid, o_n + ar, pack)
    rhi.append(pd.Series(c["need"].to_numpy(float)).groupby(rid).first().to_numpy())
    r0 += nr
    # near-expiry units ride on the candidate's units: e - pack n <= 0
    put(np.arange(ne), o_e + np.arange(ne), np.ones(ne))
    put(np.arange(ne), o_n + ec, -pack[ec])
    rhi.append(np.zeros(ne))
    r0 += ne
    # donors: units - near-expiry units <= fresh excess ; near-expiry units <= expiring units
    put(did, o_n + ar, pack)
    put(did[ec], o_e + np.arange(ne), -np.ones(ne))
    put(dseg_d, o_d + np.arange(nds), -np.ones(nds))
    rhi.append(pd.Series(c["fresh_excess"].to_numpy(float)).groupby(did).first().to_numpy())
    r0 += nd
    put(did[ec], o_e + np.arange(ne), np.ones(ne))
    rhi.append(pd.Series(c["expiring_units"].to_numpy(float)).groupby(did).first().to_numpy())
    r0 += nd
    # lanes: packs only on a used lane (n <= ub y, the tight form), capacity, minimum
    put(ar, o_n + ar, np.ones(n))
    put(ar, o_y + lid, -ubp)
    rhi.append(np.zeros(n))
    r0 += n
    tl = np.flatnonzero(tight)
    tmap = np.full(nl, -1)
    tmap[tl] = np.arange(len(tl))
    on_tight = tmap[lid] >= 0
    put(tmap[lid][on_tight], o_n + ar[on_tight], pack[on_tight])
    put(np.arange(len(tl)), o_y + tl, -cap[tl])
    rhi.append(np.zeros(len(tl)))
    r0 += len(tl)
    put(lid, o_n + ar, -pack)
    put(np.arange(nl), o_y + np.arange(nl), min_u)
    rhi.append(np.zeros(nl))
    r0 += nl
    A = sp.csr_array((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(r0, nv))
    hi = np.concatenate(rhi)
    res = milp(
        cost,
        constraints=LinearConstraint(A, np.full(r0, -np.inf), hi),
        integrality=integrality,
        bounds=Bounds(np.zeros(nv), ub),
        options={"time_limit": max(float(time_limit), 1.0), "mip_rel_gap": float(mip_rel_gap), "disp": _DISP},
    )
    if res.x is None:
        return np.zeros(n), np.zeros(n), np.zeros(n), None, int(res.status), str(res.message)
    x = res.x
    units = np.rint(x[o_n : o_n + n]) * pack
    e = np.zeros(n)
    e[ec] = np.minimum(x[o_e : o_e + ne], units[ec])
    # the receiver's segment value, spread over its candidates pro rata to units
    seg_val = np.bincount(seg_r, weights=x[o_s : o_s + ns] * seg_v, minlength=nr)
    r_units = np.bincount(rid, weights=units, minlength=nr)
    with np.errstate(divide="ignore", invalid="ignore"):
        value = np.where(r_units[rid] > 0, seg_val[rid] * units / np.where(r_units[rid] > 0, r_units[rid], 1.0), 0.0)
        if nds:  # the donor's expected lost margin, spread over its shipments pro rata to units
            d_cost = np.bincount(dseg_d, weights=x[o_d : o_d + nds] * dseg_v, minlength=nd)
            d_units = np.bincount(did, weights=units, minlength=nd)
            value -= np.where(
                d_units[did] > 0, d_cost[did] * units / np.where(d_units[did] > 0, d_units[did], 1.0), 0.0
            )
    gap = getattr(res, "mip_gap", None)
    return units, value, e, (None if gap is None else float(gap)), int(res.status), str(res.message)


def _blocks(c: pd.DataFrame, max_candidates: int) -> tuple[np.ndarray, np.ndarray]:
    """Batch id and lane scale per candidate.

    SKUs are coupled only through lanes with a fixed cost, a minimum or a capacity: connected
    components of the SKU-lane graph over those lanes are independent problems. Components are
    packed, in SKU order, into batches of at most ``max_candidates`` rows; a component larger
    than that is cut into batches by SKU, each charged a share of its lanes' fixed cost, minimum
    and capacity pro rata to the batch's potential volume on the lane (``lane_scale``).
    """
    sku_id = c.groupby("sku", sort=True).ngroup().to_numpy(np.int64)
    lane_key = c.groupby(["from_location", "to_location"], sort=True).ngroup().to_numpy(np.int64)
    coupling = (
        (c["fixed_cost_per_shipment"].to_numpy(float) > 0)
        | (c["min_units"].to_numpy(float) > 0)
        | np.isfinite(c["capacity"].to_numpy(float))
    )
    ns, nl = sku_id.max() + 1, lane_key.max() + 1
    g = sp.coo_array(
        (np.ones(int(coupling.sum())), (sku_id[coupling], ns + lane_key[coupling])), shape=(ns + nl, ns + nl)
    )
    _, comp = connected_components(g, directed=False)
    rows_per_sku = np.bincount(sku_id, minlength=ns)
    # SKUs ordered by component (components by their first SKU), then by SKU
    comp_s = comp[:ns]
    first = pd.Series(np.arange(ns)).groupby(comp_s).transform("min").to_numpy()
    seq = np.lexsort((np.arange(ns), first))
    sizes = rows_per_sku[seq]
    cs = comp_s[seq]
    comp_size = np.bincount(cs, weights=sizes)
    new_comp = np.r_[True, cs[1:] != cs[:-1]]
    start = np.cumsum(sizes) - sizes  # rows before this SKU
    comp_start = np.maximum.accumulate(np.where(new_comp, start, 0))
    # a component goes whole to the batch where it starts; a component larger than a batch is
    # cut by SKU into batches of max_candidates rows
    big = comp_size[cs] > max_candidates
    base = comp_start // max_candidates
    sub = np.where(big, (start - comp_start) // max_candidates, 0)
    bkey = pd.DataFrame({"big": big, "base": np.where(big, cs, base), "sub": sub})
    # small components: the batch is their start's; big ones get their own ids after the small ones
    bid = bkey.groupby(["big", "base", "sub"], sort=True).ngroup().to_numpy(np.int64)
    batch_of_sku = np.empty(ns, dtype=np.int64)
    batch_of_sku[seq] = bid
    batch = batch_of_sku[sku_id]
    pot = c["pack_size"].to_numpy(float) * c["ub_packs"].to_numpy(float)
    lane_tot = np.bincount(lane_key, weights=pot, minlength=nl)
    key = lane_key * (batch.max() + 1) + batch
    part = pd.Series(pot).groupby(key).transform("sum").to_numpy()
    scale = np.where(lane_tot[lane_key] > 0, part / np.where(lane_tot[lane_key] > 0, lane_tot[lane_key], 1.0), 1.0)
    return batch, np.clip(scale, 0.0, 1.0)


def _publish(
    t: pd.DataFrame,
    run_date: date,
    coverage_days: int,
    method: str,
    policies: pd.DataFrame | None,
    planner_categories: Sequence[str],
) -> pd.DataFrame:
    rd = pd.Timestamp(run_date)
    t = t.copy()
    t["run_date"] = rd
    t["packs"] = np.rint(t["quantity"] / t["pack_size"]).astype("int64")
    t["receiver_stockout_date"] = rd + pd.to_timedelta(t["stockout_days"].astype("int64"), unit="D")
    t["receiver_units_short"] = t["units_short"]
    with np.errstate(divide="ignore", invalid="ignore"):
        t["donor_days_of_cover"] = np.where(
            t["donor_mu"] > 0, t["donor_available"] / t["donor_mu"].where(t["donor_mu"] > 0, 1.0), np.nan
        )
    t["arrival_date"] = rd + pd.to_timedelta(t["transit_days"].astype("int64"), unit="D")
    t["approval_tier"] = approval_tier(t, policies, planner_categories)
    t["method"] = method
    t["explanation_en"], t["explanation_zh"] = explain.transfer_sentences(t, int(coverage_days))
    return t[OUTPUT_COLUMNS].sort_values(["sku", "from_location", "to_location"]).reset_index(drop=True)


def _donor_risk(donor_keep: str) -> bool:
    if donor_keep not in ("risk", "reorder_point"):
        raise ValueError(f"transfers: donor_keep must be 'risk' or 'reorder_point', got {donor_keep!r}")
    return donor_keep == "risk"


def optimal_transfers(
    policy_df: pd.DataFrame,
    items: pd.DataFrame,
    locations: pd.DataFrame,
    lanes: pd.DataFrame,
    run_date: date,
    coverage_days: int,
    margin_floor: float,
    *,
    policies: pd.DataFrame | None = None,
    forecasts: pd.DataFrame | None = None,
    stock: pd.DataFrame | None = None,
    demand: Demand | None = None,
    exclude: pd.DataFrame | None = None,
    donor_excess: pd.DataFrame | None = None,
    holding_cost_rate: float = 0.25,
    time_limit_seconds: float = 240.0,
    mip_rel_gap: float = 0.01,
    batch_candidates: int = 40_000,
    planner_categories: Sequence[str] = (),
    max_donors: int = 3,
    max_gap: float = 0.2,
    fallback: bool = True,
    donor_keep: str = "risk",
) -> TransferPlan:
    """Transfers chosen by the MILP (module doc), with the greedy as fallback.

    ``demand`` overrides the demand planned with (default: Poisson around the ``forecasts`` daily
    means, or the flat ``demand_mean``); ``exclude`` (sku, from_location, to_location) are never
    proposed (rejected by a planner); ``donor_excess`` (sku, location, excess) overrides the
    donors' units to spare (the replay's perfect foresight). The time limit is shared by all
    batches; the SKUs of a batch that finds no solution in time, or only one with a gap above
    ``max_gap``, get the greedy's transfers (``method`` = greedy on those rows; the plan's
    method is greedy when every batch failed).
    """
    clock = time.perf_counter()
    H = int(coverage_days)
    if demand is None:
        keys = policy_df[KEY].reset_index(drop=True)
        demand = Demand(keys, cum_demand_from(keys, policy_df["demand_mean"].to_numpy(float), H, forecasts, run_date))
    c, why = _milp_candidates(
        policy_df,
        items,
        locations,
        lanes,
        demand,
        H,
        holding_cost_rate,
        expiring_units(stock, policy_df, run_date),
        exclude,
        donor_excess,
        max_donors,
        _donor_risk(donor_keep),
    )
    if c.empty:
        return TransferPlan(_empty(), "none", [f"no transfer: {why}"], None, 0, time.perf_counter() - clock)
    batch, scale = _blocks(c, int(batch_candidates))
    nb = int(batch.max()) + 1
    units = np.zeros(len(c))
    bval = np.zeros(len(c))
    e = np.zeros(len(c))
    gaps: list[float] = []
    failed: list[str] = []
    failed_rows: list[np.ndarray] = []
    order = np.argsort(batch, kind="stable")
    bounds = np.searchsorted(batch[order], np.arange(nb + 1))
    for k in range(nb):  # one MILP per batch (few batches; the work is inside HiGHS)
        rows = order[bounds[k] : bounds[k + 1]]
        left = time_limit_seconds - (time.perf_counter() - clock)
        if left <= 0:
            failed.append(f"batch {k + 1}: time limit of {time_limit_seconds:g} s reached before it")
            failed_rows.append(rows)
            continue
        u, bv, ee, gap, status, msg = _solve_block(
            c.iloc[rows].reset_index(drop=True),
            scale[rows],
            float(margin_floor),
            demand.deterministic,
            left / (nb - k),
            mip_rel_gap,
        )
        if status not in (0, 1) or (status == 1 and gap is None and u.sum() == 0 and bv.sum() == 0):
            failed.append(f"batch {k + 1}: {msg}")
            failed_rows.append(rows)
            continue
        if gap is not None and gap > max_gap:
            failed.append(f"batch {k + 1}: time limit with a gap of {gap:.1%} (more than {max_gap:.0%})")
            failed_rows.append(rows)
            continue
        units[rows], bval[rows], e[rows] = u, bv, ee
        if gap is not None and np.isfinite(gap):
            gaps.append(gap)
    seconds = time.perf_counter() - clock
    notes: list[str] = []
    fallback_out = _empty()
    if failed:
        head = f"MILP found no solution in {len(failed)} of {nb} batch(es) ({'; '.join(failed[:3])})"
        if not fallback:
            notes.append(f"{head}; no fallback: those SKUs get no transfer")
        else:
            # the greedy for the SKUs of the failed batches (the others keep the MILP's answer)
            skus = pd.Index(c["sku"].to_numpy()[np.concatenate(failed_rows)]).unique()
            sub = policy_df[policy_df["sku"].isin(skus)]
            g = greedy_transfers(
                sub,
                items,
                locations,
                lanes,
                run_date,
                H,
                margin_floor,
                policies=policies,
                planner_categories=planner_categories,
                exclude=exclude,
            )
            fallback_out = g
            notes.append(f"{head}; greedy fallback used for their {len(skus)} SKU(s): {len(g)} transfer(s)")
    c["quantity"], c["_bval"], c["_e"] = units, bval, e
    t = c[c["quantity"] > 0].copy()
    # lanes cut across batches: check the true minimum on the totals
    lane_units = t.groupby(["from_location", "to_location"])["quantity"].transform("sum")
    below = lane_units + _EPS < t["min_units"]
    if below.any():
        notes.append(
            f"{int(below.sum())} transfer(s) dropped: their lane's total stayed below its minimum across batches"
        )
        t = t[~below]
        lane_units = lane_units[~below]
    method = "greedy" if failed and len(failed) == nb and fallback else "milp"
    if t.empty and fallback_out.empty:
        why = "none pays for its lane cost" if not failed else "no solution in time"
        return TransferPlan(_empty(), method, notes + [f"no transfer: {why}"], None, nb, seconds)
    if len(t):
        t["transfer_cost"] = (
            t["quantity"] * t["cost_per_unit"] + t["fixed_cost_per_shipment"] * t["quantity"] / lane_units
        )
        t["expected_benefit"] = t["_bval"] + t["quantity"] * t["hold_avoided"] + t["_e"] * t["unit_cost"]
        if "_dneed" in t.columns:  # donor_keep risk: what the donor keeps and may lose (explanations)
            keeps = t["donor_available"] - t.groupby(["sku", "from_location"])["quantity"].transform("sum")
            need, disp = t["_dneed"].to_numpy(float), t["donor_disp"].to_numpy(float)
            t["donor_keeps"] = keeps
            t["donor_lost_units"] = _loss(need, np.maximum(keeps.to_numpy(float), 0.0), disp) - _loss(
                need, np.maximum(t["donor_available"].to_numpy(float), 0.0), disp
            )
        out = _publish(t, run_date, H, "milp", policies, planner_categories)
    else:
        out = _empty()
    out = pd.concat([x for x in (out, fallback_out) if len(x)], ignore_index=True)
    out = out.sort_values(["sku", "from_location", "to_location"]).reset_index(drop=True)
    gap = max(gaps) if gaps else None
    seconds = time.perf_counter() - clock
    notes.insert(
        0,
        f"{method}: {len(out)} transfer(s) ({int((out['method'] == 'milp').sum())} by the MILP),"
        f" {out['quantity'].sum():g} units, cost {out['transfer_cost'].sum():.2f},"
        f" expected benefit {out['expected_benefit'].sum():.2f}; {nb} batch(es), {len(c)} candidate(s),"
        f" gap {'n/a' if gap is None else f'{gap:.4%}'}, {seconds:.1f} s",
    )
    return TransferPlan(out, method, notes, gap, nb, seconds)


def transfers_stage(ctx: RunContext) -> StageResult:
    """Read inventory_policy (stock on the way already counted), forecasts, stock, items, locations,
    lanes, policies and the planners' decisions; write ``transfers``. The notes say which method was
    used and the gap."""
    tc = ctx.cfg.transfers
    policy_df = ctx.read("inventory_policy")
    lanes = ctx.read("lanes")
    policies = ctx.read("policies")
    exclude = excluded_lanes(ctx.read("decisions"), ctx.run_date, tc.reject_cooldown_days)
    notes = (
        [f"{len(exclude)} rejected transfer(s) not proposed again (cooldown {tc.reject_cooldown_days} days)"]
        if len(exclude)
        else []
    )
    if tc.method == "greedy":
        out = greedy_transfers(
            policy_df,
            ctx.read("items"),
            ctx.read("locations"),
            lanes,
            ctx.run_date,
            tc.coverage_days,
            tc.margin_floor,
            policies=policies,
            planner_categories=tc.planner_categories,
            exclude=exclude,
        )
        notes.insert(
            0, f"greedy: {len(out)} transfer(s), {out['quantity'].sum():g} units, cost {out['transfer_cost'].sum():.2f}"
        )
    else:
        plan = optimal_transfers(
            policy_df,
            ctx.read("items"),
            ctx.read("locations"),
            lanes,
            ctx.run_date,
            tc.coverage_days,
            tc.margin_floor,
            policies=policies,
            forecasts=ctx.read("forecasts"),
            stock=ctx.read("stock"),
            exclude=exclude,
            holding_cost_rate=tc.holding_cost_rate,
            time_limit_seconds=tc.time_limit_seconds,
            mip_rel_gap=tc.mip_rel_gap,
            batch_candidates=tc.batch_candidates,
            planner_categories=tc.planner_categories,
            donor_keep=tc.donor_keep,
        )
        out = plan.transfers
        notes = plan.notes + notes
    n = ctx.write("transfers", out.assign(run_id=ctx.run_id))
    return StageResult(
        stage="transfers",
        paths={"transfers": str(ctx.path("transfers"))},
        counts={"transfers": n},
        notes=notes,
    )
