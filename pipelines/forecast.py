"""Forecast stage: daily demand per SKU and location, with quantiles, and its backtest accuracy.

Current method (walking skeleton, replaced by per-series model selection in a later issue):

- **Series**: every *active* SKU that has a stock row in the snapshot or any sale in the history
  at a location. An item not launched yet is simply a series without sales.
- **Mean**: the moving average of daily units sold (``sales.quantity``; returns are not demand)
  over the last ``window_days`` before the run date (sales reach ``run_date - 1``), a day without
  a sales row counting as 0, held flat for horizons ``1..horizon_days`` (horizon 1 = the run date).
  Days before the first date of the whole sales history are *not observed*: a history shorter
  than the window is averaged over the days it has. ``model`` is ``moving_average``, or
  ``zero_no_sales`` when the series sold nothing in the window (its forecast is 0).
- **Quantiles** p50/p90/p95/p99 are those of *daily* demand under a Poisson distribution with the
  moving-average mean (``scipy.stats.poisson.ppf``), so they are whole units.
- **Accuracy** (``forecast_accuracy``): the same method is fitted on the ``window_days`` before the
  last ``holdout_days`` and compared with what sold in the holdout. ``actual`` and ``forecast``
  are holdout totals; ``wape`` = sum over the holdout days of |forecast - actual| / total actual
  (daily errors, as the contract defines it); ``bias`` = (forecast - actual) / actual; ``mase`` =
  mean daily absolute error / the in-sample naive-1 MAE of the fit window. Each is null where its
  denominator is zero. No row is written when the history does not reach before the holdout.

Limits: flat forecasts (no trend, seasonality, promotions, price effects); a SKU launched during
the window is averaged over the whole window (under-forecast at first); Poisson quantiles are
too narrow for lumpy demand; one holdout, not a rolling-origin backtest.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from models.baselines import QUANTILES, MovingAverageForecaster, naive_mae, poisson_quantiles
from pipelines import contract
from pipelines.context import RunContext, StageResult

KEY = ["sku", "location"]
QUANTILE_COLUMNS = ["p50", "p90", "p95", "p99"]


# --------------------------------------------------------------------------------------------
# Shared frame helpers (used by the later stages too)
# --------------------------------------------------------------------------------------------


def latest_snapshot(stock: pd.DataFrame, run_date: date) -> pd.DataFrame:
    """The stock rows of the latest snapshot dated on or before ``run_date`` (one date for all)."""
    rd = pd.Timestamp(run_date)
    valid = stock[stock["snapshot_date"] <= rd]
    if valid.empty:
        return valid.reset_index(drop=True)
    return valid[valid["snapshot_date"] == valid["snapshot_date"].max()].reset_index(drop=True)


def stock_totals(stock: pd.DataFrame, run_date: date) -> pd.DataFrame:
    """On hand, in transit and reserved summed over lots per SKU and location, plus ``available``
    (= on hand + in transit - reserved), from the latest snapshot."""
    snap = latest_snapshot(stock, run_date)
    tot = snap.groupby(KEY, as_index=False, sort=True)[["on_hand", "in_transit", "reserved"]].sum()
    tot["available"] = tot["on_hand"] + tot["in_transit"] - tot["reserved"]
    return tot


def history_start(sales: pd.DataFrame) -> pd.Timestamp | None:
    """First date of the sales history (None when there is no sale row at all)."""
    if sales.empty:
        return None
    return pd.Timestamp(sales["date"].min())


def series_keys(sales: pd.DataFrame, items: pd.DataFrame, stock: pd.DataFrame, run_date: date) -> pd.DataFrame:
    """SKU x location pairs to forecast: active SKUs with stock in the snapshot or any sale before
    the run date. Sorted by sku, location, index 0..n-1."""
    rd = pd.Timestamp(run_date)
    sold = sales.loc[sales["date"] < rd, KEY]
    held = latest_snapshot(stock, run_date)[KEY]
    pairs = pd.concat([sold, held], ignore_index=True).drop_duplicates()
    active = items.loc[items["active"].astype(bool), ["sku"]]
    keys = pairs.merge(active, on="sku", how="inner")
    return keys.sort_values(KEY, kind="mergesort").reset_index(drop=True).astype({"sku": "str", "location": "str"})


def daily_matrix(sales: pd.DataFrame, keys: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp) -> np.ndarray:
    """Dense ``[len(keys), days]`` matrix of units sold on each day in ``[start, end)``, row i for
    ``keys.iloc[i]``; a day without a sales row is 0. Zero columns when ``start >= end``."""
    start, end = pd.Timestamp(start), pd.Timestamp(end)
    n_days = max(0, (end - start).days)
    y = np.zeros((len(keys), n_days))
    if n_days == 0 or sales.empty or keys.empty:
        return y
    window = sales.loc[(sales["date"] >= start) & (sales["date"] < end), KEY + ["date", "quantity"]]
    rows = keys[KEY].reset_index(drop=True).assign(_row=np.arange(len(keys)))
    m = window.merge(rows, on=KEY, how="inner")
    cols = ((m["date"] - start).dt.days).to_numpy(dtype=np.int64)
    np.add.at(y, (m["_row"].to_numpy(dtype=np.int64), cols), m["quantity"].to_numpy(dtype=float))
    return y


def observed_window(sales: pd.DataFrame, end: pd.Timestamp, days: int) -> tuple[pd.Timestamp, pd.Timestamp]:
    """``[start, end)`` covering the last ``days`` days before ``end`` that the history reaches."""
    end = pd.Timestamp(end)
    start = end - pd.Timedelta(days=int(days))
    first = history_start(sales)
    if first is None:
        return end, end
    return min(max(start, first), end), end


# --------------------------------------------------------------------------------------------
# Pure functions
# --------------------------------------------------------------------------------------------


def forecast_moving_average(
    sales: pd.DataFrame,
    items: pd.DataFrame,
    stock: pd.DataFrame,
    run_date: date,
    horizon_days: int,
    window_days: int,
) -> pd.DataFrame:
    """Daily forecasts (``forecasts`` columns without run_id) for horizons 1..``horizon_days``."""
    rd = pd.Timestamp(run_date)
    keys = series_keys(sales, items, stock, run_date)
    start, end = observed_window(sales, rd, window_days)
    y = daily_matrix(sales, keys, start, end)
    level = MovingAverageForecaster(window=window_days).fit(y).level_
    sold = y.sum(axis=1) > 0
    q = poisson_quantiles(level, QUANTILES)
    h = int(horizon_days)
    n = len(keys)
    horizon = np.tile(np.arange(1, h + 1, dtype=np.int64), n)
    out = pd.DataFrame(
        {
            "run_date": rd,
            "sku": np.repeat(keys["sku"].to_numpy(), h),
            "location": np.repeat(keys["location"].to_numpy(), h),
            "target_date": rd + pd.to_timedelta(horizon - 1, unit="D"),
            "horizon": horizon,
            "mean": np.repeat(level, h),
            **{name: np.repeat(q[:, i], h) for i, name in enumerate(QUANTILE_COLUMNS)},
            "model": np.repeat(np.where(sold, "moving_average", "zero_no_sales"), h),
        }
    )
    return out


def forecast_accuracy(
    sales: pd.DataFrame,
    items: pd.DataFrame,
    stock: pd.DataFrame,
    run_date: date,
    window_days: int,
    holdout_days: int,
) -> pd.DataFrame:
    """Backtest of the moving average on the last ``holdout_days`` (``forecast_accuracy`` columns
    without run_id); empty when the history does not reach the day before the holdout."""
    rd = pd.Timestamp(run_date)
    cols = [c for c in contract.FORECAST_ACCURACY.names if c != "run_id"]
    first = history_start(sales)
    hold_start = rd - pd.Timedelta(days=int(holdout_days))
    if first is None or first >= hold_start:
        return pd.DataFrame(
            {c: pd.Series(dtype=contract.pandas_dtype(contract.FORECAST_ACCURACY.column(c))) for c in cols}
        )
    keys = series_keys(sales, items, stock, run_date)
    fit_start, _ = observed_window(sales, hold_start, window_days)
    y_fit = daily_matrix(sales, keys, fit_start, hold_start)
    y_hold = daily_matrix(sales, keys, hold_start, rd)
    level = MovingAverageForecaster(window=window_days).fit(y_fit).level_
    abs_err = np.abs(y_hold - level[:, None])
    actual = y_hold.sum(axis=1)
    forecast = level * y_hold.shape[1]
    sold = actual > 0
    scale = naive_mae(y_fit)
    mae = abs_err.mean(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        wape = np.where(sold, abs_err.sum(axis=1) / np.where(sold, actual, 1.0), np.nan)
        bias = np.where(sold, (forecast - actual) / np.where(sold, actual, 1.0), np.nan)
        ok = np.isfinite(scale) & (scale > 0)
        mase = np.where(ok, mae / np.where(ok, scale, 1.0), np.nan)
    return pd.DataFrame(
        {
            "run_date": rd,
            "sku": keys["sku"].to_numpy(),
            "location": keys["location"].to_numpy(),
            "model": np.where(y_fit.sum(axis=1) > 0, "moving_average", "zero_no_sales"),
            "window_days": int(holdout_days),
            "actual": actual,
            "forecast": forecast,
            "wape": wape,
            "bias": bias,
            "mase": mase,
        }
    )[cols]


# --------------------------------------------------------------------------------------------
# Stage
# --------------------------------------------------------------------------------------------


def forecast_stage(ctx: RunContext) -> StageResult:
    """Read sales, items and stock from staging; write ``forecasts`` and ``forecast_accuracy``."""
    fc = ctx.cfg.forecast
    sales, items, stock = ctx.read("sales"), ctx.read("items"), ctx.read("stock")
    run_id = ctx.run_id
    forecasts = forecast_moving_average(sales, items, stock, ctx.run_date, fc.horizon_days, fc.window_days)
    accuracy = forecast_accuracy(sales, items, stock, ctx.run_date, fc.window_days, fc.holdout_days)
    counts = {
        "forecasts": ctx.write("forecasts", forecasts.assign(run_id=run_id)),
        "forecast_accuracy": ctx.write("forecast_accuracy", accuracy.assign(run_id=run_id)),
    }
    return StageResult(
        stage="forecast",
        paths={name: str(ctx.path(name)) for name in counts},
        counts=counts,
        notes=[f"moving average over {fc.window_days} days, {fc.horizon_days}-day horizon, Poisson quantiles"],
    )


__all__ = [
    "daily_matrix",
    "forecast_accuracy",
    "forecast_moving_average",
    "forecast_stage",
    "latest_snapshot",
    "series_keys",
    "stock_totals",
]
