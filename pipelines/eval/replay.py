"""Replay: what transfer plans would have saved on real demand (``tiaobo replay``).

A replay takes a real demand history, a decision date and a seeded starting-stock scenario, then
simulates the stock of every SKU at every location period by period (days for M5, weeks for VN1)
over the horizon with the demand that really happened, for each method (:data:`METHODS`):

- ``none``: no transfers;
- ``greedy_once`` / ``milp_once``: one set of transfers on the decision date, by
  :func:`pipelines.transfers.greedy_transfers` / :func:`pipelines.transfers.optimal_transfers`
  planning with the forecast;
- ``greedy`` / ``milp``: the same planners **re-planning** as the nightly product does: at every
  decision epoch (the decision date, then every ``replan_every_days`` days, rounded to whole
  periods: every week for VN1, every 7th day for M5 by default) the planner sees only what the
  nightly run would see then: the simulated stock on hand, the units in transit to each series,
  the *observed sales* so far (sold = min(demand, stock): censored by stock-outs, not the true
  demand), re-forecasts with the same rule on the history window ending that day, recomputes the
  reorder points over the days left, and proposes new transfers; the simulation goes on;
- ``optimum``: the exact optimum of this simulation with the realised demand
  (:mod:`pipelines.eval.optimum`): one shipment per lane on the decision date, any quantity, no
  donor cap, found by a MILP on the simulation's own cost (lost margin, holding including units in
  transit, lane cost per unit and fixed cost). Why it bounds every method that forwards nothing
  (re-planning included) is argued there; :func:`replay` checks that no method's total cost is
  below the solver's lower bound (:class:`BoundViolation`), that the optimum's plan costs, when
  simulated, what its model says, and reports the units each method forwarded.

**Scenario (stated wherever a result is reported).** Forecast on each decision day from the history
window of the same length ending that day (VN1 8 weeks, M5 56 days; observed sales after the
decision date): the level is the flat mean of the window or its exponentially weighted mean with a
half-life of ``half_life_days`` (:data:`HALF_LIFE_DAYS`, chosen per data set: VN1 7 days, M5 the
flat mean), with the variance / mean ratio d of the window's periods (between 1 and 50: Poisson when
1, else gamma); nothing is replenished during the horizon, so the lead time is the days left L:
reorder point = mu x L + 1.65 sqrt(d mu L), order-up-to = the reorder point (a donor keeps what it
needs until the horizon end); starting stock per SKU-location = uniform(0.3, 3.0) (seeded) x its
demand over the last ``horizon_days`` before the decision date, rounded down; no replenishment and
no other stock movement during the horizon; pack size 1; unit cost = 70% of the price (margin 30%);
holding cost 25% of unit cost a year. The forecast rule of each data set was chosen on a validation
decision date before the reported one (docs/replay-benchmark.md), never on the reported window.

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
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from pipelines import contract
from pipelines.eval.optimum import Optimum, forwarded_units, optimum_plan
from pipelines.transfers import Demand, TransferPlan, greedy_transfers, optimal_transfers

DEFAULT_DATA_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data"
MARGIN_SHARE = 0.30
HOLDING_RATE = 0.25
Z = 1.65
#: per data set, the half-life (days) of the exponentially weighted mean the replay forecasts
#: with, None for the flat mean of the window: chosen on an earlier decision date
#: (docs/replay-benchmark.md), never on the reported one
HALF_LIFE_DAYS: dict[str, float | None] = {"vn1": 7.0, "m5": None}
METHODS = ("none", "greedy_once", "milp_once", "greedy", "milp", "optimum")

#: stated M5 prices per category (the full M5 panel has no prices)
M5_PRICE = {"FOODS": 3.0, "HOUSEHOLD": 6.0, "HOBBIES": 5.0}
#: M5 lanes: within a state / across states
M5_LANE_SAME = {"cost_per_unit": 0.10, "fixed_cost_per_shipment": 10.0, "transit_days": 1}
M5_LANE_CROSS = {"cost_per_unit": 0.50, "fixed_cost_per_shipment": 50.0, "transit_days": 3}
#: VN1 lanes between warehouses of one client
VN1_LANE = {"cost_per_unit": 1.0, "fixed_cost_per_shipment": 30.0, "transit_days": 7}


@dataclass
class Network:
    """A replay case: series keys (sku, location), demand per period before (``history``) and
    after (``future``) the decision date, items, locations, lanes."""

    name: str
    keys: pd.DataFrame
    history: np.ndarray
    future: np.ndarray
    period_days: int
    decision_date: date
    items: pd.DataFrame
    locations: pd.DataFrame
    lanes: pd.DataFrame


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


def load_m5(data_dir: Path, history_days: int = 56, horizon_days: int = 28, last_day: str = "2016-04-24") -> Network:
    """M5: the ``horizon_days`` days up to ``last_day`` (default: the last day of the training
    panel) replayed, the ``history_days`` before them as history."""
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
                ),
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


def dispersion(history: np.ndarray) -> np.ndarray:
    """Variance / mean of the demand per period over a history window, between 1 and 50 (1 = Poisson)."""
    m = history.mean(axis=1)
    v = history.var(axis=1, ddof=1) if history.shape[1] > 1 else m
    with np.errstate(divide="ignore", invalid="ignore"):
        d = np.where(m > 0, v / np.where(m > 0, m, 1.0), 1.0)
    return np.clip(d, 1.0, 50.0)


def level(history: np.ndarray, period_days: int = 1, half_life_days: float | None = None) -> np.ndarray:
    """Demand per period forecast from a history window (columns = periods, oldest first): the
    flat mean (``half_life_days`` None), else the exponentially weighted mean whose weights halve
    every ``half_life_days`` (alpha = 1 - 0.5^(period_days / half_life_days) per period, weights
    normalised over the window: pandas ``ewm(alpha=alpha, adjust=True).mean()``'s last value)."""
    if half_life_days is None:
        return history.mean(axis=1)
    if not half_life_days > 0:
        raise ValueError(f"replay: the level's half-life must be positive, got {half_life_days} days")
    alpha = 1.0 - 0.5 ** (period_days / half_life_days)
    w = (1.0 - alpha) ** np.arange(history.shape[1] - 1, -1, -1.0)
    return history @ (w / w.sum())


def policy_frame(
    net: Network,
    stock: np.ndarray,
    *,
    history: np.ndarray | None = None,
    periods_left: int | None = None,
    in_transit: np.ndarray | None = None,
    run_date: date | None = None,
    half_life_days: float | None = None,
) -> pd.DataFrame:
    """The ``inventory_policy`` rows the planners see (module doc): by default on the decision
    date, from ``net.history``, over the whole horizon; a re-plan passes the history window it
    has observed (``history``, per period), the periods left, the units in transit to each series
    and its date."""
    hist = net.history if history is None else history
    left = net.future.shape[1] if periods_left is None else int(periods_left)
    moving = np.zeros(len(stock)) if in_transit is None else np.asarray(in_transit, float)
    mu = level(hist, net.period_days, half_life_days) / net.period_days
    H = float(left * net.period_days)
    disp = dispersion(hist)
    ss = Z * np.sqrt(disp * mu * H)
    rop = mu * H + ss
    it = net.items.set_index("sku")
    available = stock + moving
    with np.errstate(divide="ignore", invalid="ignore"):
        cover = np.where(mu > 0, available / np.where(mu > 0, mu, 1.0), np.nan)
    df = net.keys.assign(
        run_date=pd.Timestamp(net.decision_date if run_date is None else run_date),
        run_id="replay",
        category=it.loc[net.keys["sku"], "category"].to_numpy(),
        abc_class="B",
        abc_class_network="B",
        abc_class_location="B",
        xyz_class="unclassified",  # the replay's policy does not classify demand
        demand_pattern="unclassified",
        ss_method="normal",
        demand_mean=mu,
        demand_std=np.sqrt(disp * mu),
        lead_time_days=H,
        review_period_days=0.0,
        service_level=0.95,
        safety_stock=ss,
        reorder_point=rop,
        order_up_to=rop,
        on_hand=stock,
        in_transit=moving,
        available=available,
        days_of_cover=cover,
        health_band="healthy",
        lead_time_defaulted=False,
        explanation_en="",
        explanation_zh="",
    )
    return contract.conform(df, "inventory_policy")


def realised_demand(net: Network) -> Demand:
    """Cumulative realised demand per day after the decision date (weeks spread evenly over days)."""
    H = net.future.shape[1] * net.period_days
    per_day = np.repeat(net.future / net.period_days, net.period_days, axis=1)[:, :H]
    return Demand(net.keys, np.concatenate([np.zeros((len(net.keys), 1)), np.cumsum(per_day, axis=1)], axis=1), True)


@dataclass
class Step:
    """What a planner proposed at one decision epoch."""

    day: int  # days after the decision date
    transfers: pd.DataFrame
    note: str
    mip_gap: float | None = None
    wall_seconds: float = 0.0
    cpu_seconds: float = 0.0


#: a planner: (inventory_policy rows, days left in the horizon, run date) -> its proposal
Planner = Callable[[pd.DataFrame, int, date], Step]


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
    half_life_days: float | None = None,
) -> Outcome:
    """Simulate the horizon period by period with the realised demand (module doc).

    ``transfers`` (optional ``period`` column, default 0) are executed as given; ``planner`` is
    asked for transfers at period 0 and, with ``replan_every_days``, at every re-planning epoch,
    seeing only what the nightly run would see then: the stock on hand, the units in transit to
    each series, the sales observed so far (censored by the stock) and the days left."""
    T = net.future.shape[1]
    W = net.history.shape[1]
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
            hist = np.concatenate([net.history, sold[:, :p]], axis=1)[:, -W:]
            rd = net.decision_date + timedelta(days=p * net.period_days)
            pol = policy_frame(
                net,
                s,
                history=hist,
                periods_left=T - p,
                in_transit=arrivals[:, p + 1 :].sum(axis=1),
                run_date=rd,
                half_life_days=half_life_days,
            )
            clock, cpu = time.perf_counter(), time.process_time()
            step = planner(pol, (T - p) * net.period_days, rd)
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


def greedy_planner(net: Network) -> Planner:
    """:func:`pipelines.transfers.greedy_transfers` on the policy it is given."""

    def plan(pol: pd.DataFrame, horizon_days: int, run_date: date) -> Step:
        g = greedy_transfers(pol, net.items, net.locations, net.lanes, run_date, horizon_days, 0.0)
        return Step(0, g, f"greedy: {len(g)} transfer(s)")

    return plan


def milp_planner(net: Network, time_limit_seconds: float, donor_keep: str = "risk") -> Planner:
    """:func:`pipelines.transfers.optimal_transfers` on the policy it is given (forecast demand;
    ``donor_keep`` as in the nightly run: ``risk`` by default, ``reorder_point`` the hard rule)."""

    def plan(pol: pd.DataFrame, horizon_days: int, run_date: date) -> Step:
        tp: TransferPlan = optimal_transfers(
            pol,
            net.items,
            net.locations,
            net.lanes,
            run_date,
            horizon_days,
            0.0,
            holding_cost_rate=HOLDING_RATE,
            time_limit_seconds=time_limit_seconds,
            donor_keep=donor_keep,
        )
        return Step(0, tp.transfers, "; ".join(tp.notes), tp.mip_gap)

    return plan


def optimum_step(net: Network, stock: np.ndarray, time_limit_seconds: float) -> tuple[Step, Optimum]:
    """The exact optimum of this simulation with the realised demand (:mod:`pipelines.eval.optimum`):
    one shipment per lane on the decision date, no donor cap."""
    opt = optimum_plan(
        net.keys, stock, net.future, net.period_days, net.items, net.lanes, HOLDING_RATE, time_limit_seconds
    )
    note = (
        f"exact optimum: {len(opt.transfers)} transfer(s) of {opt.candidates:,} candidates,"
        f" {opt.series:,} series touched, gap {'n/a' if opt.gap is None else f'{opt.gap:.3%}'},"
        f" {opt.seconds:.1f} s ({opt.status})"
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
    time_limit_seconds: float = 240.0,
    stock: np.ndarray | None = None,
    replan_every_days: int | None = 7,
    check_bound: bool = True,
    half_life_days: float | None = None,
    progress: Callable[[str], None] | None = None,
    optimum_time_limit_seconds: float | None = None,
    donor_keep: str = "risk",
) -> tuple[pd.DataFrame, dict[str, str]]:
    """One row per method (:data:`METHODS`): lost sales, transfer and holding cost, total, saving,
    share of the exact optimum's saving captured, units forwarded, the plan's wall and CPU seconds.
    ``stock`` overrides the seeded starting stock (:func:`starting_stock`); ``replan_every_days``
    (None or 0: one shot only) sets the epochs of ``greedy`` and ``milp``; ``time_limit_seconds``
    is the MILP's per plan (each epoch), ``optimum_time_limit_seconds`` (default: the same) the
    exact optimum's. Raises :class:`BoundViolation` when a method's total cost is below the
    optimum's lower bound, or when the optimum's plan, simulated, does not cost what its model
    says. ``donor_keep``: the MILP's donor rule (:func:`pipelines.transfers.optimal_transfers`;
    ``risk``, as the nightly run, by default)."""
    stock = starting_stock(net, seed) if stock is None else np.asarray(stock, float)
    planners = {"greedy": greedy_planner(net), "milp": milp_planner(net, time_limit_seconds, donor_keep)}
    outcomes: dict[str, Outcome] = {}
    opt: Optimum | None = None
    for m in ("none", "greedy", "milp", "greedy_once", "milp_once", "optimum"):
        clock, cpu = time.perf_counter(), time.process_time()
        if m == "none":
            o = run(net, stock)
        elif m == "optimum":
            step, opt = optimum_step(net, stock, optimum_time_limit_seconds or time_limit_seconds)
            o = run(net, stock, transfers=step.transfers)
            o.steps = [step]
        elif m.endswith("_once"):
            # the re-planner's first decision is the one-shot plan (same stock, history and horizon
            # on the decision date): reused, not solved again
            first = outcomes[m.removesuffix("_once")].steps[0]
            o = run(net, stock, transfers=first.transfers)
            o.steps = [first]
        else:
            o = run(net, stock, planners[m], replan_every_days, half_life_days=half_life_days)
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
    if abs(simulated - opt.cost) > 1e-6 * max(abs(opt.cost), 1.0):
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
        "plan wall / CPU s",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in table.itertuples():
        cap = "" if pd.isna(r.captured) else f"{r.captured:.1%}"
        lines.append(
            f"| {r.method} | {r.lost_units:,.0f} | {r.lost_value:,.0f} | {r.transfer_units:,.0f} |"
            f" {r.transfer_cost:,.0f} | {r.holding_cost:,.0f} | {r.total_cost:,.0f} | {r.saving:,.0f} | {cap} |"
            f" {r.wall_s:,.0f} / {r.cpu_s:,.0f} |"
        )
    return "\n".join(lines)


def replay_command(
    dataset: str = "all",
    data_dir: Path | None = None,
    seed: int = 0,
    time_limit_seconds: float = 240.0,
    echo: Callable[[str], None] = print,
    replan_every_days: int | None = 7,
    half_life_days: float | None | str = "validated",
    optimum_time_limit_seconds: float | None = None,
    donor_keep: str = "risk",
    last: str | None = None,
    history: int | None = None,
) -> dict[str, pd.DataFrame]:
    """``tiaobo replay``: replay VN1 and/or M5 and print the tables (markdown). The forecast's
    half-life is each data set's validated one (:data:`HALF_LIFE_DAYS`) unless a number of days
    (or None: the flat mean) is given. Raises
    FileNotFoundError naming the folder when the data is absent, and :class:`BoundViolation`
    (after printing the table) when a method beats the exact optimum's bound."""
    base = Path(data_dir) if data_dir is not None else DEFAULT_DATA_DIR
    names = ["vn1", "m5"] if dataset == "all" else [dataset]
    loaders = {"vn1": load_vn1, "m5": load_m5}
    out = {}
    for name in names:
        if name not in loaders:
            raise ValueError(f"replay: unknown dataset {name!r}; expected vn1, m5 or all")
        if not (base / name).exists():
            raise FileNotFoundError(f"replay: {base / name} does not exist (real demand data; see ../shared/data)")
        # an earlier window (the validation dates of docs/replay-benchmark.md): the horizon ends on
        # ``last`` (a VN1 week column, an M5 day) with ``history`` periods before it
        kw: dict = {} if history is None else {"history_weeks" if name == "vn1" else "history_days": int(history)}
        if last is not None:
            kw["last_week" if name == "vn1" else "last_day"] = last
        net = loaders[name](base, **kw)
        hl = HALF_LIFE_DAYS[name] if half_life_days == "validated" else half_life_days
        if isinstance(hl, str):
            raise ValueError(f"replay: half_life_days must be a number of days, None or 'validated', got {hl!r}")
        echo(
            f"\n## {name}: {len(net.keys):,} SKU-locations, {net.keys['sku'].nunique():,} SKUs,"
            f" {net.keys['location'].nunique()} locations, {len(net.lanes)} lanes; decision date"
            f" {net.decision_date}, horizon {net.future.shape[1]} x {net.period_days} days, seed {seed},"
            f" {f're-planning every {replan_every_days} day(s)' if replan_every_days else 'one decision, no re-planning'}, level: "
            f"{'flat mean' if hl is None else f'EWM half-life {hl:g} days'},"
            f" MILP donor keep: {donor_keep}, solver time limit {time_limit_seconds:g} s per plan"
            f" ({optimum_time_limit_seconds or time_limit_seconds:g} s for the exact optimum)\n"
        )
        try:
            table, notes = replay(
                net,
                seed,
                time_limit_seconds,
                replan_every_days=replan_every_days,
                half_life_days=hl,
                progress=echo,
                optimum_time_limit_seconds=optimum_time_limit_seconds,
                donor_keep=donor_keep,
            )
        except BoundViolation as err:
            echo(markdown_table(err.table))
            echo(f"\n**{err}**")
            raise
        echo(markdown_table(table))
        for m in ("milp_once", "milp", "optimum"):
            echo(f"\n- {m}: {notes[m]}")
        gap = table.attrs.get("optimum_gap")
        echo(
            f"\n- bound check: no method's total cost is below the exact optimum's lower bound"
            f" {table.attrs['optimum_cost_bound']:,.0f} (gap {'n/a' if gap is None else f'{gap:.3%}'}): ok;"
            f" units forwarded (the bound's argument covers plans that forward none):"
            f" {', '.join(f'{r.method} {r.forwarded_units:g}' for r in table.itertuples())}"
        )
        out[name] = table
    return out
