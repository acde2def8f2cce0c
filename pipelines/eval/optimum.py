"""The exact optimum of the replay's own simulation with the realised demand: the true bound.

:mod:`pipelines.eval.replay` simulates, period by period, the stock of every SKU-location with the
demand that really happened. This module finds the transfer plan that minimises that
simulation's total cost, **exactly** (no donor cap, no benefit curve, no forecast): a mixed-integer
programme on the simulation's own quantities, solved by HiGHS (``scipy.optimize.milp``).

**Plans searched: one shipment per lane on the decision date** (period 0), any quantity of any SKU
on any lane, no cap per donor or per receiver. Why that is not a restriction (the dominance
argument): in the replay nothing is replenished, a SKU sells at one price everywhere, and holding
is charged on every unit until it is sold, wherever it is, units in transit included. Take any
plan, with transfers on any dates, that forwards nothing (no unit shipped twice), and its
realised outcome: every unit sold at a location j that started at another location i travelled
on lane (i, j). Ship exactly those units from i to j on the decision date instead, and keep every
other unit where it started. Each location then has, at every period, at least the units it sold
by then under the original plan, arrived no later; with forced selling (sold = min(demand,
stock)) its cumulative sales are at least as high at every period (sold by p = min(demand by p,
min over periods t <= p of the units available by t + demand in (t, p]): monotone in the
arrivals). Same price everywhere: no less margin; holding = rate x the units not yet sold,
summed over periods: no more holding; every unit moved on a lane the original plan used, at the
same cost per unit, and each such lane pays its fixed cost once instead of at least once. So the
optimum of this programme bounds the saving of every method whose executed transfers forward
nothing; :func:`forwarded_units` checks that on every executed plan (the replay reports it).

**Model.** Candidates: (SKU, lane) with stock at the origin, realised demand at the destination
after the lane's arrival period, arrival within the horizon, and a lane cost per unit below the
most a unit can earn there (margin + the holding of the periods after its arrival); all other
transfers cannot pay (dropped exactly). Variables: units x per candidate (integer), a binary per
lane used (its fixed cost), and per series touched by a candidate its sales ``sold[p]`` in
[0, demand[p]] and its stock ``st[p]`` at the end of each period. Rows: stock balance
``st[p] <= st[p-1] + arrivals[p] - sold[p]`` (``st[-1]`` = starting stock - units shipped out),
units shipped out <= starting stock, ``x <= bound x used``. Objective, with v[p] = margin +
holding per unit and period x the periods left after p: maximise sum of v[p] x sold[p] minus the
lanes' cost per unit and fixed cost. Selling is not forced in the model and stock may vanish
(both relaxations); neither helps: for fixed shipments forced selling gives the highest
cumulative sales at every period, and v[p] > 0 falls with p, so the model's optimum is a plan
whose forced-selling outcome is as good: the programme's value equals the simulation's (the
solution is re-simulated and the two are compared, :func:`optimum_plan`). Total cost = lost
margin + transfer cost + holding cost = sum of margin x demand + holding of the starting stock
over the horizon - sum of v[p] x sold[p] + transfer cost. The solver's dual bound gives the
lowest total cost any plan can reach (the bound), its incumbent a plan that reaches it up to the gap.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipelines.transfers.lp import LinearProgram


@dataclass
class Optimum:
    """The exact optimum: its plan (``transfers``, all leaving in period 0), the total cost of that
    plan in the model (``cost``), the solver's lowest possible total cost (``cost_bound``, <= the
    optimum of every plan searched), its relative gap, size and status."""

    transfers: pd.DataFrame
    cost: float
    cost_bound: float
    gap: float | None
    candidates: int
    series: int
    status: str
    seconds: float = 0.0


def unit_values(margin: np.ndarray, holding_per_day: np.ndarray, periods: int, period_days: int) -> np.ndarray:
    """v[i, p]: what a unit sold in period p is worth to series i: its margin plus the holding cost
    it no longer pays at the end of periods p..T-1 (``holding_per_day`` x ``period_days`` each)."""
    left = periods - np.arange(periods, dtype=float)
    return (
        np.asarray(margin, float)[:, None] + np.asarray(holding_per_day, float)[:, None] * period_days * left[None, :]
    )


def forced_sales(stock: np.ndarray, demand: np.ndarray, arrivals: np.ndarray | None = None) -> np.ndarray:
    """Sales per period (series x periods) with sold = min(demand, stock) and no replenishment but
    ``arrivals`` (units arriving at the start of each period, before its sales)."""
    s = np.asarray(stock, float).copy()
    d = np.asarray(demand, float)
    arr = np.zeros_like(d) if arrivals is None else np.asarray(arrivals, float)
    out = np.zeros_like(d)
    for p in range(d.shape[1]):  # a few periods, vectorised over every series
        s += arr[:, p]
        out[:, p] = np.minimum(d[:, p], s)
        s -= out[:, p]
    return out


def candidates(
    keys: pd.DataFrame,
    stock: np.ndarray,
    demand: np.ndarray,
    period_days: int,
    lanes: pd.DataFrame,
    value: np.ndarray,
) -> pd.DataFrame:
    """Every (SKU, lane) transfer that can pay (module doc), with its origin and destination series
    (``src``, ``dst``: rows of ``keys``), arrival period ``arrive`` and the most units it can carry
    (``ub``: the origin's stock, the destination's demand from arrival on)."""
    T = demand.shape[1]
    ks = keys[["sku", "location"]].reset_index(drop=True).reset_index()
    ln = lanes[["from_location", "to_location", "cost_per_unit", "fixed_cost_per_shipment", "transit_days"]]
    ln = ln.reset_index(drop=True).reset_index().rename(columns={"index": "lane"})
    c = ks.rename(columns={"index": "src", "location": "from_location"}).merge(ln, on="from_location")
    c = c.merge(ks.rename(columns={"index": "dst", "location": "to_location"}), on=["sku", "to_location"])
    arrive = np.ceil(c["transit_days"].to_numpy(float) / period_days).astype(np.int64)
    c = c.assign(arrive=arrive)
    c = c[(c["arrive"] < T) & (np.asarray(stock, float)[c["src"].to_numpy()] > 0)].reset_index(drop=True)
    tail = np.concatenate([np.cumsum(demand[:, ::-1], axis=1)[:, ::-1], np.zeros((len(demand), 1))], axis=1)
    need = tail[c["dst"].to_numpy(), c["arrive"].to_numpy()]
    gain = value[c["dst"].to_numpy(), np.minimum(c["arrive"].to_numpy(), T - 1)]
    ub = np.minimum(np.asarray(stock, float)[c["src"].to_numpy()], need)
    keep = (ub > 0) & (c["cost_per_unit"].to_numpy(float) < gain)
    return c[keep].assign(ub=np.floor(ub[keep])).reset_index(drop=True)


def _program(
    cand: pd.DataFrame,
    local: np.ndarray,
    touched: np.ndarray,
    stock: np.ndarray,
    demand: np.ndarray,
    v: np.ndarray,
    fixed: np.ndarray,
    lane_of: np.ndarray,
) -> LinearProgram:
    """The MILP of :func:`optimum_plan` (module doc): blocks x, used, sold, stock; rows balance,
    ship_out, lane_used. ``local`` maps a series to its row among the ``touched`` ones."""
    T = demand.shape[1]
    m = len(touched)
    lp = LinearProgram()
    k = len(cand)
    cx = lp.variables("x", cand["cost_per_unit"].to_numpy(float), cand["ub"].to_numpy(float), integer=True)
    cy = lp.variables("used", fixed, np.ones(len(fixed)), integer=True)
    sold_cols = lp.variables("sold", -v[touched].reshape(-1), demand[touched].reshape(-1), integer=False)
    st_cols = lp.variables("stock", np.zeros(m * T), np.full(m * T, np.inf), integer=False)

    def col(first: int, i: np.ndarray, p: np.ndarray | int) -> np.ndarray:
        return first + i * T + p

    ii = np.repeat(np.arange(m), T)
    pp = np.tile(np.arange(T), m)
    src, dst = local[cand["src"].to_numpy()], local[cand["dst"].to_numpy()]
    arrive = cand["arrive"].to_numpy(np.int64)
    xs = cx + np.arange(k)
    # stock balance, row (i, p): st[p] - st[p-1] + sold[p] - arrivals[p] (+ shipped out at p = 0) <= s0 at p = 0
    rhs = np.zeros(m * T)
    rhs[np.arange(m) * T] = stock[touched]
    later = pp > 0
    lp.constraints(
        "balance",
        rhs,
        [
            (np.arange(m * T), col(st_cols, ii, pp), 1.0),
            (np.flatnonzero(later), col(st_cols, ii[later], pp[later] - 1), -1.0),
            (np.arange(m * T), col(sold_cols, ii, pp), 1.0),
            (dst * T + arrive, xs, -1.0),
            (src * T, xs, 1.0),
        ],
    )
    lp.constraints("ship_out", stock[touched], [(src, xs, 1.0)])
    lp.constraints(
        "lane_used", np.zeros(k), [(np.arange(k), xs, 1.0), (np.arange(k), cy + lane_of, -cand["ub"].to_numpy(float))]
    )
    return lp


def optimum_plan(
    keys: pd.DataFrame,
    stock: np.ndarray,
    demand: np.ndarray,
    period_days: int,
    items: pd.DataFrame,
    lanes: pd.DataFrame,
    holding_rate: float,
    time_limit_seconds: float = 120.0,
    mip_rel_gap: float = 1e-4,
) -> Optimum:
    """The exact optimum of the replay's simulation (module doc) for ``stock`` (per series of
    ``keys``) facing the realised ``demand`` (series x periods of ``period_days`` days)."""
    import time

    clock = time.perf_counter()
    if "min_units" in lanes.columns and (pd.to_numeric(lanes["min_units"]).fillna(0) > 0).any():
        raise ValueError("optimum: lanes with a minimum quantity are not modelled (the replay has none)")
    if "capacity" in lanes.columns and lanes["capacity"].notna().any():
        raise ValueError("optimum: lanes with a capacity are not modelled (the replay has none)")
    stock = np.asarray(stock, float)
    demand = np.asarray(demand, float)
    n, T = demand.shape
    it = items.drop_duplicates("sku").set_index("sku")
    price = it.loc[keys["sku"], "unit_price"].to_numpy(float)
    cost = it.loc[keys["sku"], "unit_cost"].to_numpy(float)
    margin = price - cost
    hold = cost * holding_rate / 365.0
    v = unit_values(margin, hold, T, period_days)
    # the cost every plan starts from: all demand lost, the starting stock held over the horizon
    base = float((margin * demand.sum(axis=1)).sum() + (hold * period_days * T * stock).sum())
    none_sold = forced_sales(stock, demand)
    cand = candidates(keys, stock, demand, period_days, lanes, v)
    empty = pd.DataFrame(
        {
            "sku": pd.Series(dtype=str),
            "from_location": pd.Series(dtype=str),
            "to_location": pd.Series(dtype=str),
            "quantity": pd.Series(dtype=float),
        }
    )
    none_cost = base - float((v * none_sold).sum())
    if cand.empty:
        return Optimum(empty, none_cost, none_cost, 0.0, 0, 0, "no transfer can pay", time.perf_counter() - clock)
    touched = np.unique(np.concatenate([cand["src"].to_numpy(), cand["dst"].to_numpy()]))
    local = np.full(n, -1, np.int64)
    local[touched] = np.arange(len(touched))
    m = len(touched)
    fixed_value = float((v * none_sold)[np.setdiff1d(np.arange(n), touched)].sum())
    used_lanes, lane_of = np.unique(cand["lane"].to_numpy(), return_inverse=True)
    fixed = lanes.reset_index(drop=True)["fixed_cost_per_shipment"].to_numpy(float)[used_lanes]

    k = len(cand)
    lp = _program(cand, local, touched, stock, demand, v, fixed, lane_of)
    res = lp.solve(time_limit_seconds, mip_rel_gap)
    if res.x is None:
        return Optimum(
            empty, none_cost, float("-inf"), None, k, m, f"no solution: {res.message}", time.perf_counter() - clock
        )
    x = np.round(lp.block(res.x, "x"))
    chosen = x > 0.5
    plan = pd.DataFrame(
        {
            "sku": cand.loc[chosen, "sku"].to_numpy(),
            "from_location": cand.loc[chosen, "from_location"].to_numpy(),
            "to_location": cand.loc[chosen, "to_location"].to_numpy(),
            "quantity": x[chosen],
        }
    )
    const = base - fixed_value
    dual = getattr(res, "mip_dual_bound", None)
    bound = const + float(dual) if dual is not None and np.isfinite(dual) else float("-inf")
    return Optimum(
        plan,
        const + float(res.fun),
        min(bound, const + float(res.fun)),
        None if res.mip_gap is None else float(res.mip_gap),
        k,
        m,
        str(res.message),
        time.perf_counter() - clock,
    )


def forwarded_units(transfers: pd.DataFrame) -> float:
    """Units a plan forwards: per SKU and location, the units it both received and shipped out
    later or at the same time (min of the two), summed. 0 for a plan the bound's argument covers
    (module doc)."""
    if transfers is None or transfers.empty:
        return 0.0
    t = transfers.assign(period=transfers["period"] if "period" in transfers.columns else 0)
    inn = t.groupby(["sku", "to_location"])["quantity"].sum().rename_axis(["sku", "location"])
    first_in = t.groupby(["sku", "to_location"])["period"].min().rename_axis(["sku", "location"])
    out = t.assign(location=t["from_location"]).merge(first_in.rename("first_in").reset_index(), on=["sku", "location"])
    out = out[out["period"] >= out["first_in"]].groupby(["sku", "location"])["quantity"].sum()
    both = pd.concat([inn.rename("in"), out.rename("out")], axis=1, join="inner")
    return float(np.minimum(both["in"], both["out"]).sum())
