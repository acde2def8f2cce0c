"""Policy stage: ABC class, safety stock, reorder point, order-up-to level and health band.

Current method (walking skeleton; later issues add XYZ classes and forecast-error based sigma):

- **Series**: every SKU x location of the forecast. ``demand_mean`` (mu, units/day) is the mean
  daily forecast over the horizon; ``demand_std`` (sigma_d) is the sample standard deviation
  (ddof=1) of daily units sold over the last ``std_days`` (56) days before the run date, days
  without a sale counting as 0 (0 with fewer than two observed days).
- **Lead time** L, its standard deviation sigma_L and the review period R come from
  ``lead_times``; when a SKU x location has none, the configured defaults are used and
  ``lead_time_defaulted`` is true.
- **ABC class** per SKU, network-wide (the same class at every location): value = units sold over
  the last 365 days x unit cost (annualising would multiply every SKU by the same factor, so the
  shares are unchanged), active SKUs ranked by value; a SKU is A while the cumulative share of the
  SKUs ranked *before* it is below the first cut-off, B below the second, else C (so the largest
  SKU is always A); a SKU with no value is C. ``items.abc_override`` wins.
- **Policy row**: the most specific row of the ``policies`` table for (category, class):
  (category, class) > (category, *) > (*, class) > (*, *).
- **Formulas** (normal approximation, periodic review with order-up-to level):
  ``z = norm.ppf(service_level)``;
  ``safety_stock = z * sqrt((L + R) * sigma_d^2 + mu^2 * sigma_L^2)``;
  ``reorder_point = mu * L + safety_stock``; ``order_up_to = mu * (L + R) + safety_stock``;
  ``available = on_hand + in_transit - reserved`` (stock summed over lots);
  ``days_of_cover = available / mu`` (null when mu = 0);
  ``health_band`` = ``no_demand`` when mu = 0, ``under`` below min_cover_days, ``over`` above
  max_cover_days, else ``healthy``.

Limits: normal demand over the lead time (poor for slow, intermittent items); sigma_d from raw
sales, not forecast errors; no review of the lead-time variability of the source; the band uses
available stock including what is still in transit.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import numpy as np
import pandas as pd
from scipy.stats import norm

from pipelines import explain
from pipelines.context import RunContext, StageResult
from pipelines.forecast import KEY, daily_matrix, observed_window, stock_totals

POLICY_PARAMS = [
    "service_level",
    "min_cover_days",
    "max_cover_days",
    "slow_mover_days",
    "auto_approve_max_units",
    "auto_approve_max_value",
]
STD_DAYS = 56
ABC_DAYS = 365


def abc_classes(
    sales: pd.DataFrame,
    items: pd.DataFrame,
    run_date: date,
    cutoffs: Sequence[float] = (0.80, 0.95),
    days: int = ABC_DAYS,
) -> pd.DataFrame:
    """ABC class of every active SKU by value over the last ``days`` days (see module doc).

    Returns columns sku, abc_class, abc_value, sorted by sku.
    """
    a_cut, b_cut = float(cutoffs[0]), float(cutoffs[1])
    rd = pd.Timestamp(run_date)
    recent = sales[(sales["date"] >= rd - pd.Timedelta(days=int(days))) & (sales["date"] < rd)]
    units = recent.groupby("sku", sort=False)["quantity"].sum().rename("units")
    active = items.loc[items["active"].astype(bool), ["sku", "unit_cost", "abc_override"]]
    df = active.merge(units, left_on="sku", right_index=True, how="left")
    df["abc_value"] = (df["units"].fillna(0.0) * df["unit_cost"]).clip(lower=0.0)
    df = df.sort_values(["abc_value", "sku"], ascending=[False, True], kind="mergesort")
    total = float(df["abc_value"].sum())
    share_before = (df["abc_value"].cumsum() - df["abc_value"]) / total if total > 0 else df["abc_value"] * 0.0 + 1.0
    computed = np.where(
        (df["abc_value"] <= 0) | (total <= 0),
        "C",
        np.where(share_before < a_cut, "A", np.where(share_before < b_cut, "B", "C")),
    )
    override = df["abc_override"].astype("str").str.strip().str.upper()
    valid = df["abc_override"].notna() & override.isin(["A", "B", "C"])
    df["abc_class"] = np.where(valid, override, computed)
    return df[["sku", "abc_class", "abc_value"]].sort_values("sku").reset_index(drop=True)


def lookup_policy(keys: pd.DataFrame, policies: pd.DataFrame) -> pd.DataFrame:
    """Policy parameters for each row of ``keys`` (columns category, abc_class), same index.

    The most specific matching row wins: (category, class) > (category, *) > (*, class) > (*, *).
    Raises ValueError naming the (category, class) when no row matches (no default row).
    """
    pairs = keys[["category", "abc_class"]].drop_duplicates()
    pol = policies[["category", "abc_class", *POLICY_PARAMS]].rename(columns={"category": "_c", "abc_class": "_a"})
    pieces = []
    for rank, (any_cat, any_cls) in enumerate([(False, False), (False, True), (True, False), (True, True)]):
        probe = pairs.assign(
            _c="*" if any_cat else pairs["category"],
            _a="*" if any_cls else pairs["abc_class"],
            _rank=rank,
        )
        pieces.append(probe.merge(pol, on=["_c", "_a"], how="inner"))
    best = (
        pd.concat(pieces, ignore_index=True)
        .sort_values(["category", "abc_class", "_rank"], kind="mergesort")
        .drop_duplicates(["category", "abc_class"])
    )
    out = keys[["category", "abc_class"]].merge(best, on=["category", "abc_class"], how="left")
    missing = out["service_level"].isna()
    if missing.any():
        first = out.loc[missing].iloc[0]
        raise ValueError(
            f"policies: no row matches category {first['category']!r}, class {first['abc_class']!r};"
            " add a default row with category '*' and abc_class '*'"
        )
    out.index = keys.index
    return out[POLICY_PARAMS]


def demand_std(sales: pd.DataFrame, keys: pd.DataFrame, run_date: date, days: int = STD_DAYS) -> np.ndarray:
    """Sample standard deviation of daily units sold over the last ``days`` observed days."""
    start, end = observed_window(sales, pd.Timestamp(run_date), days)
    y = daily_matrix(sales, keys, start, end)
    if y.shape[1] < 2:
        return np.zeros(len(keys))
    return y.std(axis=1, ddof=1)


def compute_policy(
    forecasts: pd.DataFrame,
    sales: pd.DataFrame,
    items: pd.DataFrame,
    stock: pd.DataFrame,
    lead_times: pd.DataFrame,
    policies: pd.DataFrame,
    run_date: date,
    *,
    default_lead_time_days: float,
    default_lead_time_std_days: float,
    default_review_period_days: float,
    abc_cutoffs: Sequence[float] = (0.80, 0.95),
    std_days: int = STD_DAYS,
) -> pd.DataFrame:
    """The ``inventory_policy`` rows (without run_id) for every forecast series.

    Besides the contract columns the frame keeps ``lead_time_std_days``, ``unit_cost``,
    ``reserved`` and the policy parameters (``min_cover_days`` ...) for callers that need them.
    """
    rd = pd.Timestamp(run_date)
    df = forecasts.groupby(KEY, as_index=False, sort=True)["mean"].mean().rename(columns={"mean": "demand_mean"})
    df["demand_std"] = demand_std(sales, df[KEY], run_date, std_days)
    lt = lead_times[KEY + ["lead_time_days", "lead_time_std_days", "review_period_days"]]
    df = df.merge(lt, on=KEY, how="left")
    df["lead_time_defaulted"] = df["lead_time_days"].isna()
    df["lead_time_days"] = df["lead_time_days"].fillna(float(default_lead_time_days))
    df["lead_time_std_days"] = df["lead_time_std_days"].fillna(float(default_lead_time_std_days))
    df["review_period_days"] = df["review_period_days"].fillna(float(default_review_period_days))
    df = df.merge(items[["sku", "category", "unit_cost"]], on="sku", how="left")
    df = df.merge(abc_classes(sales, items, run_date, abc_cutoffs)[["sku", "abc_class"]], on="sku", how="left")
    df["abc_class"] = df["abc_class"].fillna("C")
    df = pd.concat([df, lookup_policy(df, policies)], axis=1)
    tot = stock_totals(stock, run_date)
    df = df.merge(tot, on=KEY, how="left")
    for c in ("on_hand", "in_transit", "reserved", "available"):
        df[c] = df[c].fillna(0.0)

    mu, sd = df["demand_mean"].to_numpy(float), df["demand_std"].to_numpy(float)
    lead, lead_sd, review = (
        df[c].to_numpy(float) for c in ("lead_time_days", "lead_time_std_days", "review_period_days")
    )
    z = norm.ppf(df["service_level"].to_numpy(float))
    df["safety_stock"] = z * np.sqrt((lead + review) * sd**2 + mu**2 * lead_sd**2)
    df["reorder_point"] = mu * lead + df["safety_stock"]
    df["order_up_to"] = mu * (lead + review) + df["safety_stock"]
    has = mu > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        cover = np.where(has, df["available"].to_numpy(float) / np.where(has, mu, 1.0), np.nan)
    df["days_of_cover"] = cover
    df["health_band"] = np.select(
        [~has, cover < df["min_cover_days"].to_numpy(float), cover > df["max_cover_days"].to_numpy(float)],
        ["no_demand", "under", "over"],
        default="healthy",
    )
    df["run_date"] = rd
    df["explanation_en"], df["explanation_zh"] = explain.policy_sentences(df)
    return df.reset_index(drop=True)


def policy_stage(ctx: RunContext) -> StageResult:
    """Read forecasts, sales, items, stock, lead_times, policies; write ``inventory_policy``."""
    pc = ctx.cfg.policy
    out = compute_policy(
        ctx.read("forecasts"),
        ctx.read("sales"),
        ctx.read("items"),
        ctx.read("stock"),
        ctx.read("lead_times"),
        ctx.read("policies"),
        ctx.run_date,
        default_lead_time_days=pc.default_lead_time_days,
        default_lead_time_std_days=pc.default_lead_time_std_days,
        default_review_period_days=pc.default_review_period_days,
        abc_cutoffs=pc.abc_cutoffs,
    )
    n = ctx.write("inventory_policy", out.assign(run_id=ctx.run_id))
    defaulted = int(out["lead_time_defaulted"].sum())
    return StageResult(
        stage="policy",
        paths={"inventory_policy": str(ctx.path("inventory_policy"))},
        counts={"inventory_policy": n},
        notes=[f"{defaulted} SKU-location(s) used the default lead time"] if defaulted else [],
    )
