"""Replay: what transfer plans would have saved on real demand (``tiaobo replay``).

A replay takes a real demand history, a decision date and a seeded starting-stock scenario, asks
each planner for one set of transfers on that date, then simulates the stock of every SKU at every
location period by period (days for M5, weeks for VN1) over the horizon with the demand that really
happened:

- (a) ``none``: no transfers;
- (b) ``greedy``: :func:`pipelines.transfers.greedy_transfers`;
- (c) ``milp``: :func:`pipelines.transfers.optimal_transfers` planning with the forecast (Poisson
  around the recent mean);
- (d) ``perfect``: the same MILP given the realised demand (deterministic) and the donors' true
  spare units (stock minus their realised demand over the horizon): a bound on what a planner
  could achieve with one set of transfers on that date (up to pack rounding and the solver's gap).

**Scenario (stated wherever a result is reported).** Forecast = mean daily demand of the history
window before the decision date (flat), with the variance / mean ratio d of the history's
periods (between 1 and 50: Poisson when 1, else gamma); nothing is replenished during the
horizon, so the lead time is the horizon H: reorder point = mu x H + 1.65 sqrt(d mu H), order-up-to =
the reorder point (a donor keeps what it needs until the horizon end); starting stock per
SKU-location = uniform(0.3, 3.0) (seeded) x its demand over the last ``horizon_days`` before the
decision date, rounded down; no replenishment and no other stock movement during the horizon;
pack size 1; unit cost = 70% of the price (margin 30%); holding cost 25% of unit cost a year.

**Simulation.** Transfers leave the donor at the start of period 0 and reach the receiver at the
start of period ceil(transit_days / period_days). Each period: sold = min(demand, stock +
arrivals), lost = demand - sold, the rest is carried; holding cost = stock at the end of each
period x unit_cost x 25% / 365 x period_days. Transfer cost = units x cost per unit + the fixed
cost of every lane used. Total cost = lost margin + transfer cost + holding cost. Saving = total of
``none`` - total; captured = saving / saving of ``perfect``.

**Data** (``../shared/data``, never copied into the repository): VN1 (weekly sales per
client-warehouse-product; locations = warehouses, SKUs = products sold at two or more warehouses
of the same client, lanes between the warehouses of one client; price = mean of
``phase1_price.csv`` over the weeks with a price) and M5 (daily; the 10 stores, 3 states; no
prices in the full panel, so a stated price per category; lanes between every pair of stores,
cheaper and faster within a state).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from pipelines import contract
from pipelines.transfers import Demand, TransferPlan, greedy_transfers, optimal_transfers

DEFAULT_DATA_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data"
MARGIN_SHARE = 0.30
HOLDING_RATE = 0.25
Z = 1.65
METHODS = ("none", "greedy", "milp", "perfect")

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


def load_vn1(data_dir: Path, history_weeks: int = 8, horizon_weeks: int = 4) -> Network:
    """VN1: the last ``horizon_weeks`` weeks replayed, the ``history_weeks`` before them as history."""
    d = Path(data_dir) / "vn1"
    sales = pd.read_csv(d / "phase1_sales.csv")
    price = pd.read_csv(d / "phase1_price.csv")
    weeks = [c for c in sales.columns if c not in ("Client", "Warehouse", "Product")]
    use = weeks[-(history_weeks + horizon_weeks) :]
    sales = sales.assign(
        sku=sales["Client"].astype(str) + "-" + sales["Product"].astype(str),
        location="W" + sales["Warehouse"].astype(str),
    )
    multi = sales.groupby("sku")["location"].transform("nunique") >= 2
    sales = sales[multi].sort_values(["sku", "location"]).reset_index(drop=True)
    pr = price.assign(sku=price["Client"].astype(str) + "-" + price["Product"].astype(str))
    p_week = pr[[c for c in pr.columns if c in weeks]].replace(0.0, np.nan)
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


def load_m5(data_dir: Path, history_days: int = 56, horizon_days: int = 28) -> Network:
    """M5: the last ``horizon_days`` days replayed, the ``history_days`` before them as history."""
    folder = Path(data_dir) / "m5" / "sales_train.parquet"
    end = pd.Timestamp("2016-04-24")
    start = end - pd.Timedelta(days=history_days + horizon_days - 1)
    df = pd.read_parquet(folder, filters=[("date", ">=", start.strftime("%Y-%m-%d"))])
    df["date"] = pd.to_datetime(df["date"].astype(str))
    parts = df["id"].str.rsplit("_", n=3)
    df["location"] = parts.str[1] + "_" + parts.str[2]
    df["sku"] = parts.str[0]
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


def dispersion(net: Network) -> np.ndarray:
    """Variance / mean of the demand per period over the history, between 1 and 50 (1 = Poisson)."""
    m = net.history.mean(axis=1)
    v = net.history.var(axis=1, ddof=1) if net.history.shape[1] > 1 else m
    with np.errstate(divide="ignore", invalid="ignore"):
        d = np.where(m > 0, v / np.where(m > 0, m, 1.0), 1.0)
    return np.clip(d, 1.0, 50.0)


def policy_frame(net: Network, stock: np.ndarray) -> pd.DataFrame:
    """The ``inventory_policy`` rows the planners see on the decision date (module doc)."""
    mu = net.history.mean(axis=1) / net.period_days
    H = float(net.future.shape[1] * net.period_days)
    disp = dispersion(net)
    ss = Z * np.sqrt(disp * mu * H)
    rop = mu * H + ss
    it = net.items.set_index("sku")
    with np.errstate(divide="ignore", invalid="ignore"):
        cover = np.where(mu > 0, stock / np.where(mu > 0, mu, 1.0), np.nan)
    df = net.keys.assign(
        run_date=pd.Timestamp(net.decision_date),
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
        in_transit=0.0,
        available=stock,
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


def simulate(net: Network, stock: np.ndarray, transfers: pd.DataFrame) -> dict[str, float]:
    """Stock period by period with the realised demand and the given transfers (module doc)."""
    keys = net.keys.reset_index(drop=True).reset_index()
    T = net.future.shape[1]
    s = stock.astype(float).copy()
    arrivals = np.zeros((len(s), T + 1))
    moved_cost = 0.0
    units = 0.0
    if len(transfers):
        t = transfers.merge(net.lanes, on=["from_location", "to_location"], how="left")
        src = t.merge(keys, left_on=["sku", "from_location"], right_on=["sku", "location"], how="left")["index"]
        dst = t.merge(keys, left_on=["sku", "to_location"], right_on=["sku", "location"], how="left")["index"]
        if src.isna().any() or dst.isna().any() or t["cost_per_unit"].isna().any():
            raise ValueError("replay: a transfer names a series or lane that is not in the network")
        q = t["quantity"].to_numpy(float)
        np.subtract.at(s, src.to_numpy(np.int64), q)
        if (s < -1e-6).any():
            raise ValueError("replay: a plan ships more than the donor has")
        when = np.ceil(t["transit_days"].to_numpy(float) / net.period_days).astype(np.int64)
        np.add.at(arrivals, (dst.to_numpy(np.int64), np.minimum(when, T)), q)
        used = t.groupby(["from_location", "to_location"])["fixed_cost_per_shipment"].first().sum()
        moved_cost = float((q * t["cost_per_unit"].to_numpy(float)).sum() + used)
        units = float(q.sum())
    it = net.items.set_index("sku")
    price = it.loc[net.keys["sku"], "unit_price"].to_numpy(float)
    cost = it.loc[net.keys["sku"], "unit_cost"].to_numpy(float)
    lost = np.zeros(len(s))
    held = np.zeros(len(s))
    for p in range(T):  # loop over periods (<= 28), vectorised over every series
        s = s + arrivals[:, p]
        sold = np.minimum(net.future[:, p], s)
        lost += net.future[:, p] - sold
        s = s - sold
        held += s * net.period_days
    hold_cost = float((held * cost * HOLDING_RATE / 365.0).sum())
    lost_margin = float((lost * (price - cost)).sum())
    return {
        "lost_units": float(lost.sum()),
        "lost_value": float((lost * price).sum()),
        "lost_margin": lost_margin,
        "transfer_units": units,
        "transfer_cost": moved_cost,
        "holding_cost": hold_cost,
        "total_cost": lost_margin + moved_cost + hold_cost,
    }


def plans(net: Network, stock: np.ndarray, time_limit_seconds: float = 240.0) -> dict[str, tuple[pd.DataFrame, str]]:
    """The transfers of each method and a note on how they were found."""
    pol = policy_frame(net, stock)
    H = net.future.shape[1] * net.period_days
    rd = net.decision_date
    out: dict[str, tuple[pd.DataFrame, str]] = {"none": (contract.empty("transfers"), "")}
    g = greedy_transfers(pol, net.items, net.locations, net.lanes, rd, H, 0.0)
    out["greedy"] = (g, f"greedy: {len(g)} transfer(s)")
    ours: TransferPlan = optimal_transfers(
        pol,
        net.items,
        net.locations,
        net.lanes,
        rd,
        H,
        0.0,
        holding_cost_rate=HOLDING_RATE,
        time_limit_seconds=time_limit_seconds,
    )
    out["milp"] = (ours.transfers, "; ".join(ours.notes))
    real = realised_demand(net)
    spare = net.keys.assign(excess=np.maximum(stock - real.cum[:, -1], 0.0))
    pf = optimal_transfers(
        pol,
        net.items,
        net.locations,
        net.lanes,
        rd,
        H,
        0.0,
        demand=real,
        donor_excess=spare,
        holding_cost_rate=HOLDING_RATE,
        time_limit_seconds=time_limit_seconds,
    )
    out["perfect"] = (pf.transfers, "; ".join(pf.notes))
    return out


def replay(
    net: Network, seed: int = 0, time_limit_seconds: float = 240.0, stock: np.ndarray | None = None
) -> tuple[pd.DataFrame, dict[str, str]]:
    """One row per method: lost sales, transfer and holding cost, total, saving, share captured.
    ``stock`` overrides the seeded starting stock (:func:`starting_stock`)."""
    stock = starting_stock(net, seed) if stock is None else np.asarray(stock, float)
    res = plans(net, stock, time_limit_seconds)
    rows = [{"method": m, **simulate(net, stock, res[m][0])} for m in METHODS]
    table = pd.DataFrame(rows)
    base = table.loc[table["method"] == "none", "total_cost"].iloc[0]
    table["saving"] = base - table["total_cost"]
    best = table.loc[table["method"] == "perfect", "saving"].iloc[0]
    table["captured"] = table["saving"] / best if best > 0 else np.nan
    return table, {m: res[m][1] for m in METHODS}


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
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in table.itertuples():
        cap = "" if pd.isna(r.captured) else f"{r.captured:.1%}"
        lines.append(
            f"| {r.method} | {r.lost_units:,.0f} | {r.lost_value:,.0f} | {r.transfer_units:,.0f} |"
            f" {r.transfer_cost:,.0f} | {r.holding_cost:,.0f} | {r.total_cost:,.0f} | {r.saving:,.0f} | {cap} |"
        )
    return "\n".join(lines)


def replay_command(
    dataset: str = "all",
    data_dir: Path | None = None,
    seed: int = 0,
    time_limit_seconds: float = 240.0,
    echo: Callable[[str], None] = print,
) -> dict[str, pd.DataFrame]:
    """``tiaobo replay``: replay VN1 and/or M5 and print the tables (markdown). Raises
    FileNotFoundError naming the folder when the data is absent."""
    base = Path(data_dir) if data_dir is not None else DEFAULT_DATA_DIR
    names = ["vn1", "m5"] if dataset == "all" else [dataset]
    loaders = {"vn1": load_vn1, "m5": load_m5}
    out = {}
    for name in names:
        if name not in loaders:
            raise ValueError(f"replay: unknown dataset {name!r}; expected vn1, m5 or all")
        if not (base / name).exists():
            raise FileNotFoundError(f"replay: {base / name} does not exist (real demand data; see ../shared/data)")
        net = loaders[name](base)
        table, notes = replay(net, seed, time_limit_seconds)
        echo(
            f"\n## {name}: {len(net.keys):,} SKU-locations, {net.keys['sku'].nunique():,} SKUs,"
            f" {net.keys['location'].nunique()} locations, {len(net.lanes)} lanes; decision date"
            f" {net.decision_date}, horizon {net.future.shape[1]} x {net.period_days} days, seed {seed}\n"
        )
        echo(markdown_table(table))
        for m in ("milp", "perfect"):
            echo(f"\n- {m}: {notes[m]}")
        out[name] = table
    return out
