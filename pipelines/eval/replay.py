"""Replay: what transfer plans would have saved on real demand (``tiaobo replay``).

A replay takes a real demand history, a decision date and a seeded starting-stock scenario, then
simulates the stock of every SKU at every location period by period (days for M5, weeks for VN1)
over the horizon with the demand that really happened, for each method (:data:`METHODS`):

- ``none``: no transfers;
- ``greedy`` / ``milp``: **the product's own planner** (:mod:`pipelines.eval.planner`) re-planning
  as the nightly product does: at every decision epoch (the decision date, then every
  ``replan_every_days`` days, rounded to whole periods: every week for VN1, every 7th day for M5)
  it sees only what the nightly run would see then: the simulated stock on hand, the units in
  transit to each series, the *observed sales* so far (sold = min(demand, stock): censored by
  stock-outs), re-trains the nightly forecaster on that history, runs the nightly policy and the
  transfers code (:func:`pipelines.transfers.optimal_transfers` / the greedy baseline
  :func:`pipelines.transfers.greedy_transfers`), and its transfers are executed; the simulation
  goes on;
- ``greedy_once`` / ``milp_once``: their first decision (the decision date) alone;
- ``perfect_forecast``: the same MILP planner, re-planning alike, fed the realised demand from
  each epoch on as its forecast (the reference that isolates the forecast's error);
- ``optimum``: the exact optimum of this simulation with the realised demand
  (:mod:`pipelines.eval.optimum`): every plan shipping in the re-planning periods, any quantity,
  no donor cap, forwarding allowed, found by a MILP on the simulation's own cost (lost margin,
  holding including units in transit, lane cost per unit and fixed cost per departure). Every
  method's plan is one of those plans, so it bounds them all; :func:`replay` checks that no
  method's total cost is below the solver's lower bound (:class:`BoundViolation`) and that the
  optimum's plan, simulated, costs what its model says.

The gap of ``milp`` to ``optimum`` splits into what forecast error costs (``perfect_forecast`` -
``milp``) and what the planner leaves with a perfect forecast (``optimum`` - ``perfect_forecast``).

**Scenario (stated wherever a result is reported).** Starting stock per SKU-location =
uniform(0.3, 3.0) (seeded) x its demand over the last horizon-length window before the decision
date, rounded down; no replenishment and no other stock movement during the horizon (so the
policy's lead time is the days left); pack size 1; unit cost = 70% of the price (margin 30%);
holding cost 25% of unit cost a year. Decision dates, seeds and the settings chosen on validation
dates: :data:`PROTOCOL` and docs/replay-benchmark.md.

**Simulation.** Transfers decided at the start of period p leave the donor then and reach the
receiver at the start of period p + ceil(transit_days / period_days) (before the period's
sales; after the horizon: never). Each period: arrivals, then the epoch's transfers, then sold =
min(demand, stock), lost = demand - sold, the rest is carried; holding cost = stock at the end of
each period x unit_cost x 25% / 365 x period_days, units in transit included (until they arrive, or
to the horizon end when they arrive after it). Transfer
cost = units x cost per unit + the fixed cost of every lane used, once per lane and epoch. Total
cost = lost margin + transfer cost + holding cost. Saving = total of ``none`` - total; captured =
saving / saving of ``optimum``.

**Data** (``../shared/data``, never copied into the repository): VN1 (weekly sales per
client-warehouse-product; locations = warehouses, SKUs = products sold at two or more warehouses
of the same client, lanes between the warehouses of one client; price = mean of
``phase1_price.csv`` over the weeks *before the decision date* with a price, series without one
dropped) and M5 (daily; the 10 stores, 3 states; the series
listed before the decision date (M5 rows start at a series' first sale); no prices in the full
panel, so a stated price per category; lanes between every pair of stores,
cheaper and faster within a state).
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from pipelines import contract
from pipelines.eval.optimum import Optimum, forwarded_units, optimum_plan
from pipelines.eval.planner import Epoch, PlannerSettings, product_planner
from pipelines.eval.scenario import Network, Step

DEFAULT_DATA_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data"
MARGIN_SHARE = 0.30
HOLDING_RATE = 0.25
METHODS = ("none", "greedy_once", "milp_once", "greedy", "milp", "perfect_forecast", "optimum")

#: stated M5 prices per category (the full M5 panel has no prices)
M5_PRICE = {"FOODS": 3.0, "HOUSEHOLD": 6.0, "HOBBIES": 5.0}
#: M5 lanes: within a state / across states
M5_LANE_SAME = {"cost_per_unit": 0.10, "fixed_cost_per_shipment": 10.0, "transit_days": 1}
M5_LANE_CROSS = {"cost_per_unit": 0.50, "fixed_cost_per_shipment": 50.0, "transit_days": 3}
#: VN1 lanes between warehouses of one client
VN1_LANE = {"cost_per_unit": 1.0, "fixed_cost_per_shipment": 30.0, "transit_days": 7}


def _items(skus: np.ndarray, price: np.ndarray, category: np.ndarray) -> pd.DataFrame:
    df = pd.DataFrame(
        {
            "sku": skus,
            "name": skus,
            "name_en": None,
            "category": category,
            "unit_cost": price * (1 - MARGIN_SHARE),
            "unit_price": price,
            "pack_size": 1,
            "shelf_life_days": None,
            "abc_override": None,
            "active": True,
        }
    )
    return contract.conform(df, "items")


def _locations(codes: list[str], region: list[str]) -> pd.DataFrame:
    return contract.conform(
        pd.DataFrame(
            {
                "location": codes,
                "name": codes,
                "type": "store",
                "region": region,
                "can_ship": True,
                "can_receive": True,
                "active": True,
            }
        ),
        "locations",
    )


def _lanes(pairs: pd.DataFrame) -> pd.DataFrame:
    return contract.conform(pairs.assign(min_units=0, capacity=None), "lanes")


def load_vn1(data_dir: Path, history_weeks: int = 8, horizon_weeks: int = 4, last_week: str | None = None) -> Network:
    """VN1: the ``horizon_weeks`` weeks up to ``last_week`` (default: the last week of the file)
    replayed, the ``history_weeks`` before them as history."""
    d = Path(data_dir) / "vn1"
    sales = pd.read_csv(d / "phase1_sales.csv")
    price = pd.read_csv(d / "phase1_price.csv")
    weeks = [c for c in sales.columns if c not in ("Client", "Warehouse", "Product")]
    if last_week is not None:
        if last_week not in weeks:
            raise ValueError(f"replay: week {last_week!r} is not a column of vn1/phase1_sales.csv")
        weeks = weeks[: weeks.index(last_week) + 1]
    if len(weeks) < history_weeks + horizon_weeks:
        raise ValueError(
            f"replay: vn1/phase1_sales.csv has {len(weeks)} week(s) up to {weeks[-1]}, fewer than"
            f" {history_weeks} of history + {horizon_weeks} of horizon"
        )
    use = weeks[-(history_weeks + horizon_weeks) :]
    sales = sales.assign(
        sku=sales["Client"].astype(str) + "-" + sales["Product"].astype(str),
        location="W" + sales["Warehouse"].astype(str),
    )
    multi = sales.groupby("sku")["location"].transform("nunique") >= 2
    sales = sales[multi].sort_values(["sku", "location"]).reset_index(drop=True)
    pr = price.assign(sku=price["Client"].astype(str) + "-" + price["Product"].astype(str))
    # prices, and which series have one, from the weeks before the decision date only
    before = weeks[: weeks.index(use[history_weeks])]
    p_week = pr[before].replace(0.0, np.nan)
    pr = pr.assign(_p=p_week.mean(axis=1)).groupby("sku")["_p"].mean()
    sales = sales.merge(pr.rename("price"), left_on="sku", right_index=True, how="left")
    sales = sales[sales["price"] > 0].reset_index(drop=True)
    y = sales[use].fillna(0.0).clip(lower=0.0).to_numpy(float)
    it = sales.drop_duplicates("sku")
    items = _items(it["sku"].to_numpy(), it["price"].to_numpy(float), it["sku"].str.split("-").str[0].to_numpy())
    wh = sales[["Client", "location"]].drop_duplicates()
    locations = _locations(sorted(wh["location"]), ["client " + str(c) for c in wh.sort_values("location")["Client"]])
    pairs = wh.merge(wh, on="Client", suffixes=("_f", "_t"))
    pairs = pairs[pairs["location_f"] != pairs["location_t"]]
    lanes = _lanes(
        pd.DataFrame(
            {"from_location": pairs["location_f"].to_numpy(), "to_location": pairs["location_t"].to_numpy(), **VN1_LANE}
        )
    )
    return Network(
        "vn1",
        sales[["sku", "location"]],
        y[:, :history_weeks],
        y[:, history_weeks:],
        7,
        date.fromisoformat(use[history_weeks]),
        items,
        locations,
        lanes,
    )


def in_sample(skus: pd.Series, every: int) -> np.ndarray:
    """The SKUs of a fixed 1-in-``every`` sample: crc32 of the SKU code divisible by ``every``
    (the same SKUs on every date and seed; all of them when ``every`` is 1)."""
    if every <= 1:
        return np.ones(len(skus), dtype=bool)
    codes = pd.Series(skus.unique())
    keep = set(codes[codes.map(lambda c: zlib.crc32(str(c).encode()) % every == 0)])  # one per SKU, not per row
    return skus.isin(keep).to_numpy()


def load_m5(
    data_dir: Path, history_days: int = 56, horizon_days: int = 28, last_day: str = "2016-04-24", item_every: int = 1
) -> Network:
    """M5: the ``horizon_days`` days up to ``last_day`` (default: the last day of the training
    panel) replayed, the ``history_days`` before them as history; ``item_every`` > 1: a fixed
    1-in-``item_every`` sample of the items (:func:`in_sample`) at all 10 stores, each lane's fixed
    cost per shipment scaled by 1 / ``item_every`` (it is shared by that many fewer SKUs)."""
    folder = Path(data_dir) / "m5" / "sales_train.parquet"
    end = pd.Timestamp(last_day)
    start = end - pd.Timedelta(days=history_days + horizon_days - 1)
    df = pd.read_parquet(
        folder, filters=[("date", ">=", start.strftime("%Y-%m-%d")), ("date", "<=", end.strftime("%Y-%m-%d"))]
    )
    df["date"] = pd.to_datetime(df["date"].astype(str))
    parts = df["id"].str.rsplit("_", n=3)
    df["location"] = parts.str[1] + "_" + parts.str[2]
    df["sku"] = parts.str[0]
    df = df[in_sample(df["sku"], item_every)]
    # the series listed before the decision date (a series' rows start at its first sale): one
    # listed only during the horizon is not known to the planner, nor to the scenario
    decision = end - pd.Timedelta(days=horizon_days - 1)
    df = df[df["id"].isin(df.loc[df["date"] < decision, "id"].unique())]
    days = pd.date_range(start, end, freq="D")
    wide = df.pivot_table(
        index=["sku", "location"], columns="date", values="quantity_sold", aggfunc="sum", fill_value=0.0
    ).reindex(columns=days, fill_value=0.0)
    keys = wide.index.to_frame(index=False)
    y = wide.to_numpy(float)
    skus = np.unique(keys["sku"].to_numpy())
    cat = pd.Series(skus).str.split("_").str[0]
    items = _items(skus, cat.map(M5_PRICE).to_numpy(float), cat.to_numpy())
    stores = sorted(keys["location"].unique())
    state = [s.split("_")[0] for s in stores]
    locations = _locations(stores, state)
    fr, to = np.meshgrid(np.arange(len(stores)), np.arange(len(stores)), indexing="ij")
    m = fr != to
    same = np.array(state)[fr[m]] == np.array(state)[to[m]]
    lanes = _lanes(
        pd.DataFrame(
            {
                "from_location": np.array(stores)[fr[m]],
                "to_location": np.array(stores)[to[m]],
                "cost_per_unit": np.where(same, M5_LANE_SAME["cost_per_unit"], M5_LANE_CROSS["cost_per_unit"]),
                "fixed_cost_per_shipment": np.where(
                    same, M5_LANE_SAME["fixed_cost_per_shipment"], M5_LANE_CROSS["fixed_cost_per_shipment"]
                )
                / max(int(item_every), 1),
                "transit_days": np.where(same, M5_LANE_SAME["transit_days"], M5_LANE_CROSS["transit_days"]),
            }
        )
    )
    return Network(
        "m5",
        keys,
        y[:, :history_days],
        y[:, history_days:],
        1,
        (end - pd.Timedelta(days=horizon_days - 1)).date(),
        items,
        locations,
        lanes,
    )


def starting_stock(net: Network, seed: int) -> np.ndarray:
    """uniform(0.3, 3.0) x demand over the last horizon-length window of history, rounded down."""
    rng = np.random.default_rng(seed)
    horizon_periods = net.future.shape[1]
    recent = net.history[:, -horizon_periods:].sum(axis=1)
    return np.floor(rng.uniform(0.3, 3.0, len(net.keys)) * recent)


#: a planner: what the nightly run sees on a decision day -> its proposal
Planner = Callable[[Epoch], Step]


@dataclass
class Outcome:
    """One method's simulated result: the cost figures (:func:`simulate`), every transfer it
    executed (with the ``period`` it left in), its notes per epoch and the time it took."""

    metrics: dict[str, float]
    transfers: pd.DataFrame
    steps: list[Step]
    wall_seconds: float = 0.0
    cpu_seconds: float = 0.0


def _ship(net: Network, t: pd.DataFrame, period: int, s: np.ndarray, arrivals: np.ndarray) -> tuple[float, float]:
    """Take the transfers ``t`` out of the donors' stock ``s`` at the start of ``period`` and book
    their arrival; returns (units, cost: units x cost per unit + the fixed cost of each lane used)."""
    if t.empty:
        return 0.0, 0.0
    T = net.future.shape[1]
    keys = net.keys.reset_index(drop=True).reset_index()
    t = t[["sku", "from_location", "to_location", "quantity"]].merge(
        net.lanes, on=["from_location", "to_location"], how="left"
    )
    src = t.merge(keys, left_on=["sku", "from_location"], right_on=["sku", "location"], how="left")["index"]
    dst = t.merge(keys, left_on=["sku", "to_location"], right_on=["sku", "location"], how="left")["index"]
    if src.isna().any() or dst.isna().any() or t["cost_per_unit"].isna().any():
        bad = t[(src.isna() | dst.isna() | t["cost_per_unit"].isna()).to_numpy()]
        raise ValueError(
            "replay: a transfer names a series or lane that is not in the network: "
            f"{bad[['sku', 'from_location', 'to_location']].head(3).to_dict('records')}"
        )
    q = t["quantity"].to_numpy(float)
    i_src, i_dst = src.to_numpy(np.int64), dst.to_numpy(np.int64)
    np.subtract.at(s, i_src, q)
    if (s < -1e-6).any():
        raise ValueError(f"replay: a plan ships more than the donor has (period {period})")
    when = period + np.ceil(t["transit_days"].to_numpy(float) / net.period_days).astype(np.int64)
    now = when <= period
    np.add.at(s, i_dst[now], q[now])  # a zero-day lane delivers before the period's sales
    np.add.at(arrivals, (i_dst[~now], np.minimum(when[~now], T)), q[~now])  # column T: after the horizon
    used = t.groupby(["from_location", "to_location"])["fixed_cost_per_shipment"].first().sum()
    return float(q.sum()), float((q * t["cost_per_unit"].to_numpy(float)).sum() + used)


def _epochs(net: Network, replan_every_days: int | None) -> set[int]:
    """Periods at which a planner decides: 0 only (one shot), or every ``replan_every_days``
    days (rounded to whole periods, at least one period)."""
    T = net.future.shape[1]
    if not replan_every_days:
        return {0}
    step = max(1, int(round(replan_every_days / net.period_days)))
    return set(range(0, T, step))


def run(
    net: Network,
    stock: np.ndarray,
    planner: Planner | None = None,
    replan_every_days: int | None = None,
    transfers: pd.DataFrame | None = None,
) -> Outcome:
    """Simulate the horizon period by period with the realised demand (module doc).

    ``transfers`` (optional ``period`` column, default 0) are executed as given; ``planner`` is
    asked for transfers at period 0 and, with ``replan_every_days``, at every re-planning epoch,
    seeing only what the nightly run would see then: the stock on hand, the units in transit to
    each series, the sales observed so far (censored by the stock) and the days left."""
    T = net.future.shape[1]
    s = np.asarray(stock, float).copy()
    arrivals = np.zeros((len(s), T + 1))
    sold = np.zeros((len(s), T))
    lost = np.zeros(len(s))
    held = np.zeros(len(s))
    given = contract.empty("transfers") if transfers is None else transfers
    period_of = given["period"].to_numpy(np.int64) if "period" in given.columns else np.zeros(len(given), np.int64)
    epochs = _epochs(net, replan_every_days) if planner is not None else set()
    steps: list[Step] = []
    done: list[pd.DataFrame] = []
    units = moved_cost = 0.0
    for p in range(T):  # loop over periods (<= 28), vectorised over every series
        s += arrivals[:, p]
        todo = [given[period_of == p]] if (period_of == p).any() else []
        if p in epochs and planner is not None:
            rd = net.decision_date + timedelta(days=p * net.period_days)
            ep = Epoch(
                p,
                rd,
                s.copy(),
                arrivals[:, p + 1 :].sum(axis=1),
                np.concatenate([net.history, sold[:, :p]], axis=1),
                T - p,
            )
            clock, cpu = time.perf_counter(), time.process_time()
            step = planner(ep)
            step.day = p * net.period_days
            step.wall_seconds, step.cpu_seconds = time.perf_counter() - clock, time.process_time() - cpu
            steps.append(step)
            todo.append(step.transfers)
        for t in todo:
            if len(t):
                u, c = _ship(net, t, p, s, arrivals)
                units += u
                moved_cost += c
                done.append(t[["sku", "from_location", "to_location", "quantity"]].assign(period=p))
        sold[:, p] = np.minimum(net.future[:, p], s)
        lost += net.future[:, p] - sold[:, p]
        s -= sold[:, p]
        # every unit not sold yet is held: at a location, or on its way (arriving later, or after the horizon)
        held += (s + arrivals[:, p + 1 :].sum(axis=1)) * net.period_days
    it = net.items.set_index("sku")
    price = it.loc[net.keys["sku"], "unit_price"].to_numpy(float)
    cost = it.loc[net.keys["sku"], "unit_cost"].to_numpy(float)
    hold_cost = float((held * cost * HOLDING_RATE / 365.0).sum())
    lost_margin = float((lost * (price - cost)).sum())
    metrics = {
        "lost_units": float(lost.sum()),
        "lost_value": float((lost * price).sum()),
        "lost_margin": lost_margin,
        "transfer_units": units,
        "transfer_cost": moved_cost,
        "holding_cost": hold_cost,
        "total_cost": lost_margin + moved_cost + hold_cost,
    }
    executed = (
        pd.concat(done, ignore_index=True)
        if done
        else pd.DataFrame(columns=["sku", "from_location", "to_location", "quantity", "period"])
    )
    return Outcome(metrics, executed, steps)


def simulate(net: Network, stock: np.ndarray, transfers: pd.DataFrame) -> dict[str, float]:
    """Stock period by period with the realised demand and the given transfers (module doc);
    transfers leave at the start of their ``period`` (0 when the column is absent)."""
    return run(net, stock, transfers=transfers).metrics


def optimum_step(
    net: Network, stock: np.ndarray, time_limit_seconds: float, replan_every_days: int | None = None
) -> tuple[Step, Optimum]:
    """The exact optimum of this simulation with the realised demand (:mod:`pipelines.eval.optimum`)
    over every plan shipping in the re-planning periods (:func:`_epochs`), no donor cap."""
    departures = tuple(sorted(_epochs(net, replan_every_days)))
    opt = optimum_plan(
        net.keys,
        stock,
        net.future,
        net.period_days,
        net.items,
        net.lanes,
        HOLDING_RATE,
        time_limit_seconds,
        departures=departures,
    )
    by_period = opt.transfers.groupby("period").size().to_dict() if len(opt.transfers) else {}
    note = (
        f"exact optimum: {len(opt.transfers)} transfer(s) (by departure period {by_period}) of"
        f" {opt.candidates:,} candidates (departures {list(departures)}), {opt.series:,} series touched,"
        f" gap {'n/a' if opt.gap is None else f'{opt.gap:.3%}'}, {opt.seconds:.1f} s ({opt.status});"
        f" {opt.repaired_units:g} unit(s) cut to run under forced selling"
    )
    return Step(0, opt.transfers, note, opt.gap), opt


class BoundViolation(AssertionError):
    """A method's total cost is below the lowest the exact optimum allows (module doc): the bound's
    argument, or the solve, is wrong. Carries the table."""

    def __init__(self, message: str, table: pd.DataFrame) -> None:
        super().__init__(message)
        self.table = table


def bound_violations(table: pd.DataFrame, cost_bound: float, tolerance: float = 1e-6) -> list[str]:
    """Methods whose total cost is below ``cost_bound`` (the solver's lowest possible total cost of
    the exact optimum) by more than ``tolerance`` (relative to the bound, for rounding)."""
    t = table.set_index("method")
    slack = tolerance * max(abs(cost_bound), 1.0)
    below = t[t["total_cost"] < cost_bound - slack]
    return [
        f"{m}: total cost {r.total_cost:,.2f} < the optimum's lower bound {cost_bound:,.2f}"
        for m, r in below.iterrows()
    ]


def replay(
    net: Network,
    seed: int = 0,
    settings: PlannerSettings | None = None,
    stock: np.ndarray | None = None,
    replan_every_days: int | None = 7,
    check_bound: bool = True,
    progress: Callable[[str], None] | None = None,
    optimum_time_limit_seconds: float = 60.0,
) -> tuple[pd.DataFrame, dict[str, str]]:
    """One row per method (:data:`METHODS`): lost sales, transfer and holding cost, total, saving,
    share of the exact optimum's saving captured, units forwarded, the plan's wall and CPU seconds.

    ``greedy`` and ``milp`` are the product's planner (:mod:`pipelines.eval.planner`, with
    ``settings``: the product's defaults unless given) re-planning every ``replan_every_days``
    (None or 0: once); ``*_once`` their first decision alone; ``perfect_forecast`` the MILP
    planner fed the realised demand as its forecast, re-planning alike; ``optimum`` the exact
    optimum (:mod:`pipelines.eval.optimum`, ``optimum_time_limit_seconds``). ``stock`` overrides
    the seeded starting stock (:func:`starting_stock`). Raises :class:`BoundViolation` when a
    method's total cost is below the optimum's lower bound, or when the optimum's plan, simulated,
    does not cost what its model says."""
    st = settings or PlannerSettings()
    stock = starting_stock(net, seed) if stock is None else np.asarray(stock, float)
    cache: dict = {}
    planners = {
        "greedy": product_planner(net, "greedy", st, "nightly", cache),
        "milp": product_planner(net, "milp", st, "nightly", cache),
        "perfect_forecast": product_planner(net, "milp", st, "realised"),
    }
    outcomes: dict[str, Outcome] = {}
    opt: Optimum | None = None
    for m in ("none", "greedy", "milp", "greedy_once", "milp_once", "perfect_forecast", "optimum"):
        clock, cpu = time.perf_counter(), time.process_time()
        if m == "none":
            o = run(net, stock)
        elif m == "optimum":
            step, opt = optimum_step(net, stock, optimum_time_limit_seconds, replan_every_days)
            o = run(net, stock, transfers=step.transfers)
            o.steps = [step]
        elif m.endswith("_once"):
            # the re-planner's first decision is the one-shot plan (same stock, history and horizon
            # on the decision date): reused, not solved again
            first = outcomes[m.removesuffix("_once")].steps[0]
            o = run(net, stock, transfers=first.transfers)
            o.steps = [first]
        else:
            o = run(net, stock, planners[m], replan_every_days)
        o.wall_seconds, o.cpu_seconds = time.perf_counter() - clock, time.process_time() - cpu
        if m.endswith("_once"):
            o.wall_seconds += o.steps[0].wall_seconds
            o.cpu_seconds += o.steps[0].cpu_seconds
        outcomes[m] = o
        if progress is not None:
            progress(f"  {m}: {o.wall_seconds:.0f} s wall, {o.cpu_seconds:.0f} s CPU")
    assert opt is not None
    outcomes = {m: outcomes[m] for m in METHODS}
    table = pd.DataFrame(
        [
            {
                "method": m,
                **o.metrics,
                "forwarded_units": forwarded_units(o.transfers),
                "wall_s": o.wall_seconds,
                "cpu_s": o.cpu_seconds,
            }
            for m, o in outcomes.items()
        ]
    )
    base = table.loc[table["method"] == "none", "total_cost"].iloc[0]
    table["saving"] = base - table["total_cost"]
    best = table.loc[table["method"] == "optimum", "saving"].iloc[0]
    table["captured"] = table["saving"] / best if best > 0 else np.nan
    table.attrs.update(
        optimum_gap=opt.gap, optimum_cost_bound=opt.cost_bound, optimum_saving_bound=base - opt.cost_bound
    )
    notes = {m: " | ".join(_step_note(st) for st in o.steps) for m, o in outcomes.items()}
    simulated = float(table.loc[table["method"] == "optimum", "total_cost"].iloc[0])
    table.attrs["optimum_repaired_units"] = opt.repaired_units
    # the simulation can only do better than the model's value of a plan (forced selling sells the
    # most; a lane the solver marked used but that carries nothing is not charged) unless the plan
    # had to be cut to run; costing more than the model says would mean the model is wrong
    if opt.repaired_units == 0 and simulated > opt.cost + 1e-6 * max(abs(opt.cost), 1.0):
        raise BoundViolation(
            f"replay: the exact optimum's plan costs {simulated:,.4f} simulated but {opt.cost:,.4f} in its model", table
        )
    if check_bound:
        bad = bound_violations(table, opt.cost_bound)
        if bad:
            raise BoundViolation("replay: the exact optimum's bound is exceeded: " + "; ".join(bad), table)
    return table, notes


def _step_note(st: Step) -> str:
    return f"day {st.day}: {st.note}" if st.note else f"day {st.day}: no proposal"


def markdown_table(table: pd.DataFrame) -> str:
    head = [
        "method",
        "lost units",
        "lost value",
        "transfer units",
        "transfer cost",
        "holding cost",
        "total cost",
        "saving",
        "captured",
        "forwarded units",
        "plan wall / CPU s",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in table.itertuples():
        cap = "" if pd.isna(r.captured) else f"{r.captured:.1%}"
        lines.append(
            f"| {r.method} | {r.lost_units:,.0f} | {r.lost_value:,.0f} | {r.transfer_units:,.0f} |"
            f" {r.transfer_cost:,.0f} | {r.holding_cost:,.0f} | {r.total_cost:,.0f} | {r.saving:,.0f} | {cap} |"
            f" {r.forwarded_units:,.0f} | {r.wall_s:,.0f} / {r.cpu_s:,.0f} |"
        )
    return "\n".join(lines)


#: the protocol (docs/replay-benchmark.md), fixed before any of these windows was replayed.
#: VN1 (13 weeks): every decision date with at least 5 weeks of history before it and the 4-week
#: horizon inside the file, weekly: 2023-11-13 .. 2023-12-11; the first is the validation date,
#: the second is left out (3 of its 4 weeks are the validation horizon), the last three reported.
#: M5 (419 days): every 12 weeks back from the last whole 28-day horizon (decision 2016-03-28),
#: with 112 days of history each: 2016-03-28, 2016-01-04, 2015-10-12 reported, 2015-07-20 (the
#: earliest) the validation date.
PROTOCOL: dict[str, dict[str, tuple[str, ...]]] = {
    "vn1": {"validation": ("2023-11-13",), "reported": ("2023-11-27", "2023-12-04", "2023-12-11")},
    "m5": {"validation": ("2015-07-20",), "reported": ("2015-10-12", "2016-01-04", "2016-03-28")},
}
SEEDS = (0, 1, 2, 3)
VN1_MIN_HISTORY_WEEKS = 5
M5_HISTORY_DAYS = 112
#: M5 is replayed on a fixed 1-in-20 sample of its items (about 150 items x 10 stores): the product
#: forecaster is re-trained at every re-plan of every method, seed and date (:func:`load_m5`)
M5_ITEM_EVERY = 20
#: the receivers' coverage horizon per data set (None: the days left in the horizon), chosen on the
#: validation date between the product default and the days left (docs/replay-benchmark.md)
COVERAGE_DAYS: dict[str, int | None] = {"vn1": None, "m5": None}


def load_window(name: str, data_dir: Path, decision: str, item_every: int = M5_ITEM_EVERY) -> Network:
    """The replay network of a protocol decision date (:data:`PROTOCOL`): VN1 with every week
    before it as history, M5 with :data:`M5_HISTORY_DAYS` days and the item sample."""
    d = pd.Timestamp(decision)
    if name == "vn1":
        weeks = [c for c in pd.read_csv(Path(data_dir) / "vn1" / "phase1_sales.csv", nrows=0).columns[3:]]
        if decision not in weeks:
            raise ValueError(f"replay: {decision} is not a week of vn1/phase1_sales.csv")
        i = weeks.index(decision)
        if i < VN1_MIN_HISTORY_WEEKS or i + 4 > len(weeks):
            raise ValueError(f"replay: vn1 decision date {decision} leaves {i} week(s) of history or no 4-week horizon")
        return load_vn1(data_dir, i, 4, weeks[i + 3])
    if name == "m5":
        last = (d + pd.Timedelta(days=27)).strftime("%Y-%m-%d")
        return load_m5(data_dir, M5_HISTORY_DAYS, 28, last, item_every)
    raise ValueError(f"replay: unknown dataset {name!r}; expected vn1, m5 or all")


def protocol(
    name: str,
    data_dir: Path,
    dates: tuple[str, ...],
    seeds: tuple[int, ...] = SEEDS,
    settings: PlannerSettings | None = None,
    replan_every_days: int | None = 7,
    optimum_time_limit_seconds: float = 60.0,
    echo: Callable[[str], None] = print,
    item_every: int = M5_ITEM_EVERY,
) -> pd.DataFrame:
    """Replay every (date, seed) of ``dates`` x ``seeds``; one row per (date, seed, method) with
    the table's columns and the window's optimum gap. Prints each window's table."""
    rows = []
    for d in dates:
        net = load_window(name, data_dir, d, item_every)
        echo(
            f"\n### {name} {d}: {len(net.keys):,} SKU-locations, {net.keys['sku'].nunique():,} SKUs,"
            f" {net.keys['location'].nunique()} locations, {len(net.lanes)} lanes, {net.history.shape[1]} periods of"
            f" history, horizon {net.future.shape[1]} x {net.period_days} day(s)\n"
        )
        for seed in seeds:
            table, notes = replay(
                net,
                seed,
                settings,
                replan_every_days=replan_every_days,
                optimum_time_limit_seconds=optimum_time_limit_seconds,
            )
            gap = table.attrs.get("optimum_gap")
            echo(f"\n#### {name} {d}, seed {seed} (optimum gap {'n/a' if gap is None else f'{gap:.3%}'})\n")
            echo(markdown_table(table))
            for m in ("milp", "perfect_forecast", "optimum"):
                echo(f"\n- {m}: {notes[m]}")
            rows.append(table.assign(dataset=name, date=d, seed=seed, optimum_gap=gap))
    return pd.concat(rows, ignore_index=True)


def summary(rows: pd.DataFrame) -> str:
    """Mean and range over the windows (date x seed) of each method's captured share of the exact
    optimum's saving, the split of the MILP's gap to the optimum (forecast error: perfect_forecast
    - milp; left by the optimiser: optimum - perfect_forecast, as shares of the optimum's saving),
    and on how many windows the MILP's total cost is below the greedy's."""
    lines = [
        "| method | captured: mean | min | max | total cost: mean |",
        "|---|---|---|---|---|",
    ]
    for m in METHODS:
        r = rows[rows["method"] == m]
        lines.append(
            f"| {m} | {r['captured'].mean():.1%} | {r['captured'].min():.1%} | {r['captured'].max():.1%} |"
            f" {r['total_cost'].mean():,.0f} |"
        )
    w = rows.pivot_table(index=["date", "seed"], columns="method", values="captured")
    c = rows.pivot_table(index=["date", "seed"], columns="method", values="total_cost")
    fe = w["perfect_forecast"] - w["milp"]
    opt = 1.0 - w["perfect_forecast"]
    below = int((c["milp"] < c["greedy"]).sum())
    lines += [
        "",
        f"- windows: {len(w)} ({rows['date'].nunique()} date(s) x {rows['seed'].nunique()} seed(s)); the exact"
        f" optimum's gap at most {rows['optimum_gap'].max():.3%} (captured = saving / the optimum's saving; its"
        " bound's saving is at most that gap larger)",
        f"- gap of milp to the optimum: {1 - w['milp'].mean():.1%} of the optimum's saving on average"
        f" (range {1 - w['milp'].max():.1%} .. {1 - w['milp'].min():.1%}); forecast error"
        f" (perfect_forecast - milp): {fe.mean():.1%} (range {fe.min():.1%} .. {fe.max():.1%}); left by the"
        f" optimiser with a perfect forecast (optimum - perfect_forecast): {opt.mean():.1%} (range"
        f" {opt.min():.1%} .. {opt.max():.1%})",
        f"- milp total cost below the greedy's on {below} of {len(c)} windows"
        f" (milp / greedy total: mean {(c['milp'] / c['greedy']).mean():.3f},"
        f" range {(c['milp'] / c['greedy']).min():.3f} .. {(c['milp'] / c['greedy']).max():.3f})",
    ]
    return "\n".join(lines)


def replay_command(
    dataset: str = "all",
    data_dir: Path | None = None,
    dates: str = "reported",
    seeds: tuple[int, ...] = SEEDS,
    time_limit_seconds: float = 60.0,
    optimum_time_limit_seconds: float = 60.0,
    replan_every_days: int | None = 7,
    coverage_days: int | None | str = "validated",
    item_every: int = M5_ITEM_EVERY,
    echo: Callable[[str], None] = print,
) -> dict[str, pd.DataFrame]:
    """``tiaobo replay``: run the protocol (:data:`PROTOCOL`) on VN1 and/or M5 and print each
    window's table and the summary (markdown). ``dates``: ``reported``, ``validation`` or a
    comma-separated list of decision dates; ``coverage_days``: ``validated`` (each data set's
    :data:`COVERAGE_DAYS`), a number of days, or None / 0 for the days left. Raises
    FileNotFoundError naming the folder when the data is absent, and :class:`BoundViolation`
    (after printing the table) when a method beats the exact optimum's bound."""
    base = Path(data_dir) if data_dir is not None else DEFAULT_DATA_DIR
    names = ["vn1", "m5"] if dataset == "all" else [dataset]
    out = {}
    for name in names:
        if name not in PROTOCOL:
            raise ValueError(f"replay: unknown dataset {name!r}; expected vn1, m5 or all")
        if not (base / name).exists():
            raise FileNotFoundError(f"replay: {base / name} does not exist (real demand data; see ../shared/data)")
        when = PROTOCOL[name][dates] if dates in ("reported", "validation") else tuple(dates.split(","))
        cov = (
            COVERAGE_DAYS[name]
            if coverage_days == "validated"
            else (int(coverage_days) or None if coverage_days else None)
        )
        st = PlannerSettings(coverage_days=cov, time_limit_seconds=time_limit_seconds)
        echo(
            f"\n## {name}: decision dates {', '.join(when)} ({dates}), seeds {', '.join(map(str, seeds))};"
            f" re-planning every {replan_every_days} day(s); coverage"
            f" {'the days left' if cov is None else f'{cov} days'}; MILP time limit {time_limit_seconds:g} s per plan,"
            f" exact optimum {optimum_time_limit_seconds:g} s"
            + (f"; M5 items: a fixed 1-in-{item_every} sample" if name == "m5" else "")
        )
        try:
            rows = protocol(
                name, base, when, seeds, st, replan_every_days, optimum_time_limit_seconds, echo, item_every
            )
        except BoundViolation as err:
            echo(markdown_table(err.table))
            echo(f"\n**{err}**")
            raise
        echo(f"\n### {name}: summary over the windows\n")
        echo(summary(rows))
        out[name] = rows
    return out
