"""Money-optimising replenishment on the oil spare-parts set against the recorded min / max (issue 18).

    .venv/bin/python benchmarks/policy_tradeoff.py [--data-dir ../shared/data] [--boot 200] [--seed 18]

Data: ``<data-dir>/spare_parts/oil_part1b_*`` (see ``benchmarks/policy_spare_parts.py``; nothing is
copied into the repository). The replay is the one of ``docs/policy-benchmark.md``: monthly review,
lost sales, each material starting with its max / order-up-to S on hand; at the start of a month
orders due arrive, the month's demand is served from stock, then the position (on hand + on order)
is reviewed and, at or below s, S - position is ordered, arriving ceil(delivery time / 30.44)
months later. Cycle service = share of item-months with demand served in full; fill rate = units
served / demanded; stock value = average end-of-month on hand x price, summed over materials.

Our policy (:func:`pipelines.replenishment.optimise_policy`): one group of all evaluated
materials, target = a group fill rate; per material the demand over the protection interval of
this replay (an order placed at a review must cover the next ``k = ceil(delivery / 30.44)``
months: the next order arrives one month after it) is negative binomial (Poisson when the monthly
variance-to-mean ratio is at most 1) with mean ``k`` x the mean monthly demand of the fit window
and the monthly variance-to-mean ratio (kept over k months, as for any sum of independent
compound-Poisson months); every material is treated as discrete (intermittent / lumpy, or a mean
of a few units); unit cost = the recorded price; no MOQ in the data (1). s and Q from marginal
analysis; S = s + Q.

Protocol. **Validation** (setting chosen here): fit Jan-1997 .. Dec-1998 (Nov-1997 left out,
as the source warns), replay Jan-1999 .. Dec-1999 on the materials with at least 12 observed fit
months and all 12 replay months recorded. The only setting is the model's target fill rate: the
smallest value of the grid 0.80, 0.805, .., 0.995 whose replayed fill rate on 1999 is at least
the recorded min / max's on the same months. **Report**: fit Jan-1997 .. Dec-1999, replay
Jan-2000 .. Aug-2001 (the 20 months and 1,173 materials of ``docs/policy-benchmark.md``) with
that target, unchanged. Spread: the same fitted policy replayed on each 10-month half of the
report window (each half starting at S again) and ``--boot`` bootstrap resamples of the materials
(policy re-optimised on each resample at the same target, both policies replayed on it): mean and
2.5 / 97.5 % range. The trade-off curve: our replayed point at every target of the grid.
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

from pipelines.replenishment import optimise_policy  # noqa: E402

MONTH_DAYS = 30.44
OIL = "oil_part1b_7024_materials_monthly_1997_2001_with_minmax_stock.csv"
GRID = tuple(np.round(np.r_[np.arange(0.80, 0.9901, 0.005), np.arange(0.991, 0.9991, 0.001)], 3))
VARIANTS = ("unit", "undershoot")
VALIDATION = {"fit_end": "1998-12", "start": "1999-01", "end": "1999-12"}
REPORT = {"fit_end": "1999-12", "start": "2000-01", "end": "2001-08"}


def data_dir(arg: str | None = None) -> Path:
    return Path(arg or os.environ.get("TIAOBO_DATA_DIR") or ROOT.parent / "shared" / "data")


def read_oil(base: Path) -> tuple[pd.DataFrame, list[str], np.ndarray]:
    """(material columns, month labels oldest first, demand matrix oldest first; NaN = no record)."""
    raw = pd.read_csv(base / "spare_parts" / OIL)
    months = [c for c in raw.columns if c[:2] in ("19", "20") and "-" in c][::-1]
    return raw, months, raw[months].to_numpy(float)


def window(
    raw: pd.DataFrame, months: list[str], y: np.ndarray, fit_end: str, start: str, end: str, min_fit: int = 12
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """(materials, fit matrix with NaN = not observed and returns as 0, replay matrix) of the
    materials with at least ``min_fit`` observed fit months and every replay month recorded."""
    fit_cols = [i for i, c in enumerate(months) if c <= fit_end and c != "1997-11"]
    rep_cols = [i for i, c in enumerate(months) if start <= c <= end]
    fit, rep = y[:, fit_cols], y[:, rep_cols]
    fit = np.where(np.isnan(fit), np.nan, np.clip(fit, 0, None))
    keep = (np.sum(~np.isnan(fit), axis=1) >= min_fit) & ~np.isnan(rep).any(axis=1)
    mats = raw.loc[keep, ["material", "delivery_time_days", "min_reorder_point", "max_stock_level", "price"]]
    return mats.reset_index(drop=True), fit[keep], np.clip(rep[keep], 0, None)


def lead_months(mats: pd.DataFrame) -> np.ndarray:
    return np.maximum(1, np.ceil(mats["delivery_time_days"].to_numpy(float) / MONTH_DAYS)).astype(np.int64)


def oil_items(mats: pd.DataFrame, fit: np.ndarray, variant: str = "unit") -> pd.DataFrame:
    """The optimiser's inputs per material (module doc); ``variant="undershoot"`` adds one
    month's demand (the review period) so that the optimiser counts the undershoot of s."""
    obs = ~np.isnan(fit)
    k = obs.sum(axis=1)
    mean_m = np.nansum(fit, axis=1) / k
    var_m = np.nansum((fit - mean_m[:, None]) ** 2 * obs, axis=1) / np.maximum(k - 1, 1)
    phi = np.where(mean_m > 0, np.maximum(var_m / np.where(mean_m > 0, mean_m, 1.0), 1.0), 1.0)
    lm = lead_months(mats)
    ltd = mean_m * lm
    out = pd.DataFrame(
        {
            "material": mats["material"].to_numpy(),
            "rate": mean_m,
            "ltd_mean": ltd,
            "ltd_var": phi * ltd,
            "discrete": True,
            "unit_cost": mats["price"].to_numpy(float),
            "moq": 1.0,
            "order_multiple": 1.0,
        }
    )
    if variant == "undershoot":
        out["review_mean"], out["review_var"] = mean_m, phi * mean_m
    return out


def replay(demand: np.ndarray, s: np.ndarray, big_s: np.ndarray, lm: np.ndarray) -> dict[str, np.ndarray]:
    """Per material: units served, units demanded, item-months with demand, of them served in
    full, and average end-of-month on hand (monthly (s, S), lost sales; loop over months only)."""
    n, t = demand.shape
    pipeline = np.zeros((n, t + int(lm.max()) + 2))
    on_hand = big_s.astype(float).copy()
    rows = np.arange(n)
    served = np.zeros(n)
    full = np.zeros(n)
    stock = np.zeros(n)
    for m in range(t):
        on_hand += pipeline[:, m]
        sv = np.minimum(on_hand, demand[:, m])
        served += sv
        full += (demand[:, m] > 0) & (sv >= demand[:, m] - 1e-9)
        on_hand -= sv
        stock += on_hand
        position = on_hand + pipeline[:, m + 1 :].sum(axis=1)
        np.add.at(pipeline, (rows, m + lm), np.where(position <= s, big_s - position, 0.0))
    return {
        "served": served,
        "demand": demand.sum(axis=1),
        "months": (demand > 0).sum(axis=1).astype(float),
        "full": full,
        "stock": stock / t,
    }


def measures(r: dict[str, np.ndarray], price: np.ndarray, w: np.ndarray | None = None) -> dict[str, float]:
    """Fill rate, cycle service, stock units and value of a replay (``w``: bootstrap counts)."""
    w = np.ones(len(price)) if w is None else w
    return {
        "cycle_service": float((w * r["full"]).sum() / (w * r["months"]).sum()),
        "fill_rate": float((w * r["served"]).sum() / (w * r["demand"]).sum()),
        "stock_units": float((w * r["stock"]).sum()),
        "stock_value": float((w * r["stock"] * price).sum()),
    }


def recorded(mats: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    s = mats["min_reorder_point"].to_numpy(float)
    return s, np.maximum(mats["max_stock_level"].to_numpy(float), s + 1)


def ours(items: pd.DataFrame, target: float) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    rows, curve = optimise_policy(items, target)
    return rows["reorder_point"].to_numpy(float), rows["order_up_to"].to_numpy(float), curve


AIM = 0.908  # the target: the recorded min / max's fill rate on the report window


def fill_lower_bound(r: dict[str, np.ndarray], boot: int, seed: int, q: float = 0.05) -> float:
    """The ``q`` quantile of the fill rate over ``boot`` bootstrap resamples of the materials
    (multinomial counts, one matrix product; the policy is not re-fitted)."""
    w = np.random.default_rng(seed).multinomial(len(r["served"]), np.full(len(r["served"]), 1 / len(r["served"])), boot)
    return float(np.quantile((w @ r["served"]) / (w @ r["demand"]), q))


def choose_target(
    base_data: tuple[pd.DataFrame, list[str], np.ndarray], seed: int
) -> tuple[tuple[str, float], pd.DataFrame, dict[str, float]]:
    """The validation step: replay every (variant, grid target) on 1999 and keep the one with the
    least stock value whose fill rate is at least :data:`AIM` with 95 % bootstrap confidence
    (its 5 % quantile over 500 resamples of the materials), and at least the recorded min / max's
    fill rate there."""
    mats, fit, rep = window(*base_data, VALIDATION["fit_end"], VALIDATION["start"], VALIDATION["end"])
    price, lm = mats["price"].to_numpy(float), lead_months(mats)
    rec = measures(replay(rep, *recorded(mats), lm), price)
    rows = []
    for variant in VARIANTS:
        items = oil_items(mats, fit, variant)
        for t in GRID:
            s, big, _ = ours(items, t)
            r = replay(rep, s, big, lm)
            rows.append(
                {"variant": variant, "target": t, **measures(r, price), "fill_5pct": fill_lower_bound(r, 500, seed)}
            )
    table = pd.DataFrame(rows)
    ok = table[(table["fill_5pct"] >= AIM) & (table["fill_rate"] >= rec["fill_rate"])]
    best = ok.sort_values("stock_value").iloc[0] if len(ok) else table.sort_values("fill_rate").iloc[-1]
    rec["materials"] = len(mats)
    return (str(best["variant"]), float(best["target"])), table, rec


def report(
    base_data: tuple[pd.DataFrame, list[str], np.ndarray],
    setting: tuple[str, float],
    boot: int,
    seed: int,
    curves: bool = True,
) -> dict[str, object]:
    variant, target = setting
    mats, fit, rep = window(*base_data, REPORT["fit_end"], REPORT["start"], REPORT["end"])
    items, price, lm = oil_items(mats, fit, variant), mats["price"].to_numpy(float), lead_months(mats)
    rec_s, rec_big = recorded(mats)
    t0 = time.perf_counter()
    s, big, curve = ours(items, target)
    seconds = time.perf_counter() - t0
    r_rec, r_our = replay(rep, rec_s, rec_big, lm), replay(rep, s, big, lm)
    main = {"recorded": measures(r_rec, price), "ours": measures(r_our, price)}
    halves = {}
    for name, cols in (("first 10 months", slice(0, 10)), ("last 10 months", slice(10, 20))):
        halves[name] = {
            "recorded": measures(replay(rep[:, cols], rec_s, rec_big, lm), price),
            "ours": measures(replay(rep[:, cols], s, big, lm), price),
        }
    rng = np.random.default_rng(seed)
    boots = []
    for _ in range(boot):  # resamples of materials; each one vectorised
        idx = rng.integers(0, len(mats), len(mats))
        bs, bb, _ = ours(items.iloc[idx], target)
        o = measures(replay(rep[idx], bs, bb, lm[idx]), price[idx])
        rc = measures(r_rec, price, np.bincount(idx, minlength=len(mats)).astype(float))
        boots.append(
            {
                "fill_ours": o["fill_rate"],
                "fill_recorded": rc["fill_rate"],
                "csl_ours": o["cycle_service"],
                "csl_recorded": rc["cycle_service"],
                "value_ratio": o["stock_value"] / rc["stock_value"],
            }
        )
    curve_rows = []
    for v in VARIANTS if curves else ():
        vi = oil_items(mats, fit, v)
        for t in GRID:
            cs, cb, _ = ours(vi, t)
            curve_rows.append({"variant": v, "target": t, **measures(replay(rep, cs, cb, lm), price)})
    return {
        "materials": len(mats),
        "item_months_with_demand": int((rep > 0).sum()),
        "main": main,
        "halves": halves,
        "boot": pd.DataFrame(boots),
        "replayed_curve": pd.DataFrame(curve_rows),
        "model_curve": curve,
        "optimise_seconds": seconds,
        "ours_rows": pd.DataFrame({"s": s, "S": big, "price": price}),
        "recorded_rows": pd.DataFrame({"s": rec_s, "S": rec_big}),
    }


def _fmt(x: float, d: int = 3) -> str:
    return f"{x:,.{d}f}"


def print_curves(r: dict, setting: tuple[str, float]) -> None:  # type: ignore[type-arg]
    """The replayed curve of the chosen variant against the recorded point, and the model curve."""
    rec_main = r["main"]["recorded"]
    print(f"\n### Replayed trade-off curve (report window, variant {setting[0]}; the recorded point first)\n")
    print("| policy | cycle service | fill rate | avg stock (units) | avg stock value | value vs recorded |")
    print("|:--|--:|--:|--:|--:|--:|")
    print(
        f"| recorded min / max | {_fmt(rec_main['cycle_service'])} | {_fmt(rec_main['fill_rate'])} |"
        f" {_fmt(rec_main['stock_units'], 0)} | {_fmt(rec_main['stock_value'], 0)} | +0.0% |"
    )
    rc = r["replayed_curve"]
    rc = rc[rc["variant"] == setting[0]]
    shown = rc[(np.round(rc["target"] * 1000) % 10 == 0) | (rc["target"] > 0.99)]
    for row in shown.itertuples():
        mark = " (chosen)" if abs(row.target - setting[1]) < 1e-9 else ""
        print(
            f"| ours, target {row.target:g}{mark} | {_fmt(row.cycle_service)} | {_fmt(row.fill_rate)} |"
            f" {_fmt(row.stock_units, 0)} | {_fmt(row.stock_value, 0)} |"
            f" {row.stock_value / rec_main['stock_value'] - 1:+.1%} |"
        )
    mc = r["model_curve"]
    print("\n### Model trade-off curve (fit through Dec-1999: the optimiser's own estimate)\n")
    print("| model fill rate | stock value | value of one more point (+0.01) |")
    print("|--:|--:|--:|")
    svc = mc["service"].to_numpy()
    for level in (0.5, 0.8, 0.9, 0.95, 0.97, 0.98, 0.99, 0.995, 0.999):
        i = int(np.searchsorted(svc, level - 1e-12))
        if i < len(mc) and svc[i] < level + 0.002:  # a curve point at that level
            row = mc.iloc[i]
            print(f"| {row['service']:.3f} | {_fmt(row['stock_value'], 0)} | {_fmt(row['value_per_point'], 0)} |")
    floor = float(mc["stock_value"].iloc[0])
    print(f"\n- cheapest option of every material (s = 0, Q = 1): model stock value {_fmt(floor, 0)}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--boot", type=int, default=200)
    ap.add_argument("--seed", type=int, default=18)
    args = ap.parse_args()
    base = data_dir(args.data_dir)
    if not (base / "spare_parts").exists():
        raise SystemExit(f"{base / 'spare_parts'} not found: pass --data-dir or set TIAOBO_DATA_DIR")
    data = read_oil(base)
    setting, val, rec_val = choose_target(data, args.seed)
    print("## Validation: fit Jan-1997 .. Dec-1998, replay Jan-1999 .. Dec-1999\n")
    print(f"- materials: {rec_val['materials']:,}")
    print(
        f"- recorded min / max: fill {_fmt(rec_val['fill_rate'])}, cycle service {_fmt(rec_val['cycle_service'])},"
        f" stock value {_fmt(rec_val['stock_value'], 0)}"
    )
    print(f"- chosen: variant {setting[0]}, model target fill rate {setting[1]}\n")
    print(val.to_markdown(index=False, floatfmt=",.3f"))
    r = report(data, setting, args.boot, args.seed)
    print("\n## Report: fit Jan-1997 .. Dec-1999, replay Jan-2000 .. Aug-2001\n")
    print(f"- materials: {r['materials']:,}; item-months with demand: {r['item_months_with_demand']:,}")
    print(f"- optimiser time (one run, all materials): {r['optimise_seconds']:.2f} s\n")
    print("| window | policy | cycle service | fill rate | avg stock (units) | avg stock value | value vs recorded |")
    print("|:--|:--|--:|--:|--:|--:|--:|")
    for wname, pair in (("Jan-2000 .. Aug-2001", r["main"]), *r["halves"].items()):
        for p in ("recorded", "ours"):
            m = pair[p]
            ratio = m["stock_value"] / pair["recorded"]["stock_value"] - 1
            print(
                f"| {wname} | {p} | {_fmt(m['cycle_service'])} | {_fmt(m['fill_rate'])} |"
                f" {_fmt(m['stock_units'], 0)} | {_fmt(m['stock_value'], 0)} | {ratio:+.1%} |"
            )
    b = r["boot"]
    print(f"\n### Bootstrap over materials ({len(b)} resamples, policy re-optimised on each)\n")
    print("| measure | mean | 2.5 % | 97.5 % |")
    print("|:--|--:|--:|--:|")
    for c in b.columns:
        print(f"| {c} | {_fmt(b[c].mean())} | {_fmt(b[c].quantile(0.025))} | {_fmt(b[c].quantile(0.975))} |")
    print_curves(r, setting)
    o, rr = r["ours_rows"], r["recorded_rows"]
    print(
        f"\n- mean s / S: ours {o['s'].mean():.2f} / {o['S'].mean():.2f}, recorded {rr['s'].mean():.2f} / {rr['S'].mean():.2f}"
    )


if __name__ == "__main__":
    main()
