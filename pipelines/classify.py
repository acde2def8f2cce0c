"""ABC classes: a SKU's share of the value sold, network-wide and within its location.

Shared by the policy stage and the shards stage (which classifies the whole panel once, so that a
policy shard, seeing only its own rows, gets the same classes as an unsharded night).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import numpy as np
import pandas as pd

from pipelines.frames import KEY

#: days of sales the classes are measured on
ABC_DAYS = 365


def abc_rank(value: np.ndarray, group: np.ndarray, cutoffs: Sequence[float]) -> np.ndarray:
    """ABC class of each value within its group (cumulative share of the values ranked before it).

    ``group`` holds integer group codes (one group = network-wide); ties broken by position.
    """
    v = np.clip(np.asarray(value, float), 0.0, None)
    g = np.asarray(group, np.int64)
    n = len(v)
    if n == 0:
        return np.array([], dtype=object)
    order = np.lexsort((np.arange(n), -v, g))
    vs, gs = v[order], g[order]
    cum = np.cumsum(vs)
    starts = np.r_[True, gs[1:] != gs[:-1]]
    grp_start_idx = np.maximum.accumulate(np.where(starts, np.arange(n), 0))
    base = np.where(grp_start_idx > 0, cum[grp_start_idx - 1], 0.0)
    within = cum - base
    total = np.zeros(g.max() + 1 if n else 0)
    np.add.at(total, gs, vs)
    tot = total[gs]
    with np.errstate(divide="ignore", invalid="ignore"):
        before = np.where(tot > 0, (within - vs) / tot, 1.0)
    cls = np.where(vs <= 0, "C", np.where(before < cutoffs[0], "A", np.where(before < cutoffs[1], "B", "C")))
    out = np.empty(n, dtype=object)
    out[order] = cls
    return out


def abc_classes(
    sales: pd.DataFrame,
    items: pd.DataFrame,
    run_date: date,
    cutoffs: Sequence[float] = (0.80, 0.95),
    days: int = ABC_DAYS,
) -> pd.DataFrame:
    """Network-wide ABC class of every active SKU (see module doc): sku, abc_class, abc_value."""
    rd = pd.Timestamp(run_date)
    recent = sales[(sales["date"] >= rd - pd.Timedelta(days=int(days))) & (sales["date"] < rd)]
    units = recent.groupby("sku", sort=False)["quantity"].sum().rename("units")
    active = items.loc[items["active"].astype(bool), ["sku", "unit_cost", "abc_override"]]
    df = active.merge(units, left_on="sku", right_index=True, how="left")
    df["abc_value"] = (df["units"].fillna(0.0) * df["unit_cost"]).clip(lower=0.0)
    computed = abc_rank(df["abc_value"].to_numpy(float), np.zeros(len(df), np.int64), cutoffs)
    df["abc_class"] = _override(df["abc_override"], computed)
    return df[["sku", "abc_class", "abc_value"]].sort_values("sku").reset_index(drop=True)


def _override(override: pd.Series, computed: np.ndarray) -> np.ndarray:
    o = override.astype("str").str.strip().str.upper()
    valid = override.notna() & o.isin(["A", "B", "C"])
    return np.where(valid.to_numpy(bool), o.to_numpy(object), computed)


def location_abc(
    sales: pd.DataFrame, keys: pd.DataFrame, items: pd.DataFrame, run_date: date, cutoffs: Sequence[float], days: int
) -> np.ndarray:
    """ABC class of each SKU x location in ``keys`` within its location (override wins)."""
    rd = pd.Timestamp(run_date)
    recent = sales[(sales["date"] >= rd - pd.Timedelta(days=int(days))) & (sales["date"] < rd)]
    units = recent.groupby(KEY, sort=False)["quantity"].sum().rename("units").reset_index()
    df = (
        keys[KEY]
        .merge(units, on=KEY, how="left")
        .merge(items[["sku", "unit_cost", "abc_override"]], on="sku", how="left")
    )
    value = (df["units"].fillna(0.0) * df["unit_cost"].fillna(0.0)).to_numpy(float)
    group = pd.factorize(df["location"])[0]
    return _override(df["abc_override"], abc_rank(value, group, cutoffs))
