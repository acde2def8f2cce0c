"""Content rules: quantities checked against their own history, not only row counts.

Counting rows cannot see a week of sales whose quantities are all zero, a sales file cut off after
70 % of its SKUs, or one sale of 10^15 units. These rules look at the values:

- **spike** (row level, sales): a row whose quantity is more than ``spike_factor`` times the median
  positive quantity of its own SKU-location series (at least ``spike_floor`` units) is set aside
  with the series median in its reason. One typo of 10^15 never reaches the forecast.
- **day_volume** (table level, sales): each of the last ``check_days`` days of the window that has
  rows (a day without any is the freshness and missing-day rules' finding), summed over the company, against the median daily total of the ``baseline_days`` before them: below
  ``day_low`` times it (a collapse: zeros, a cut-off file) or above ``day_high`` times it (a spike)
  stops the run, naming the days.
- **sku_vanished** (table level, sales): SKUs that sold on at least ``regular_share`` of the
  baseline days and sold nothing at all in the check days. A few are a delisting (reported,
  the run goes on); more than ``max_vanished_share`` of the regular sellers is a broken extract.
- **sku_count** (table level, sales): the number of SKUs with any sale in the window against the
  trailing median of the published runs (+-``sku_band``): a file missing a third of its SKUs.

The functions are pure (frames in, results out); :mod:`pipelines.validate` calls them and turns
their outcome into dq results, quarantine rows and a :class:`~pipelines.validate.ValidationStop`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Outcome:
    """One table-level content rule: failing count, the sentence for dq_results, the observed value
    and example rows (None when it passed)."""

    rule: str
    failing: int
    observed: str
    value: float | None
    examples: pd.DataFrame | None


def spike_mask(sales: pd.DataFrame, factor: float, floor: float) -> tuple[np.ndarray, np.ndarray]:
    """Rows whose quantity exceeds ``factor`` x max(median positive quantity of their series, ``floor``).

    Returns (mask, the threshold per row). The median of a series with one huge row is still its
    typical quantity, so the spike cannot hide itself by raising its own baseline.
    """
    if sales.empty:
        return np.zeros(0, dtype=bool), np.zeros(0)
    qty = pd.to_numeric(sales["quantity"], errors="coerce")
    positive = qty.where(qty > 0)
    med = positive.groupby([sales["sku"], sales["location"]], sort=False, dropna=False).transform("median")
    threshold = factor * np.maximum(med.fillna(0.0).to_numpy(dtype=float), floor)
    return (qty.to_numpy(dtype=float, na_value=0.0) > threshold), threshold


def _daily_totals(sales: pd.DataFrame) -> pd.Series:
    return sales.groupby(sales["date"].dt.normalize(), sort=True)["quantity"].sum()


def day_volume(
    sales: pd.DataFrame, last_day: pd.Timestamp, check_days: int, baseline_days: int, low: float, high: float
) -> Outcome:
    """The company's daily quantity over the last ``check_days`` days against the baseline median."""
    if sales.empty:
        return Outcome("day_volume", 0, "no sales to compare", None, None)
    totals = _daily_totals(sales)
    first_check = last_day - pd.Timedelta(days=check_days - 1)
    # a day without any row is the freshness and missing-day rules' finding; here: days that have rows
    check = totals[(totals.index >= first_check) & (totals.index <= last_day)]
    if check.empty:
        return Outcome("day_volume", 0, f"no sales rows from {first_check:%Y-%m-%d} to {last_day:%Y-%m-%d}", None, None)
    base = totals[(totals.index < first_check) & (totals.index >= first_check - pd.Timedelta(days=baseline_days))]
    if len(base) < max(7, baseline_days // 2):
        return Outcome(
            "day_volume",
            0,
            f"{len(base)} baseline day(s) before {first_check:%Y-%m-%d}: too few to compare",
            None,
            None,
        )
    med = float(base.median())
    if med <= 0:
        return Outcome("day_volume", 0, "the baseline days sold nothing: nothing to compare against", 0.0, None)
    ratio = check / med
    bad = ratio[(ratio < low) | (ratio > high)]
    text = (
        f"daily quantity {first_check:%Y-%m-%d} to {last_day:%Y-%m-%d} between {check.min():g} and {check.max():g};"
        f" median of the {len(base)} day(s) before: {med:g}; allowed {low:g}x to {high:g}x"
    )
    if len(bad):
        text += "; outside: " + ", ".join(f"{d:%Y-%m-%d} ({check[d]:g}, {r:.2f}x)" for d, r in bad.items())
    examples = (
        pd.DataFrame(
            {
                "date": bad.index.strftime("%Y-%m-%d"),
                "quantity": check[bad.index].to_numpy(),
                "baseline_median": med,
                "ratio": bad.round(4).to_numpy(),
            }
        )
        if len(bad)
        else None
    )
    return Outcome("day_volume", len(bad), text, float(ratio.min()), examples)


def vanished_skus(
    sales: pd.DataFrame,
    last_day: pd.Timestamp,
    check_days: int,
    baseline_days: int,
    regular_share: float,
    max_share: float,
) -> Outcome:
    """Regular sellers (sold on >= ``regular_share`` of the baseline days) with no sale in the check days."""
    if sales.empty:
        return Outcome("sku_vanished", 0, "no sales", None, None)
    first_check = last_day - pd.Timedelta(days=check_days - 1)
    first_base = first_check - pd.Timedelta(days=baseline_days)
    day = sales["date"].dt.normalize()
    selling = sales[sales["quantity"] > 0]
    sday = day[selling.index]
    in_base = selling[(sday >= first_base) & (sday < first_check)]
    base_days = in_base.groupby("sku")["date"].nunique()
    regular = base_days[base_days >= regular_share * baseline_days].index
    if len(regular) == 0:
        return Outcome("sku_vanished", 0, "no SKU sells on most days: nothing to compare", 0.0, None)
    recent = set(selling.loc[(sday >= first_check) & (sday <= last_day), "sku"])
    gone = sorted(set(regular) - recent)
    share = len(gone) / len(regular)
    failing = int(share > max_share)
    text = (
        f"{len(gone)} of {len(regular)} SKU(s) that sold on at least {regular_share:.0%} of the {baseline_days} days"
        f" before {first_check:%Y-%m-%d} sold nothing from {first_check:%Y-%m-%d} to {last_day:%Y-%m-%d}"
        f" ({share:.0%}; more than {max_share:.0%} stops the run)"
    )
    if gone:
        text += ": " + ", ".join(gone[:10]) + (" ..." if len(gone) > 10 else "")
    examples = pd.DataFrame({"sku": gone, "days_sold_in_baseline": base_days[gone].to_numpy()}) if failing else None
    return Outcome("sku_vanished", len(gone) if failing else 0, text, share, examples)


def sku_count(sales: pd.DataFrame, history: pd.Series, band: float) -> Outcome:
    """SKUs with any sale in the window against the trailing median of published runs (``history``)."""
    n = int(sales.loc[sales["quantity"] > 0, "sku"].nunique()) if len(sales) else 0
    if history.empty:
        return Outcome("sku_count", 0, f"{n} SKU(s) sold in the window; no published history yet", float(n), None)
    med = float(history.median())
    lo, hi = med * (1 - band), med * (1 + band)
    failing = int(med > 0 and not lo <= n <= hi)
    text = (
        f"{n} SKU(s) sold in the window; trailing median {med:g} over {len(history)} published run(s);"
        f" allowed {lo:.0f} to {hi:.0f} (+-{band:.0%})"
    )
    examples = pd.DataFrame({"run_date": history.index.astype(str), "skus": history.to_numpy()}) if failing else None
    return Outcome("sku_count", failing, text, float(n), examples)
