"""Forecast stage: daily demand per SKU and location, with quantiles, and its backtest accuracy.

Method ``selected`` (default, ``forecast.method``): per-series model selection by rolling-origin
backtest among seasonal naive, moving average, SES, SBA, TSB and a global gradient-boosting model
(``models.backtest.ForecastSelector``), trained on the history before the run date with each
series' days before its first sale left out (not listed yet) and Chinese holiday / festival
calendar features (``models.calendar``). The fitted model is a versioned artifact under
``model_dir`` (``models.artifacts``): the nightly stage predicts with the *current* version,
refitting the cheap statistical candidates on the newest history and letting the stored global
model predict from it, and trains + promotes a version itself only when none exists (or its
horizon differs); the weekly ``tiaobo_retrain`` DAG (:func:`retrain_stage`) trains a new version and
promotes it only if its WAPE is not worse than the current version's *on the same, newest backtest
window* (the last ``horizon_days`` before the run date; the current version re-scored there,
predicting from the history before it, never its stored score from an older window, so an old
lucky score cannot freeze the lifecycle). A version whose newest window cannot score it (history
no longer than the horizon, no series with sales before the window, fewer scored series-days than
one horizon, or no sale in them: a first run on one day of history) is never made current: the
nightly stage uses it for that run only and trains again the next night, and a retrain is refused
with that reason (:func:`score_newest_window`, :func:`promotion_decision`). ``model`` names the model used per series
(``zero_no_sales`` when a series never sold). Quantiles are negative binomial with the forecast
mean and the variance-to-mean ratio of the selected model's backtest residuals (whole units).
The ``forecast_accuracy`` rows are the current model's scores on its most recent backtest fold
(``window_days`` = observed days in it).

Lead-time demand (``lead_time_demand``, both methods): per series, demand summed over its own
replenishment lead time, resolved as the policy stage does (the ``lead_times`` row, else
``policy.default_lead_time_days`` with ``lead_time_defaulted`` true), rounded up to whole days.
``mean`` = the daily forecast means summed over horizons ``1..L`` (a lead time beyond the horizon
holds the last day's rate flat); p50/p90/p95/p99 are negative binomial with that mean and the
variance-to-mean ratio of *lead-time sums* (whole units). ``selected``: that ratio is measured at
training on the selected model's backtest sums over blocks of the series' own lead time
(``ForecastSelector.lead_time_dispersion``, once per distinct lead time) and stored per series in
the model; see :func:`stored_lead_time_dispersion` for new series and changed lead times.
``moving_average``: a sum of independent Poisson days is Poisson (ratio 1), as narrow as its
daily quantiles. A lead time of 0 days gives 0.

Method ``moving_average`` (the walking skeleton, kept for comparison):

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

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from models import artifacts
from models.backtest import nb_quantiles
from models.baselines import QUANTILES, MovingAverageForecaster, naive_scale, poisson_quantiles
from models.calendar import CHINA_COLUMNS, china_calendar
from models.nightly import NightlyForecaster
from pipelines import contract, explain
from pipelines.config import Config, ForecastConfig
from pipelines.context import RunContext, StageResult
from pipelines.frames import KEY, history_start, series_keys

QUANTILE_COLUMNS = ["p50", "p90", "p95", "p99"]


class ForecastError(RuntimeError):
    """The forecast cannot be made from the staged data; the message names the table and what is missing."""


def check_trainable(sales: pd.DataFrame, run_date: date, history_days: int, n_series: int) -> None:
    """Refuse a history in which no series ever sold (every quantity 0 or empty).

    Not a zero forecast: a whole history without one sale is a broken feed far more often than a
    network that sells nothing (a quantity column mapped wrong, a unit of measure, an empty export),
    and forecasts of 0 everywhere would publish zero safety stocks and reorder points for every
    SKU-location. A series that never sold, beside others that did, keeps its per-series zero
    forecast (``zero_no_sales``).
    """
    start, end = history_window(sales, pd.Timestamp(run_date), history_days)
    in_window = sales[(sales["date"] >= start) & (sales["date"] < end)]
    if bool((pd.to_numeric(in_window["quantity"], errors="coerce") > 0).any()):
        return
    window = f"{start.date().isoformat()}..{(end - pd.Timedelta(days=1)).date().isoformat()}"
    raise ForecastError(
        f"forecast: table sales has no sale (quantity > 0) for any of the {n_series} series in the history"
        f" window {window} ({len(in_window)} row(s), every quantity 0 or empty): there is no demand to train a"
        " model on. Check the sales extraction (the quantity column of the profile or source.tables.sales /"
        " source.files.sales); nothing was forecast, so nothing is published from this run."
    )


def daily_matrix(
    sales: pd.DataFrame, keys: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp, value: str = "quantity"
) -> np.ndarray:
    """Dense ``[len(keys), days]`` matrix of ``value`` (units sold by default) summed per day in
    ``[start, end)``, row i for ``keys.iloc[i]``; a day without a sales row is 0. Zero columns when
    ``start >= end``."""
    start, end = pd.Timestamp(start), pd.Timestamp(end)
    n_days = max(0, (end - start).days)
    y = np.zeros((len(keys), n_days))
    if n_days == 0 or sales.empty or keys.empty:
        return y
    window = sales.loc[(sales["date"] >= start) & (sales["date"] < end), KEY + ["date", value]]
    rows = keys[KEY].reset_index(drop=True).assign(_row=np.arange(len(keys)))
    m = window.merge(rows, on=KEY, how="inner")
    cols = ((m["date"] - start).dt.days).to_numpy(dtype=np.int64)
    np.add.at(y, (m["_row"].to_numpy(dtype=np.int64), cols), m[value].to_numpy(dtype=float))
    return y


def price_ratio_matrix(
    sales: pd.DataFrame,
    items: pd.DataFrame,
    keys: pd.DataFrame,
    start: pd.Timestamp,
    end: pd.Timestamp,
    units: np.ndarray | None = None,
) -> np.ndarray:
    """The global model's price covariate ``[len(keys), days, 1]``: the realised price of each day
    (revenue / units) over the item's list price, so a promotion shows as a ratio below 1.
    ``NaN`` on days without a sale (the price is unknown then) and for items without a positive
    list price; only past values are used as features (``models.gbm.covariate_features``).
    ``units``: the daily units matrix of the same window when the caller has it (``NaN`` counts as
    no sale), so the sales are not aggregated twice."""
    if units is None:
        units = daily_matrix(sales, keys, start, end)
    revenue = daily_matrix(sales, keys, start, end, value="revenue")
    price = keys.merge(items[["sku", "unit_price"]].drop_duplicates("sku"), on="sku", how="left")["unit_price"]
    list_price = price.to_numpy(dtype=float)[:, None]
    ok = (np.nan_to_num(units) > 0) & (list_price > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(ok, revenue / np.where(ok, units, 1.0) / np.where(list_price > 0, list_price, 1.0), np.nan)
    return ratio[:, :, None]


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
    scale = naive_scale(y_fit)
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


def model_dir(cfg: Config, shard_key: str | None = None) -> Path:
    """Folder of the versioned model artifacts (``forecast.model_dir``, default ``<staging>/../models``);
    with ``forecast.model_per_shard``, a shard's own model lives in ``shards/<shard key>`` under it."""
    configured = cfg.forecast.model_dir
    root = Path(configured) if configured is not None else Path(cfg.staging_dir).parent / "models"
    return root / "shards" / shard_key if shard_key else root


def _root(ctx: RunContext) -> Path:
    """The model folder of this stage run: the shard's own with ``forecast.model_per_shard``."""
    per_shard = ctx.cfg.forecast.model_per_shard and ctx.shard is not None
    return model_dir(ctx.cfg, ctx.shard.key if per_shard else None)


def history_window(sales: pd.DataFrame, run_date: date, history_days: int) -> tuple[pd.Timestamp, pd.Timestamp]:
    """``[start, run_date)`` of the model's history: the last ``history_days`` days the sales reach,
    its start moved back to a Monday so that the weekly position of every column is fixed."""
    start, end = observed_window(sales, pd.Timestamp(run_date), history_days)
    return start - pd.Timedelta(days=int(start.weekday())), end


def history_matrix(sales: pd.DataFrame, keys: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp) -> np.ndarray:
    """Daily units ``[len(keys), days]`` over ``[start, end)`` with ``NaN`` before each series' first
    sale (not listed yet: a new SKU's launch is not read as weeks of zero demand); 0 on later days
    without a sale; all ``NaN`` for a series that never sold."""
    y = daily_matrix(sales, keys, start, end)
    if y.shape[1] == 0:
        return y
    sold = y > 0
    first = np.where(sold.any(axis=1), np.argmax(sold, axis=1), y.shape[1])
    return np.where(np.arange(y.shape[1])[None, :] < first[:, None], np.nan, y)


def _static_codes(
    keys: pd.DataFrame, items: pd.DataFrame, maps: dict[str, list[str]] | None
) -> tuple[np.ndarray, dict[str, list[str]]]:
    """Integer codes of category and location per series (``NaN`` when unseen in training); a
    field with more than 250 values is left out (gradient boosting's categorical limit)."""
    frame = keys.merge(items[["sku", "category"]].drop_duplicates("sku"), on="sku", how="left")
    fields = {"category": frame["category"].fillna("").astype(str), "location": frame["location"].astype(str)}
    if maps is None:
        maps = {k: sorted(v.unique().tolist()) for k, v in fields.items() if v.nunique() <= 250}
    cols = []
    for k, values in maps.items():
        lookup = pd.Series(np.arange(len(values), dtype=float), index=values)
        cols.append(fields[k].map(lookup).to_numpy(dtype=float))
    return (np.column_stack(cols) if cols else np.zeros((len(keys), 0))), maps


#: the groups of the pooled-level features (:func:`_group_codes`)
N_GROUPS = 3


def _group_codes(keys: pd.DataFrame, items: pd.DataFrame) -> np.ndarray:
    """Grouping keys of the global model's pooled-level features: the SKU across locations, the
    location, and the category at the location (codes of this run only: the features are group
    means, so codes need not be stable between runs)."""
    frame = keys.merge(items[["sku", "category"]].drop_duplicates("sku"), on="sku", how="left")
    cat_loc = frame["category"].fillna("").astype(str) + "\x1f" + frame["location"].astype(str)
    cols = [pd.factorize(frame["sku"].astype(str))[0], pd.factorize(frame["location"].astype(str))[0]]
    cols.append(pd.factorize(cat_loc)[0])
    return np.column_stack(cols).astype(np.int64) if len(frame) else np.zeros((0, N_GROUPS), dtype=np.int64)


def _calendar(start: pd.Timestamp, end: pd.Timestamp, horizon: int) -> np.ndarray:
    cal = china_calendar(start, end + pd.Timedelta(days=int(horizon) - 1))
    return cal.to_numpy(dtype=float)


def _gbm_inputs(
    sales: pd.DataFrame,
    items: pd.DataFrame,
    keys: pd.DataFrame,
    start: pd.Timestamp,
    end: pd.Timestamp,
    y: np.ndarray,
    horizon: int,
    maps: dict[str, list[str]] | None,
) -> tuple[dict[str, np.ndarray], dict[str, list[str]]]:
    """What the global model is fitted on and predicts from besides the history ``y``, built the
    same way at training and at prediction: calendar, static codes (with ``maps`` from training,
    or new ones), pooled-level groups and the price covariate. Returns the keyword arguments and
    the code maps."""
    static, maps = _static_codes(keys, items, maps)
    inputs = {
        "calendar": _calendar(start, end, horizon),
        "static": static,
        "groups": _group_codes(keys, items),
        "covariates": price_ratio_matrix(sales, items, keys, start, end, units=y),
    }
    return inputs, maps


def _accuracy_frame(
    run_date: pd.Timestamp, keys: pd.DataFrame, model: np.ndarray, actual: np.ndarray, fc: np.ndarray, scale: np.ndarray
) -> pd.DataFrame:
    obs = ~np.isnan(actual)
    a = np.where(obs, actual, 0.0)
    f = np.where(obs, fc, 0.0)
    tot_a, tot_f = a.sum(axis=1), f.sum(axis=1)
    abs_err = np.abs(a - f).sum(axis=1)
    n = obs.sum(axis=1)
    sold = tot_a > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        wape = np.where(sold, abs_err / np.where(sold, tot_a, 1.0), np.nan)
        bias = np.where(sold, (tot_f - tot_a) / np.where(sold, tot_a, 1.0), np.nan)
        ok = np.isfinite(scale) & (scale > 0) & (n > 0)
        mase = np.where(ok, abs_err / np.maximum(n, 1) / np.where(ok, scale, 1.0), np.nan)
    cols = [c for c in contract.FORECAST_ACCURACY.names if c != "run_id"]
    return pd.DataFrame(
        {
            "run_date": run_date,
            "sku": keys["sku"].to_numpy(),
            "location": keys["location"].to_numpy(),
            "model": model.astype(str),
            "window_days": n.astype(np.int64),
            "actual": tot_a,
            "forecast": tot_f,
            "wape": wape,
            "bias": bias,
            "mase": mase,
        }
    )[cols]


def series_lead_times(keys: pd.DataFrame, lead_times: pd.DataFrame, default_days: float) -> pd.DataFrame:
    """Each series' lead time in whole days, resolved as the policy stage does: the ``lead_times``
    row of the SKU-location, else ``default_days`` (``policy.default_lead_time_days``, flagged in
    ``lead_time_defaulted``); rounded up (7.2 -> 8; float noise below 1e-6 day ignored).
    Columns sku, location, lead_time_days (int), lead_time_defaulted, in the order of ``keys``."""
    lt = lead_times[KEY + ["lead_time_days"]].astype({"sku": "str", "location": "str"})
    dup = lt.duplicated(KEY, keep=False)
    if dup.any():
        first = lt.loc[dup].iloc[0]
        raise ValueError(
            f"lead_times: {int(dup.sum())} rows repeat a (sku, location) key, e.g. ({first['sku']!r},"
            f" {first['location']!r}); rule: one lead time per SKU-location"
        )
    df = keys[KEY].astype({"sku": "str", "location": "str"}).merge(lt, on=KEY, how="left")
    defaulted = df["lead_time_days"].isna().to_numpy()
    days = df["lead_time_days"].fillna(float(default_days)).to_numpy(dtype=float)
    whole = np.ceil(np.round(days, 6)).astype(np.int64)
    return df[KEY].assign(lead_time_days=whole, lead_time_defaulted=defaulted)


def stored_lead_time_dispersion(model: NightlyForecaster, leads: pd.DataFrame) -> np.ndarray:
    """Lead-time dispersion per series of ``leads`` (sku, location, lead_time_days) from a stored
    model: the series' own value measured at training when its lead time is the one it was trained
    with; otherwise (lead time changed since training) the series' dispersion at
    ``forecast.lead_time_days`` (``phi_lead_time``); for a series new since training, the median
    ``phi_lead_time`` of the trained series (1 = Poisson when the model has none). 1 for a lead
    time of 0 days."""
    series = model.series_
    stored = leads[KEY + ["lead_time_days"]].merge(
        series[KEY + ["lead_time_days", "phi_own_lead_time", "phi_lead_time"]].rename(
            columns={"lead_time_days": "_trained_days"}
        ),
        on=KEY,
        how="left",
    )
    phi = stored["phi_own_lead_time"].where(stored["_trained_days"] == stored["lead_time_days"])
    phi = phi.fillna(stored["phi_lead_time"])
    default = float(np.median(series["phi_lead_time"])) if len(series) else 1.0
    out = phi.fillna(default).to_numpy(dtype=float)
    return np.where(leads["lead_time_days"].to_numpy() >= 1, out, 1.0)


def lead_time_demand(forecasts: pd.DataFrame, leads: pd.DataFrame, dispersion: np.ndarray) -> pd.DataFrame:
    """``lead_time_demand`` rows (without run_id), one per series of ``leads`` (sku, location,
    lead_time_days, lead_time_defaulted; every series must have daily rows in ``forecasts``).

    ``mean`` = sum of the daily ``mean`` over horizons ``1..L``, plus the last horizon's mean times
    the days of ``L`` beyond it; quantiles: :func:`models.backtest.nb_quantiles` with that mean and
    ``dispersion`` (aligned with ``leads``). Vectorised over all rows (bincount, no Python loop)."""
    n = len(leads)
    cols = [c for c in contract.LEAD_TIME_DEMAND.names if c != "run_id"]
    rows = leads[KEY].reset_index(drop=True).assign(_row=np.arange(n))
    fc = forecasts[["run_date", *KEY, "horizon", "mean", "model"]].merge(rows, on=KEY, how="inner")
    row = fc["_row"].to_numpy(dtype=np.int64)
    missing = np.bincount(row, minlength=n) == 0
    if missing.any():
        first = leads.iloc[int(np.argmax(missing))]
        raise ValueError(
            f"forecasts: no daily rows for {int(missing.sum())} series of lead_time_demand, e.g."
            f" ({first['sku']!r}, {first['location']!r})"
        )
    lead = leads["lead_time_days"].to_numpy(dtype=np.int64)
    hz = fc["horizon"].to_numpy(dtype=np.int64)
    mu = fc["mean"].to_numpy(dtype=float)
    within = np.bincount(row, weights=np.where(hz <= lead[row], mu, 0.0), minlength=n)
    last_h = np.zeros(n, dtype=np.int64)
    np.maximum.at(last_h, row, hz)
    last = hz == last_h[row]
    last_rate = np.zeros(n)
    last_rate[row[last]] = mu[last]
    total = within + last_rate * np.maximum(lead - last_h, 0)
    phi = np.asarray(dispersion, dtype=float)
    q = nb_quantiles(total, phi, QUANTILES)
    model = np.empty(n, dtype=object)
    model[row[last]] = fc["model"].to_numpy()[last]
    run_date = fc["run_date"].iloc[0] if len(fc) else pd.NaT
    out = (
        leads[[*KEY, "lead_time_days", "lead_time_defaulted"]]
        .reset_index(drop=True)
        .assign(
            run_date=run_date,
            mean=total,
            **{name: q[:, i] for i, name in enumerate(QUANTILE_COLUMNS)},
            dispersion=np.maximum(phi, 1.0),
            model=model.astype(str),
        )
    )
    out["explanation_en"], out["explanation_zh"] = explain.lead_time_sentences(out.assign(horizon_days=last_h))
    return out[cols]


def train_model(
    sales: pd.DataFrame,
    items: pd.DataFrame,
    stock: pd.DataFrame,
    run_date: date,
    fc: ForecastConfig,
    lead_times: pd.DataFrame | None = None,
    default_lead_time_days: float | None = None,
) -> tuple[NightlyForecaster, dict[str, Any]]:
    """Backtest, select and fit on the history before ``run_date``: ``(model, metadata)``.

    The model is a fitted :class:`models.nightly.NightlyForecaster`; the metadata the training
    window, features and backtest scores (``backtest.score`` = WAPE of the selected models over the
    backtest days, lower is better; None when the backtest window holds no sale to score).

    Per series the model also stores its lead time (``lead_times``, else ``default_lead_time_days``,
    else ``fc.lead_time_days``; whole days) and the lead-time dispersion measured at it
    (``phi_own_lead_time``), beside ``phi_lead_time`` at ``fc.lead_time_days``.
    """
    rd = pd.Timestamp(run_date)
    keys = series_keys(sales, items, stock, run_date)
    start, end = history_window(sales, rd, fc.history_days)
    check_trainable(sales, run_date, fc.history_days, len(keys))
    y = history_matrix(sales, keys, start, end)
    inputs, maps = _gbm_inputs(sales, items, keys, start, end, y, fc.horizon_days, None)
    default_days = fc.lead_time_days if default_lead_time_days is None else default_lead_time_days
    leads = series_lead_times(keys, contract.empty("lead_times") if lead_times is None else lead_times, default_days)
    model = NightlyForecaster(
        horizon=fc.horizon_days,
        season=7,
        n_folds=fc.backtest_folds,
        use_gbm=fc.use_gbm,
        gbm_params={"max_iter": fc.gbm_max_iter, "row_weights": fc.gbm_row_weights},
        min_gain=fc.min_gain,
        refit_gbm_per_fold=fc.backtest_refit_gbm,
        reference_lead_time_days=fc.lead_time_days,
        random_state=0,
    ).fit(y, keys, lead_days=leads["lead_time_days"].to_numpy(), static_maps=maps, **inputs)
    bt = model.backtest_
    metadata = {
        "trained_for_run_date": rd.date().isoformat(),
        "training_window": [start.date().isoformat(), (end - pd.Timedelta(days=1)).date().isoformat()],
        "horizon_days": int(fc.horizon_days),
        "n_series": int(len(keys)),
        "candidates": bt["candidates"],
        "best_global": bt["best_global"],
        "min_gain": bt["min_gain"],
        "min_gain_scores": bt["min_gain_scores"],
        "combination": None
        if model.combination_ is None
        else {"gbm_weight": model.combination_[1], "partner": model.combination_[0]},
        "features": {
            "gbm": list(model.gbm_.feature_names_) if model.gbm_ is not None else [],
            "calendar": list(CHINA_COLUMNS),
            "static": list(maps),
        },
        "model_counts": bt["model_counts"],
        "demand_classes": bt["demand_classes"],
        "backtest": {
            "folds": int(fc.backtest_folds),
            "score": bt["score"],  # lower is better; None: no sale in the backtest window
            "metric": "wape of the selected models over the backtest days",
            "actual_units": bt["actual_units"],
            "candidate_wape": bt["candidate_wape"],
            "p90_coverage": bt["p90_coverage"],
            "p95_coverage": bt["p95_coverage"],
        },
        "random_state": 0,
    }
    return model, metadata


def accuracy_rows(model: NightlyForecaster, run_date: date) -> pd.DataFrame:
    """The ``forecast_accuracy`` rows (without run_id) of a model: its scores on its newest backtest fold."""
    fold = model.last_fold_
    return _accuracy_frame(
        pd.Timestamp(run_date),
        model.series_[KEY],
        model.series_["model"].to_numpy(),
        fold["actual"],
        fold["forecast"],
        fold["scale"],
    )


def predict_with(
    model: NightlyForecaster,
    sales: pd.DataFrame,
    items: pd.DataFrame,
    stock: pd.DataFrame,
    run_date: date,
    fc: ForecastConfig,
    pooled: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Daily forecasts (``forecasts`` columns without run_id) from a stored model on the current
    history (:meth:`models.nightly.NightlyForecaster.predict`). ``pooled``: the global model's
    pooled-level features of these series computed over the whole panel (:func:`pooled_levels`),
    for a shard that holds only part of each group; without it they are computed from ``sales``."""
    rd = pd.Timestamp(run_date)
    h = int(model.horizon)
    keys = series_keys(sales, items, stock, run_date)
    start, end = history_window(sales, rd, fc.history_days)
    y = history_matrix(sales, keys, start, end)
    inputs: dict[str, np.ndarray] = {}
    if model.gbm_ is not None and len(keys) and y.shape[1] > 0:
        inputs, _ = _gbm_inputs(sales, items, keys, start, end, y, h, model.static_maps_)
        if pooled is not None:
            inputs["group_levels"] = _pooled_for(pooled, keys, model)
    mean, q, chosen = model.predict(y, keys, **inputs)
    horizon = np.tile(np.arange(1, h + 1, dtype=np.int64), len(keys))
    return pd.DataFrame(
        {
            "run_date": rd,
            "sku": np.repeat(keys["sku"].to_numpy(), h),
            "location": np.repeat(keys["location"].to_numpy(), h),
            "target_date": rd + pd.to_timedelta(horizon - 1, unit="D"),
            "horizon": horizon,
            "mean": mean.reshape(-1),
            **{name: q[:, :, i].reshape(-1) for i, name in enumerate(QUANTILE_COLUMNS)},
            "model": np.repeat(chosen, h).astype(str),
        }
    )


#: the staging file of the global model's pooled-level features (written by the model stage)
POOLED = "pooled_levels"


def _pooled_names(model: NightlyForecaster) -> list[str]:
    gbm = model.gbm_
    return [f"group{j}_mean_{w}" for w in gbm.group_windows for j in range(N_GROUPS)] if gbm is not None else []


def pooled_levels(
    model: NightlyForecaster,
    sales: pd.DataFrame,
    items: pd.DataFrame,
    stock: pd.DataFrame,
    run_date: date,
    fc: ForecastConfig,
) -> pd.DataFrame | None:
    """The global model's pooled-level features of every series at the run date, over the whole
    panel: for each series, the recent mean level of its SKU across locations, of its location and of
    its category at the location (``models.gbm.group_features``). A forecast shard holds only part of
    these groups (a store shard, part of each SKU's locations), so the model stage computes them once
    and every shard predicts with the panel's (:func:`predict_with`): one shard or many, the same
    forecast. ``None`` when the model has no gradient-boosting part, or forecasts recursively (it
    then pools its own forecasts, step by step, and its forecast is not sharded)."""
    gbm = model.gbm_
    if gbm is None or gbm.strategy == "recursive":
        return None
    keys = series_keys(sales, items, stock, run_date)
    start, end = history_window(sales, pd.Timestamp(run_date), fc.history_days)
    y = history_matrix(sales, keys, start, end)
    names = _pooled_names(model)
    levels = (
        gbm.group_levels(y, _group_codes(keys, items))
        if len(keys) and y.shape[1]
        else np.zeros((len(keys), len(names)))
    )
    out = keys[KEY].reset_index(drop=True).astype("str")
    for i, name in enumerate(names):
        out[name] = levels[:, i]
    return out


def _pooled_for(pooled: pd.DataFrame, keys: pd.DataFrame, model: NightlyForecaster) -> np.ndarray:
    """The rows of ``pooled`` for ``keys``, in their order; every series must be there."""
    names = _pooled_names(model)
    missing = [n for n in names if n not in pooled.columns]
    if missing:
        raise ForecastError(f"{POOLED}: columns {missing} missing (written for another model?)")
    got = keys[KEY].astype("str").reset_index(drop=True).merge(pooled, on=KEY, how="left", indicator=True)
    absent = got["_merge"] != "both"
    if absent.any():
        first = got.loc[absent, KEY].head(3).to_dict("records")
        raise ForecastError(f"{POOLED}: {int(absent.sum())} series have no pooled levels (first: {first})")
    return got[names].to_numpy(dtype=float)


# --------------------------------------------------------------------------------------------
# Promotion: candidate and current scored on the same, newest backtest window
# --------------------------------------------------------------------------------------------


@dataclass
class WindowScores:
    """Scores of a candidate (and the current model) on the candidate's newest backtest window.

    ``cells``: the (series, day) pairs scored: observed days of the window of the series that have
    sales history before it (something to forecast from). ``why``: set when the window cannot
    score a model (no such cell, no sale in them): such a candidate is never promoted.
    """

    window: tuple[str, str]
    cells: int
    units: float
    candidate: float | None
    current: float | None = None
    why: str | None = None


def _wape(forecast: np.ndarray, actual: np.ndarray, cells: np.ndarray) -> float:
    a = np.where(cells, np.nan_to_num(actual), 0.0)
    return float(np.abs(np.where(cells, np.nan_to_num(forecast), 0.0) - a).sum() / a.sum())


def score_newest_window(
    candidate: NightlyForecaster,
    sales: pd.DataFrame,
    items: pd.DataFrame,
    run_date: date,
    fc: ForecastConfig,
    current: NightlyForecaster | None = None,
) -> WindowScores:
    """WAPE of ``candidate`` (its own newest backtest fold: fitted before the window, no look-ahead)
    and of ``current`` (predicting the same days from the same history before them) on the last
    ``horizon`` days before ``run_date``, over the same cells.

    The window cannot score (``why`` set) when the history is no longer than the horizon, when no
    series has sales before the window, when the scored cells are fewer than one horizon of days,
    or when they hold no sale: a WAPE there is undefined or luck (a first run on one day of history).
    """
    h = int(candidate.horizon)
    rd = pd.Timestamp(run_date)
    keys = candidate.series_[KEY]
    start, end = history_window(sales, rd, fc.history_days)
    y = history_matrix(sales, keys, start, end)
    w0 = end - pd.Timedelta(days=h)
    window = (w0.date().isoformat(), (end - pd.Timedelta(days=1)).date().isoformat())
    if y.shape[1] <= h or candidate.last_fold_["forecast"].shape != (len(keys), h):
        days = y.shape[1]
        return WindowScores(window, 0, 0.0, None, why=f"{days} day(s) of history, not more than the {h}-day window")
    cells = (~np.isnan(y[:, :-h])).any(axis=1)[:, None] & ~np.isnan(y[:, -h:])
    units = float(np.where(cells, y[:, -h:], 0.0).sum())
    n = int(cells.sum())
    if n < h:
        why = f"{n} series-day(s) with sales history before them, fewer than one horizon ({h})"
    elif units <= 0:
        why = "no sale in it to score against"
    else:
        why = None
    if why is not None:
        return WindowScores(window, n, units, None, why=why)
    scores = WindowScores(window, n, units, _wape(candidate.last_fold_["forecast"], y[:, -h:], cells))
    if current is not None:
        past = y[:, :-h]
        inputs: dict[str, np.ndarray] = {}
        if current.gbm_ is not None:
            inputs, _ = _gbm_inputs(sales, items, keys, start, w0, past, h, current.static_maps_)
        mean, _, _ = current.predict(past, keys, **inputs)
        scores.current = _wape(mean, y[:, -h:], cells)
    return scores


def _usable(loaded: tuple[Any, dict[str, Any]] | None, horizon: int) -> NightlyForecaster | None:
    if loaded is None or not isinstance(loaded[0], NightlyForecaster) or int(loaded[0].horizon) != horizon:
        return None
    return loaded[0]


def promotion_decision(version: str, current: str | None, ws: WindowScores) -> tuple[bool, str]:
    """Whether ``version`` becomes current, and why (both scores and the window named)."""
    where = f"on the newest backtest window {ws.window[0]}..{ws.window[1]}"
    if ws.why is not None or ws.candidate is None:
        kept = f"kept {current}" if current else "no model made current"
        return False, f"{kept}: {version} cannot be scored {where} ({ws.why})"
    detail = f"{where}, {ws.cells} series-days, {ws.units:g} units"
    if current is None or ws.current is None:
        replaced = f", replacing {current} (not usable)" if current else ""
        return True, f"{version} is the current model{replaced}: backtest score {ws.candidate:.4f} {detail}"
    if ws.candidate > ws.current:
        return False, f"kept {current}: score {ws.candidate:.4f} of {version} is worse than {ws.current:.4f} {detail}"
    return True, f"{version} replaces {current}: score {ws.candidate:.4f} <= {ws.current:.4f} {detail}"


def retrain(
    cfg: Config,
    run_date: date,
    sales: pd.DataFrame,
    items: pd.DataFrame,
    stock: pd.DataFrame,
    lead_times: pd.DataFrame | None = None,
    root: Path | None = None,
) -> dict[str, Any]:
    """Train a new version and save it; promote it when it scores not worse than the current model
    on the same, newest backtest window (the current one re-scored there, not its stored score from
    an older window), never when that window cannot score it (:func:`score_newest_window`).
    ``root``: the model folder (default :func:`model_dir`)."""
    fc = cfg.forecast
    model, meta = train_model(sales, items, stock, run_date, fc, lead_times, cfg.policy.default_lead_time_days)
    root = root or model_dir(cfg)
    loaded = artifacts.load_current(root)
    current = _usable(loaded, fc.horizon_days)
    ws = score_newest_window(model, sales, items, run_date, fc, current)
    meta["promotion_window"] = asdict(ws)
    path = artifacts.save(root, run_date, model, meta)
    cur_name = artifacts.current_version(root)
    promoted, reason = promotion_decision(path.name, cur_name, ws)
    if promoted:
        artifacts.make_current(root, path.name)
    return {"version": path.name, "promoted": promoted, "reason": reason, "score": ws.candidate}


def current_or_train(
    ctx: RunContext, sales: pd.DataFrame, items: pd.DataFrame, stock: pd.DataFrame, lead_times: pd.DataFrame
) -> tuple[NightlyForecaster, dict[str, Any], str]:
    """The current model version, or a new one trained now and made current when there is no usable
    one (none yet, another horizon, or a file of an older format). A forecast shard with
    ``forecast.model_per_shard`` uses its own folder (:func:`_root`), trained on its own series."""
    root = _root(ctx)
    loaded = artifacts.load_current(root)
    if loaded is None:
        why = "no model yet"
    elif not isinstance(loaded[0], NightlyForecaster):
        why = f"model {loaded[1].get('version')} is of an older format"
    elif int(loaded[1].get("horizon_days", -1)) != ctx.cfg.forecast.horizon_days:
        why = f"model {loaded[1].get('version')} forecasts {loaded[1].get('horizon_days')} days"
    else:
        meta = loaded[1]
        return loaded[0], meta, f"model {meta['version']} (trained for {meta['trained_for_run_date']})"
    fc = ctx.cfg.forecast
    model, meta = train_model(sales, items, stock, ctx.run_date, fc, lead_times, ctx.cfg.policy.default_lead_time_days)
    ws = score_newest_window(model, sales, items, ctx.run_date, fc)
    meta["promotion_window"] = asdict(ws)
    path = artifacts.save(root, ctx.run_date, model, meta)
    if ws.why is not None:  # used tonight, never made current: the next night trains again
        return (
            model,
            {**meta, "version": path.name},
            f"{why}: trained {path.name} for this run only, not made current (its newest backtest window"
            f" {ws.window[0]}..{ws.window[1]} cannot score it: {ws.why})",
        )
    artifacts.make_current(root, path.name)
    return model, {**meta, "version": path.name}, f"{why}: trained {path.name} and made it current"


def staged_lead_times(ctx: RunContext) -> tuple[pd.DataFrame, list[str]]:
    if ctx.exists("lead_times"):
        return ctx.read("lead_times"), []
    return contract.empty("lead_times"), [
        f"no lead_times file in {ctx.run_dir}: every series uses the default lead time"
        f" ({ctx.cfg.policy.default_lead_time_days:g} days)"
    ]


def forecast_stage(ctx: RunContext, progress: Callable[[str], None] | None = None) -> StageResult:
    """Read sales, items, stock and lead_times from staging; write ``forecasts``,
    ``forecast_accuracy`` and ``lead_time_demand``.

    ``forecast.method = selected`` (default): predict with the current model version under
    ``model_dir`` (training and promoting one when there is none); the accuracy rows are the
    current model's own most recent backtest fold. ``moving_average``: the skeleton method.
    A missing ``lead_times`` file (a staging folder without it) means the default lead time for
    every series, said in the notes and flagged per row.
    """
    fc = ctx.cfg.forecast
    started = time.monotonic()

    def say(msg: str) -> None:  # progress lines of a long stage, with the seconds so far
        if progress:
            progress(f"forecast: {msg} ({time.monotonic() - started:.0f} s)")

    sales, items, stock = ctx.read("sales"), ctx.read("items"), ctx.read("stock")
    lead_times, notes = staged_lead_times(ctx)
    run_id = ctx.run_id
    say(f"{len(sales):,} sales rows read, method {fc.method}")
    if fc.method == "moving_average":
        forecasts = forecast_moving_average(sales, items, stock, ctx.run_date, fc.horizon_days, fc.window_days)
        accuracy = forecast_accuracy(sales, items, stock, ctx.run_date, fc.window_days, fc.holdout_days)
        leads = series_lead_times(forecasts[KEY].drop_duplicates(), lead_times, ctx.cfg.policy.default_lead_time_days)
        phi = np.ones(len(leads))  # independent Poisson days: the lead-time sum is Poisson
        note = f"moving average over {fc.window_days} days, {fc.horizon_days}-day horizon, Poisson quantiles"
    else:
        check_trainable(sales, ctx.run_date, fc.history_days, len(series_keys(sales, items, stock, ctx.run_date)))
        night = ctx.read_json("model") if ctx.exists("model.json") else {}
        if night.get("version"):  # the one model of the night, made sure of by the model stage
            say(f"loading model {night['version']}")
            model = artifacts.load_version(model_dir(ctx.cfg), str(night["version"]))
            how = str(night.get("how") or f"model {night['version']}")
        else:
            say("loading the current model (or training one: that takes minutes on a large panel)")
            model, _meta, how = current_or_train(ctx, sales, items, stock, lead_times)
        say(f"model ready: {how}; predicting {fc.horizon_days} days")
        pooled = ctx.read(POOLED) if ctx.exists(POOLED) else None
        if pooled is None and ctx.shard is not None and model.gbm_ is not None and not fc.model_per_shard:
            raise ForecastError(
                f"forecast shard: no {POOLED} from the model stage; a shard cannot pool over the panel on its own"
            )
        forecasts = predict_with(model, sales, items, stock, ctx.run_date, fc, pooled)
        say(f"{forecasts[KEY].drop_duplicates().shape[0]:,} series forecast")
        accuracy = accuracy_rows(model, ctx.run_date)
        if ctx.shard is not None:  # the panel model's backtest covers the panel: this shard's series only
            accuracy = ctx.shard.keep(accuracy)
        leads = series_lead_times(forecasts[KEY].drop_duplicates(), lead_times, ctx.cfg.policy.default_lead_time_days)
        phi = stored_lead_time_dispersion(model, leads)
        note = f"per-series selected models, {fc.horizon_days}-day horizon, negative binomial quantiles; {how}"
    lead_demand = lead_time_demand(forecasts, leads, phi)
    say("lead-time demand computed; writing")
    counts = {
        "forecasts": ctx.write("forecasts", forecasts.assign(run_id=run_id)),
        "forecast_accuracy": ctx.write("forecast_accuracy", accuracy.assign(run_id=run_id)),
        "lead_time_demand": ctx.write("lead_time_demand", lead_demand.assign(run_id=run_id)),
    }
    return StageResult(
        stage="forecast",
        paths={name: str(ctx.path(name)) for name in counts},
        counts=counts,
        notes=[note, *notes],
    )


def model_stage(ctx: RunContext, progress: Callable[[str], None] | None = None) -> StageResult:
    """The one model of the night (``model.json``: its version and how it was got), so every forecast
    shard applies the same fitted model: the current version, or — on a night without a usable one
    (the first night, a new horizon) — one trained now, once, on the whole panel. The weekly retrain
    promoting a new version mid-night cannot mix versions: the shards load the one named here.
    ``forecast.method: moving_average`` needs no model (``version`` null)."""
    fc = ctx.cfg.forecast
    if fc.method != "selected":
        path = ctx.write_json("model", {"version": None, "how": f"method {fc.method}: no fitted model"})
        return StageResult(stage="model", paths={"model": str(path)}, counts={}, notes=[])
    if fc.model_per_shard:
        how = "one model per forecast shard (forecast.model_per_shard): each shard loads or trains its own"
        path = ctx.write_json("model", {"version": None, "per_shard": True, "how": how})
        return StageResult(stage="model", paths={"model": str(path)}, counts={}, notes=[how])
    sales, items, stock = ctx.read("sales"), ctx.read("items"), ctx.read("stock")
    lead_times, notes = staged_lead_times(ctx)
    check_trainable(sales, ctx.run_date, fc.history_days, len(series_keys(sales, items, stock, ctx.run_date)))
    if progress:
        progress("model: loading the current model (or training one: that takes minutes on a large panel)")
    model, meta, how = current_or_train(ctx, sales, items, stock, lead_times)
    path = ctx.write_json("model", {"version": str(meta["version"]), "how": how})
    paths, counts = {"model": str(path)}, {}
    pooled = pooled_levels(model, sales, items, stock, ctx.run_date, fc)
    if pooled is not None:  # the panel's pooled levels: every forecast shard predicts with them
        counts[POOLED] = ctx.write(POOLED, pooled)
        paths[POOLED] = str(ctx.path(POOLED))
    return StageResult(stage="model", paths=paths, counts=counts, notes=[how, *notes])


def retrain_stage(ctx: RunContext) -> StageResult:
    """Weekly retrain: backtest, select, save a new version, promote it only if not worse. With
    ``forecast.model_per_shard``, every forecast shard's own model in turn, on its shard's series
    (the shards planned as the nightly ``shards`` stage plans them on the same data)."""
    lead_times, _ = staged_lead_times(ctx)
    sales, items, stock = ctx.read("sales"), ctx.read("items"), ctx.read("stock")
    if not ctx.cfg.forecast.model_per_shard:
        info = retrain(ctx.cfg, ctx.run_date, sales, items, stock, lead_times)
        return StageResult(
            stage="retrain",
            paths={"model": str(model_dir(ctx.cfg) / info["version"])},
            counts={},
            notes=[info["reason"]],
        )
    from pipelines import shards, stages

    read = lambda name: ctx.read(name) if ctx.exists(name) else contract.empty(name)  # noqa: E731
    keys = series_keys(sales, items, stock, ctx.run_date)
    plan = shards.night_plan(ctx.cfg, keys, sales, items, read("locations"), read("lanes"))
    paths, notes = {}, []
    for k in range(len(plan["forecast"])):
        sc = shards.scope(plan, stages.BY_NAME["forecast"], k)
        root = model_dir(ctx.cfg, sc.key)
        info = retrain(ctx.cfg, ctx.run_date, sc.keep(sales), items, sc.keep(stock), sc.keep(lead_times), root=root)
        paths[f"model_{sc.key}"] = str(root / info["version"])
        notes.append(f"shard {sc.key} ({len(sc.values)} {sc.axis}s): {info['reason']}")
    return StageResult(stage="retrain", paths=paths, counts={}, notes=notes)


__all__ = [
    "ForecastError",
    "check_trainable",
    "model_stage",
    "current_or_train",
    "pooled_levels",
    "staged_lead_times",
    "daily_matrix",
    "forecast_accuracy",
    "forecast_moving_average",
    "forecast_stage",
    "history_matrix",
    "lead_time_demand",
    "accuracy_rows",
    "model_dir",
    "predict_with",
    "retrain",
    "retrain_stage",
    "train_model",
    "series_keys",
    "series_lead_times",
    "stored_lead_time_dispersion",
]
