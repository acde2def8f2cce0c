"""What every transfer method shares: the output frame, whole packs, the approval tier, the
near-expiry units a donor may give, and the published rows with their explanations."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import numpy as np
import pandas as pd

from pipelines import contract, explain
from pipelines.frames import KEY, approval_tier
from pipelines.transfers.demand import EPS

OUTPUT_COLUMNS = [c for c in contract.TRANSFERS.names if c != "run_id"]


def empty() -> pd.DataFrame:
    """No transfer, with the output columns."""
    return contract.empty("transfers")[OUTPUT_COLUMNS]


def floor_packs(units: np.ndarray, pack: np.ndarray) -> np.ndarray:
    """``units`` rounded down to whole packs (never below 0)."""
    return np.floor(np.maximum(units, 0.0) / pack + EPS) * pack


def without(c: pd.DataFrame, exclude: pd.DataFrame | None) -> pd.DataFrame:
    """Candidates minus the (sku, from_location, to_location) in ``exclude`` (rejected by a planner)."""
    if exclude is None or exclude.empty or c.empty:
        return c
    key = ["sku", "from_location", "to_location"]
    hit = c[key].merge(exclude[key].drop_duplicates().assign(_x=True), on=key, how="left")["_x"].notna().to_numpy()
    return c[~hit]


def expiring_units(stock: pd.DataFrame | None, policy_df: pd.DataFrame, run_date: date) -> pd.DataFrame:
    """Units per (sku, location) that will expire unsold, selling first-expiry-first-out at the
    forecast rate, and the earliest expiry date among them (days from the run date).

    Per series, lots sorted by expiry: with C_i the cumulative units through lot i and S_i the
    demand until lot i expires (mu x days to expiry), the units wasted through lot i are
    max(0, max_{j<=i}(C_j - S_j)) (FEFO queue). Lots already expired count as wasted.
    """
    cols = KEY + ["expiring_units", "expiry_days"]
    if stock is None or stock.empty or "expiry_date" not in stock.columns:
        return pd.DataFrame(columns=cols)
    rd = pd.Timestamp(run_date)
    snap = stock[stock["snapshot_date"] <= rd]
    snap = snap[snap["snapshot_date"] == snap["snapshot_date"].max()]
    lots = snap[snap["expiry_date"].notna() & (snap["on_hand"] - snap["reserved"] > 0)]
    if lots.empty:
        return pd.DataFrame(columns=cols)
    lots = lots.merge(policy_df[KEY + ["demand_mean"]], on=KEY, how="inner")
    lots = lots.sort_values(KEY + ["expiry_date", "lot"], kind="mergesort").reset_index(drop=True)
    days = (lots["expiry_date"] - rd).dt.days.to_numpy(float)
    units = (lots["on_hand"] - lots["reserved"]).to_numpy(float)
    lots["_c"] = pd.Series(units).groupby([lots["sku"], lots["location"]], sort=False).cumsum().to_numpy()
    lots["_gap"] = lots["_c"] - lots["demand_mean"].to_numpy(float) * np.maximum(days, 0.0)
    lots["_w"] = np.maximum(lots.groupby(KEY, sort=False)["_gap"].cummax(), 0.0)
    lots["_days"] = days
    lots["_new"] = lots.groupby(KEY, sort=False)["_w"].diff().fillna(lots["_w"])
    g = lots.groupby(KEY, sort=False)
    out = g["_w"].max().rename("expiring_units").to_frame()
    first = lots[lots["_new"] > EPS].groupby(KEY, sort=False)["_days"].min().rename("expiry_days")
    out = out.join(first).reset_index()
    return out[out["expiring_units"] > EPS][cols].reset_index(drop=True)


def publish(
    t: pd.DataFrame,
    run_date: date,
    coverage_days: int,
    method: str,
    policies: pd.DataFrame | None,
    planner_categories: Sequence[str],
) -> pd.DataFrame:
    rd = pd.Timestamp(run_date)
    t = t.copy()
    t["run_date"] = rd
    t["packs"] = np.rint(t["quantity"] / t["pack_size"]).astype("int64")
    t["receiver_stockout_date"] = rd + pd.to_timedelta(t["stockout_days"].astype("int64"), unit="D")
    t["receiver_units_short"] = t["units_short"]
    with np.errstate(divide="ignore", invalid="ignore"):
        t["donor_days_of_cover"] = np.where(
            t["donor_mu"] > 0, t["donor_available"] / t["donor_mu"].where(t["donor_mu"] > 0, 1.0), np.nan
        )
    t["arrival_date"] = rd + pd.to_timedelta(t["transit_days"].astype("int64"), unit="D")
    t["approval_tier"] = approval_tier(t, policies, planner_categories)
    t["method"] = method
    t["explanation_en"], t["explanation_zh"] = explain.transfer_sentences(t, int(coverage_days))
    return t[OUTPUT_COLUMNS].sort_values(["sku", "from_location", "to_location"]).reset_index(drop=True)
