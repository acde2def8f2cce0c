"""Speed and memory of the policy and alerts stages on one million SKU-locations (issue 8).

    .venv/bin/python benchmarks/policy.py [--skus 100000] [--locations 10] [--horizon 28]
                                          [--sales-per-series 10] [--seed 11]

Scenario (seeded, synthetic): ``skus`` x ``locations`` series (default 100,000 x 10 = 1,000,000).
Per SKU: category one of four (``spare`` is a special category: discrete lead-time demand), unit
cost lognormal around 8, price 1.3-2x cost; 2 % have a manual ABC override. Per series: a daily
rate lognormal around 0.5 (10 % of series never sell); ``sales-per-series`` sale days on average
over the last 365 days (Poisson count, days uniform, quantity 1 + Poisson(2 x rate)), so the
history mixes smooth, intermittent and dead series; the forecast is that rate flat over
``horizon`` days (the forecasts table the policy stage reads: series x horizon rows, with Poisson
quantiles); stock = 0-3x 30 days of the rate in one lot, plus a second lot with an expiry date for
10 % of series (expired to +120 days); lead times recorded for 90 % of series (2-30 days, std 0-5,
review 7), the rest use the default (flagged). Policies: the embedded default rows plus a
fill-rate target of 99 % for class A. Purchasing (from a generator of its own): one sourcing row
per SKU for every location (50 suppliers, MOQ 1 / 6 / 12 / 24 with a multiple of up to 12, a
supplier lead time for 30 %, an order cost of 20-200) and an open purchase order on 10 % of the
series (7-30 days of demand, expected from 3 days overdue to 30 days out).

The inputs are generated and written to parquet first; a fresh child process then reads them and
runs the policy stage's work (reading the forecasts as the stage does, with
:func:`read_demand_rates`, then :func:`compute_policy` with the purchase orders and sourcing),
:func:`compute_alerts` and the purchasing stage's work (:func:`purchasing`), timing each
(reading the other inputs is timed separately); its peak resident memory since its exec
(``VmHWM``, inputs included; not ``ru_maxrss``, which carries the generating parent's size across
the fork) is reported after each step, so generation does not count.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

RUN = date(2026, 3, 1)


def generate(out: Path, skus: int, n_loc: int, horizon: int, per_series: float, seed: int) -> dict[str, int]:
    from scipy.stats import poisson

    from pipelines import contract
    from pipelines.config import load_config
    from pipelines.context import policies_frame

    rng = np.random.default_rng(seed)
    rd = pd.Timestamp(RUN)
    sku_codes = np.array([f"S{i:06d}" for i in range(skus)])
    loc_codes = np.array([f"L{i:02d}" for i in range(n_loc)])
    cost = np.round(rng.lognormal(np.log(8.0), 0.6, skus), 2)
    override = np.where(rng.random(skus) < 0.02, rng.choice(["A", "B", "C"], skus), None)
    items = pd.DataFrame(
        {
            "sku": sku_codes,
            "name": sku_codes,
            "name_en": None,
            "category": rng.choice(["grocery", "dairy", "tools", "spare"], skus),
            "unit_cost": cost,
            "unit_price": np.round(cost * rng.uniform(1.3, 2.0, skus), 2),
            "pack_size": 1,
            "shelf_life_days": None,
            "abc_override": override,
            "active": True,
        }
    )
    n = skus * n_loc
    s_idx = np.repeat(np.arange(skus), n_loc)
    l_idx = np.tile(np.arange(n_loc), skus)
    rate = rng.lognormal(np.log(0.5), 1.0, n) * (rng.random(n) > 0.10)
    # sales: Poisson count of sale days per series over the last 365 days
    cnt = np.where(rate > 0, rng.poisson(per_series, n), 0)
    rows = np.repeat(np.arange(n), cnt)
    day = rng.integers(1, 366, len(rows))
    sales = pd.DataFrame({"_r": rows, "_d": day}).drop_duplicates()
    r, d = sales["_r"].to_numpy(), sales["_d"].to_numpy()
    qty = 1.0 + rng.poisson(2.0 * rate[r])
    sales = pd.DataFrame(
        {
            "sku": sku_codes[s_idx[r]],
            "location": loc_codes[l_idx[r]],
            "date": rd - pd.to_timedelta(d, unit="D"),
            "quantity": qty,
            "returns": 0.0,
            "revenue": qty * items["unit_price"].to_numpy()[s_idx[r]],
        }
    )
    h = np.arange(1, horizon + 1)
    q = {c: poisson.ppf(p, rate) for c, p in (("p50", 0.5), ("p90", 0.9), ("p95", 0.95), ("p99", 0.99))}
    fc = pd.DataFrame(
        {
            "run_date": rd,
            "run_id": "bench",
            "sku": np.repeat(sku_codes[s_idx], horizon),
            "location": np.repeat(loc_codes[l_idx], horizon),
            "target_date": np.tile(rd + pd.to_timedelta(h - 1, unit="D"), n),
            "horizon": np.tile(h, n),
            "mean": np.repeat(rate, horizon),
            **{c: np.repeat(v, horizon) for c, v in q.items()},
            "model": "bench",
        }
    )
    oh = np.floor(rng.uniform(0, 3, n) * 30 * rate + rng.integers(0, 3, n))
    lot2 = rng.random(n) < 0.10
    stock = pd.concat(
        [
            pd.DataFrame(
                {
                    "sku": sku_codes[s_idx],
                    "location": loc_codes[l_idx],
                    "lot": "",
                    "expiry_date": pd.NaT,
                    "on_hand": oh,
                    "in_transit": np.floor(rng.random(n) * 5),
                    "reserved": 0.0,
                }
            ),
            pd.DataFrame(
                {
                    "sku": sku_codes[s_idx[lot2]],
                    "location": loc_codes[l_idx[lot2]],
                    "lot": "E1",
                    "expiry_date": rd + pd.to_timedelta(rng.integers(-10, 121, int(lot2.sum())), unit="D"),
                    "on_hand": np.floor(rng.uniform(1, 40, int(lot2.sum()))),
                    "in_transit": 0.0,
                    "reserved": 0.0,
                }
            ),
        ],
        ignore_index=True,
    ).assign(snapshot_date=rd)
    has_lt = rng.random(n) < 0.9
    lead_times = pd.DataFrame(
        {
            "sku": sku_codes[s_idx[has_lt]],
            "location": loc_codes[l_idx[has_lt]],
            "lead_time_days": rng.integers(2, 31, int(has_lt.sum())).astype(float),
            "lead_time_std_days": np.round(rng.uniform(0, 5, int(has_lt.sum())), 1),
            "review_period_days": 7.0,
        }
    )
    # purchasing (issue 18), from a generator of its own so the tables above stay as they were
    rng2 = np.random.default_rng([seed, 18])
    moq = rng2.choice(np.array([1.0, 6.0, 12.0, 24.0]), skus)
    quoted = rng2.random(skus) < 0.3
    sourcing = pd.DataFrame(
        {
            "sku": sku_codes,
            "location": "*",
            "supplier": np.char.add("V", (np.arange(skus) % 50).astype(str)),
            "lead_time_days": np.where(quoted, rng2.integers(3, 40, skus), np.nan),
            "lead_time_std_days": np.nan,
            "moq": moq,
            "order_multiple": np.minimum(moq, 12.0),
            "unit_cost": np.round(cost * 0.95, 2),
            "fixed_order_cost": np.round(rng2.uniform(20, 200, skus), 0),
        }
    )
    ordered = rng2.random(n) < 0.10
    k = int(ordered.sum())
    purchase_orders = pd.DataFrame(
        {
            "po_no": np.char.add("P", np.arange(k).astype(str)),
            "sku": sku_codes[s_idx[ordered]],
            "location": loc_codes[l_idx[ordered]],
            "supplier": None,
            "open_qty": np.ceil(rate[ordered] * rng2.uniform(7, 30, k)) + 1.0,
            "order_date": rd - pd.Timedelta(days=5),
            "expected_date": rd + pd.to_timedelta(rng2.integers(-3, 31, k), unit="D"),
        }
    )
    cfg = load_config(overrides={"policy": {"special_categories": ["spare"]}})
    pol = policies_frame(cfg).assign(fill_rate=np.nan)
    pol.loc[(pol["category"] == "*") & (pol["abc_class"] == "A"), "fill_rate"] = 0.99
    out.mkdir(parents=True, exist_ok=True)
    frames = {
        "items": contract.conform(items, "items"),
        "sales": contract.conform(sales, "sales"),
        "forecasts": contract.conform(fc, "forecasts"),
        "stock": contract.conform(stock, "stock"),
        "lead_times": contract.conform(lead_times, "lead_times"),
        "sourcing": contract.conform(sourcing, "sourcing"),
        "purchase_orders": contract.conform(purchase_orders, "purchase_orders"),
    }
    for name, df in frames.items():
        df.to_parquet(out / f"{name}.parquet", index=False)
    pol.to_parquet(out / "policies.parquet", index=False)
    return {k: len(v) for k, v in frames.items()}


def replenishment(p: pd.DataFrame, items: pd.DataFrame) -> dict[str, object]:
    """Time the money-optimising reorder points (:func:`pipelines.replenishment.optimise_policy`,
    one group per ABC class with fill-rate targets A 98 %, B 95 %, C 90 %) and the purchase
    proposals on the policy frame ``p``; sourcing: one supplier per SKU at its unit cost."""
    from pipelines.replenishment import optimise_policy, purchase_proposals

    t0 = time.perf_counter()
    inputs = pd.DataFrame(
        {
            "rate": p["demand_mean"].to_numpy(float),
            "ltd_mean": p["lt_mean"].to_numpy(float),
            "ltd_var": p["lt_std"].to_numpy(float) ** 2,
            "discrete": p["ss_method"].isin(["poisson", "negbin"]).to_numpy(),
            "unit_cost": p["unit_cost"].to_numpy(float),
            "abc_class": p["abc_class"].to_numpy(),
        }
    )
    rows, curve = optimise_policy(inputs, {"A": 0.98, "B": 0.95, "C": 0.90}, group="abc_class")
    t1 = time.perf_counter()
    sourcing = pd.DataFrame(
        {"sku": items["sku"], "location": None, "supplier": "SUP-" + items["sku"].astype(str), "lead_time_days": np.nan,
         "moq": 1.0, "order_multiple": 1.0, "unit_cost": items["unit_cost"], "fixed_order_cost": 0.0}
    )  # fmt: skip
    positions = p[["sku", "location", "demand_mean", "on_hand", "in_transit", "reserved", "review_period_days",
                   "lead_time_days"]].assign(reorder_point=rows["reorder_point"].to_numpy(),
                                            order_up_to=rows["order_up_to"].to_numpy())  # fmt: skip
    t2 = time.perf_counter()
    props = purchase_proposals(positions, sourcing, RUN)
    t3 = time.perf_counter()
    return {
        "optimise_s": round(t1 - t0, 1),
        "proposals_s": round(t3 - t2, 1),
        "proposals": len(props),
        "groups": curve.attrs["summary"][["group", "model_service", "stock_value"]].round(3).to_dict("records"),
    }


def _peak_gb() -> float:
    """This process's peak resident memory since its exec (GB): ``VmHWM``. ``ru_maxrss`` would report
    at least the parent's resident size at the fork, the generator's frames included."""
    hwm = next(line for line in Path("/proc/self/status").read_text().splitlines() if line.startswith("VmHWM:"))
    return round(int(hwm.split()[1]) / 1024**2, 2)  # kB


def purchasing(p: pd.DataFrame, items: pd.DataFrame, sourcing: pd.DataFrame) -> pd.DataFrame:
    """The purchasing stage's work on the policy frame, as :func:`pipelines.purchasing.purchasing_stage`
    does it (no transfers planned: the benchmark has no lanes)."""
    from pipelines import contract
    from pipelines.purchasing import positions
    from pipelines.replenishment import purchase_proposals

    locs = pd.DataFrame({"location": sorted(p["location"].unique()), "active": True})
    pos, opened = positions(p, contract.empty("transfers"), items, locs)
    return purchase_proposals(pos, sourcing, RUN, opened)


def run(folder: Path, with_replenishment: bool = False) -> dict[str, object]:
    from pipelines.alerts import compute_alerts
    from pipelines.policy import compute_policy, read_demand_rates

    t0 = time.perf_counter()
    names = ("items", "sales", "stock", "lead_times", "sourcing", "purchase_orders")
    f = {n: pd.read_parquet(folder / f"{n}.parquet") for n in names}
    pol = pd.read_parquet(folder / "policies.parquet")
    t1 = time.perf_counter()
    peak = {"after_read": _peak_gb()}
    p = compute_policy(
        read_demand_rates(folder / "forecasts.parquet"),  # as the stage reads it
        f["sales"],
        f["items"],
        f["stock"],
        f["lead_times"],
        pol,
        RUN,
        default_lead_time_days=7.0,
        default_lead_time_std_days=2.0,
        default_review_period_days=7.0,
        special_categories=["spare"],
        purchase_orders=f["purchase_orders"],
        sourcing=f["sourcing"],
    )
    t2 = time.perf_counter()
    peak["after_policy"] = _peak_gb()
    a = compute_alerts(p, f["stock"], f["sales"], f["items"], pol, RUN)
    t3 = time.perf_counter()
    peak["after_alerts"] = _peak_gb()
    props = purchasing(p, f["items"], f["sourcing"])
    t4 = time.perf_counter()
    peak["after_purchasing"] = _peak_gb()
    extra = replenishment(p, f["items"]) if with_replenishment else {}
    return {
        **extra,
        "series": len(p),
        "read_s": round(t1 - t0, 1),
        "policy_s": round(t2 - t1, 1),
        "alerts_s": round(t3 - t2, 1),
        "policy_plus_alerts_s": round(t3 - t1, 1),
        "purchasing_s": round(t4 - t3, 1),
        "policy_plus_purchasing_s": round(t2 - t1 + t4 - t3, 1),
        "purchase_proposals": len(props),
        "on_order_series": int((p["on_order"] > 0).sum()),
        "peak_rss_gb": _peak_gb(),
        "peak_rss_gb_by_step": peak,
        "ss_method": p["ss_method"].value_counts().to_dict(),
        "demand_pattern": p["demand_pattern"].value_counts().to_dict(),
        "health_band": p["health_band"].value_counts().to_dict(),
        "alerts": a["alert_type"].value_counts().to_dict(),
        "lead_time_defaulted": int(p["lead_time_defaulted"].sum()),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--skus", type=int, default=100_000)
    ap.add_argument("--locations", type=int, default=10)
    ap.add_argument("--horizon", type=int, default=28)
    ap.add_argument("--sales-per-series", type=float, default=10.0)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--replenishment", action="store_true", help="also time optimise_policy and purchase_proposals")
    ap.add_argument("--run", type=Path, help=argparse.SUPPRESS)  # child process: run on this folder
    args = ap.parse_args()
    if args.run:
        print(json.dumps(run(args.run, args.replenishment)))
        return
    with tempfile.TemporaryDirectory(prefix="tiaobo-policy-bench-") as tmp:
        t0 = time.perf_counter()
        counts = generate(Path(tmp), args.skus, args.locations, args.horizon, args.sales_per_series, args.seed)
        print(f"generated in {time.perf_counter() - t0:.0f} s: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))
        cmd = [sys.executable, __file__, "--run", tmp] + (["--replenishment"] if args.replenishment else [])
        child = subprocess.run(cmd, check=True, capture_output=True, text=True)
        res = json.loads(child.stdout.strip().splitlines()[-1])
    for k, v in res.items():
        print(f"{k}: {v}")


if __name__ == "__main__":
    main()
