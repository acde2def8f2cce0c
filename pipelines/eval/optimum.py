"""The exact optimum of the replay's own simulation with the realised demand: the true bound.

:mod:`pipelines.eval.replay` simulates, period by period, the stock of every SKU-location with the
demand that really happened. This module finds the transfer plan that minimises that
simulation's total cost, **exactly** (no donor cap, no benefit curve, no forecast): a mixed-integer
programme on the simulation's own quantities, solved by HiGHS (``scipy.optimize.milp``).

**Plans searched: every plan whose transfers leave in the given periods** (``departures``: in the
replay, the re-planning periods, the only ones in which any method ships), any quantity of any
SKU on any lane in each of them, no cap per donor or receiver, forwarding included (a unit received
may leave again in a later departure period). Every method's executed plan is one of these plans,
so the optimum bounds every method's saving exactly, no dominance argument needed; the solver's
dual bound makes it a bound even when the solve stops at its time limit. The brute-force unit
tests check the model against the simulation over every plan of small networks.

**Model.** Candidates: (SKU, lane, departure period) with stock at the origin (or units that can
have reached it), realised demand at the destination after the arrival period, arrival within the horizon, and a lane cost per unit below the
most a unit can earn there (margin + the holding of the periods after its arrival); all other
transfers cannot pay (dropped exactly). Variables: units x per candidate (integer), a binary per
lane used (its fixed cost), and per series touched by a candidate its sales ``sold[p]`` in
[0, demand[p]] and its stock ``st[p]`` at the end of each period. Rows: stock balance
``st[p] <= st[p-1] + arrivals[p] - sold[p] - shipped out in p`` (``st[-1]`` = starting stock),
``x <= bound x used`` per lane and departure period (its fixed cost once per departure, as the
simulation charges it). Objective, with v[p] = margin +
holding per unit and period x the periods left after p: maximise sum of v[p] x sold[p] minus the
lanes' cost per unit and fixed cost. Selling is not forced in the model and stock may vanish
(both relaxations); neither helps: a unit kept from a sale in period p is either sold later
(worth v[t] < v[p]), shipped and sold later elsewhere (v[t] < v[p], minus a lane cost) or never
sold, so selling it in p is better (v[p] > 0 falls with p: holding is charged until the sale);
the model's optimum sells as the simulation does: the programme's value equals the simulation's (the
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
    #: units taken off the solver's plan so that it runs under forced selling (:func:`executable`)
    repaired_units: float = 0.0


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
    departures: tuple[int, ...] = (0,),
) -> pd.DataFrame:
    """Every (SKU, lane, departure period) transfer that can pay (module doc), with its origin and
    destination series (``src``, ``dst``: rows of ``keys``), ``depart`` and ``arrive`` periods and
    the most units it can carry (``ub``: what the origin can hold then, the destination's demand
    from arrival on). An origin ships in a period if it has stock at the start, or if units can
    have reached it by then (forwarding)."""
    T = demand.shape[1]
    stock = np.asarray(stock, float)
    ks = keys[["sku", "location"]].reset_index(drop=True).reset_index()
    ln = lanes[["from_location", "to_location", "cost_per_unit", "fixed_cost_per_shipment", "transit_days"]]
    ln = ln.reset_index(drop=True).reset_index().rename(columns={"index": "lane"})
    c = ks.rename(columns={"index": "src", "location": "from_location"}).merge(ln, on="from_location")
    c = c.merge(ks.rename(columns={"index": "dst", "location": "to_location"}), on=["sku", "to_location"])
    lag = np.ceil(c["transit_days"].to_numpy(float) / period_days).astype(np.int64)
    if (lag < 1).any():
        raise ValueError("optimum: lanes faster than one period are not modelled (the replay has none)")
    tail = np.concatenate([np.cumsum(demand[:, ::-1], axis=1)[:, ::-1], np.zeros((len(demand), 1))], axis=1)
    sku_stock = pd.Series(stock).groupby(keys["sku"].to_numpy()).sum()
    total = sku_stock.reindex(c["sku"]).to_numpy(float)
    # the SKU's demand anywhere from each period on: what units forwarded onwards can still meet
    sku_tail = pd.DataFrame(tail).groupby(keys["sku"].to_numpy()).sum().reindex(c["sku"]).to_numpy(float)
    reach = np.full(len(stock), np.inf)  # the first period units can arrive at a series (no stock at start)
    parts = []
    deps = sorted(set(int(d) for d in departures))
    for q in deps:
        src = c["src"].to_numpy()
        has = (stock[src] > 0) | (reach[src] <= q)
        arrive = q + lag
        rows = np.arange(len(c))
        need = tail[c["dst"].to_numpy(), np.minimum(arrive, T)]
        # units that arrive by a later departure period may leave again: bounded by the SKU's demand
        can_leave = np.zeros(len(c), dtype=bool)
        for d in deps:
            if d > q:
                can_leave |= arrive <= d
        need = np.where(can_leave, np.maximum(need, sku_tail[rows, np.minimum(arrive, T)]), need)
        gain = value[c["dst"].to_numpy(), np.minimum(arrive, T - 1)]
        hold = np.where(reach[src] <= q, total, stock[src])
        ub = np.minimum(hold, need)
        keep = has & (arrive < T) & (ub > 0) & (c["cost_per_unit"].to_numpy(float) < gain)
        part = c[keep].assign(depart=q, arrive=arrive[keep], ub=np.floor(ub[keep]))
        np.minimum.at(reach, part["dst"].to_numpy(), part["arrive"].to_numpy().astype(float))
        parts.append(part)
    return pd.concat(parts, ignore_index=True) if parts else c.iloc[:0].assign(depart=0, arrive=0, ub=0.0)


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
    lane_used. ``local`` maps a series to its row among the ``touched`` ones."""
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
            (src * T + cand["depart"].to_numpy(np.int64), xs, 1.0),
        ],
    )
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
    departures: tuple[int, ...] = (0,),
) -> Optimum:
    """The exact optimum of the replay's simulation (module doc) for ``stock`` (per series of
    ``keys``) facing the realised ``demand`` (series x periods of ``period_days`` days), over every
    plan whose transfers leave in the periods ``departures``."""
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
    cand = candidates(keys, stock, demand, period_days, lanes, v, departures)
    empty = pd.DataFrame(
        {
            "sku": pd.Series(dtype=str),
            "from_location": pd.Series(dtype=str),
            "to_location": pd.Series(dtype=str),
            "quantity": pd.Series(dtype=float),
            "period": pd.Series(dtype=np.int64),
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
    # one fixed cost per lane and departure period
    shipment = cand["lane"].to_numpy(np.int64) * (int(cand["depart"].max()) + 1) + cand["depart"].to_numpy(np.int64)
    used, lane_of = np.unique(shipment, return_inverse=True)
    first_row = np.unique(lane_of, return_index=True)[1]
    fixed = cand["fixed_cost_per_shipment"].to_numpy(float)[first_row]

    k = len(cand)
    lp = _program(cand, local, touched, stock, demand, v, fixed, lane_of)
    res = lp.solve(time_limit_seconds, mip_rel_gap)
    const = base - fixed_value
    dual = getattr(res, "mip_dual_bound", None)
    bound = const + float(dual) if dual is not None and np.isfinite(dual) else float("-inf")
    if res.x is None:  # no plan found in time: the dual bound still bounds every plan (else -inf)
        return Optimum(
            empty,
            none_cost,
            min(bound, none_cost),
            None,
            k,
            m,
            f"no solution: {res.message}",
            time.perf_counter() - clock,
        )
    x = np.round(lp.block(res.x, "x"))
    chosen = x > 0.5
    plan = pd.DataFrame(
        {
            "sku": cand.loc[chosen, "sku"].to_numpy(),
            "from_location": cand.loc[chosen, "from_location"].to_numpy(),
            "to_location": cand.loc[chosen, "to_location"].to_numpy(),
            "quantity": x[chosen],
            "period": cand.loc[chosen, "depart"].to_numpy(np.int64),
        }
    )
    plan, cut = executable(keys, stock, demand, period_days, lanes, plan)
    return Optimum(
        plan,
        const + float(res.fun),
        min(bound, const + float(res.fun)),
        None if res.mip_gap is None else float(res.mip_gap),
        k,
        m,
        str(res.message),
        time.perf_counter() - clock,
        cut,
    )


def executable(
    keys: pd.DataFrame,
    stock: np.ndarray,
    demand: np.ndarray,
    period_days: int,
    lanes: pd.DataFrame,
    plan: pd.DataFrame,
) -> tuple[pd.DataFrame, float]:
    """The plan cut, where needed, to what the simulation can execute (sold = min(demand, stock),
    then a departure takes at most the stock its origin holds): the model may keep a unit from a
    sale to ship it later, which is never better at its optimum (module doc) but can happen in a
    plan found before it (a time limit, the gap). Returns the plan and the units taken off."""
    if plan.empty:
        return plan, 0.0
    T = demand.shape[1]
    idx = keys[["sku", "location"]].reset_index(drop=True).reset_index()
    t = plan.reset_index(drop=True)
    src = t.merge(idx, left_on=["sku", "from_location"], right_on=["sku", "location"], how="left")["index"].to_numpy()
    dst = t.merge(idx, left_on=["sku", "to_location"], right_on=["sku", "location"], how="left")["index"].to_numpy()
    lag = np.ceil(
        t.merge(lanes, on=["from_location", "to_location"], how="left")["transit_days"].to_numpy(float) / period_days
    ).astype(np.int64)
    q = t["quantity"].to_numpy(float).copy()
    period = t["period"].to_numpy(np.int64)
    s = np.asarray(stock, float).copy()
    arrivals = np.zeros((len(s), T + 1))
    for p in range(T):  # a few periods, vectorised over the transfers leaving in each
        s += arrivals[:, p]
        now = np.flatnonzero(period == p)
        if len(now):
            order = now[np.argsort(src[now], kind="stable")]
            before = pd.Series(q[order]).groupby(src[order]).cumsum().to_numpy() - q[order]
            q[order] = np.clip(s[src[order]] - before, 0.0, q[order])
            np.subtract.at(s, src[order], q[order])
            np.add.at(arrivals, (dst[order], np.minimum(p + lag[order], T)), q[order])
        s -= np.minimum(demand[:, p], s)
    cut = float(t["quantity"].sum() - q.sum())
    out = t.assign(quantity=q)
    return out[out["quantity"] > 0].reset_index(drop=True), cut


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
