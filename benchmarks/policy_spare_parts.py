"""Our inventory policy on real spare-parts data (issue 8): the oil set and the MAN dead stock.

    .venv/bin/python benchmarks/policy_spare_parts.py [--data-dir ../shared/data]

Data: ``<data-dir>/spare_parts`` (default ``../shared/data`` relative to the repository root, or
``TIAOBO_DATA_DIR``); nothing is copied into the repository.

**Oil** (``oil_part1b_*``: 7,024 materials, monthly consumption Jan-1997 .. Aug-2001, newest
column first, blank = no record, negative = returns; the recorded reorder point, max stock level,
delivery time and price). Fit window Jan-1997 .. Dec-1999 (Nov-1997, flagged unreliable by the
source, left out; blank months not observed; returns count as 0 demand); replay Jan-2000 ..
Aug-2001 (20 months). Materials evaluated: at least 12 observed fit months and all 20 replay
months recorded. Our policy from the same kernels as the nightly stage
(:func:`pipelines.policy.safety_stock_kernel`): daily rate = mean monthly demand / 30.44, daily
variance = monthly variance / 30.44, lead time = delivery time (no spread recorded: sigma_L = 0),
review period 30.44 days (monthly review in the replay), ABC by value (units x price) with the
default cut-offs and the default policy rows (CSL A 98 %, B 95 %, C 90 %), demand pattern on the
monthly buckets (ADI / CV^2), Poisson / negative binomial for intermittent and lumpy demand.
s = ceil(reorder point), S = max(ceil(order-up-to), s + 1).

Replay, the same for both policies (monthly, lost sales): each material starts with S units on
hand; at the start of a month orders due arrive, then the month's demand is served from stock
(unserved units are lost), then the inventory position (on hand + on order) is reviewed: at or
below s, order S - position, arriving ceil(lead time / 30.44) months later. Reported: cycle
service level (share of item-months with demand in which all demand was served), fill rate
(units served / demanded) and the average stock on hand (units and value at price).

**MAN** (``man_*``: 3,451 SKUs, 150 weeks 2012-W01 .. 2014-W46, no stock recorded). Scenario: one
minimum order quantity (at least 1 unit) on hand of every SKU at one location; weekly sales put
on each week's Monday; run date the Monday after the last week; forecast = mean daily sales of
the last 28 days; the nightly :func:`compute_policy` and :func:`compute_alerts` with the default
policy rows. Checked: every SKU that never sold is flagged as dead stock.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from pipelines import contract  # noqa: E402
from pipelines.alerts import compute_alerts  # noqa: E402
from pipelines.classify import abc_rank  # noqa: E402
from pipelines.config import load_config  # noqa: E402
from pipelines.context import policies_frame  # noqa: E402
from pipelines.frames import lookup_policy  # noqa: E402
from pipelines.policy import (  # noqa: E402
    compute_policy,
    demand_pattern,
    safety_stock_kernel,
    weekly_stats,
)

MONTH_DAYS = 30.44
OIL = "oil_part1b_7024_materials_monthly_1997_2001_with_minmax_stock.csv"
MAN = "man_3451_skus_weekly_2012_2014.csv"


def data_dir(arg: str | None = None) -> Path:
    return Path(arg or os.environ.get("TIAOBO_DATA_DIR") or ROOT.parent / "shared" / "data")


# --------------------------------------------------------------------------------------------
# Oil: policy vs recorded, and the replay
# --------------------------------------------------------------------------------------------


def load_oil(base: Path) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """(materials, fit matrix [n, 35] with NaN = not observed, replay matrix [n, 20]) for the
    evaluated materials, months oldest first."""
    raw = pd.read_csv(base / "spare_parts" / OIL)
    months = [c for c in raw.columns if c[:2] in ("19", "20") and "-" in c]
    y = raw[months[::-1]].to_numpy(float)  # oldest first
    cols = months[::-1]
    fit_cols = [i for i, c in enumerate(cols) if c <= "1999-12" and c != "1997-11"]
    rep_cols = [i for i, c in enumerate(cols) if c >= "2000-01"]
    fit, rep = y[:, fit_cols], y[:, rep_cols]
    fit = np.where(np.isnan(fit), np.nan, np.clip(fit, 0, None))
    keep = (np.sum(~np.isnan(fit), axis=1) >= 12) & ~np.isnan(rep).any(axis=1)
    mats = raw.loc[keep, ["material", "delivery_time_days", "min_reorder_point", "max_stock_level", "price"]]
    return mats.reset_index(drop=True), fit[keep], np.clip(rep[keep], 0, None)


def oil_policy(mats: pd.DataFrame, fit: np.ndarray) -> pd.DataFrame:
    """Our reorder point and order-up-to level per material (see the module doc)."""
    obs = ~np.isnan(fit)
    k = obs.sum(axis=1)
    mean_m = np.nansum(fit, axis=1) / k
    var_m = np.nansum((fit - mean_m[:, None]) ** 2 * obs, axis=1) / np.maximum(k - 1, 1)
    # pattern on observed months only: ADI / CV^2 of the non-zero months
    ws = weekly_stats(np.where(obs, fit, 0.0))
    adi = np.where(ws["adi"] < np.inf, ws["adi"] * k / fit.shape[1], np.inf)
    pattern = demand_pattern(adi, ws["cv2"])
    value = mean_m * mats["price"].to_numpy(float)
    cfg = load_config()
    abc = abc_rank(value, np.zeros(len(value), np.int64), cfg.policy.abc_cutoffs)
    pol = lookup_policy(pd.DataFrame({"category": "*", "abc_class": abc}), policies_frame(cfg))
    mu = mean_m / MONTH_DAYS
    sd = np.sqrt(var_m / MONTH_DAYS)
    lead = mats["delivery_time_days"].to_numpy(float)
    review = np.full(len(mu), MONTH_DAYS)
    discrete = np.isin(pattern, ["intermittent", "lumpy"])
    kk = safety_stock_kernel(
        mu, sd, lead, np.zeros(len(mu)), review, pol["service_level"].to_numpy(float),
        np.full(len(mu), np.nan), discrete, np.zeros(len(mu)), np.full(len(mu), np.nan),
    )  # fmt: skip
    rop = mu * lead + kk["safety_stock"]
    out_level = mu * (lead + review) + kk["safety_stock"]
    s = np.ceil(rop - 1e-9)
    big_s = np.maximum(np.ceil(out_level - 1e-9), s + 1)
    return pd.DataFrame(
        {
            "material": mats["material"].to_numpy(),
            "abc_class": abc,
            "pattern": pattern,
            "ss_method": kk["ss_method"],
            "service_level": pol["service_level"].to_numpy(float),
            "reorder_point": s,
            "order_up_to": big_s,
        }
    )


def replay(demand: np.ndarray, s: np.ndarray, big_s: np.ndarray, lead_months: np.ndarray) -> dict[str, float]:
    """Monthly (s, S) replay with lost sales over all materials at once (loop over months only)."""
    n, t = demand.shape
    horizon = t + int(lead_months.max()) + 2
    pipeline = np.zeros((n, horizon))
    on_hand = big_s.astype(float).copy()
    rows = np.arange(n)
    served = np.zeros((n, t))
    stock = np.zeros((n, t))
    for m in range(t):
        on_hand += pipeline[:, m]
        sv = np.minimum(on_hand, demand[:, m])
        served[:, m] = sv
        on_hand -= sv
        stock[:, m] = on_hand
        position = on_hand + pipeline[:, m + 1 :].sum(axis=1)
        order = np.where(position <= s, big_s - position, 0.0)
        np.add.at(pipeline, (rows, m + lead_months), order)
    has = demand > 0
    return {
        "cycle_service_level": float((served[has] >= demand[has] - 1e-9).mean()),
        "fill_rate": float(served.sum() / demand.sum()),
        "avg_stock_units": float(stock.mean(axis=1).sum()),
    }


def oil_report(base: Path) -> tuple[pd.DataFrame, dict[str, object]]:
    mats, fit, rep = load_oil(base)
    ours = oil_policy(mats, fit)
    lead_months = np.maximum(1, np.ceil(mats["delivery_time_days"].to_numpy(float) / MONTH_DAYS)).astype(np.int64)
    price = mats["price"].to_numpy(float)
    rec_s = mats["min_reorder_point"].to_numpy(float)
    rec_big = np.maximum(mats["max_stock_level"].to_numpy(float), rec_s + 1)
    rows = []
    for name, s, big in (
        ("recorded (min / max)", rec_s, rec_big),
        ("ours", ours["reorder_point"].to_numpy(float), ours["order_up_to"].to_numpy(float)),
    ):
        r = replay(rep, s, big, lead_months)
        # value of the average stock: per material average x price
        stock_value = float((replay_stock_per_item(rep, s, big, lead_months) * price).sum())
        rows.append(
            {
                "policy": name,
                "mean reorder point": float(s.mean()),
                "mean max / order-up-to": float(big.mean()),
                "cycle service level": r["cycle_service_level"],
                "fill rate": r["fill_rate"],
                "avg stock (units)": r["avg_stock_units"],
                "avg stock value": stock_value,
            }
        )
    table = pd.DataFrame(rows)
    facts = {
        "materials": len(mats),
        "replay_months": rep.shape[1],
        "item_months_with_demand": int((rep > 0).sum()),
        "ss_method": ours["ss_method"].value_counts().to_dict(),
        "pattern": pd.Series(ours["pattern"]).value_counts().to_dict(),
        "abc": pd.Series(ours["abc_class"]).value_counts().sort_index().to_dict(),
        "median_ratio_rop_ours_to_recorded": float(
            np.median((ours["reorder_point"].to_numpy(float) + 1) / (rec_s + 1))
        ),
    }
    return table, facts


def replay_stock_per_item(demand: np.ndarray, s: np.ndarray, big_s: np.ndarray, lead_months: np.ndarray) -> np.ndarray:
    """Average end-of-month stock on hand per material in the replay."""
    n, t = demand.shape
    pipeline = np.zeros((n, t + int(lead_months.max()) + 2))
    on_hand = big_s.astype(float).copy()
    rows = np.arange(n)
    total = np.zeros(n)
    for m in range(t):
        on_hand += pipeline[:, m]
        on_hand -= np.minimum(on_hand, demand[:, m])
        total += on_hand
        position = on_hand + pipeline[:, m + 1 :].sum(axis=1)
        np.add.at(pipeline, (rows, m + lead_months), np.where(position <= s, big_s - position, 0.0))
    return total / t


# --------------------------------------------------------------------------------------------
# MAN: dead stock with one MOQ on hand
# --------------------------------------------------------------------------------------------


def man_dead_stock(base: Path) -> dict[str, object]:
    raw = pd.read_csv(base / "spare_parts" / MAN)
    weeks = [c for c in raw.columns if "-W" in c]
    y = raw[weeks].fillna(0.0).to_numpy(float)
    monday = pd.to_datetime([w + "-1" for w in weeks], format="%G-W%V-%u")
    run = (monday[-1] + pd.Timedelta(days=7)).date()
    sku = raw["sku_nr"].astype(str).to_numpy()
    r, c = np.nonzero(y > 0)
    # one zero-quantity row on the first Monday: the history starts with the data set, not with the
    # first sale (the slow-mover rule needs to know how far back "never sold" reaches)
    r, c = np.r_[0, r], np.r_[0, c]
    qty = np.where(np.arange(len(r)) == 0, 0.0, y[r, c])
    sales = contract.conform(
        pd.DataFrame(
            {"sku": sku[r], "location": "MAN", "date": monday[c], "quantity": qty, "returns": 0.0,
             "revenue": qty * raw["cost_price_eur"].to_numpy(float)[r]}
        ),
        "sales",
    ).drop_duplicates(["sku", "location", "date"], keep="last")  # fmt: skip
    cost = raw["cost_price_eur"].to_numpy(float)
    items = contract.conform(
        pd.DataFrame(
            {"sku": sku, "name": sku, "name_en": None, "category": "spare_parts", "unit_cost": cost,
             "unit_price": cost, "pack_size": 1, "shelf_life_days": None, "abc_override": None, "active": True}
        ),
        "items",
    )  # fmt: skip
    moq = np.maximum(raw["min_order_qty"].fillna(1).to_numpy(float), 1.0)
    stock = contract.conform(
        pd.DataFrame(
            {"sku": sku, "location": "MAN", "snapshot_date": pd.Timestamp(run), "lot": "", "expiry_date": None,
             "on_hand": moq, "in_transit": 0.0, "reserved": 0.0}
        ),
        "stock",
    )  # fmt: skip
    rd = pd.Timestamp(run)
    recent = sales[sales["date"] >= rd - pd.Timedelta(days=28)].groupby("sku")["quantity"].sum() / 28.0
    rates = pd.DataFrame({"sku": sku, "location": "MAN"})
    rates["mean"] = rates["sku"].map(recent).fillna(0.0).to_numpy(float)
    lead_times = contract.conform(
        pd.DataFrame(
            {"sku": sku, "location": "MAN", "lead_time_days": raw["lead_time_weeks"].to_numpy(float) * 7,
             "lead_time_std_days": 0.0, "review_period_days": 7.0}
        ),
        "lead_times",
    )  # fmt: skip
    cfg = load_config(overrides={"policy": {"special_categories": ["spare_parts"]}})
    pols = policies_frame(cfg)
    t0 = time.perf_counter()
    pol = compute_policy(
        rates, sales, items, stock, lead_times, pols, run,
        default_lead_time_days=cfg.policy.default_lead_time_days,
        default_lead_time_std_days=cfg.policy.default_lead_time_std_days,
        default_review_period_days=cfg.policy.default_review_period_days,
        special_categories=cfg.policy.special_categories,
    )  # fmt: skip
    # every never-sold SKU, however little it is worth (the nightly default lists from 10 at risk)
    alerts = compute_alerts(pol, stock, sales, items, pols, run, materiality=0.0)
    seconds = time.perf_counter() - t0
    never = set(sku[y.sum(axis=1) <= 0])
    slow = alerts[alerts["alert_type"] == "slow_mover"]
    dead = set(slow.loc[slow["action"] == "clear_dead_stock", "sku"])
    return {
        "run_date": run.isoformat(),
        "skus": len(sku),
        "never_sold": len(never),
        "never_sold_flagged_dead": len(never & dead),
        "dead_stock_flagged": len(dead),
        "dead_stock_that_sold_once": len(dead - never),
        "slow_not_dead": int((slow["action"] == "promote_or_transfer").sum()),
        "dead_stock_value": float(slow.loc[slow["action"] == "clear_dead_stock", "value_at_risk"].sum()),
        "seconds": round(seconds, 1),
        "example_en": slow.loc[slow["sku"].isin(never), "explanation_en"].iloc[0] if never else "",
        "example_zh": slow.loc[slow["sku"].isin(never), "explanation_zh"].iloc[0] if never else "",
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=None)
    args = ap.parse_args()
    base = data_dir(args.data_dir)
    if not (base / "spare_parts").exists():
        raise SystemExit(f"{base / 'spare_parts'} not found: pass --data-dir or set TIAOBO_DATA_DIR")
    table, facts = oil_report(base)
    print("## Oil: our policy vs the recorded min / max, replayed on Jan-2000 .. Aug-2001\n")
    print(table.to_markdown(index=False, floatfmt=",.3f") if hasattr(table, "to_markdown") else table)
    print()
    for k, v in facts.items():
        print(f"- {k}: {v}")
    print("\n## MAN: dead stock with one MOQ on hand\n")
    for k, v in man_dead_stock(base).items():
        print(f"- {k}: {v}")


if __name__ == "__main__":
    main()
