"""Total cost of the money-optimising policy on the MAN spare-parts set against an ERP-style min / max (issue 18).

    .venv/bin/python benchmarks/policy_cost_man.py [--data-dir ../shared/data]

Data: ``<data-dir>/spare_parts/man_3451_skus_weekly_2012_2014.csv`` (3,451 SKUs, 150 weeks
2012-W01 .. 2014-W46, with cost price, fixed order cost (5 EUR), holding cost per unit and year
(20 % of the cost price), lead time in weeks (7-16) and minimum order quantity; nothing copied into
the repository). ``pack_units`` is not used (it is not a multiple of the MOQ for most SKUs, so its
meaning as an order multiple is unclear); an MOQ of 0 counts as 1.

Replay (both policies the same): weekly review, lost sales; each SKU starts with its max / S on
hand; at the start of a week orders due arrive, the week's demand is served from stock (unserved
units are lost), then the position (on hand + on order) is reviewed and, at or below s, the
quantity S - position rounded up to the MOQ is ordered, arriving ``lead_time_weeks`` later.
**Total cost** over the replay = holding (holding cost / 52 x end-of-week on hand, every week) +
ordering (fixed order cost x orders placed) + lost sales (units lost x the stated penalty per
unit: ``--penalty`` x cost price, default 1, i.e. a lost unit costs what the part costs; 0.5 and
3 reported as sensitivity).

**ERP-style min / max** (the rule a typical ERP parameter screen sets, not tuned): d = mean weekly
demand of the fit window; min = ceil(d x (lead time + k weeks of safety)), k = 4 (and 8, a more
generous setting, as a second baseline); max = min + max(MOQ, ceil(4 d)) (at least four weeks of
demand or the MOQ per order).

**Ours** (:func:`pipelines.replenishment.optimise_cost`): per SKU the demand over the protection
interval of this replay (``lead_time_weeks`` weeks: the order placed at a review is the last
that arrives before the following review's would) is negative binomial with mean ``L d`` and the
fit window's weekly variance-to-mean ratio; holding cost per week, order cost 5, lost-sale cost
= the penalty; s and Q at the least expected cost; S = s + Q.

Protocol: SKUs with at least one sale in the fit window. **Validation** (setting chosen here):
fit weeks 1-52 (2012), replay weeks 53-100; the only setting is the model variant (``unit``, or
``undershoot`` with one week's demand as the review period), chosen by the lower total cost at
the default penalty. **Report**: fit weeks 1-100, replay weeks 101-150, with that variant; spread:
both windows and ``--boot`` bootstrap resamples of the SKUs (the policy is per SKU, no group
target, so a resample needs no re-optimisation).
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

from pipelines.replenishment import optimise_cost, round_order  # noqa: E402

MAN = "man_3451_skus_weekly_2012_2014.csv"
VARIANTS = ("unit", "undershoot")
PENALTIES = (0.5, 1.0, 3.0)
VALIDATION = (slice(0, 52), slice(52, 100))
REPORT = (slice(0, 100), slice(100, 150))


def data_dir(arg: str | None = None) -> Path:
    return Path(arg or os.environ.get("TIAOBO_DATA_DIR") or ROOT.parent / "shared" / "data")


def read_man(base: Path) -> tuple[pd.DataFrame, np.ndarray]:
    raw = pd.read_csv(base / "spare_parts" / MAN)
    weeks = [c for c in raw.columns if "-W" in c]
    return raw, raw[weeks].fillna(0.0).clip(lower=0.0).to_numpy(float)


def fit_stats(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = y.mean(axis=1)
    var = y.var(axis=1, ddof=1)
    return mean, np.where(mean > 0, np.maximum(var / np.where(mean > 0, mean, 1.0), 1.0), 1.0)


def erp_minmax(raw: pd.DataFrame, mean: np.ndarray, safety_weeks: float = 4) -> tuple[np.ndarray, np.ndarray]:
    lead = raw["lead_time_weeks"].to_numpy(float)
    moq = np.maximum(raw["min_order_qty"].fillna(1).to_numpy(float), 1.0)
    lo = np.ceil(mean * (lead + safety_weeks) - 1e-9)
    return lo, lo + np.maximum(moq, np.ceil(4 * mean - 1e-9))


def our_policy(raw: pd.DataFrame, mean: np.ndarray, phi: np.ndarray, penalty: float, variant: str) -> pd.DataFrame:
    lead = np.maximum(raw["lead_time_weeks"].to_numpy(float), 1.0)
    cost = raw["cost_price_eur"].to_numpy(float)
    items = pd.DataFrame(
        {
            "rate": mean,
            "ltd_mean": mean * lead,
            "ltd_var": phi * mean * lead,
            "discrete": True,
            "unit_cost": cost,
            "moq": np.maximum(raw["min_order_qty"].fillna(1).to_numpy(float), 1.0),
            "order_multiple": 1.0,
            "holding_cost": raw["inventory_holding_cost_eur_per_unit_year"].to_numpy(float) / 52.0,
            "order_cost": raw["fixed_order_cost_eur"].to_numpy(float),
            "lost_sale_cost": penalty * cost,
            "review_period": 1.0,
        }
    )
    if variant == "undershoot":
        items["review_mean"], items["review_var"] = mean, phi * mean
    return optimise_cost(items)


def replay(raw: pd.DataFrame, demand: np.ndarray, s: np.ndarray, big_s: np.ndarray) -> dict[str, np.ndarray]:
    """Per SKU: units served, lost, orders placed and the sum of end-of-week on hand (weekly
    (s, S) with MOQ rounding, lost sales; loop over weeks only)."""
    n, t = demand.shape
    lead = np.maximum(raw["lead_time_weeks"].to_numpy(np.int64), 1)
    moq = np.maximum(raw["min_order_qty"].fillna(1).to_numpy(float), 1.0)
    pipeline = np.zeros((n, t + int(lead.max()) + 2))
    on_hand = big_s.astype(float).copy()
    rows = np.arange(n)
    served = np.zeros(n)
    orders = np.zeros(n)
    stock = np.zeros(n)
    for w in range(t):
        on_hand += pipeline[:, w]
        sv = np.minimum(on_hand, demand[:, w])
        served += sv
        on_hand -= sv
        stock += on_hand
        position = on_hand + pipeline[:, w + 1 :].sum(axis=1)
        want = np.where(position <= s, big_s - position, 0.0)
        qty = round_order(want, moq, np.ones(n))
        orders += qty > 0
        np.add.at(pipeline, (rows, w + lead), qty)
    return {"served": served, "lost": demand.sum(axis=1) - served, "orders": orders, "stock": stock}


def costs(raw: pd.DataFrame, r: dict[str, np.ndarray], penalty: float) -> dict[str, object]:
    hold = raw["inventory_holding_cost_eur_per_unit_year"].to_numpy(float) / 52.0
    cost = raw["cost_price_eur"].to_numpy(float)
    per_sku = hold * r["stock"] + raw["fixed_order_cost_eur"].to_numpy(float) * r["orders"] + penalty * cost * r["lost"]
    h = float((hold * r["stock"]).sum())
    o = float((raw["fixed_order_cost_eur"].to_numpy(float) * r["orders"]).sum())
    lost = float((penalty * cost * r["lost"]).sum())
    demand = r["served"].sum() + r["lost"].sum()
    return {
        "per_sku": per_sku,
        "holding": h,
        "ordering": o,
        "lost_sales": lost,
        "total": h + o + lost,
        "fill_rate": float(r["served"].sum() / demand) if demand > 0 else 1.0,
        "orders": float(r["orders"].sum()),
    }


def run_window(raw: pd.DataFrame, y: np.ndarray, window: tuple[slice, slice], variant: str, penalty: float):
    fit, rep = y[:, window[0]], y[:, window[1]]
    keep = fit.sum(axis=1) > 0
    sub, fit, rep = raw.loc[keep].reset_index(drop=True), fit[keep], rep[keep]
    mean, phi = fit_stats(fit)
    t0 = time.perf_counter()
    ours = our_policy(sub, mean, phi, penalty, variant)
    seconds = time.perf_counter() - t0
    out = {"skus": len(sub), "seconds": seconds}
    for k in (4, 8):
        out[f"erp{k}"] = costs(sub, replay(sub, rep, *erp_minmax(sub, mean, k)), penalty)
    out["erp"] = out["erp4"]
    out["ours"] = costs(
        sub, replay(sub, rep, ours["reorder_point"].to_numpy(), ours["order_up_to"].to_numpy()), penalty
    )
    return out


def choose_variant(raw: pd.DataFrame, y: np.ndarray, penalty: float) -> tuple[str, dict[str, dict]]:  # type: ignore[type-arg]
    """The validation step: the variant with the lower total cost on weeks 53-100."""
    val = {v: run_window(raw, y, VALIDATION, v, penalty) for v in VARIANTS}
    return min(VARIANTS, key=lambda v: val[v]["ours"]["total"]), val


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--penalty", type=float, default=1.0)
    ap.add_argument("--boot", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=18)
    args = ap.parse_args()
    base = data_dir(args.data_dir)
    if not (base / "spare_parts").exists():
        raise SystemExit(f"{base / 'spare_parts'} not found: pass --data-dir or set TIAOBO_DATA_DIR")
    raw, y = read_man(base)
    print("## Validation: fit weeks 1-52, replay weeks 53-100\n")
    variant, val = choose_variant(raw, y, args.penalty)
    for v, r in val.items():
        print(f"- {v}: ours total {r['ours']['total']:,.0f} vs ERP {r['erp']['total']:,.0f} ({r['skus']:,} SKUs)")
    print(f"- chosen variant: {variant}\n")
    print("## Report: fit weeks 1-100, replay weeks 101-150\n")
    print(
        "| penalty x cost | policy | holding | ordering | lost sales | total | vs ERP (4 weeks) | fill rate | orders |"
    )
    print("|--:|:--|--:|--:|--:|--:|--:|--:|--:|")
    for p in PENALTIES:
        r = run_window(raw, y, REPORT, variant, p)
        labels = {"erp4": "ERP min / max, 4 weeks safety", "erp8": "ERP min / max, 8 weeks safety", "ours": "ours"}
        for name, label in labels.items():
            c = r[name]
            print(
                f"| {p:g} | {label} | {c['holding']:,.0f} | {c['ordering']:,.0f} |"
                f" {c['lost_sales']:,.0f} | {c['total']:,.0f} | {c['total'] / r['erp']['total'] - 1:+.1%} |"
                f" {c['fill_rate']:.3f} | {c['orders']:,.0f} |"
            )
    print(f"\n- SKUs: {r['skus']:,} (a sale in weeks 1-100); optimiser time {r['seconds']:.2f} s")
    print("\n### Spread: windows and a bootstrap over SKUs (penalty 1)\n")
    print("| window | ours / ERP 4 weeks: total cost | ours / ERP 8 weeks | 2.5 % .. 97.5 % (vs 4 weeks) |")
    print("|:--|--:|--:|--:|")
    rng = np.random.default_rng(args.seed)
    for name, window in (("weeks 53-100 (fit 1-52)", VALIDATION), ("weeks 101-150 (fit 1-100)", REPORT)):
        r = run_window(raw, y, window, variant, 1.0)
        # the policy is per SKU (no group target), so a resample of SKUs needs no re-optimisation
        w = rng.multinomial(r["skus"], np.full(r["skus"], 1 / r["skus"]), args.boot).astype(float)
        ratio = (w @ r["ours"]["per_sku"]) / (w @ r["erp4"]["per_sku"])
        print(
            f"| {name} | {r['ours']['total'] / r['erp4']['total']:.3f} | {r['ours']['total'] / r['erp8']['total']:.3f} |"
            f" {np.quantile(ratio, 0.025):.3f} .. {np.quantile(ratio, 0.975):.3f} |"
        )


if __name__ == "__main__":
    main()
